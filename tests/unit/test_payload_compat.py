"""The launcher and every payload file run in the IMAGE's Python, which may be as old as 3.8
(Azure ML's older inference images): they must parse as 3.8 and use nothing added later."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAYLOAD = Path(__file__).resolve().parents[2] / "amldebug" / "payload"
PAYLOAD_FILES = sorted(p for p in PAYLOAD.rglob("*.py") if "__pycache__" not in p.parts)

# Names that do not exist on Python 3.8, by where they appear.
NEW_ATTRIBUTES = {
    "removeprefix": "3.9", "removesuffix": "3.9", "is_relative_to": "3.9", "with_stem": "3.9",
    "waitstatus_to_exitcode": "3.9", "pidfd_open": "3.9", "to_thread": "3.9", "randbytes": "3.9",
    "platlibdir": "3.9", "lcm": "3.9", "bit_count": "3.10", "pairwise": "3.10", "orig_argv": "3.10",
    "stdlib_module_names": "3.10", "packages_distributions": "3.10", "StrEnum": "3.11", "UTC": "3.11",
}
NEW_FROM_IMPORTS = {
    ("functools", "cache"): "3.9", ("typing", "Annotated"): "3.9", ("typing", "TypeAlias"): "3.10",
    ("typing", "ParamSpec"): "3.10", ("typing", "TypeGuard"): "3.10", ("typing", "Self"): "3.11",
    ("typing", "Never"): "3.11", ("typing", "assert_never"): "3.11", ("contextlib", "chdir"): "3.11",
    ("enum", "StrEnum"): "3.11", ("datetime", "UTC"): "3.11", ("importlib.resources", "files"): "3.9",
    ("itertools", "pairwise"): "3.10", ("math", "lcm"): "3.9",
}
NEW_ATTRIBUTE_PAIRS = {("functools", "cache"): "3.9", ("resources", "files"): "3.9"}
NEW_MODULES = {"zoneinfo": "3.9", "graphlib": "3.9", "tomllib": "3.11"}
NEW_BUILTINS = {"aiter": "3.10", "anext": "3.10", "ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11",
                "EncodingWarning": "3.10"}
NEW_KEYWORDS = {("zip", "strict"): "3.10", ("dataclass", "slots"): "3.10", ("dataclass", "kw_only"): "3.10"}
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _lazy_annotations(tree: ast.Module) -> set[int]:
    """ids of annotation nodes Python 3.8 never evaluates: all of them under
    ``from __future__ import annotations``, else only variable annotations in function bodies."""
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in tree.body)
    lazy: set[int] = set()
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            annotations += [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                   args.vararg, args.kwarg] if a is not None and a.annotation]
            annotations += [node.returns] if node.returns else []
            if not future:  # a local variable's annotation is never evaluated
                lazy |= {id(n.annotation) for n in ast.walk(node) if isinstance(n, ast.AnnAssign)}
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        if future:
            lazy |= {id(a) for a in annotations}
    return lazy


def too_new(source: str, filename: str = "<payload>") -> list[str]:
    """What in ``source`` does not run on Python 3.8, as 'line: what (version)'."""
    try:
        tree = ast.parse(source, filename, feature_version=(3, 8))
    except SyntaxError as exc:
        return [f"{exc.lineno}: does not parse as Python 3.8: {exc.msg}"]
    lazy = _lazy_annotations(tree)
    inside_lazy: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            inside_lazy |= {id(n) for n in ast.walk(node)}
    found = []

    def report(node: ast.AST, what: str, version: str) -> None:
        found.append(f"{node.lineno}: {what} (Python {version})")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            pair = (_name(node.value), node.attr)
            if pair in NEW_ATTRIBUTE_PAIRS:
                report(node, ".".join(pair), NEW_ATTRIBUTE_PAIRS[pair])
            elif node.attr in NEW_ATTRIBUTES:
                report(node, f".{node.attr}", NEW_ATTRIBUTES[node.attr])
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (node.module, alias.name) in NEW_FROM_IMPORTS:
                    report(node, f"from {node.module} import {alias.name}", NEW_FROM_IMPORTS[node.module, alias.name])
            if (node.module or "").split(".")[0] in NEW_MODULES:
                report(node, f"module {node.module}", NEW_MODULES[node.module.split(".")[0]])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in NEW_MODULES:
                    report(node, f"module {alias.name}", NEW_MODULES[alias.name.split(".")[0]])
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS and isinstance(node.ctx, ast.Load):
            report(node, node.id, NEW_BUILTINS[node.id])
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if (_name(node.func), keyword.arg) in NEW_KEYWORDS:
                    report(node, f"{_name(node.func)}({keyword.arg}=)", NEW_KEYWORDS[_name(node.func), keyword.arg])
            if _name(node.func) in ("isinstance", "issubclass") and len(node.args) == 2 \
                    and isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr):
                report(node, f"{_name(node.func)}() with X | Y", "3.10")
        elif isinstance(node, ast.Subscript) and id(node) not in inside_lazy \
                and isinstance(node.value, ast.Name) and node.value.id in BUILTIN_GENERICS:
            report(node, f"{node.value.id}[...] evaluated at run time", "3.9")
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.BitOr):
            operands = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.target, node.value]
            if any(_is_dict(o) for o in operands):
                report(node, "dict | dict", "3.9")
            elif id(node) not in inside_lazy and _in_annotation(tree, node):
                report(node, "X | Y in an annotation evaluated at run time", "3.10")
    return found


def _is_dict(node: ast.AST) -> bool:
    return isinstance(node, (ast.Dict, ast.DictComp)) or (
        isinstance(node, ast.Call) and _name(node.func) in ("dict", "OrderedDict"))


def _in_annotation(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            annotations += [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                   args.vararg, args.kwarg] if a is not None and a.annotation]
            annotations += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        if any(target is n for a in annotations for n in ast.walk(a)):
            return True
    return False


def test_there_are_payload_files_and_the_launcher_is_one():
    assert PAYLOAD / "launch.py" in PAYLOAD_FILES and len(PAYLOAD_FILES) >= 3


@pytest.mark.parametrize("path", PAYLOAD_FILES, ids=lambda p: p.relative_to(PAYLOAD).as_posix())
def test_payload_file_runs_on_python_3_8(path):
    assert too_new(path.read_text(), str(path)) == []


@pytest.mark.parametrize("source, expected", [
    ("x = 'ab'.removeprefix('a')\n", ".removeprefix"),
    ("x = name.removesuffix('.py')\n", ".removesuffix"),
    ("a = {}\nb = a | {'k': 1}\n", "dict | dict"),
    ("a = {}\na |= dict(k=1)\n", "dict | dict"),
    ("import functools\n@functools.cache\ndef f(): pass\n", "functools.cache"),
    ("from functools import cache\n", "from functools import cache"),
    ("def f(x: list[int]) -> None: pass\n", "list[...] evaluated at run time"),
    ("def f() -> dict[str, int]: pass\n", "dict[...] evaluated at run time"),
    ("X = tuple[int, ...]\n", "tuple[...] evaluated at run time"),
    ("from __future__ import annotations\nX = cast(list[int], [])\n", "list[...] evaluated at run time"),
    ("def f(x: int | None): pass\n", "X | Y in an annotation"),
    ("isinstance(1, int | str)\n", "isinstance() with X | Y"),
    ("import zoneinfo\n", "module zoneinfo"),
    ("for a, b in zip(x, y, strict=True): pass\n", "zip(strict=)"),
    ("match x:\n    case 1: pass\n", "does not parse as Python 3.8"),
    ("with (open('a') as f, open('b') as g): pass\n", "does not parse as Python 3.8"),
])
def test_the_check_catches_what_python_3_8_lacks(source, expected):
    found = too_new(source)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("source", [
    "from __future__ import annotations\ndef f(x: list[int], y: int | None) -> dict[str, int]: pass\n",
    "def f():\n    x: list[int] = []\n    return x\n",
    "from typing import List, Optional\ndef f(x: List[int]) -> Optional[int]: pass\n",
    "flags = 1 | 2\nd = dict(a=1)\nd.update({'b': 2})\n",
    "x = 'abc'[1:]\nif (n := len(x)) > 1: pass\n",
])
def test_the_check_passes_what_python_3_8_runs(source):
    assert too_new(source) == []
