"""The wire is written once: no name of payload/common/protocol.py (a variable, a file or pipe,
a status, a line, a field, a signal) is spelled as a literal anywhere else in amldebug.

Names that only the protocol uses (``AMLDEBUG_STATE``, ``patch.json``, ``SIGURG``) are looked for
in every module. Plain words (``ready``, ``control``, a status) mean other things elsewhere
(``--reload``, a container's status), so they are looked for in the modules that speak the
protocol: the payload's and the host's that import it. The fields of the JSON records (``pid``,
``seq``, ``ms``) are looked for in the payload; the host reads them as the records' attributes,
and its own JSON (owner.json, ``--json`` output) has fields of the same names. Docstrings may
name them; code may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from amldebug.payload.common import protocol

PACKAGE = Path(__file__).resolve().parents[2] / "amldebug"
PROTOCOL_FILE = Path(protocol.__file__).resolve()
SPEAKER = re.compile(r"payload\.common(?:\.protocol| import protocol)|engine(?:\.channel| import channel)"
                     r"|engine\.statefile|from \.(?:common|statefile|channel) import|from \.\.common")


def _templates() -> set[str]:
    """The fixed parts of the protocol's templates (``patch-%d`` -> ``patch-``)."""
    parts = set()
    for name, value in vars(protocol).items():
        if name.startswith("_") and isinstance(value, str):
            parts |= {p for p in re.split(r"%[sd]", value) if len(p) > 4}  # not ".tmp": any temp file
    return parts


# Literals that are protocol names by coincidence only, and why.
COINCIDENCES = {
    ("amldebug/core/interrupts.py", "SIGHUP"): "the host's own hang-up (a closed terminal), not a reload",
    ("amldebug/payload/master/main.py", "azmlinfsrv"): "the server's logger, named like its script",
    ("amldebug/cli/commands.py", "status"): "'amldebug score --json' gives the HTTP status",
    ("amldebug/engine/docker.py", "status"): "a field of the Docker API's pull progress",
}


def record_fields() -> set[str]:
    return {field for record in (protocol.StateRecord, protocol.PatchRequest, protocol.PatchAnswer,
                                 protocol.MasterAnswer, protocol.StandbyRecord, protocol.UndeliveredRecord)
            for field in record.fields()}


def protocol_names() -> tuple[set[str], set[str]]:
    """(names looked for everywhere, plain words looked for where the protocol is spoken)."""
    strings = {value for name, value in vars(protocol).items() if name.isupper() and isinstance(value, str)}
    strings |= {s.value for s in protocol.Status}
    strings |= _templates()
    strings.discard(protocol.ON)  # "1" and "0": any flag; the protocol's are read through ON and OFF
    strings.discard(protocol.OFF)
    distinct = {s for s in strings if not re.fullmatch(r"[a-z_]+", s)}
    return distinct, strings - distinct


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _pieces(text: str) -> list[str]:
    """A literal and its parts around %-placeholders and slashes (a template or a path spells its parts)."""
    return [text] + [p for p in re.split(r"%[sd]|/", text) if p != text]


def spellings(root: Path, skip: Path | None = None) -> dict[str, list[str]]:
    """{protocol name: ['file:line', ...]} for every literal spelling of one in ``root``'s modules."""
    distinct, plain = protocol_names()
    fields = record_fields()
    env_names = {s for s in distinct if s.startswith(protocol.ENV_PREFIX) and s != protocol.ENV_PREFIX}
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if skip is not None and path.resolve() == skip:
            continue
        text = path.read_text()
        tree = ast.parse(text)
        docstrings = _docstrings(tree)
        payload = "payload" in path.relative_to(root).parts
        speaks = payload or bool(SPEAKER.search(text))
        where = path.relative_to(root.parent).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
                continue
            hits = {piece for piece in _pieces(node.value)
                    if piece in distinct or (speaks and piece in plain) or (payload and piece in fields)}
            hits |= {name for name in env_names if re.search(rf"\b{name}\b", node.value)}
            for name in hits - {name for (file, name) in COINCIDENCES if file == where}:
                found.setdefault(name, []).append(f"{where}:{node.lineno}")
    return found


def test_no_protocol_name_is_spelled_outside_the_protocol_module():
    spelled = spellings(PACKAGE, skip=PROTOCOL_FILE)
    assert spelled == {}, "use the protocol's name instead (amldebug.payload.common.protocol): " + "; ".join(
        f"{name!r} at {', '.join(where)}" for name, where in sorted(spelled.items()))


def test_the_check_finds_a_spelling_where_there_is_one(tmp_path):
    """It cannot pass by finding nothing: the protocol spells every name, and a copy of a
    host module with one name written out is caught."""
    everything = spellings(PROTOCOL_FILE.parent, skip=None)
    distinct, plain = protocol_names()
    assert {protocol.STATE_FILE, protocol.ENV_STATE, protocol.INBOX_SIGNAL, "patch-", protocol.READY} <= set(everything)
    assert len(distinct) > 25 and {"ready", "reload", "control", "inbox", "failed"} <= plain
    assert {"pid", "seq", "generation", "ok", "init_ms"} <= record_fields()
    root = tmp_path / "amldebug"
    root.mkdir()
    (root / "speaker.py").write_text('"""patch.json and ready, in a docstring: fine."""\n'
                                     "from .engine import channel\n"
                                     "LINE = 'ready'\n"
                                     "PATH = f'{root}/state.json'\n"
                                     "ENV = 'AMLDEBUG_WAIT=1'\n")
    (root / "other.py").write_text("MODE = 'ready'\n")  # a plain word where no protocol is spoken
    (root / "payload").mkdir()
    (root / "payload" / "worker.py").write_text("answer = {'seq': 1}\n")
    assert spellings(root) == {"ready": ["amldebug/speaker.py:3"], "state.json": ["amldebug/speaker.py:4"],
                               "AMLDEBUG_WAIT": ["amldebug/speaker.py:5"], "seq": ["amldebug/payload/worker.py:1"]}
