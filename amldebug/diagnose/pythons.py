"""What a Python version has and what an installed package asks of it: the Python a syntax or a
standard-library name first appeared in, the image's Python as a log's paths show it,
``Requires-Python`` specifiers, and the last release of a few packages for an old Python. Pure
values; ``rules`` and ``image`` build on them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Installed:
    """An installed distribution as its METADATA names it."""

    name: str
    version: str
    requires_python: str | None

# The Python each name first appeared in, for modules whose newer names packages import once they
# drop an old Python (typing's list is the stdlib's "New in version" notes; typing_extensions
# carries all of them for older Pythons).
STDLIB_NAMES: dict[str, dict[str, str]] = {
    "typing": {
        **dict.fromkeys(("Literal", "Final", "final", "Protocol", "TypedDict", "runtime_checkable",
                         "SupportsIndex", "get_origin", "get_args"), "3.8"),
        "Annotated": "3.9",
        **dict.fromkeys(("TypeAlias", "ParamSpec", "ParamSpecArgs", "ParamSpecKwargs", "Concatenate", "TypeGuard",
                         "is_typeddict"), "3.10"),
        **dict.fromkeys(("Self", "LiteralString", "Never", "TypeVarTuple", "Unpack", "Required", "NotRequired",
                         "assert_never", "assert_type", "reveal_type", "dataclass_transform", "get_overloads",
                         "clear_overloads"), "3.11"),
        **dict.fromkeys(("override", "TypeAliasType", "get_original_bases"), "3.12"),
        **dict.fromkeys(("TypeIs", "ReadOnly", "NoDefault", "get_protocol_members", "is_protocol"), "3.13"),
    },
    "types": dict.fromkeys(("NoneType", "EllipsisType", "NotImplementedType", "UnionType"), "3.10"),
    "itertools": {"pairwise": "3.10", "batched": "3.12"},
    "datetime": {"UTC": "3.11"},
    "enum": dict.fromkeys(("StrEnum", "ReprEnum", "verify", "EnumCheck", "FlagBoundary", "member", "nonmember"),
                          "3.11"),
}

# Syntax a package may use that an older Python cannot compile: (the source line, the feature, Python).
_SYNTAX_FEATURES = (
    (re.compile(r"^\s*(?:match|case)\b[^=]*:\s*(?:#.*)?$"), "a `match` statement", "3.10"),
    (re.compile(r"^\s*except\s*\*"), "an `except*` clause", "3.11"),
    (re.compile(r"^\s*type\s+\w+\s*(?:\[.*\])?\s*="), "a `type` alias statement", "3.12"),
    (re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+\w+\s*\["), "type parameters (`[T]`)", "3.12"),
    (re.compile(r":="), "an assignment expression (`:=`)", "3.8"),
)
# Standard-library calls a newer Python accepts: (the TypeError's message, the feature, Python).
_RUNTIME_FEATURES = (
    (re.compile(r"dataclass\(\) got an unexpected keyword argument '(?P<arg>slots|kw_only|match_args)'"),
     "dataclass({arg}=...)", "3.10"),
)
_PYTHON2 = re.compile(r"Missing parentheses in call to '(?:print|exec)'")

_LIB_PYTHON = re.compile(r"[\\/]lib[\\/]python(?P<v>3\.\d+)[\\/]")
_WINDOWS_PYTHON = re.compile(r"[\\/]Python3(?P<minor>\d+)[\\/]Lib[\\/]", re.IGNORECASE)

# The last release of a package for an old Python and the first that needs a newer one, read from
# each release's METADATA (Requires-Python) on 2026-12-07: a pin that amldebug can name without an
# index. Keys are normalised distribution names.
LAST_RELEASES: dict[str, dict[str, tuple[str, str]]] = {
    "click": dict.fromkeys(("3.7", "3.8", "3.9"), ("8.1.8", "8.2")),  # 8.2.0 needs >=3.10
    "typing-inspection": {"3.9": ("0.4.2", "0.4.3")},  # 0.4.3 needs >=3.10
    "networkx": {"3.9": ("3.2.1", "3.3")},  # 3.3 needs >=3.10
}

# Azure ML's prebuilt inference images by Python (FACTS: "Prebuilt inference images and their Pythons").
NEWER_IMAGES = (("3.11", "minimal-py311-inference"), ("3.12", "minimal-py312-inference"))


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def syntax_need(source_line: str, message: str) -> tuple[str, str | None] | None:
    """(feature, Python it needs) for a SyntaxError's source line; ('Python 2 code', None) for a
    Python 2 package; None when the line does not say."""
    if _PYTHON2.search(message):
        return "Python 2 code", None
    for pattern, feature, python in _SYNTAX_FEATURES:
        if pattern.search(source_line):
            return feature, python
    return None


def runtime_need(message: str) -> tuple[str, str] | None:
    """(feature, Python it needs) for a TypeError a standard-library call of a newer Python raises."""
    for pattern, feature, python in _RUNTIME_FEATURES:
        match = pattern.search(message)
        if match:
            return feature.format(**match.groupdict()), python
    return None


def stdlib_need(module: str, name: str) -> str | None:
    """The Python in which ``module`` gained ``name`` ('3.10' for typing.TypeAlias), or None."""
    return STDLIB_NAMES.get(module, {}).get(name)


def python_in_path(path: str) -> str | None:
    """'3.9' for a path like /opt/conda/lib/python3.9/site-packages/x.py or C:\\Python39\\Lib\\x.py."""
    match = _LIB_PYTHON.search(path)
    if match:
        return match["v"]
    match = _WINDOWS_PYTHON.search(path)
    return f"3.{match['minor']}" if match else None


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def last_release(distribution: str, python: str) -> tuple[str, str] | None:
    """(last release for ``python``, first release that needs a newer one), when amldebug knows it."""
    return LAST_RELEASES.get(normalise(distribution), {}).get(python)


def newer_images(need: str | None) -> list[str]:
    """Azure ML's prebuilt inference images whose Python is at least ``need``."""
    floor = version_tuple(need or "3.10")
    return [image for python, image in NEWER_IMAGES if version_tuple(python) >= floor]


def minimum_python(spec: str) -> str | None:
    """The lowest Python a Requires-Python specifier allows, as written ('>=3.10' -> '3.10')."""
    lows = [m["v"] for m in re.finditer(r"(?:>=|~=|==)\s*(?P<v>\d+(?:\.\d+)*)", spec)]
    lows += [m["v"] + "+" for m in re.finditer(r"(?<![<>=!~])>\s*(?P<v>\d+(?:\.\d+)*)", spec)]
    if not lows:
        return None
    return max(lows, key=lambda v: version_tuple(v.rstrip("+")))


def allows(spec: str, python: str) -> bool:
    """Whether a Requires-Python specifier (PEP 440, as packages write it) admits ``python`` ('3.9'
    or '3.9.2'); a clause amldebug cannot read admits it."""
    have = version_tuple(python)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<v>\d+(?:\.\d+)*)(?P<star>\.\*)?", clause)
        if not match:
            continue
        op, want = match["op"], version_tuple(match["v"])
        mine = have[:len(want)] if match["star"] or op in ("==", "!=", "===") else have
        mine = mine + (0,) * (len(want) - len(mine))
        if op == "~=":
            ok = mine >= want and mine[:len(want) - 1] == want[:-1]
        else:
            ok = {"==": mine == want, "===": mine == want, "!=": mine != want, "<=": mine <= want,
                  ">=": mine >= want, "<": mine < want, ">": mine > want}[op]
        if not ok:
            return False
    return True
