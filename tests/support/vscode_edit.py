"""One launch.json or tasks.json edited on its own, unlocked: merging one entry in, and taking
it out again byte for byte. The tests use these to prove what a merge keeps; amldebug itself
writes both files of a workspace under one lock (jsonc.write_config_files) and never
removes entries, so they are not in the package."""

from __future__ import annotations

from pathlib import Path

from amldebug.vscode.jsonc import (
    _KINDS,
    _array,
    _atomic_write,
    _check,
    _cut,
    _matches,
    _Parser,
    merge_entry,
    read_config_file,
)


def remove_entry(text: str, *, array_key: str, id_key: str, id_value: object, source: str = "<text>") -> str:
    """Return ``text`` without the first ``array_key`` element whose ``id_key`` is ``id_value``, nor its comma.

    Everything else is kept byte for byte; unchanged text when there is no such element.
    """
    root = _Parser(text, source).document()
    array = _array(root, array_key, text, source) if root is not None else None
    matches = _matches(array.value, id_key, id_value) if array is not None else []
    if not matches:
        return text
    result = _cut(text, array, matches[0])
    left = len(matches) - 1
    return _check(result, source, array_key, lambda items: len(_matches(items, id_key, id_value)) == left)


def remove_config(path: Path, *, kind: str, id_value: str) -> bool:
    """Remove entry ``id_value`` from the launch.json or tasks.json at ``path`` atomically; True if removed."""
    array_key, id_key, _, _ = _KINDS[kind]
    old = read_config_file(path)
    if old is None:
        return False
    new = remove_entry(old, array_key=array_key, id_key=id_key, id_value=id_value, source=str(path))
    if new != old:
        _atomic_write(path, new)
    return new != old


def write_config_file(path: Path, entry: dict, *, kind: str) -> Path:
    """Merge ``entry`` into the launch.json (``kind="launch"``) or tasks.json (``kind="tasks"``) at ``path``.

    Creates the file and its folder when missing; atomic, so on any error the file is left as it was.
    Not locked: a caller that may run concurrently with another amldebug uses :func:`write_config_files`.
    """
    array_key, id_key, skeleton, owned = _KINDS[kind]
    old = read_config_file(path)
    new = merge_entry(old, entry, array_key=array_key, id_key=id_key, skeleton=skeleton, source=str(path),
                      owned=owned)
    if new != old:
        _atomic_write(path, new)
    return path
