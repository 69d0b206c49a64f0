"""Environment files, read: pip requirements files and conda YAML, turned into the
lines pip should read. Pure: no Docker, no subprocess, no file writes.

``amldebug build`` installs what an ``Environment`` lists; Azure ML's environment
definitions and inference configurations (``amldebug.inference``) name such files or
carry the same content inline, and are read into the same ``Environment``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Iterator, Optional

from ..errors import AmlDebugError, UsageError
from .encoding import DecodeError, Decoded, decode
from .kinds import Kind, kind_of


@dataclasses.dataclass(frozen=True)
class Environment:
    """What an environment file asks for, resolved once (paths absolute, includes inlined)."""

    source: Optional[Path]
    pip: tuple[str, ...] = ()  # requirement and option lines, as pip reads them
    conda: tuple[str, ...] = ()  # conda packages, python/pip included
    channels: tuple[str, ...] = ()
    inputs: tuple[Path, ...] = ()  # local files the lines name (constraints, wheels), hashed too
    # Inference configurations name their base image.
    base_image: Optional[str] = None
    # Unused since a different python pin is always a warning (conda file or inference
    # configuration alike); kept for the callers that set it.
    strict_python: bool = True
    # For the build log: how files were read where that was not plain UTF-8 (one line each,
    # without the 'amldebug: ' prefix, as setups' notes), so that a guessed code page is named.
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How messages name it: the quoted file, or what it came from (an object)."""
        if self.source is None:
            return "the environment"
        return f"'{self.source}'" if self.source.is_absolute() else str(self.source)

    @property
    def requirement_names(self) -> set[str]:
        return {name for name in map(requirement_name, self.pip) if name}

    @property
    def conda_only(self) -> list[str]:
        """Conda packages other than python and pip (mapped to PyPI by sources/conda.py)."""
        return [spec for spec in self.conda if conda_name(spec) not in ("python", "pip")]


def _requirement_parser():
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging is not an amldebug dependency; pip always vendors it
        try:
            from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
        except ImportError:
            raise AmlDebugError(
                f"pip is not installed in the Python that runs amldebug ({sys.executable}); "
                f"install it there: '{sys.executable} -m ensurepip'"
            ) from None
    return Requirement, InvalidRequirement


def normalize_name(name: str) -> str:
    """A project name as PEP 503 compares it (``Foo_Bar`` and ``foo-bar`` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tar)$", re.I)
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*@")  # PEP 508: name @ url


def requirement_name(line: str) -> Optional[str]:
    """The normalized project name of a requirement line, or None (options, bare URLs)."""
    if line.startswith("-"):
        return None
    spec = line.split(" --", 1)[0].strip()
    direct = _DIRECT.match(spec)
    if direct:
        return normalize_name(direct.group(1))
    egg = _EGG.search(spec)
    if egg:
        return normalize_name(egg.group(1))
    if _ARCHIVE.search(spec.split(";", 1)[0].strip()):
        base = os.path.basename(spec.split(";", 1)[0].strip())
        return normalize_name(re.split(r"-\d", base, 1)[0]) if base.endswith(".whl") else None
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if not match or "://" in spec.split("@", 1)[0]:
        return None
    return normalize_name(match.group(1))


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """pip's reading of a requirements file: join backslash continuations, drop comments."""
    parts: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not parts:
            first = number
        line = raw.rstrip()
        if line.endswith("\\") and not re.match(r"^\s*#", line):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = re.sub(r"(^|\s+)#.*$", "", "".join(parts)).strip()
        parts = []
        if joined:
            yield first, joined
    if parts:
        joined = re.sub(r"(^|\s+)#.*$", "", "".join(parts)).strip()
        if joined:
            yield first, joined


# Options a requirements file may carry, by spelling -> canonical long name.
_VALUE_OPTIONS = {
    "-r": "--requirement", "--requirement": "--requirement",
    "-c": "--constraint", "--constraint": "--constraint",
    "-e": "--editable", "--editable": "--editable",
    "-i": "--index-url", "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
    "--use-feature": "--use-feature",
}
_FLAG_OPTIONS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


class Reader:
    """Flattens a requirements file (and what it includes) into pip lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.inputs: list[Path] = []
        self.notes: list[str] = []  # Environment.notes
        self.Requirement, self.InvalidRequirement = _requirement_parser()

    def read_file(self, path: Path, chain: tuple[Path, ...] = (), named_at: str = "") -> None:
        text = self.noted_text(read_decoded(path, named_at), path)
        for number, line in _logical_lines(text):
            self.line(path, number, line, chain + (path,))

    def line(self, path: Path, number: int, line: str, chain: tuple[Path, ...]) -> None:
        where = f"{path}:{number}"
        if line.startswith("-"):
            self.options(path, where, line, chain)
        else:
            self.requirement(path, where, line)

    def options(self, path: Path, where: str, line: str, chain: tuple[Path, ...]) -> None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{where}: cannot read '{line}' ({exc}); close the quote") from None
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token in _FLAG_OPTIONS:
                self.lines.append(token)
                continue
            name, value = token, None
            if token.startswith("--") and "=" in token:
                name, value = token.split("=", 1)
            elif token[:2] in _VALUE_OPTIONS and len(token) > 2 and not token.startswith("--"):
                name, value = token[:2], token[2:]
            if name not in _VALUE_OPTIONS:
                raise UsageError(
                    f"{where}: option '{token}' is not supported in an environment file; "
                    f"amldebug passes on {', '.join(sorted(set(_VALUE_OPTIONS.values()) | _FLAG_OPTIONS))}"
                )
            if value is None:
                if i >= len(tokens):
                    raise UsageError(f"{where}: option '{token}' needs a value, e.g. '{token} VALUE'")
                value = tokens[i]
                i += 1
            self.option(path, where, _VALUE_OPTIONS[name], value, chain)

    def option(self, path: Path, where: str, name: str, value: str, chain: tuple[Path, ...]) -> None:
        if name == "--requirement":
            included = _relative(path, value)
            if included in chain:
                raise UsageError(f"{where}: '-r {value}' includes a file that is already being read "
                                 f"({' -> '.join(str(p) for p in chain + (included,))}); remove the loop")
            self.read_file(included, chain, named_at=f"{where}: '-r {value}'")
        elif name == "--constraint":
            constraint = _relative(path, value)
            read_text(constraint, f"{where}: '-c {value}'")
            self.inputs.append(constraint)
            self.lines.append(f"--constraint {shlex.quote(str(constraint))}")
        elif name == "--editable":
            raise UsageError(f"{where}: editable installs ('-e {value}') cannot go into an image; "
                             f"build a wheel ('pip wheel --no-deps {value}') and list the .whl file instead")
        elif name == "--no-binary":
            raise UsageError(f"{where}: '--no-binary {value}' asks for a build from source, which the offline "
                             "build cannot do for the image's platform; remove it (only wheels are installed)")
        elif name == "--find-links":
            local = path.parent / value
            if "://" not in value and local.exists():  # as pip: relative to the file when it exists there
                value = str(local.resolve())
            self.lines.append(f"--find-links {shlex.quote(value)}")
        else:
            self.lines.append(f"{name} {shlex.quote(value)}")

    def noted_text(self, decoded: Decoded, path: Path) -> str:
        """The text, with a note when it was not UTF-8."""
        note = decoded.note(str(path))
        if note and note not in self.notes:
            self.notes.append(note)
        return decoded.text

    def requirement(self, path: Path, where: str, line: str) -> None:
        tokens = line.split(" ")
        cut = next((k for k, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        spec, extra = " ".join(tokens[:cut]).strip(), [t for t in tokens[cut:] if t]
        for option in extra:
            if not option.startswith("--hash"):
                raise UsageError(f"{where}: per-requirement option '{option}' is not supported; "
                                 "only --hash=ALGO:DIGEST may follow a requirement")
        target = spec.split(";", 1)[0].strip()
        if "://" in target and not _DIRECT.match(target):
            self.lines.append(line)  # a bare URL (git+https://...#egg=name, https://.../x.whl): pip reads it
            return
        if not _DIRECT.match(target) and (target.startswith((".", "/", "~")) or os.sep in target
                                          or _ARCHIVE.search(target)):
            local = _relative(path, target)
            if not local.exists():
                raise UsageError(f"{where}: '{target}' does not exist (looked at '{local}'); "
                                 "paths are relative to the file that names them")
            if local.is_dir():
                raise UsageError(f"{where}: '{target}' is a project folder; the offline build installs wheels "
                                 f"only: build one ('pip wheel --no-deps {target} -w wheels') and list the .whl")
            self.inputs.append(local)
            rest = spec[len(spec.split(";", 1)[0]):]
            self.lines.append(" ".join([shlex.quote(str(local)) + rest, *extra]))
            return
        try:
            self.Requirement(spec)
        except self.InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            raise UsageError(f"{where}: '{line}' is not a valid requirement ({reason}); write it like "
                             "'name==1.0' or 'name>=1.0; python_version >= \"3.9\"'") from None
        self.lines.append(" ".join([spec, *extra]))


def read_text(path: Path, named_at: str = "") -> str:
    """The text of an environment file (or of a file it names, at ``named_at``), decoded as
    pip decodes it (sources/encoding.py); UsageError saying what is wrong otherwise."""
    return read_decoded(path, named_at).text


def read_decoded(path: Path, named_at: str = "") -> Decoded:
    """read_text, with the encoding it was read in (to name it when it is not UTF-8)."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        if named_at:
            raise UsageError(f"{named_at}: '{path}' {what}; -r and -c paths are relative to the file that names them")
        raise UsageError(f"environment file '{path}' {what}; pass --env with a pip requirements file or a conda YAML")
    return decode_file(path)


def decode_file(path: Path) -> Decoded:
    """The decoded text of an existing file; UsageError naming the file, the line and the fix
    when it cannot be read or decoded."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read '{path}' ({type(exc).__name__}: {exc}); check its permissions") from None
    try:
        return decode(data)
    except DecodeError as exc:
        raise UsageError(f"{path}:{exc.line}: {exc}") from None


def _relative(path: Path, value: str) -> Path:
    return (path.parent / Path(value).expanduser()).resolve()


# -- conda YAML --------------------------------------------------------------------------
# A reader for what conda environment files contain (top-level keys; block or flow lists;
# one nested '- pip:' list), so amldebug needs no YAML library. Other YAML forms are
# refused with the line number rather than guessed at.

_KEY = re.compile(r"^([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$")
_PIP_ITEM = re.compile(r"^pip\s*:(?:\s+(.*))?$")


def _strip_yaml_comment(line: str) -> str:
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (k == 0 or line[k - 1] in " -[,:"):
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k]
    return line


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if text[:1] in ("'", '"'):
        if len(text) < 2 or text[-1] != text[0]:
            raise UsageError(f"{where}: unterminated quoted string {text}; close the quote")
        inner = text[1:-1]
        return inner.replace("''", "'") if text[0] == "'" else inner.replace('\\"', '"').replace("\\\\", "\\")
    return text


def _flow_list(text: str, where: str) -> list[str]:
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise UsageError(f"{where}: expected a list ('- item' lines below, or [a, b]), found '{text}'")
    inner = text[1:-1].strip()
    if not inner:
        return []
    if "[" in inner or "{" in inner:
        raise UsageError(f"{where}: nested lists in [...] are not supported; write '- pip:' with '- item' lines")
    return [_unquote(item, where) for item in inner.split(",") if item.strip()]


def conda_name(spec: str) -> str:
    """The package name of a conda spec (``conda-forge::numpy=1.26`` -> ``numpy``), lower-case."""
    spec = spec.split("::", 1)[-1]
    match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)", spec)
    return match.group(1).lower() if match else spec.lower()


def _read_conda(path: Path, text: str) -> tuple[list[str], list[tuple[int, str]], list[str]]:
    """(conda specs, (line number, pip line) pairs, channels) of a conda environment file's text."""
    conda: list[str] = []
    pip: list[tuple[int, str]] = []
    channels: list[str] = []
    key = None
    item_indent = None  # indentation of the '- ' items of the current key
    pip_indent = None  # indentation of the '- pip:' item while reading its list
    seen_dependencies = False
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        line = _strip_yaml_comment(raw).rstrip()
        if not line.strip():
            continue
        leading = line[:len(line) - len(line.lstrip())]
        if "\t" in leading:
            raise UsageError(f"{where}: a tab indents this line; YAML needs spaces")
        body = line.strip()
        if body in ("---",) and key is None:
            continue
        if body == "...":
            break
        indent = len(leading)
        if indent == 0 and not body.startswith("-"):
            match = _KEY.match(body)
            if not match:
                raise UsageError(f"{where}: expected 'key: value' at the top level, found '{body}'")
            key, value = match.group(1), (match.group(2) or "").strip()
            item_indent = pip_indent = None
            if key in ("dependencies", "channels"):
                if key == "dependencies":
                    seen_dependencies = True
                if value in ("", "[]", "null", "~"):
                    if value:
                        key = None
                    continue
                for item in _flow_list(value, where):
                    (channels if key == "channels" else conda).append(item)
                key = None  # a flow list is complete on its line
            continue
        if key is None:
            raise UsageError(f"{where}: '{body}' belongs to no key; indent it under 'dependencies:'")
        if key not in ("dependencies", "channels"):
            continue  # name, prefix, variables...: not needed to build
        if not (body == "-" or body.startswith("- ")):
            raise UsageError(f"{where}: expected a list item '- ...' under '{key}:', found '{body}'")
        item = body[1:].strip()
        if not item:
            raise UsageError(f"{where}: empty list item under '{key}:'; write the package on the same line")
        if pip_indent is not None and indent > pip_indent:
            if item.startswith("[") or _KEY.match(item) and "://" not in item and "::" not in item:
                raise UsageError(f"{where}: expected a pip requirement line under '- pip:', found '{item}'")
            pip.append((number, _unquote(item, where)))
            continue
        pip_indent = None
        if item_indent is None:
            item_indent = indent
        elif indent != item_indent:
            raise UsageError(f"{where}: this item is indented by {indent}, the ones before it by {item_indent}; "
                             "line the '- ' items up")
        if key == "channels":
            channels.append(_unquote(item, where))
            continue
        pip_match = _PIP_ITEM.match(item)
        if pip_match:
            if pip_match.group(1):
                pip.extend((number, entry) for entry in _flow_list(pip_match.group(1), where))
            else:
                pip_indent = indent
            continue
        if re.match(r"^[\w.-]+\s*:(\s|$)", item):
            raise UsageError(f"{where}: '{item}' is a mapping; under 'dependencies:' only '- pip:' may hold a list")
        spec = _unquote(item, where)
        if not re.match(r"^[A-Za-z0-9_]", spec.split("::", 1)[-1]):
            raise UsageError(f"{where}: '{spec}' is not a conda package spec; write it like 'numpy=1.26'")
        conda.append(spec)
    if not seen_dependencies:
        raise UsageError(f"conda environment file '{path}' has no 'dependencies:' list; list the packages there, "
                         "with pip packages under '- pip:'")
    return conda, pip, channels


def read_conda_environment(path: Path) -> Environment:
    """The environment of conda YAML ``path`` (absolute); its pip lines are read as in a
    requirements file next to it."""
    reader = Reader()
    conda, pip_items, channels = _read_conda(path, reader.noted_text(read_decoded(path), path))
    for number, line in pip_items:
        reader.line(path, number, line, (path,))
    return Environment(path, tuple(reader.lines), tuple(conda), tuple(channels), tuple(reader.inputs),
                       notes=tuple(reader.notes))


def read_env_file(path: Path, kind: Optional[Kind] = None) -> Environment:
    """The environment of a pip requirements file or a conda YAML (sources/kinds.py tells
    them apart, unless ``kind`` says which); ``path`` is absolute."""
    if (kind or kind_of(path)) is Kind.CONDA:
        return read_conda_environment(path)
    reader = Reader()
    reader.read_file(path)
    return Environment(path, tuple(reader.lines), inputs=tuple(reader.inputs), notes=tuple(reader.notes))
