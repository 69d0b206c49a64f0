"""A project's ``amldebug.json``: the layout ``amldebug init`` records so that ``check``,
``attach`` and F5 need no arguments in that folder (command line > file > default, see
``AttachOptions.with_project``). JSON with comments, as VS Code's files are."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Mapping

from ..errors import UsageError
from ..vscode.jsonc import parse_jsonc

PROJECT_FILE = "amldebug.json"


# Key -> (default, may be null). Paths in the file are relative to the folder that holds it.
_PROJECT_KEYS = {
    "entry_script": ("score.py", False),
    "model_dir": (None, True),
    "model_name": (None, True),
    "env_file": (None, True),
    "image": (None, True),
}


_PATH_KEYS = ("model_dir", "env_file")


def project_file(image: str | None = None) -> dict:
    """The ``amldebug.json`` of a scaffolded project (pure)."""
    return {"entry_script": "score.py", "model_dir": "model", "model_name": "model",
            "env_file": "requirements.txt", "image": image}


def render_project_file(project: Mapping) -> bytes:
    return (json.dumps(dict(project), indent=4) + "\n").encode("utf-8")


def _describe(value: object) -> str:
    words = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null", str: "a string"}
    return words.get(type(value), f"the number {value}")


def parse_project(data: object, folder: Path, source: str) -> dict:
    """Validate the parsed ``amldebug.json`` of ``folder`` and resolve its paths (pure).

    ``entry_script`` stays relative to ``folder`` (as ``--entry-script`` is to SOURCE_DIR);
    ``model_dir`` and ``env_file`` become absolute ``Path`` values; missing keys get defaults.
    """
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a JSON object at the top level, found {_describe(data)}; "
                         f"write it as {json.dumps(project_file())}")
    unknown = sorted(set(data) - set(_PROJECT_KEYS))
    if unknown:
        raise UsageError(f"{source}: unknown key '{unknown[0]}'; the keys amldebug reads are "
                         f"{', '.join(_PROJECT_KEYS)}; remove it or fix its spelling")
    result = {}
    for key, (default, nullable) in _PROJECT_KEYS.items():
        value = data.get(key, default)
        if value is None and nullable:
            result[key] = None
            continue
        if not isinstance(value, str) or not value.strip():
            wanted = "a non-empty string or null" if nullable else "a non-empty string"
            found = repr(value) if isinstance(value, str) else _describe(value)
            raise UsageError(f"{source}: \"{key}\" must be {wanted}, found {found}; fix it in the file")
        result[key] = value
    entry = PurePosixPath(Path(result["entry_script"]).as_posix())
    if entry.is_absolute() or ".." in entry.parts:
        raise UsageError(f"{source}: \"entry_script\" '{result['entry_script']}' must be a path inside "
                         f"'{folder}', relative to it, such as \"score.py\"")
    result["entry_script"] = str(entry)
    for key in _PATH_KEYS:
        if result[key] is not None:
            result[key] = Path(os.path.abspath(folder / Path(result[key]).expanduser()))
    return result


def load_project(folder: Path) -> dict | None:
    """Read and validate ``folder/amldebug.json``; None when there is none.

    Returns ``entry_script`` (str, relative to ``folder``), ``model_dir`` and ``env_file``
    (absolute ``Path`` or None), ``model_name`` and ``image`` (str or None). A wrong key or
    type raises ``UsageError``, text that is not JSON ``ConfigFileError``, both naming the file.
    """
    path = Path(folder) / PROJECT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the file is not UTF-8 text; save it as UTF-8") from exc
    # JSON with comments, as in VS Code's files: a user may annotate the layout.
    return parse_project(parse_jsonc(text, str(path)), Path(folder), str(path))
