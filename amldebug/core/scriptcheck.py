"""Static checks of an entry script: it compiles and defines init() and run()."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import EntryScriptError


def syntax_error(path: Path) -> str | None:
    """Return 'file:line: error: message' (the form editors link to) if it does not compile, else None."""
    try:
        source = Path(path).read_bytes()
    except OSError as exc:
        return f"{path}:1: error: cannot read it ({exc.strerror})"
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{path}:{exc.lineno or 0}: error: {exc.msg}"
    except ValueError as exc:  # e.g. NUL bytes
        return f"{path}:1: error: {exc}"
    return None


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(Path(path).read_bytes(), str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def check_entry_script(path: Path) -> None:
    """Raise EntryScriptError naming the file and line unless the script can be served."""
    problem = syntax_error(path)
    if problem:
        raise EntryScriptError(f"{problem}; fix the entry script and run again")
    missing = [fn for fn in ("init", "run") if fn not in defined_functions(path)]
    if missing:
        wanted = " and ".join(f"{fn}()" for fn in missing)
        raise EntryScriptError(
            f"{path} does not define {wanted}; Azure ML calls init() once when the server starts "
            f"and run(raw_data) for each request"
        )
