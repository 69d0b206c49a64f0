"""The package's layers, checked on its import statements (those inside functions too):
cli -> use cases -> service, envbuild -> sources, vscode -> engine -> core, diagnose -> errors
-> the protocol. A module imports its own layer or lower ones, and no two modules import each
other around a circle. Of the payload (the code that runs inside the server), the host imports
the protocol module and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "amldebug"
# The wire between the host and the payload: the one payload module the host imports (the
# payload loads it by path, in the image's Python). It imports nothing of ours.
PROTOCOL = "amldebug.payload.common.protocol"

# Highest first. A module's layer is that of its first two name parts (amldebug.engine.docker ->
# amldebug.engine), else of the module itself.
LAYERS = [
    {"amldebug.__main__"},
    {"amldebug.cli"},
    {"amldebug", "amldebug.session", "amldebug.watch", "amldebug.check", "amldebug.scaffold", "amldebug.replicas",
     "amldebug.azureml_bridge", "amldebug.localwebservice", "amldebug.supervise", "amldebug.demo"},
    {"amldebug.service", "amldebug.envbuild"},
    {"amldebug.sources", "amldebug.vscode"},  # vscode asks the runtime where the server sees the code
    {"amldebug.engine"},
    {"amldebug.core", "amldebug.diagnose"},
    {"amldebug.errors"},
    {PROTOCOL},
]


def modules(payload: bool = False) -> dict[str, Path]:
    """The package's modules by name; of the payload only the protocol (all of it with ``payload``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "payload" in rel.parts and not payload and ".".join(rel.parts) != PROTOCOL:
            continue  # runs inside the server: it loads its own modules by path
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The amldebug modules ``module`` imports (a name imported from a package counts as
    its submodule when there is one)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else source)
    return {m for m in found if m in known and m != module}


def layer(module: str) -> int:
    for candidate in (".".join(module.split(".")[:2]), module):
        for number, members in enumerate(LAYERS):
            if candidate in members:
                return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


GRAPH = {m: imports(m, p, set(modules())) for m, p in modules().items()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_module_imports_only_its_own_layer_or_lower(module):
    up = sorted(target for target in GRAPH[module] if layer(target) < layer(module))
    assert not up, f"{module} imports a higher layer: {up}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles():
    assert not _cycles(GRAPH), f"import cycles: {_cycles(GRAPH)}"


def test_no_cycles_between_packages():
    """core, sources, vscode, ... taken whole: a package may not lean on one that leans on it."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    assert not _cycles(packages), f"package cycles: {_cycles(packages)}"


def test_the_host_imports_only_the_protocol_of_the_payload():
    everything = set(modules(payload=True))
    payload = {m for m in everything if m.startswith("amldebug.payload")}
    for module, path in modules().items():
        if module == PROTOCOL:
            assert not imports(module, path, everything), "the protocol imports nothing of ours"
            continue
        reached = imports(module, path, everything) & payload
        assert reached <= {PROTOCOL}, f"{module} imports {sorted(reached - {PROTOCOL})} of the payload"


def test_the_check_sees_the_imports_it_checks():
    """The graph is not empty by mistake: the CLI reaches the engine through the session."""
    assert "amldebug.session" in GRAPH["amldebug.cli.commands"]
    assert "amldebug.engine.backend" in GRAPH["amldebug.service.registry"]
    assert PROTOCOL in GRAPH["amldebug.engine.channel"] and PROTOCOL in GRAPH["amldebug.engine.statefile"]
    assert len(GRAPH) > 30 and sum(map(len, GRAPH.values())) > 80
