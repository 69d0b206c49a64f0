"""Write amldebug's entries into VS Code's ``.vscode/launch.json`` and ``tasks.json``.

Users keep their own configurations and comments in these JSON-with-comments files, so an
entry is spliced into the text at offsets a small parser records, never by re-serialising
the file: everything amldebug does not own stays byte for byte as the user wrote it. An entry
amldebug wrote before is updated key by key, so keys a user added to it (and comments between
them) stay too. Concurrent amldebug runs on one workspace take turns under an advisory lock
held from the first read to the last write of both files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, NoReturn, Sequence

from ..errors import ConfigFileError, ConfigLockError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

_FIX = "fix the file or move it aside and run again"
_WS = " \t\r\n"
_MAX_DEPTH = 200  # far beyond any real launch.json, well inside Python's recursion limit
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# The longest valid start of a string token; the character after it says what is wrong.
_STRING_HEAD = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
_TRIVIA = re.compile(r"(?:[ \t\r\n]+|//[^\r\n]*|/\*.*?\*/)*", re.DOTALL)
_BLANKS = re.compile(r"[ \t]*")
_WORDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
LOCK_TIMEOUT = 30.0  # seconds to wait for another amldebug run to finish writing
_LOCK_POLL = 0.05
# The keys amldebug writes into its own entries. One of these that the new entry lacks goes
# (e.g. postDebugTask after 'vscode' without --post-debug-task); any other key is the user's.
_TASK_REFS = ("preLaunchTask", "postDebugTask")
_LAUNCH_KEYS = ("name", "type", "request", "connect", "pathMappings", "justMyCode", *_TASK_REFS)
_TASK_KEYS = ("label", "type", "command", "args", "isBackground", "options", "problemMatcher")
# Keys that older amldebug versions wrote into their entries and that are wrong: removed when the
# entry is merged again. "activatesOnStart" is no VS Code key (it is "activeOnStart"): VS Code
# flagged it and ignored it.
_RETIRED = {"tasks": (("problemMatcher", "background", "activatesOnStart"),)}
_KINDS = {
    "launch": ("configurations", "name", {"version": "0.2.0", "configurations": []}, _LAUNCH_KEYS),
    "tasks": ("tasks", "label", {"version": "2.0.0", "tasks": []}, _TASK_KEYS),
}
KINDS = ("tasks", "launch")  # the write order: a launch configuration never names a missing task
# O_BINARY: on Windows a descriptor from os.open is in text mode and would turn \n into \r\n.
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@dataclass
class _Node:
    start: int  # for an object member: where its key starts
    end: int
    value: object
    items: list[_Node] = field(default_factory=list)
    key: str | None = None
    comma: int | None = None  # offset of the comma after this item, if any
    value_start: int = -1  # where the value itself starts (after the key, for an object member)


def _fail(text: str, source: str, pos: int, message: str) -> NoReturn:
    line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    raise ConfigFileError(f"{source}:{line}:{col}: {message}; {_FIX}")


class _Parser:
    """Recursive descent over JSONC that keeps each value's span in the text."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.pos = 1 if text.startswith("\ufeff") else 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        _fail(self.text, self.source, self.pos if pos is None else pos, message)

    def found(self) -> str:
        return repr(self.text[self.pos]) if self.pos < len(self.text) else "the end of the file"

    def skip(self) -> None:
        self.pos = _TRIVIA.match(self.text, self.pos).end()
        if self.text.startswith("/*", self.pos):
            self.fail("unterminated /* comment")

    def document(self) -> _Node | None:
        self.skip()
        if self.pos == len(self.text):
            return None
        node = self.value(0)
        self.skip()
        if self.pos < len(self.text):
            self.fail(f"unexpected {self.found()} after the end of the JSON value")
        return node

    def value(self, depth: int) -> _Node:
        if depth > _MAX_DEPTH:
            self.fail(f"nesting is deeper than {_MAX_DEPTH} levels")
        text, start = self.text, self.pos
        if text.startswith(("{", "["), start):
            return self.container(depth)
        if text.startswith('"', start):
            return self.string()
        m = _NUMBER.match(text, start)
        token = m.group() if m else next((w for w in ("true", "false", "null") if text.startswith(w, start)), None)
        if token is None:
            self.fail(f"expected a value but found {self.found()}")
        self.pos = start + len(token)
        try:
            return _Node(start, self.pos, json.loads(token))
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            self.fail("number too long", start)

    def string(self) -> _Node:
        text, start = self.text, self.pos
        end = _STRING_HEAD.match(text, start).end()
        if text.startswith('"', end):
            self.pos = end + 1
            return _Node(start, self.pos, json.loads(text[start : self.pos]))
        if end == len(text) or text[end] in "\r\n":
            self.fail("unterminated string", start)
        self.fail("invalid escape in string" if text[end] == "\\" else "control character in string", end)

    def container(self, depth: int) -> _Node:
        text = self.text
        is_object = text[self.pos] == "{"
        close = "}" if is_object else "]"
        node = _Node(self.pos, -1, None)
        self.pos += 1
        while True:
            self.skip()
            if text.startswith(close, self.pos):
                break
            member_start, key = self.pos, None
            if is_object:
                if not text.startswith('"', self.pos):
                    self.fail(f"expected a property name in double quotes but found {self.found()}")
                key = self.string().value
                self.skip()
                if not text.startswith(":", self.pos):
                    self.fail(f"expected ':' after the property name but found {self.found()}")
                self.pos += 1
                self.skip()
            item = self.value(depth + 1)
            item.value_start, item.start, item.key = item.start, member_start, key
            node.items.append(item)
            self.skip()
            if text.startswith(",", self.pos):
                item.comma = self.pos
                self.pos += 1
            elif not text.startswith(close, self.pos):
                self.fail(f"expected ',' or '{close}' but found {self.found()}")
        self.pos += 1
        node.end = self.pos
        node.value = {it.key: it.value for it in node.items} if is_object else [it.value for it in node.items]
        return node


def parse_jsonc(text: str, source: str = "<text>") -> object:
    """Parse JSON with comments and trailing commas as VS Code does; ``ConfigFileError`` names source:line:col."""
    parser = _Parser(text, source)
    node = parser.document()
    if node is None:
        parser.fail("expected a JSON value but found the end of the file")
    return node.value


def _render(value: object, indent: str, nl: str) -> str:
    # json.dumps escapes newlines inside strings, so every "\n" it emits is a line break.
    return json.dumps(value, indent=4, ensure_ascii=False).replace("\n", nl + indent)


def _indent(text: str, pos: int) -> tuple[str, bool]:
    """Return the indentation of the line holding ``pos``, and whether only that precedes ``pos``."""
    prefix = text[text.rfind("\n", 0, pos) + 1 : pos]
    indent = prefix[: len(prefix) - len(prefix.lstrip(" \t"))]
    return indent, indent == prefix


def _array(root: _Node, array_key: str, text: str, source: str) -> _Node | None:
    if not isinstance(root.value, dict):
        found = _WORDS.get(type(root.value), "a number")
        _fail(text, source, root.start, f"expected the top level to be an object, found {found}")
    # The last duplicate key wins, as in json.loads and VS Code.
    item = next((it for it in reversed(root.items) if it.key == array_key), None)
    if item is not None and not isinstance(item.value, list):
        found = _WORDS.get(type(item.value), "a number")
        _fail(text, source, item.start, f'"{array_key}" must be an array, found {found}')
    return item


def _matches(values: list, id_key: str, id_value: object) -> list[int]:
    return [i for i, v in enumerate(values) if isinstance(v, dict) and v.get(id_key) == id_value]


def _append(text: str, node: _Node, render: Callable[[str], str], nl: str) -> str:
    """Insert a rendered item as the last item of an object or array, after any comments there."""
    close, (outer, _) = node.end - 1, _indent(text, node.start)
    last = node.items[-1] if node.items else None
    indent, own_line = _indent(text, last.start) if last is not None else ("", False)
    indent = indent if own_line else outer + "    "
    tail = len(text[:close].rstrip(_WS))
    # Keep a trailing-comma style, so that removing the entry again restores the text exactly.
    piece = nl + indent + render(indent) + ("," if last is not None and last.comma is not None else "")
    if "\n" not in text[tail:close]:
        piece += nl + outer
    if last is not None and last.comma is None:
        return text[: last.end] + "," + text[last.end : tail] + piece + text[tail:]
    return text[:tail] + piece + text[tail:]


def _check(result: str, source: str, array_key: str, ok: Callable[[list], bool]) -> str:
    # A last guard so that a splicing bug can never leave the user with a broken launch.json.
    with contextlib.suppress(ConfigFileError):
        parsed = parse_jsonc(result, source)
        if isinstance(parsed, dict) and ok(parsed.get(array_key, [])):
            return result
    raise ConfigFileError(f'{source}: amldebug could not update "{array_key}" safely; edit the file by hand')


def _same(old: object, new: object) -> bool:
    # Equality as JSON sees it: in Python True == 1, in launch.json they differ.
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _holds(actual: object, expected: object) -> bool:
    """``actual`` has every key of ``expected`` (recursively, for objects) with its value; more keys may be there."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(key in actual and _holds(actual[key], value) for key, value in expected.items())
    return _same(actual, expected)


def _member(node: _Node, key: str) -> _Node | None:
    # The last duplicate key wins, as in json.loads and VS Code.
    return next((it for it in reversed(node.items) if it.key == key), None)


def _cut(text: str, node: _Node, index: int) -> str:
    """Return ``text`` without item ``index`` of the object or array ``node``, nor its comma."""
    item = node.items[index]
    previous = node.items[index - 1].comma if index > 0 else None
    start, end = item.start, (item.comma + 1 if item.comma is not None else item.end)
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if item.comma is None and previous is not None and not text[previous + 1 : start].strip(_WS):
        start, previous = previous, None  # the separating comma and the item go as one piece
    elif not text[line_start:start].strip(" \t") and not text[end:line_end].strip(" \t\r"):
        start, end = line_start, min(line_end + 1, len(text))
    elif item.comma is not None:
        end = _BLANKS.match(text, end).end()
    result = text[:start] + text[end:]
    if item.comma is None and previous is not None:
        result = result[:previous] + result[previous + 1 :]
    return result


def _update_object(
    text: str, source: str, locate: Callable[[_Node], _Node], entry: dict, nl: str,
    drop: Callable[[str, object], bool] | None = None,
) -> str:
    """Give the object that ``locate`` finds in the parsed text the keys and values of ``entry``.

    A member whose value is unchanged keeps its text; an object value is updated the same way
    (so ``options.env`` in a task survives); other values are re-rendered; missing keys are
    appended. Members ``entry`` lacks stay, unless ``drop(key, value)`` says they go. The text is
    parsed again after each edit, so offsets are never stale (the files are a few KB).
    """

    def find() -> _Node:
        return locate(_Parser(text, source).document())

    while drop is not None:
        node = find()
        gone = next((i for i, it in enumerate(node.items) if it.key not in entry and drop(it.key, it.value)), None)
        if gone is None:
            break
        text = _cut(text, node, gone)
    for key, value in entry.items():
        node = find()
        member, inline = _member(node, key), "\n" not in text[node.start : node.end]
        if member is None and inline:  # an object on one line stays on one line
            last = node.items[-1] if node.items else None
            piece = f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
            if last is None:
                text = text[: node.end - 1] + piece + text[node.end - 1 :]
            elif last.comma is None:
                text = text[: last.end] + ", " + piece + text[last.end :]
            else:
                text = text[: last.comma + 1] + " " + piece + "," + text[last.comma + 1 :]
        elif member is None:
            text = _append(text, node, lambda ind: f"{json.dumps(key)}: {_render(value, ind, nl)}", nl)
        elif _same(member.value, value):
            continue
        elif isinstance(member.value, dict) and isinstance(value, dict):
            text = _update_object(text, source, lambda root, k=key: _member(locate(root), k), value, nl)
        else:
            rendered = (json.dumps(value, ensure_ascii=False) if inline
                        else _render(value, _indent(text, member.start)[0], nl))
            text = text[: member.value_start] + rendered + text[member.end :]
    return text


def _cut_path(text: str, source: str, locate: Callable[[_Node], _Node], entry: dict, path: Sequence[str]) -> str:
    """``text`` without the member at ``path`` below the object ``locate`` finds, unless ``entry`` writes it."""
    wanted: object = entry
    for key in path[:-1]:
        wanted = wanted.get(key) if isinstance(wanted, dict) else None
    if isinstance(wanted, dict) and path[-1] in wanted:
        return text
    while True:
        node: _Node | None = locate(_Parser(text, source).document())
        for key in path[:-1]:
            node = _member(node, key) if node is not None and isinstance(node.value, dict) else None
        if node is None or not isinstance(node.value, dict):
            return text
        index = next((i for i, it in enumerate(node.items) if it.key == path[-1]), None)
        if index is None:
            return text
        text = _cut(text, node, index)


def merge_entry(
    text: str | None, entry: dict, *, array_key: str, id_key: str, skeleton: dict, source: str = "<text>",
    owned: Sequence[str] = (), retired: Sequence[Sequence[str]] = (),
) -> str:
    """Return ``text`` with ``entry`` in the top-level ``array_key`` array, all else kept byte for byte.

    Updates the first element with the entry's ``id_key`` in place, key by key: the entry's keys
    get its values, keys it lacks are kept unless they are ``owned`` (amldebug's; a task
    reference is amldebug's only while it names an "amldebug: " task), or a ``retired`` path of
    keys (one an older amldebug wrote by mistake) that the entry does not write. Else appends
    the entry; no text gives ``skeleton``.
    """
    if id_key not in entry:
        raise ValueError(f"entry has no {id_key!r} to find it by")
    document = {**skeleton, array_key: [*skeleton.get(array_key, []), entry]}
    if not text or not text.strip(_WS + "\ufeff"):
        return _render(document, "", "\n") + "\n"
    nl = "\r\n" if "\r\n" in text else "\n"
    root = _Parser(text, source).document()
    if root is None:  # only comments: keep them and put the skeleton after them
        result = text + ("" if text.endswith(("\n", "\r")) else nl) + _render(document, "", nl) + nl
    elif (array := _array(root, array_key, text, source)) is None:
        result = _append(text, root, lambda ind: f"{json.dumps(array_key)}: {_render([entry], ind, nl)}", nl)
    elif matches := _matches(array.value, id_key, entry[id_key]):
        index = matches[0]

        def drop(key: str, value: object) -> bool:
            # A user's own pre/post task stays; one amldebug named goes when amldebug no longer writes it.
            return key in owned and (key not in _TASK_REFS or str(value).startswith("amldebug: "))

        def locate(node: _Node) -> _Node:
            return _array(node, array_key, text, source).items[index]

        result = _update_object(text, source, locate, entry, nl, drop)
        for path in retired:
            result = _cut_path(result, source, locate, entry, path)
    else:
        result = _append(text, array, lambda ind: _render(entry, ind, nl), nl)
    expected = json.loads(json.dumps(entry))
    return _check(result, source, array_key, lambda items: any(
        isinstance(item, dict) and item.get(id_key) == entry[id_key] and _holds(item, expected) for item in items))


def _refuse_dangling(path: Path, what: str = "file") -> None:
    """A symlink whose target is missing: following it would create a file outside the workspace."""
    if not os.path.islink(path):
        return
    try:
        os.stat(path)
        return
    except FileNotFoundError:
        problem = "which does not exist"
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            return  # not dangling; reading or writing it reports the reason
        problem = "which is a loop of symbolic links"
    link, real = os.readlink(path), os.path.realpath(path)
    where = f"'{link}'" + (f" ('{real}')" if os.path.join(os.path.dirname(path), link) != real else "")
    raise ConfigFileError(f"'{path}' is a symbolic link to {where}, {problem}; amldebug will not create a file "
                          f"there. Remove the link, or make it point at an existing {what}")


def read_config_file(path: Path) -> str | None:
    """The text of a launch.json or tasks.json (None when there is none); ``ConfigFileError`` names why not."""
    path = Path(path)
    _refuse_dangling(path.parent, "folder")
    _refuse_dangling(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from exc
    # Bytes, not read_text(): universal newlines would silently turn the user's \r\n into \n.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigFileError(f"{path}:{line}: the file is not UTF-8 text; {_FIX}") from exc


def _atomic_write(path: Path, text: str) -> None:
    _refuse_dangling(path.parent, "folder")
    _refuse_dangling(path)
    # Through a symlink: the file it points at gets the new content (atomically, in its own
    # folder); replacing the link itself would quietly cut it from the user's shared file.
    target = Path(os.path.realpath(path))
    tmp, created = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp"), False
    try:
        data = text.encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, _TMP_FLAGS, 0o666)  # 0o666 lets the umask decide, as for any new file
        created = True
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException as exc:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, (OSError, UnicodeError)):
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigFileError(f"{path}: cannot be written ({reason}); it is unchanged") from exc
        raise


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


def lock_path(folder: Path, lock_dir: Path) -> Path:
    """The lock file that guards the VS Code files of ``folder`` (its real path, so every way to it agrees)."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:32]
    return Path(lock_dir) / f"vscode-{key}.lock"


@contextlib.contextmanager
def folder_lock(folder: Path, lock_dir: Path, timeout: float | None = None) -> Iterator[Path]:
    """Hold the advisory lock on the VS Code files of ``folder``, waiting at most ``timeout`` seconds.

    The lock file lives in ``lock_dir``, not in the user's folder; it is never removed (another
    process may be waiting on it), and the system releases the lock when its holder exits, even
    a killed one, so a lock cannot go stale. ``ConfigLockError`` when the wait runs out.
    """
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    path = lock_path(folder, lock_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise ConfigFileError(f"cannot create the lock file '{path}' that guards {folder} ({exc.strerror or exc}); "
                              f"check the permissions of '{path.parent}', or set AMLDEBUG_CACHE to a writable "
                              f"folder") from exc
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise ConfigLockError(
                    f"{folder}: another amldebug run{_holder(fd)} has been writing launch.json and tasks.json "
                    f"for more than {timeout:g} s (lock '{path}'); wait for it to finish or stop it, then run again")
            time.sleep(_LOCK_POLL)
        if hasattr(os, "pwrite"):  # who holds it, for the message of a run that waits too long
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return f" (process {int(os.pread(fd, 32, 0))})"
    return ""


def write_config_files(
    folder: Path, entries: Mapping[str, Sequence[dict]], *, lock_dir: Path, timeout: float | None = None,
) -> list[Path]:
    """Merge ``entries`` (``{"tasks": [...], "launch": [...]}``) into ``folder``'s tasks.json and launch.json.

    Under :func:`folder_lock` from the first read to the last write, so concurrent runs cannot
    lose each other's entries; both files are merged before either is written (a file that
    cannot be merged leaves both as they were), tasks.json first. Returns the files, written or
    already up to date.
    """
    folder = Path(folder)
    _refuse_dangling(folder, "folder")
    with folder_lock(folder, lock_dir, timeout):
        planned = []
        for kind in KINDS:
            if not entries.get(kind):
                continue
            path = folder / f"{kind}.json"
            array_key, id_key, skeleton, owned = _KINDS[kind]
            old = new = read_config_file(path)
            for entry in entries[kind]:
                new = merge_entry(new, entry, array_key=array_key, id_key=id_key, skeleton=skeleton,
                                  source=str(path), owned=owned, retired=_RETIRED.get(kind, ()))
            planned.append((path, old, new))
        for path, old, new in planned:
            if new != old:
                _atomic_write(path, new)
    return [path for path, _, _ in planned]


