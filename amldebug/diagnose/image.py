"""What an image says of its own Python and of the packages a log blames: their METADATA, read
by the image's Python (``read_facts``), and the findings made exact with it (``explain``,
``diagnose_image``); ``misfits`` lists every installed package whose Requires-Python the image's
Python does not meet. ``amldebug diagnose --image``, ``logs`` and ``check`` use it.

Nothing here talks to the engine: the caller hands in a ``RunPython``, which runs Python code with
arguments in the image's own Python (a throwaway container) and returns (exit code, output)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import AmlDebugError, ImageError
from .log import Log
from .pythons import Installed, allows, last_release, minimum_python, newer_images, normalise, version_tuple
from .rules import NEWER_PYTHON, Finding, describe_too_new, too_new_in

RunPython = Callable[[str, Sequence[str]], "tuple[int, str]"]

# Runs in the image's Python, whatever its version: sent as ``python -c`` with its arguments.
PROBE = (Path(__file__).with_name("metadata_probe.py")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class ImageFacts:
    """The image's Python ('3.9.2') and the distributions the probe found: by top-level package
    for those asked about, and every one when none was asked about."""

    image: str
    python: str
    packages: dict[str, Installed]
    every: tuple[Installed, ...] = ()

    @property
    def minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def installed(self, package: str) -> Optional[Installed]:
        """The distribution that installed top-level ``package``, as far as the probe says."""
        return self.packages.get(package) or next(
            (d for d in self.every if normalise(d.name) == normalise(package)), None)


def read_facts(run: RunPython, image: str, wanted: Sequence[tuple[Optional[str], str]] = ()) -> ImageFacts:
    """Ask ``image``'s Python (through ``run``) which distribution installed each (site-packages
    folder, top-level package) of ``wanted``, and what its METADATA says; with ``wanted`` empty,
    every distribution."""
    code, output = run(PROBE, [json.dumps([[site or "", top] for site, top in wanted])])
    lines = [line for line in output.strip().splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ImageError(f"could not read the installed packages of image '{image}': "
                         f"{lines[-1] if lines else f'exit code {code}'}") from None

    def installed(entry: dict) -> Installed:
        return Installed(entry["name"], entry["version"], entry.get("requires_python"))

    return ImageFacts(image, answer["python"], {top: installed(e) for top, e in answer["packages"].items()},
                      tuple(installed(e) for e in answer.get("every", ())))


def misfits(facts: ImageFacts) -> list[Installed]:
    """Installed distributions that need a newer Python than the image's (Requires-Python excludes
    it by its lower bound: a backport that stops below it, such as `typing`, is not one)."""
    def needs_newer(spec: str) -> bool:
        low = minimum_python(spec)
        return bool(low) and version_tuple(low.rstrip("+")) > version_tuple(facts.minor)

    return [d for d in facts.every if d.requires_python and not allows(d.requires_python, facts.python)
            and needs_newer(d.requires_python)]


def explain(findings: Sequence[Finding], text: str, facts: ImageFacts) -> list[Finding]:
    """``findings`` with each package-needs-newer-python finding told with the image's facts:
    'click 8.4.2 requires Python >=3.10; the image 'X' has Python 3.9'."""
    log = Log(text)
    by_line = {found.exception_at: found for found in too_new_in(log)}
    explained = []
    for finding in findings:
        found = next((by_line[n] for n, _ in finding.lines if n in by_line), None)
        if finding.rule == NEWER_PYTHON and found is not None:
            installed = facts.installed(found.package) if found.package else None
            problem = describe_too_new(log, found, installed, facts.image, facts.minor)
            if found.package and installed is None:
                problem = dataclasses.replace(problem, cause=problem.cause + f" The image '{facts.image}' has no "
                                              f"{found.package} installed: is it the image that wrote this log?")
            finding = dataclasses.replace(finding, title=problem.title, cause=problem.cause, fix=problem.fix)
        explained.append(finding)
    return explained


def diagnose_image(text: str, image: Optional[str], open_image: Callable[[str], RunPython], *, strict: bool = True,
                   cache: Optional[dict] = None) -> list[Finding]:
    """``diagnose(text)``, with the findings of packages too new for the image's Python read from
    ``image`` itself (``open_image(image)`` gives the way to run its Python; it is called only when
    a finding needs it). ``strict`` False (an image amldebug picked, not the user): when the image
    cannot be read, the findings stay as the log alone gives them. ``cache`` keeps what was read
    between calls (``logs --follow``)."""
    from . import diagnose

    findings = diagnose(text)
    if image is None or not any(f.rule == NEWER_PYTHON for f in findings):
        return findings
    wanted = tuple(sorted({(f.site or "", f.package) for f in too_new_in(Log(text)) if f.package}))
    cache = {} if cache is None else cache
    try:
        if (image, wanted) not in cache:
            cache[image, wanted] = read_facts(open_image(image), image, wanted)
    except AmlDebugError:
        if strict:
            raise
        return findings
    return explain(findings, text, cache[image, wanted])


def misfits_check(facts: ImageFacts) -> tuple[str, str] | None:
    """(what, fix) for the installed packages that need a newer Python than the image's
    ('click 8.4.2 requires Python >=3.10; the image 'X' has Python 3.9'), or None when all fit."""
    bad = misfits(facts)
    if not bad:
        return None
    python = facts.minor
    what = "; ".join(f"{d.name} {d.version} requires Python {d.requires_python}" for d in bad)
    pins = []
    for dist in bad:
        last = last_release(dist.name, python)
        pins.append(f"`{dist.name}<{last[1]}` ({dist.name} {last[0]} is the last release for Python {python})" if last
                    else f"{dist.name} to a release older than {dist.version} that supports Python {python}")
    need = max((minimum_python(d.requires_python or "") or "3.10" for d in bad),
               key=lambda v: version_tuple(v.rstrip("+"))).rstrip("+")
    images = newer_images(need)
    fix = (f"pin {', '.join(pins)} in the environment's dependencies and rebuild the image, or use an image with "
           f"Python {need} or newer" + (f" (Azure ML's {', '.join(images)})" if images else ""))
    return f"{what}; the image '{facts.image}' has Python {python}", fix
