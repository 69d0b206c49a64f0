"""Known failure signatures of an Azure ML scoring service, matched against its log.

Every signature is one ``Rule`` in ``RULES``, the only table to edit: an id, the
compiled regexes that spot it (matched line by line, anywhere in the line), and a
builder that turns the matching lines into ``Problem`` objects. A builder receives the
whole ``Log`` (so it can read tracebacks and nearby lines) and the hits in log order,
and returns one problem per distinct cause, or none; the ``Rule`` gives each the rule's
id, which makes it a ``Finding``. To add a signature, write a builder and append a ``Rule``.

A rule may list rules it ``supersedes``: when it reports something, findings of those
rules from the same server run (the lines between two ``Starting gunicorn`` / ``Hang
up`` lines) are dropped, so a specific cause ("init() raised KeyError") replaces the
symptom it produced ("Worker failed to boot", "CrashLoopBackOff").

The regexes key on the exact strings that azureml-inference-server-http 1.5.1
(``aml_blueprint.py``, ``routes.py``, ``user_script.py``, ``entry.py``), gunicorn's
``arbiter.py`` / ``sock.py``, debugpy, azureml-core (``Model.get_model_path``,
``Webservice.run``, ``wait_for_deployment``), kubectl, the Linux kernel and Docker
print; tests/unit/logs holds captured examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from ..payload.common import protocol
from . import pythons
from .log import Frame, Hit, Log, Segment, Traceback, installed_package, is_user_path, raised_in_package

MAX_QUOTED_LINES = 8


@dataclass(frozen=True)
class Finding:
    """One recognised problem: what happened, the log lines that show it, and what to do."""

    rule: str
    title: str
    lines: tuple[tuple[int, str], ...]
    cause: str
    fix: str
    location: str | None = None


@dataclass(frozen=True)
class Problem:
    """What a builder reports: a ``Finding`` but for the rule id, which its ``Rule`` adds."""

    title: str
    lines: tuple[tuple[int, str], ...]
    cause: str
    fix: str
    location: str | None = None


Builder = Callable[[Log, "list[Hit]"], "list[Problem]"]


@dataclass(frozen=True)
class Rule:
    """One failure signature: ``id``, the regexes that spot it, and its ``build`` function."""

    id: str
    patterns: tuple[re.Pattern[str], ...]
    build: Builder
    supersedes: tuple[str, ...] = ()

    def findings(self, log: Log, hits: list[Hit]) -> list[Finding]:
        """What ``build`` reports for ``hits``, under this rule's id."""
        return [Finding(self.id, p.title, p.lines, p.cause, p.fix, p.location) for p in self.build(log, hits)]


def _quote(log: Log, numbers: Iterable[int]) -> tuple[tuple[int, str], ...]:
    """Quote up to MAX_QUOTED_LINES of ``numbers`` (given in order of importance), in log order."""
    chosen: list[int] = []
    for number in numbers:
        if number and number not in chosen:
            chosen.append(number)
        if len(chosen) == MAX_QUOTED_LINES:
            break
    return tuple(log.quote(n) for n in sorted(chosen))


_RELATIVE_FILE = re.compile(r"^FileNotFoundError: .*No such file or directory: '(?![\\/]|[A-Za-z]:)")


def _relative_file_hint(error: str) -> str:
    """A hint for open('relative/path'): the server's working directory is not score.py's folder."""
    if not _RELATIVE_FILE.search(error):
        return ""
    return (
        "; a relative path is resolved against the server's working directory (the app root), not "
        "score.py's folder: build it from os.path.dirname(os.path.abspath(__file__))"
    )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_BOOT_FAILED = re.compile(r"Reason: (?:Worker failed to boot|App failed to load)\.")
_WORKER_EXIT = re.compile(r"Worker \(pid:(?P<pid>\d+)\) exited with code (?P<code>-?\d+)")


def _boot_failure_line(log: Log, after: int) -> int:
    """The 'Reason: Worker failed to boot.' that ``after`` led to (same run), or 0."""
    hit = log.first(_BOOT_FAILED, after, log.run_end(after))
    return hit.number if hit else 0


def _exception_text(segment: Segment) -> str:
    text = segment.exception
    # "azureml.exceptions._azureml_exception.WebserviceException: ..." -> "WebserviceException: ..."
    text = re.sub(r"^(?:[a-z_][\w]*\.)+(?=[A-Z]\w*(?::|$))", "", text)
    return _clip(text)


def _traceback_lines(tb: Traceback | None, segment: Segment | None, frame: Frame | None) -> list[int]:
    """Key lines of a traceback: the user frame and its source line, then the exception."""
    if tb is None or segment is None:
        return []
    numbers = []
    if frame is not None:
        numbers += [frame.at, frame.at + 1]
    if segment.exception_at:
        numbers.append(segment.exception_at)
    return numbers


# ---- score.py does not load


_SYNTAX = re.compile(r"^[ \t]*(?P<kind>SyntaxError|IndentationError|TabError): (?P<msg>.+)$")


_FRAME_LINE = re.compile(r'^\s+File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')


def _failed_frame(log: Log, hit: Hit) -> tuple[Segment | None, Frame | None]:
    """The traceback segment whose exception line is ``hit``, and its last frame (the file that
    raised, or that did not compile)."""
    tb = log.traceback_at(hit.number)
    segment = next((s for s in tb.segments if s.exception_at == hit.number), None) if tb else None
    if segment is not None and segment.frames:
        return segment, segment.frames[-1]
    # A traceback cut above its header ("last log lines:", a pasted tail) still names the file
    # just above the error: the frame, its source line, and for a SyntaxError the caret.
    for number in range(hit.number - 1, max(0, hit.number - 4), -1):
        match = _FRAME_LINE.match(log.line(number))
        if match:
            return segment, Frame(match["path"], int(match["line"]), match["func"], number)
    return segment, None


def _build_syntax_error(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        frame = _failed_frame(log, hit)[1]
        if frame is not None and installed_package(frame.path):
            continue  # an installed package's file: package-needs-newer-python
        location = log.location(frame)
        error = f"{hit.match['kind']}: {_clip(hit.match['msg'])}"
        if (location, error) in seen:
            continue
        seen.add((location, error))
        where = location or "the entry script"
        file = log.display(frame.path) if frame else "score.py"
        numbers = ([frame.at, frame.at + 1, frame.at + 2] if frame else []) + [hit.number]
        numbers.append(_boot_failure_line(log, hit.number))
        cause = ("Python could not compile the file, so the server could not import the entry script; the worker "
                 "exited with code 3 before init() ran.")
        fix = f"fix the code at {where}; `python -m py_compile {file}` checks it in a second, without starting the " \
              "server."
        newer = _newer_syntax(log, hit, frame)
        if newer:  # valid code for a newer Python than the server's
            feature, need, python = newer
            cause = f"line {frame.line} uses {feature}, which needs Python {need}; the server runs Python {python}. " \
                    + cause
            images = pythons.newer_images(need)
            fix = (f"rewrite {where} without {feature} (it must run on Python {python}), or use an image with Python "
                   f"{need} or newer" + (f" (Azure ML's {', '.join(images)})" if images else "") + ".")
        findings.append(
            Problem(
                title=f"{where} does not compile: {error}",
                lines=_quote(log, numbers),
                cause=cause,
                fix=fix,
                location=location,
            )
        )
    return findings


def _newer_syntax(log: Log, hit: Hit, frame: Frame | None) -> tuple[str, str, str] | None:
    """(feature, the Python it needs, the server's Python) when the line that did not compile is
    valid syntax of a newer Python than the one the log's paths show."""
    if frame is None or frame.at >= len(log):
        return None
    found = pythons.syntax_need(log.line(frame.at + 1), hit.match["msg"])
    python = _log_python(log, hit.number)
    if not found or not found[1] or not python or pythons.version_tuple(python) >= pythons.version_tuple(found[1]):
        return None
    return found[0], found[1], python


def _log_python(log: Log, near: int) -> str | None:
    """The Python the log's paths show (lib/python3.9/...), the traceback at ``near`` first."""
    tb = log.traceback_at(near)
    frames = [f for s in tb.segments for f in s.frames] if tb else []
    return next((v for f in reversed(frames) if (v := pythons.python_in_path(f.path))), None) or next(
        (v for line in log.lines if (v := pythons.python_in_path(line))), None)


# ---- an installed package written for another Python than the image's


_PACKAGE_SYNTAX = re.compile(r"^[ \t]*(?P<kind>SyntaxError|IndentationError|TabError): (?P<msg>.+)$")
_STDLIB_NAME = re.compile(
    r"ImportError: cannot import name '(?P<name>\w+)' from '(?P<module>" + "|".join(pythons.STDLIB_NAMES) + r")'"
    r"(?: \((?P<path>[^)]+)\))?"
)
# A standard-library call that a newer Python accepts (the message names what is missing).
_RUNTIME_TOO_NEW = re.compile(r"^TypeError: (?P<runtime>dataclass\(\) got an unexpected keyword argument "
                              r"'(?:slots|kw_only|match_args)')")
_SITE = re.compile(r"^(?P<site>.*[\\/](?:site|dist)-packages)[\\/]")
_CONSOLE_SCRIPT = re.compile(r"[\\/](?:bin|Scripts)[\\/][^\\/.]+$")  # azmlinfsrv's own launcher, not the user's code
NEWER_PYTHON = "package-needs-newer-python"


@dataclass(frozen=True)
class TooNew:
    """An import that failed because code was written for another Python than the one running it:
    an installed package (``package``, from ``site``) or the user's own file (``package`` None)."""

    package: str | None  # top-level import name, 'click'
    site: str | None  # the site-packages folder it was loaded from
    frame: Frame | None  # where it failed: the file that did not compile, or that imported the name
    kind: str  # 'syntax' (does not compile), 'name' (a stdlib name it imports), 'runtime' (a stdlib call)
    error: str  # 'SyntaxError: invalid syntax'
    feature: str  # "a `match` statement", "TypeAlias from typing"
    need: str | None  # the Python the feature needs, '3.10'; None when the log does not say
    python: str | None  # the Python that ran it, from the log's paths
    importer: Frame | None  # the user's line that led there
    chain: tuple[str, ...]  # installed packages from the outermost importer to ``package``
    exception_at: int
    numbers: tuple[int, ...]  # the log lines that show it


def too_new(log: Log, hit: Hit) -> TooNew | None:
    """What ``hit`` (a SyntaxError, or a standard-library name that cannot be imported) says about
    code written for another Python; None when it is the user's own syntax error."""
    segment, frame = _failed_frame(log, hit)
    frames = [f for f in (segment.frames if segment else ()) if not f.path.startswith("<")]
    package = installed_package(frame.path) if frame else None
    groups = hit.match.groupdict()
    kind = "name" if "name" in groups else "runtime" if "runtime" in groups else "syntax"
    if kind != "name" and package is None:
        return None  # the user's own code: score-syntax-error, or an exception of init() or run()
    users = [f for f in frames if is_user_path(f.path) and not _CONSOLE_SCRIPT.search(f.path)]
    importer = users[-1] if users and users[-1] is not frame else None
    after = frames[frames.index(importer) + 1:] if importer else frames
    chain = tuple(dict.fromkeys(p for f in after if (p := installed_package(f.path))))
    python = _log_python(log, hit.number)
    if kind == "syntax":
        source = log.line(frame.at + 1) if frame.at < len(log) else ""
        found = pythons.syntax_need(source, hit.match["msg"])
        feature, need = found if found else ("syntax this Python cannot compile", None)
        error = f"{hit.match['kind']}: {_clip(hit.match['msg'])}"
        numbers = (frame.at, frame.at + 1, frame.at + 2, hit.number)
    elif kind == "runtime":
        feature, need = pythons.runtime_need(hit.match["runtime"]) or ("a newer Python's standard library", None)
        error = _clip(hit.match.group(0))
        numbers = (frame.at, frame.at + 1, hit.number)
    else:
        python = pythons.python_in_path(hit.match["path"] or "") or python
        feature = f"{hit.match['name']} from {hit.match['module']}"
        need = pythons.stdlib_need(hit.match["module"], hit.match["name"])
        error = _clip(hit.match.group(0))
        numbers = ((frame.at, frame.at + 1) if frame else ()) + (hit.number,)
    if importer is not None:
        numbers += (importer.at, importer.at + 1)
    site = _SITE.match(frame.path)["site"] if package else None
    return TooNew(package, site, frame, kind, error, feature, need, python, importer, chain, hit.number,
                  numbers + (_boot_failure_line(log, hit.number),))


def describe_too_new(log: Log, found: TooNew, installed: pythons.Installed | None = None,
                     image: str | None = None, image_python: str | None = None) -> Problem:
    """The finding for ``found``; with what the image says of the package (``installed``: its
    METADATA) and of itself (``image_python``), the exact versions."""
    python = image_python or found.python
    on = f"Python {python}" if python else "the image's Python"
    need = found.need
    requires = installed.requires_python if installed is not None else None
    excludes = bool(requires) and not (python and pythons.allows(requires, python))
    if excludes:
        need = pythons.minimum_python(requires) or need
    newer = f"Python {need.rstrip('+')} or newer" if need else "a newer Python"
    images = pythons.newer_images(need.rstrip("+") if need else None)
    image_fix = f"use an image with {newer}" + (f" (Azure ML's {', '.join(images)})" if images else "")
    where = None
    if found.frame is not None:
        shown = found.frame.path[len(found.site) + 1:] if found.site else log.display(found.frame.path)
        where = f"{shown.replace(chr(92), '/')}:{found.frame.line}"
    if found.package is None:  # the user's own file imports a name its Python lacks
        who = log.display(found.frame.path) if found.frame else "the entry script"
        name, module = found.feature.split(" from ")
        since = f" (new in Python {found.need})" if found.need else ""
        return Problem(
            title=f"{who} imports {found.feature}, which {on} does not have{since}",
            lines=_quote(log, found.numbers),
            cause=f"{module} in {on} has no {name}: the code was written for a newer Python"
            + ("" if found.need else ", or the name is misspelt") + ".",
            fix=f"import it from typing_extensions (`from typing_extensions import {name}`, with typing-extensions "
            f"in the environment's dependencies), or {image_fix}." if module == "typing" else
            f"{image_fix}, or write the code without {module}.{name}.",
            location=log.location(found.frame),
        )
    dist = installed.name if installed else _pip_name(found.package).replace("_", "-")
    via = [p for p in found.chain if p != found.package]
    if found.importer is not None:
        imported = f"{log.location(found.importer)} imports {' -> '.join(via + [found.package])}"
    elif "azureml_inference_server_http" in via:
        path = " -> ".join(via[via.index("azureml_inference_server_http"):] + [found.package])
        imported = f"the scoring server itself imports it ({path}), so the server stops before score.py is loaded"
    else:
        imported = f"it is imported through {' -> '.join(via + [found.package])}" if via else ""
    if found.need is None and found.feature == "Python 2 code":
        return Problem(
            title=f"the installed package {dist} is Python 2 code: {where} does not compile on {on}",
            lines=_quote(log, found.numbers),
            cause=f"{found.error} in {where}: this release of {dist} was written for Python 2"
            + (f"; {imported}" if imported else "") + ".",
            fix=f"pin {dist} in the environment's dependencies to a release for Python 3, or drop it, and rebuild the "
            "image.",
            location=log.location(found.importer),
        )
    syntax = found.kind == "syntax"
    what = f"{where} imports {found.feature}" if found.kind == "name" else f"{where} uses {found.feature}"
    if excludes:
        title = f"{dist} {installed.version} requires Python {requires}; " + (
            f"the image '{image}' has {on}" if image else f"the image has {on}")
    elif requires:  # its METADATA says it supports this Python, and yet
        title = f"{dist} {installed.version} does not run on {on}, though it declares Requires-Python {requires}: " \
                f"{what}"
    elif installed is not None:
        title = f"{dist} {installed.version} does not run on {on}: {what}"
    elif syntax:
        title = f"the installed package {dist} does not compile on {on}: {what}" + (
            f" (Python {found.need}+)" if found.need else "")
    else:
        title = f"the installed package {dist} needs {newer}: {what}, which {on} does not have"
    cause = what + {"syntax": f" ({found.error}), which {on} cannot compile",
                    "runtime": f", which {on} does not have ({found.error})",
                    "name": f", which {on} does not have"}[found.kind]
    cause += (f"; {imported}" if imported else "") + ". "
    cause += ("pip installs a release for a newer Python when the index publishes no Requires-Python, or when the "
              "environment was resolved for another Python.") if need else (
              f"The release of {dist} installed was written for another Python than {on}, most often a newer one.")
    last = pythons.last_release(dist, python) if python else None
    if last:
        pin = (f"pin `{dist}<{last[1]}` in the environment's dependencies ({dist} {last[0]} is the last release for "
               f"{on})")
    else:
        older = f" older than {installed.version}" if installed else ""
        pin = (f"pin {dist} in the environment's dependencies to a release{older} that supports {on} (PyPI shows each "
               "release's 'Requires: Python')")
    return Problem(
        title=title,
        lines=_quote(log, found.numbers),
        cause=cause,
        fix=f"{pin} and rebuild the image, or {image_fix}.",
        location=log.location(found.importer),
    )


def too_new_in(log: Log) -> list[TooNew]:
    """Every import in ``log`` that failed because of code written for another Python."""
    found = [too_new(log, hit) for hit in log.hits(_TOO_NEW)]
    return [f for f in found if f is not None]


_TOO_NEW = (_PACKAGE_SYNTAX, _STDLIB_NAME, _RUNTIME_TOO_NEW)


def _build_newer_python(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        found = too_new(log, hit)
        if found is None or (found.package, found.feature, found.error) in seen:
            continue
        seen.add((found.package, found.feature, found.error))
        findings.append(describe_too_new(log, found))
    return findings


_SERVER_MISSING = (
    re.compile(r"azmlinfsrv: (?:command )?not found"),
    re.compile(r"No module named '?azureml_inference_server_http'?"),
)
_AZUREML_MISSING = re.compile(
    r"(?:ModuleNotFoundError|ImportError): No module named '(?P<module>azureml(?:\.[\w.]+)?)'"
)


def _build_missing_azureml(log: Log, hits: list[Hit]) -> list[Problem]:
    findings = []
    server = [h for h in hits if any(p.search(h.text) for p in _SERVER_MISSING)]
    sdk = [h for h in hits if h not in server]
    if server:
        findings.append(
            Problem(
                title="the environment has no Azure ML scoring server (azmlinfsrv, package "
                "azureml-inference-server-http)",
                lines=_quote(log, [h.number for h in server]),
                cause="the image's Python lacks azureml-inference-server-http, which provides the "
                "azmlinfsrv command that Azure ML inference images start.",
                fix="add `azureml-inference-server-http` (or `azureml-defaults`, which depends on it) to "
                "the pip dependencies of the environment and rebuild the image.",
            )
        )
    if sdk:
        modules = list(dict.fromkeys(h.match["module"] for h in sdk))
        tb = log.traceback_at(sdk[0].number)
        segment, frame = tb.root_cause() if tb else (None, None)
        location = log.location(frame)
        who = log.display(frame.path) if frame else "the entry script"
        findings.append(
            Problem(
                title=f"{who} imports {modules[0]}, which the environment does not provide "
                f"(No module named '{modules[0]}')",
                lines=_quote(log, [h.number for h in sdk[:3]] + _traceback_lines(tb, segment, frame)),
                cause="azureml.* modules come from the Azure ML SDK packages (azureml-core, azureml-defaults), "
                "which the environment does not install, or installs in another version.",
                fix="add `azureml-defaults` to the pip dependencies of the environment (the version you "
                "trained with), or drop the azureml import and read the model from "
                "os.environ['AZUREML_MODEL_DIR'].",
                location=location,
            )
        )
    return findings


_MISSING_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '(?P<module>[\w.]+)'")
_CANNOT_IMPORT = re.compile(r"ImportError: cannot import name '(?P<name>\w+)' from '(?P<module>[\w.]+)'")
# Import name -> pip package, where they differ.
_PIP_NAMES = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python-headless",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "google.protobuf": "protobuf",
    "Crypto": "pycryptodome",
    "dotenv": "python-dotenv",
    "pkg_resources": "setuptools",
}


# Namespace packages that many distributions share: "No module named 'azure.storage'" means
# a distribution is missing, not that azure is the wrong version.
_NAMESPACE_PACKAGES = {"azure", "google"}


def _pip_name(module: str) -> str:
    if module in _PIP_NAMES:
        return _PIP_NAMES[module]
    top = module.split(".")[0]
    return _PIP_NAMES.get(top, top)


def _build_missing_module(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        module = hit.match["module"]
        if module.startswith("azureml"):
            continue  # missing-azureml-package
        name = hit.match.groupdict().get("name")
        key = (module.split(".")[0], None) if name is None else (module, name)
        if key in seen:
            continue
        seen.add(key)
        tb = log.traceback_at(hit.number)
        segment, frame = tb.root_cause() if tb else (None, None)
        location = log.location(frame)
        who = log.display(frame.path) if frame else "the entry script"
        inner = raised_in_package(segment, frame) if segment is not None else None
        if inner is not None:  # the import that failed is inside an installed package: point at it
            who = f"the installed package {inner[0]} (imported from {location})"
            location = f"{inner[1].path}:{inner[1].line}"
        pip = _pip_name(module)
        numbers = [hit.number] + _traceback_lines(tb, segment, frame) + [_boot_failure_line(log, hit.number)]
        top = module.split(".")[0]
        if name is None and module == "pkg_resources":
            findings.append(
                Problem(
                    title=f"{who} imports pkg_resources, which is not installed (No module named 'pkg_resources')",
                    lines=_quote(log, numbers),
                    cause="pkg_resources is part of setuptools, which the environment does not install, or installs "
                    "in version 82 or later, which removed it; conda's Pythons always carry an older setuptools.",
                    fix="add `setuptools<82` to the environment's dependencies (not `pkg_resources`, which is no "
                    "package of its own) and rebuild the image.",
                    location=location,
                )
            )
        elif name is None and top != module and module not in _PIP_NAMES and top not in _NAMESPACE_PACKAGES:
            # Python names a dotted import up to the part that failed: "No module named
            # 'werkzeug.contrib'" means werkzeug itself imported and has no contrib (any more).
            findings.append(
                Problem(
                    title=f"{who} imports {module}, which the installed {top} does not have "
                    f"(No module named '{module}')",
                    lines=_quote(log, numbers),
                    cause=f"the environment installs a version of {pip} without that submodule (it was moved or "
                    f"removed), or, if {top} is your own package, {module} is missing from the source directory.",
                    fix=f"pin `{pip}` in the environment's dependencies to the version you trained with "
                    f"(`pip show {pip}` in the training environment) and rebuild the image; a model pickled "
                    f"with another {pip} version fails this way in joblib.load() / pickle.load() too.",
                    location=location,
                )
            )
        elif name is None:
            findings.append(
                Problem(
                    title=f"{who} imports {module}, which is not installed (No module named '{module}')",
                    lines=_quote(log, numbers),
                    cause="the package is not part of the environment the image was built from, so the "
                    "import fails and the worker cannot boot.",
                    fix=f"add `{pip}` to the environment's dependencies (the pip: section of the conda "
                    f"file, or CondaDependencies.add_pip_package('{pip}')), pinned to the version you "
                    "trained with, and rebuild the image.",
                    location=location,
                )
            )
        else:
            findings.append(
                Problem(
                    title=f"{who} imports {name} from {module}, which the installed {module} does not have",
                    lines=_quote(log, numbers),
                    cause=f"the environment installs a different version of {pip} than the code was "
                    "written for.",
                    fix=f"pin `{pip}` in the environment's dependencies to the version you trained with "
                    f"(`pip show {pip}` in the training environment) and rebuild the image.",
                    location=location,
                )
            )
    return findings


_NO_MAIN = re.compile(r"No score script found\. Expected score script main\.py\.")
_NO_SUCH_FILE = re.compile(r"(?:- |\| )No such file or directory\.\s*$")
_FILE_NOT_FOUND = re.compile(r"No such file or directory: '(?P<path>[^']+)'")


def _build_entry_script_not_found(log: Log, hits: list[Hit]) -> list[Problem]:
    findings = []
    for hit in hits:
        if _NO_MAIN.search(hit.text):
            findings.append(
                Problem(
                    title="no entry script is configured: the server looked for main.py",
                    lines=_quote(log, [hit.number, hit.number + 1, _boot_failure_line(log, hit.number)]),
                    cause="neither --entry_script nor AZUREML_ENTRY_SCRIPT was given, so the server tried "
                    "`import main` and found no main.py on sys.path.",
                    fix="start the server with --entry_script score.py (AZUREML_ENTRY_SCRIPT in a container; "
                    "InferenceConfig(entry_script='score.py') in a deployment).",
                )
            )
            continue
        tb = log.traceback_at(hit.number, lookahead=2)
        path = None
        numbers = [hit.number]
        if tb is not None:
            segment, frame = tb.root_cause()
            if frame is not None:
                # The server logs this line for any FileNotFoundError while importing; with a
                # frame in the user's code, the script exists and its module level opened a
                # missing file (script-import-error).
                continue
            match = _FILE_NOT_FOUND.search(segment.exception)
            if match:
                path = match["path"]
                numbers.append(segment.exception_at)
        numbers.append(_boot_failure_line(log, hit.number))
        findings.append(
            Problem(
                title=f"the entry script {path} does not exist" if path else "the entry script does not exist",
                lines=_quote(log, numbers),
                cause="the server was told to load an entry script (--entry_script, AZUREML_ENTRY_SCRIPT) "
                "that is not there; in a deployment, entry_script is relative to source_directory.",
                fix="point --entry_script / InferenceConfig(entry_script=..., source_directory=...) at the "
                "real file; relative paths resolve against the app root (AML_APP_ROOT, /var/azureml-app in "
                "images).",
            )
        )
    return findings


_NO_FUNCTION = re.compile(r"User script at (?P<path>\S+) does not have a (?P<fn>init|run)\(\) function defined")
_BAD_RUN = re.compile(
    r"run\(\) (?:cannot accept positional-only arguments, \*args, or \*\*kwargs"
    r"|needs to accept an argument (?:other than \"request_headers\"|for input data)"
    r"|cannot be decorated with both @rawhttp and @input_schema)"
)


def _build_entry_script_invalid(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        message = hit.match.group(0)
        if message in seen:
            continue
        seen.add(message)
        if "does not have" in message:
            file = log.display(hit.match["path"])
            signature = "def init():" if hit.match["fn"] == "init" else "def run(raw_data):"
            fix = (
                f"define `{signature}` at module level in {file}: the server calls init() once per "
                "worker and run() once per request."
            )
            location = file
        elif "positional-only" in message:
            fix = "declare run() with plain named parameters, e.g. `def run(raw_data):` (no *args, **kwargs or /)."
            location = None
        elif "needs to accept" in message:
            fix = "give run() a parameter for the request body, e.g. `def run(raw_data):`."
            location = None
        else:
            fix = "decorate run() with either @rawhttp or @input_schema, not both."
            location = None
        findings.append(
            Problem(
                title=f"the entry script is not a valid scoring script: {message}",
                lines=_quote(log, [hit.number, _boot_failure_line(log, hit.number)]),
                cause="the server checks the entry script's init() and run() after importing it and stops "
                "the worker (exit code 3) when they do not fit.",
                fix=fix,
                location=location,
            )
        )
    return findings


_MODEL_NOT_IN_CACHE = re.compile(
    r"Model (?P<name>\S+) not found in cache at (?P<cache>\S+) or in current working directory (?P<cwd>.+?)\. "
    r"For more info"
)
_MODEL_NOT_IN_WORKSPACE = re.compile(r"Model/Version (?P<name>[^/\s]+)/(?P<version>\S+) not found in workspace")
_MODEL_PATH_MISSING = re.compile(r"Expected model path does not exist: (?P<path>\S+?)\. Found items in dir")
_MODEL_DIR_SETTING = re.compile(r"^Model Directory: (?P<path>\S.*)$")
_DEPLOYED_MODEL = re.compile(r"azureml-models[\\/](?P<name>[^\\/]+)[\\/](?P<version>\d+)")


def _deployed_model(log: Log) -> tuple[int, str, str] | None:
    """(line, name, version) of the model this service was given, from the server's settings."""
    hit = log.first(_MODEL_DIR_SETTING)
    if hit is None:
        return None
    match = _DEPLOYED_MODEL.search(hit.match["path"])
    return (hit.number, match["name"], match["version"]) if match else None


def _build_model_not_found(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    deployed = _deployed_model(log)
    for hit in hits:
        groups = hit.match.groupdict()
        name = groups.get("name") or groups.get("path")
        if name in seen:
            continue
        seen.add(name)
        tb = log.traceback_at(hit.number)
        segment, frame = tb.root_cause() if tb else (None, None)
        numbers = [hit.number] + ([frame.at, frame.at + 1] if frame else [])
        if "cache" in groups:
            title = (
                f"Model.get_model_path('{name}') found no model: it searched {groups['cache']}/{name}/<latest "
                f"version>/ and ./{name} in {groups['cwd']}"
            )
        elif "version" in groups:
            title = f"Model.get_model_path('{name}', version={groups['version']}): no such model in the workspace"
        else:
            title = f"the downloaded model path {name} does not exist"
        cause = "the model is not deployed with the service under that name (the lookup uses the registered name)"
        if "path" in groups:  # the name is in the download path: azureml-models/<name>/<version>/...
            downloaded = _DEPLOYED_MODEL.search(name)
            name = downloaded["name"] if downloaded else name
        fix = (
            f"deploy the model with the service (models=[...] in Model.deploy or the local service), or fix the "
            f"name; `amldebug model-path {name}` shows where the lookup goes."
        )
        if deployed is not None:
            line, deployed_name, version = deployed
            numbers.append(line)
            cause += f"; this service was given model '{deployed_name}' version {version} (AZUREML_MODEL_DIR)"
            if deployed_name != name:
                fix = (
                    f"call Model.get_model_path('{deployed_name}'), or read the files under "
                    f"os.environ['AZUREML_MODEL_DIR']; `amldebug model-path {name}` shows where the lookup goes."
                )
        numbers.append(_boot_failure_line(log, hit.number))
        findings.append(
            Problem(
                title=title,
                lines=_quote(log, numbers),
                cause=cause + ".",
                fix=fix,
                location=log.location(frame),
            )
        )
    return findings


_MODEL_DIR_AMBIGUOUS = re.compile(r"Dir (?P<dir>\S+) can contain only 1 file or folder\. Found (?P<found>\[[^\]]*\])")


def _build_model_dir_ambiguous(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        folder = hit.match["dir"]
        if folder in seen:
            continue
        seen.add(folder)
        entries = re.findall(r"'([^']*)'", hit.match["found"])
        match = _DEPLOYED_MODEL.search(folder)
        name = match["name"] if match else "NAME"
        tb = log.traceback_at(hit.number)
        segment, frame = tb.root_cause() if tb else (None, None)
        numbers = [hit.number] + ([frame.at, frame.at + 1] if frame else []) + [_boot_failure_line(log, hit.number)]
        findings.append(
            Problem(
                title=f"Model.get_model_path('{name}'): {folder} holds {len(entries)} entries "
                f"{hit.match['found']}, but it must hold exactly one",
                lines=_quote(log, numbers),
                cause="azureml-core's get_model_path returns the single file or folder inside "
                "azureml-models/<name>/<version>/; a model registered as several files has no single path.",
                fix=f"open the files yourself, e.g. os.path.join(os.environ['AZUREML_MODEL_DIR'], "
                f"'{entries[0] if entries else 'model.pkl'}'), or register the model as one folder; "
                f"`amldebug model-path {name}` shows what the lookup sees.",
                location=log.location(frame),
            )
        )
    return findings


# ---- the debugger


_CONNECTING = re.compile(r"\*\* Connecting to debugger at port (?P<port>\d+)\.\.\.")
_CONNECT_REFUSED = re.compile(r"Could not connect to (?P<host>[^\s:]+): ?(?P<port>\d+)")
_READY = re.compile(r"Worker with pid (?P<pid>\d+) ready for serving traffic")
_BOOTING = re.compile(r"Booting worker with pid:? (?P<pid>\d+)")


def _build_debugger_not_listening(log: Log, hits: list[Hit]) -> list[Problem]:
    refused = [h for h in hits if _CONNECT_REFUSED.search(h.text)]
    connecting = [h for h in hits if _CONNECTING.search(h.text)]
    fix = (
        "start the debugger that listens first (a VS Code 'listen' configuration on that port), or unset "
        "AZUREML_DEBUG_PORT and let amldebug run debugpy inside the server: `amldebug attach --wait`."
    )
    if refused:
        port = refused[0].match["port"]
        numbers = [connecting[0].number] if connecting else []
        numbers += [refused[0].number, _boot_failure_line(log, refused[0].number)]
        error = log.first(re.compile(r"^ConnectionRefusedError: "), refused[0].number)
        numbers.append(error.number if error else 0)
        return [
            Problem(
                title=f"the worker could not reach a debugger on port {port} (connection refused) and did not boot",
                lines=_quote(log, numbers),
                cause="AZUREML_DEBUG_PORT makes every worker call debugpy.connect(port): the debugger must "
                "already be listening there; nothing was.",
                fix=fix,
            )
        ]
    last = connecting[-1]
    if log.hits((_READY, _BOOTING), last.number + 1):
        return []  # the debugger accepted and the worker went on
    return [
        Problem(
            title=f"the worker is waiting in debugpy.connect() for a debugger on port {last.match['port']}",
            lines=_quote(log, [last.number]),
            cause="with AZUREML_DEBUG_PORT set, each worker blocks before loading score.py until a listening "
            "debugger accepts its connection; the log stops there.",
            fix=fix,
        )
    ]


def _build_debugpy_not_installed(log: Log, hits: list[Hit]) -> list[Problem]:
    exits = log.hits((_WORKER_EXIT,), hits[0].number)
    boots = log.hits((_BOOTING,), hits[0].number)
    numbers = [hits[0].number, exits[0].number if exits else 0, boots[-1].number if boots else 0]
    times = f" ({len(hits)} times)" if len(hits) > 1 else ""
    return [
        Problem(
            title=f"AZUREML_DEBUG_PORT is set but debugpy is not installed: the worker exits and restarts{times}",
            lines=_quote(log, numbers),
            cause="entry.py imports debugpy when AZUREML_DEBUG_PORT is set and exits the worker (code 255) "
            "when it is missing; gunicorn then boots a new worker, again and again.",
            fix="add `debugpy` to the environment's pip dependencies, or unset AZUREML_DEBUG_PORT.",
        )
    ]


_LISTEN_IN_USE = re.compile(
    r"Can't listen for client connections: .*(?:Address already in use|Only one usage of each socket address)"
)


def _build_debug_port_in_use(log: Log, hits: list[Hit]) -> list[Problem]:
    return [
        Problem(
            title="debugpy could not listen: the debug port is already in use",
            lines=_quote(log, [h.number for h in hits]),
            cause="another debug session, or a container left from an earlier run, holds the port.",
            fix="stop it (`docker ps` shows which container publishes the port) or choose another port with "
            "--debug-port.",
        )
    ]


_PORT_PATTERNS = (
    re.compile(r"Connection in use: \('(?P<host>[^']*)', (?P<port>\d+)\)"),
    re.compile(r"Bind for (?P<host>\S+?):(?P<port>\d+) failed: port is already allocated"),
    re.compile(r"listen tcp[46]? (?P<host>\S*?):(?P<port>\d+): bind: address already in use"),
)


def _build_port_in_use(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        port = hit.match["port"]
        if port in seen:
            continue
        seen.add(port)
        same = [h.number for h in hits if h.match["port"] == port]
        gave_up = log.first(re.compile(rf"Can't connect to \(.*, {port}\)"), hit.number)
        findings.append(
            Problem(
                title=f"port {port} is already in use, so the server could not listen on it",
                lines=_quote(log, same[:2] + [gave_up.number if gave_up else 0]),
                cause="another process or container listens on that port (often a scoring container left "
                "from an earlier run).",
                fix=f"stop it (`docker ps --filter publish={port}` for a container, `ss -ltnp 'sport = :{port}'` "
                "for a process) or use another port (--port).",
            )
        )
    return findings


# ---- init() and run()


_INIT_FAILED = re.compile(r"User's init function failed")
_MISSING_MODEL_FILE = re.compile(r"^FileNotFoundError: .*azureml-models[\\/](?P<name>[^\\/']+)")


def _build_init_exception(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        tb = log.traceback_at(hit.number, lookahead=2)
        segment, frame = tb.root_cause() if tb else (None, None)
        error = _exception_text(segment) if segment and segment.exception else "an exception"
        location = log.location(frame)
        if (error, location) in seen:
            continue
        seen.add((error, location))
        numbers = [hit.number] + _traceback_lines(tb, segment, frame)
        numbers.append(_boot_failure_line(log, hit.number))
        if segment is not None and frame is not None:
            # the call that led there, when init() called a helper
            numbers += [f.at for f in reversed(segment.frames) if is_user_path(f.path) and f is not frame][:2]
        stop_at = f" at {location}" if location else " in init()"
        model = _MISSING_MODEL_FILE.search(error)
        model_hint = (
            f"; the model file is not where init() looks: `amldebug model-path {model['name']}` lists what the "
            "model folder holds" if model else _relative_file_hint(error)
        )
        findings.append(
            Problem(
                title=f"init() raised {error}",
                lines=_quote(log, numbers),
                cause="an unhandled exception in init() makes the server stop the worker (exit code 3, "
                "'Worker failed to boot'); in Azure the container then restarts in a loop (CrashLoopBackOff).",
                fix=f"stop{stop_at} with `amldebug attach --wait` (the server waits for the debugger before "
                f"init() runs) and inspect the values there{model_hint}.",
                location=location,
            )
        )
    return findings


_IMPORT_FAILED = (
    re.compile(r"UserScriptImportException: Failed to import user script because it raised an unhandled exception"),
    re.compile(r"Error in entry script, (?P<error>.+?), please run print\(service\.get_logs\(\)\)"),
)


def _build_script_import_error(log: Log, hits: list[Hit]) -> list[Problem]:
    findings, seen = [], set()
    for hit in hits:
        tb = log.traceback_at(hit.number)
        if tb is not None:
            segment, frame = tb.root_cause()
            error = _exception_text(segment) if segment.exception else "an exception"
            numbers = _traceback_lines(tb, segment, frame)
        else:
            segment, frame = None, None
            error = _clip(hit.match.groupdict().get("error") or "an exception")
            numbers = [hit.number]
        location = log.location(frame)
        if (error, location) in seen:
            continue
        seen.add((error, location))
        numbers.append(_boot_failure_line(log, hit.number))
        inner = raised_in_package(segment, frame) if segment is not None else None
        if inner is not None:
            package, raised = inner
            binary = "numpy.dtype size changed" in error or "compiled using NumPy 1.x" in error
            findings.append(
                Problem(
                    title=f"importing the entry script failed inside the installed package {package}: {error}",
                    lines=_quote(log, numbers or [hit.number]),
                    cause=f"{location or 'the entry script'} imports {package}, and {package} itself raised while "
                    "it was imported: the environment's packages do not work together"
                    + (f" ({package} was compiled against numpy 1.x, and numpy 2 is installed)." if binary else "."),
                    fix=("add `numpy<2` to the environment's dependencies (conda's builds carry that bound, PyPI's "
                         "do not) and rebuild the image" if binary else
                         f"pin {package} and the packages it needs to versions that work together, and rebuild the "
                         "image") + "; `amldebug build` imports each package once and names the one that fails.",
                    location=f"{raised.path}:{raised.line}",
                )
            )
            continue
        findings.append(
            Problem(
                title=f"importing the entry script raised {error}",
                lines=_quote(log, numbers or [hit.number]),
                cause="code at module level in the entry script failed while the server imported it, "
                "before init(); the worker exited with code 3.",
                fix=f"fix the code at {location or 'module level'}; keep module level to imports and "
                "definitions, load the model in init(), and step through it with `amldebug attach --wait`"
                f"{_relative_file_hint(error)}.",
                location=location,
            )
        )
    return findings


_RUN_FAILED = re.compile(r"Encountered Exception: Traceback \(most recent call last\):")
_SCORE_500 = re.compile(r"(?:POST|GET|OPTIONS) /score 500 ")
_OWNED_ELSEWHERE = re.compile(
    r"UserScriptTimeout|Script failed to finish execution within the allocated time|is not JSON serializable"
)


def _build_run_exception(log: Log, hits: list[Hit]) -> list[Problem]:
    too_new_lines = {found.exception_at for found in too_new_in(log)}
    causes: dict[tuple[str, str | None], list[int]] = {}
    details: dict[tuple[str, str | None], tuple[Traceback | None, Segment | None, Frame | None]] = {}
    for hit in hits:
        tb = log.traceback_at(hit.number)
        if tb is None:
            continue
        if any(_OWNED_ELSEWHERE.search(s.exception) for s in tb.segments):
            continue  # scoring-timeout, run-output-not-serializable
        if any(s.exception_at in too_new_lines for s in tb.segments):
            continue  # package-needs-newer-python
        segment, frame = tb.root_cause()
        key = (_exception_text(segment) if segment.exception else "an exception", log.location(frame))
        causes.setdefault(key, []).append(hit.number)
        details.setdefault(key, (tb, segment, frame))
    findings = []
    for (error, location), numbers in causes.items():
        tb, segment, frame = details[(error, location)]
        response = log.first(_SCORE_500, tb.end, tb.end + 5) if tb else None
        times = f", {len(numbers)} requests" if len(numbers) > 1 else ""
        who = "run()" if frame is not None else "the scoring request"
        findings.append(
            Problem(
                title=f"{who} raised {error} (HTTP 500{times})",
                lines=_quote(
                    log, [numbers[0]] + _traceback_lines(tb, segment, frame) + [response.number if response else 0]
                ),
                cause="an unhandled exception in run() makes the server answer HTTP 500 (behind nginx in AKS/ACI "
                "the client may see 502); LocalWebservice.run() retries a 500 three times, so one call runs run() "
                "4 times.",
                fix=f"set a breakpoint at {location or 'the start of run()'}, run `amldebug attach`, and send the "
                "same request again (`amldebug score --data JSON`) to inspect its input.",
                location=location,
            )
        )
    return findings


_NOT_SERIALIZABLE = re.compile(r"TypeError: Object of type (?P<type>\w+) is not JSON serializable")


def _build_not_serializable(log: Log, hits: list[Hit]) -> list[Problem]:
    types = list(dict.fromkeys(h.match["type"] for h in hits))
    tb = log.traceback_at(hits[0].number)
    frame = tb.root_cause()[1] if tb else None
    response = log.first(_SCORE_500, hits[0].number, hits[0].number + 5)
    header = tb.start if tb else 0
    return [
        Problem(
            title=f"run() returned a {' / '.join(types)}, which the server cannot turn into JSON (HTTP 500)",
            lines=_quote(log, [hits[0].number, header, response.number if response else 0]),
            cause="the server serialises run()'s return value with json.dumps; numpy arrays, pandas objects, "
            "sets and other non-JSON types fail after run() has finished.",
            fix="return plain Python types: `.tolist()` for a numpy array, `.to_dict(orient='records')` for a "
            "DataFrame, `list(...)` for a set.",
            location=log.location(frame),
        )
    ]


_SCORING_TIMEOUT = (
    re.compile(r"Script failed to finish execution within the allocated time: (?P<ms>\d+)ms"),
    re.compile(r"Scoring timeout after (?P<ms>\d+) ms"),
)


def _build_scoring_timeout(log: Log, hits: list[Hit]) -> list[Problem]:
    ms = max(int(h.match["ms"]) for h in hits)
    response = log.first(_SCORE_500, hits[0].number, hits[0].number + 5)
    times = f", {len(hits)} requests" if len(hits) > 1 else ""
    return [
        Problem(
            title=f"run() ran longer than the scoring timeout of {ms} ms (HTTP 500{times})",
            lines=_quote(log, [h.number for h in hits[:3]] + [response.number if response else 0]),
            cause="the server stops run() with SIGALRM after SCORING_TIMEOUT_MS (scoring_timeout_ms in a "
            "deployment) and answers 500 'Scoring timeout after N ms'.",
            fix=f"make run() faster, or raise the limit: SCORING_TIMEOUT_MS={2 * ms} locally, "
            f"scoring_timeout_ms={2 * ms} in the deployment configuration; while a debugger pauses run(), set "
            "SCORING_TIMEOUT_MS to a large value such as 3600000.",
        )
    ]


_WORKER_TIMEOUT = re.compile(r"WORKER TIMEOUT \(pid:(?P<pid>\d+)\)")
_FAULTHANDLER_FRAME = re.compile(r'^\s+File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')
_TIMEOUT_SETTING = re.compile(r"Worker Timeout \(seconds\): (?P<s>\d+)|worker timeout is set to (?P<t>\d+)")


def _timeout_location(log: Log, start: int) -> Frame | None:
    """The user frame a timed-out worker was in: faulthandler's dump, else the traceback."""
    boot = log.first(_BOOTING, start)
    stop = boot.number if boot else min(len(log), start + 200)
    for number in range(start, stop):
        if log.line(number).startswith("Current thread ") and "most recent call first" in log.line(number):
            for inner in range(number + 1, stop):
                match = _FAULTHANDLER_FRAME.match(log.line(inner))
                if not match:
                    break
                if is_user_path(match["path"]):
                    return Frame(match["path"], int(match["line"]), match["func"], inner)
    for tb in log.tracebacks:
        if start <= tb.start < stop:
            frame = tb.root_cause()[1]
            if frame is not None:
                return frame
    return None


def _build_worker_timeout(log: Log, hits: list[Hit]) -> list[Problem]:
    setting = log.first(_TIMEOUT_SETTING)
    seconds = int(setting.match["s"] or setting.match["t"]) if setting else 300
    phases = {log.phase(hit.match["pid"], hit.number) for hit in hits}
    phase = phases.pop() if len(phases) == 1 and None not in phases else "run() or init()"
    frame = _timeout_location(log, hits[0].number)
    location = log.location(frame)
    boot = log.first(_BOOTING, hits[0].number)
    # gunicorn follows up with SIGKILL when the worker ignores the abort; that is not memory
    killed = log.first(re.compile(rf"Worker \(pid:{hits[0].match['pid']}\) was sent SIGKILL"), hits[0].number)
    numbers = [hits[0].number, frame.at if frame else 0, killed.number if killed else 0, boot.number if boot else 0]
    numbers += [h.number for h in hits[1:]]
    times = f", {len(hits)} times" if len(hits) > 1 else ""
    return [
        Problem(
            title=f"gunicorn killed a worker that spent more than {seconds} s in {phase} (WORKER TIMEOUT{times})",
            lines=_quote(log, numbers),
            cause="gunicorn's master kills a worker that has not checked in for WORKER_TIMEOUT seconds: a slow "
            "run() or init(), or a debugger paused at a breakpoint; the request gets a 500 or a closed "
            "connection and a new worker boots (init() runs again).",
            fix=f"make {phase} faster, or raise WORKER_TIMEOUT (seconds, now {seconds}), e.g. "
            f"WORKER_TIMEOUT={2 * seconds}; while debugging set WORKER_TIMEOUT=0 (no limit).",
            location=location,
        )
    ]


_SIGKILL = re.compile(r"Worker \(pid:(?P<pid>\d+)\) was sent SIGKILL! Perhaps out of memory\?")
_CONTAINER_OOM = (
    re.compile(r"OOMKilled\b"),
    re.compile(r"Exit Code:\s+137\b|exited with code 137\b|\"ExitCode\": 137\b"),
    re.compile(r"Out of memory: Kill(?:ed)? process|Memory cgroup out of memory"),
)


def _build_out_of_memory(log: Log, hits: list[Hit]) -> list[Problem]:
    timed_out = {h.match["pid"] for h in log.hits((_WORKER_TIMEOUT,))}
    # gunicorn SIGKILLs a worker itself when it ignores the SIGABRT of a WORKER TIMEOUT
    kills = [h for h in hits if _SIGKILL.search(h.text) and h.match["pid"] not in timed_out]
    container = [h for h in hits if not _SIGKILL.search(h.text)]
    if not kills and not container:
        return []
    fix = (
        "double memory_gb in the deployment configuration (AKS and ACI default to 0.5 GB: try memory_gb=1, "
        "then 2); locally give the container more memory (docker run --memory); the model's size on disk "
        "times 2-3 is a first estimate of what init() needs."
    )
    if kills:
        during = " during init()" if all(log.phase(k.match["pid"], k.number) == "init()" for k in kills) else ""
        boots = [b.number for b in log.hits((_BOOTING,), kills[0].number)]
        numbers = [kills[0].number, boots[0] if boots else 0, kills[-1].number]
        numbers += [k.number for k in kills[1:3]] + [h.number for h in container[:2]]
        times = f" {len(kills)} times" if len(kills) > 1 else ""
        return [
            Problem(
                title=f"the worker was killed{times}{during} (SIGKILL, out of memory) and restarted",
                lines=_quote(log, numbers),
                cause="the kernel's OOM killer sends SIGKILL when the container goes over its memory limit; "
                "gunicorn then boots a new worker, which loads the model again ('Booting worker with pid' "
                "again and again).",
                fix=fix,
            )
        ]
    oom = any("OOMKilled" in h.text or "out of memory" in h.text.lower() for h in container)
    what = "ran out of memory (OOMKilled, exit code 137)" if oom else "was killed with SIGKILL (exit code 137)"
    return [
        Problem(
            title=f"the container {what}",
            lines=_quote(log, [h.number for h in container]),
            cause="the container went over its memory limit"
            + ("" if oom else ", or a failed liveness probe made Kubernetes kill it")
            + "; Kubernetes restarts it, and it loads the model again.",
            fix=fix,
        )
    ]


_DEATH = re.compile(r"Worker \(pid:\d+\) (?:exited with code -?\d+|was sent (?!SIGTERM)\w+)")
_WORKER_COUNT = re.compile(r"^Worker Count: (?P<n>\d+)")


def _build_restart_loop(log: Log, hits: list[Hit]) -> list[Problem]:
    """Workers booted beyond the configured count, not explained by a reload or a WORKER TIMEOUT."""
    count = log.first(_WORKER_COUNT)
    workers = int(count.match["n"]) if count and int(count.match["n"]) > 0 else 1
    # amldebug's warm standby: a worker forked ahead of the next reload (the payload says so).
    standbys = {pid for line in log.lines if (pid := protocol.standby_forked_pid(line))}
    events = sorted(
        [(h.number, "boot") for h in hits if h.match["pid"] not in standbys]
        + [(n, "start") for n in log.run_starts]
        + [(h.number, "timeout") for h in log.hits((_WORKER_TIMEOUT,))]
        + [(h.number, "death") for h in log.hits((_DEATH,))]
    )
    reboots, deaths = [], []
    booted_in_run, excused = 0, 0
    first_boot = hits[0].number
    for number, kind in events:
        if kind == "boot":
            booted_in_run += 1
            if excused:
                excused -= 1
            elif booted_in_run > workers:
                reboots.append(number)
        elif kind == "start":
            booted_in_run = 0  # a (re)start or a reload (SIGHUP) boots every worker anew
        elif kind == "timeout":
            excused += 1  # worker-timeout explains the boot that follows
        else:
            deaths.append(number)
    died_before = [d for d in deaths if reboots and d < reboots[-1]]
    if len(reboots) < 2 and not (reboots and died_before):
        return []
    exit_codes = sorted({m["code"] for d in died_before if (m := _WORKER_EXIT.search(log.line(d)))})
    how = f" after exiting with code {', '.join(exit_codes)}" if exit_codes else ""
    numbers = [first_boot] + died_before[:2] + reboots[:2] + [reboots[-1]] + died_before[2:3]
    return [
        Problem(
            title=f"the worker restarted {_times(len(reboots))}{how} ('Booting worker with pid' again and again)",
            lines=_quote(log, numbers),
            cause="a worker that dies without a Python traceback was killed from outside, most often by the "
            "container's memory limit (out of memory); gunicorn boots a new one each time.",
            fix="double memory_gb in the deployment configuration (AKS and ACI default to 0.5 GB: try "
            "memory_gb=1, then 2) and watch the container's memory while init() loads the model "
            "(`docker stats`).",
        )
    ]


# ---- Kubernetes / AKS / ACI, and the client's HTTP status


_NODES = re.compile(r"nodes are available: (?P<why>[^\"\n]+)")
_NODE_COUNT = re.compile(r"(?P<avail>\d+)/(?P<total>\d+) nodes are available: ")
_SCHEDULE_TIMEOUT = re.compile(
    r"Couldn't [Ss]chedule because the kubernetes cluster didn't have available resources after trying for "
    r"(?P<after>[\d:]+)"
)


def _build_aks_resources(log: Log, hits: list[Hit]) -> list[Problem]:
    resources: list[str] = []
    reason = None
    for hit in hits:
        if "why" in hit.match.groupdict():
            why = re.sub(r"\.?\s*preemption:.*$", "", hit.match["why"]).rstrip(' .",')
            count = _NODE_COUNT.search(hit.text)
            nodes = f"{count['avail']}/{count['total']} nodes" if count else "no nodes"
            reason = reason or f"{nodes} are available: {why}"
            resources += re.findall(r"Insufficient ([\w./-]*\w)", why)
    resources = list(dict.fromkeys(resources))
    after = next((h.match["after"] for h in hits if "after" in h.match.groupdict()), None)
    if reason:
        title = f"AKS could not schedule the service: {_clip(reason, 120)}"
    else:
        title = f"AKS could not schedule the service within {after}: no node had the requested resources"
    fixes = []
    if any("gpu" in r for r in resources):
        fixes.append(
            "the pod asks for a GPU (gpu_cores) and no node has a free one: add a GPU node pool (an NC-series VM "
            "size) or deploy with gpu_cores=0"
        )
    if "cpu" in resources:
        fixes.append(
            "lower cpu_cores in AksWebservice.deploy_configuration (e.g. halve it) or add nodes / a larger VM size"
        )
    if "memory" in resources:
        fixes.append("lower memory_gb or add nodes / a VM size with more memory")
    others = [r for r in resources if "gpu" not in r and r not in ("cpu", "memory")]
    if others or not fixes:
        fixes.append(
            f"add nodes with {', '.join(others)}" if others else
            "add nodes, change the node VM size, or lower the service's requests (cpu_cores, memory_gb, gpu_cores)"
        )
    return [
        Problem(
            title=title,
            lines=_quote(log, [h.number for h in hits]),
            cause="no node in the cluster had the CPU, memory or GPU the deployment requests free; after 5 minutes "
            "Azure ML gives up ('Couldn't Schedule because the kubernetes cluster didn't have available resources').",
            fix="; ".join(fixes) + ".",
        )
    ]


def _http_patterns(code: str, reason: str) -> tuple[re.Pattern[str], ...]:
    return (
        re.compile(rf"Response Code: {code}\b"),
        re.compile(rf"HTTP/\d(?:\.\d)?\"? {code}\b"),
        re.compile(rf"{code} (?:{reason}|Server Error\b)"),
    )


def _http_rule(title: str, cause: str, fix: str) -> Builder:
    def build(log: Log, hits: list[Hit]) -> list[Problem]:
        return [
            Problem(
                title=title,
                lines=_quote(log, [h.number for h in hits]),
                cause=cause,
                fix=fix,
            )
        ]

    return build


_CRASH = (
    re.compile(r"CrashLoopBackOff"),
    re.compile(r"Back-off restarting failed container"),
    re.compile(r"Your container application crashed"),
)
_EXIT_CODE = re.compile(r"Exit Code:\s+(?P<code>\d+)")


def _build_crash_loop(log: Log, hits: list[Hit]) -> list[Problem]:
    codes = list(dict.fromkeys(h.match["code"] for h in log.hits((_EXIT_CODE,)) if h.match["code"] != "0"))
    code_note = f", exit code {', '.join(codes)}" if codes else ""
    numbers = [h.number for h in hits[:4]] + [h.number for h in log.hits((_EXIT_CODE,))][:2]
    meaning = " Exit code 3 is the server's 'worker failed to boot'." if "3" in codes else ""
    return [
        Problem(
            title=f"the container keeps crashing while it starts (CrashLoopBackOff{code_note})",
            lines=_quote(log, numbers),
            cause="the scoring server exits during start-up, almost always because importing score.py or "
            f"running init() raised; Kubernetes restarts it with a growing back-off.{meaning}",
            fix="get the crashed container's log (`kubectl logs POD --previous`, or print(service.get_logs())) "
            "and diagnose that; reproduce locally and stop in init() with `amldebug attach --wait`.",
        )
    ]


_BOOT_FAILED_PATTERNS = (
    _BOOT_FAILED,
    re.compile(r"Exit code (?P<code>\d+) is not normal\. Killing image\."),
)


def _build_worker_boot_failed(log: Log, hits: list[Hit]) -> list[Problem]:
    exits = log.hits((_WORKER_EXIT,), max(1, hits[0].number - 5), hits[0].number)
    return [
        Problem(
            title="the scoring server stopped: its worker failed to boot",
            lines=_quote(log, [hits[0].number] + [e.number for e in exits] + [h.number for h in hits[1:]]),
            cause="the worker exited with code 3 while importing the entry script or running init(); the error "
            "it printed before is not in this log, or is not one amldebug recognises.",
            fix="step through start-up: `amldebug attach --wait` stops before init() runs.",
        )
    ]


RULES: tuple[Rule, ...] = (
    Rule("score-syntax-error", (_SYNTAX,), _build_syntax_error,
         supersedes=("script-import-error", "worker-boot-failed", "crash-loop")),
    Rule(NEWER_PYTHON, _TOO_NEW, _build_newer_python,
         supersedes=("missing-module", "script-import-error", "init-exception", "worker-boot-failed", "crash-loop")),
    Rule("missing-azureml-package", _SERVER_MISSING + (_AZUREML_MISSING,), _build_missing_azureml,
         supersedes=("script-import-error", "init-exception", "worker-boot-failed", "crash-loop")),
    Rule("missing-module", (_MISSING_MODULE, _CANNOT_IMPORT), _build_missing_module,
         supersedes=("script-import-error", "init-exception", "worker-boot-failed", "crash-loop")),
    Rule("entry-script-not-found", (_NO_MAIN, _NO_SUCH_FILE), _build_entry_script_not_found,
         supersedes=("script-import-error", "worker-boot-failed", "crash-loop")),
    Rule("entry-script-invalid", (_NO_FUNCTION, _BAD_RUN), _build_entry_script_invalid,
         supersedes=("worker-boot-failed", "crash-loop")),
    Rule("model-not-found", (_MODEL_NOT_IN_CACHE, _MODEL_NOT_IN_WORKSPACE, _MODEL_PATH_MISSING),
         _build_model_not_found, supersedes=("init-exception", "worker-boot-failed", "crash-loop")),
    Rule("model-dir-ambiguous", (_MODEL_DIR_AMBIGUOUS,), _build_model_dir_ambiguous,
         supersedes=("init-exception", "worker-boot-failed", "crash-loop")),
    Rule("debugger-not-listening", (_CONNECTING, _CONNECT_REFUSED), _build_debugger_not_listening,
         supersedes=("worker-boot-failed", "crash-loop")),
    Rule("debugpy-not-installed",
         (re.compile(r"\*\* Cannot connect to a debugger because debugpy is not installed\."),),
         _build_debugpy_not_installed, supersedes=("restart-loop", "worker-boot-failed", "crash-loop")),
    Rule("debug-port-in-use", (_LISTEN_IN_USE,), _build_debug_port_in_use),
    Rule("port-in-use", _PORT_PATTERNS, _build_port_in_use),
    Rule("init-exception", (_INIT_FAILED,), _build_init_exception,
         supersedes=("worker-boot-failed", "crash-loop")),
    Rule("script-import-error", _IMPORT_FAILED, _build_script_import_error,
         supersedes=("worker-boot-failed", "crash-loop")),
    Rule("run-exception", (_RUN_FAILED,), _build_run_exception),
    Rule("run-output-not-serializable", (_NOT_SERIALIZABLE,), _build_not_serializable),
    Rule("scoring-timeout", _SCORING_TIMEOUT, _build_scoring_timeout),
    Rule("worker-timeout", (_WORKER_TIMEOUT,), _build_worker_timeout),
    Rule("out-of-memory", (_SIGKILL,) + _CONTAINER_OOM, _build_out_of_memory,
         supersedes=("restart-loop", "crash-loop", "worker-boot-failed")),
    Rule("restart-loop", (_BOOTING,), _build_restart_loop),
    Rule("aks-insufficient-resources", (_NODES, _SCHEDULE_TIMEOUT), _build_aks_resources),
    Rule("http-502", _http_patterns("502", "Bad Gateway"), _http_rule(
        "the service answered HTTP 502: run() raised or the container crashed",
        "in AKS/ACI a 502 comes from the front end when the scoring container failed the request: an "
        "exception in run(), or a worker that died while scoring.",
        "send the same request to the local service (`amldebug score --data JSON`) and read its log "
        "(`amldebug logs`: the server logs 'Encountered Exception' with the traceback); stop in run() with "
        "`amldebug attach`.",
    )),
    Rule("http-503", _http_patterns("503", r"Service (?:Temporarily )?Unavailable"), _http_rule(
        "the service answered HTTP 503: no replica was free for the request",
        "a spike of requests arrived faster than the autoscaler adds replicas (it reacts in about a second, "
        "but new containers take much longer to start).",
        "raise autoscale_min_replicas, and lower autoscale_target_utilization (e.g. 70 -> 50) so replicas are "
        "added earlier; raise autoscale_max_replicas if the service already runs at the maximum; size them "
        "with `amldebug replicas --target-rps R --request-time S`.",
    )),
    Rule("http-504", _http_patterns("504", r"Gateway Time-?out"), _http_rule(
        "the service answered HTTP 504: a request ran longer than the service's timeout",
        "the request did not finish within the scoring timeout (1 minute by default on AKS, "
        "scoring_timeout_ms=60000).",
        "make run() faster (load the model in init(), not per request), or raise scoring_timeout_ms, e.g. "
        "scoring_timeout_ms=120000; `amldebug score` prints how long one request takes locally.",
    )),
    Rule("crash-loop", _CRASH, _build_crash_loop),
    Rule("worker-boot-failed", _BOOT_FAILED_PATTERNS, _build_worker_boot_failed),
)

