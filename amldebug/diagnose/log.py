"""The scoring server's log as amldebug reads it: its lines (``Log``), the lines a pattern
matches (``Hit``), the tracebacks in it (``Traceback`` of ``Segment`` of ``Frame``), where
each worker was (init() or run()), and the last exception traceback it logged
(``logged_exception``, what amldebug shows for a failed request, a failed reload or a failed
start). Nothing here knows a failure signature: those are in ``rules``."""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Sequence

from ..payload.common import protocol

MAX_QUOTED_CHARS = 300


@dataclass(frozen=True)
class Hit:
    """A line that one of a rule's regexes matched (``number`` is 1-based)."""

    number: int
    text: str
    match: re.Match[str]


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    func: str | None
    at: int  # the log line that names this frame


@dataclass(frozen=True)
class Segment:
    """One traceback of a chain ("The above exception was the direct cause ...")."""

    frames: tuple[Frame, ...]
    exception: str  # "ValueError: bad", first line only; "" when the block was cut off
    exception_at: int  # log line of ``exception``, 0 when absent


@dataclass(frozen=True)
class Traceback:
    start: int  # line holding "Traceback (most recent call last):"
    end: int  # last line of the block
    segments: tuple[Segment, ...]

    def root_cause(self) -> tuple[Segment, Frame | None]:
        """The innermost segment that ran user code, and its last user frame.

        Python prints the original exception first and the server's wrapper
        (UserScriptException) last, so the user's own error is the last segment that
        still has a frame outside library code; without one, the first segment.
        """
        for segment in reversed(self.segments):
            user = [f for f in segment.frames if is_user_path(f.path)]
            if user:
                return segment, user[-1]
        with_exception = [s for s in self.segments if s.exception]
        return (with_exception[0] if with_exception else self.segments[0]), None


_DOCKER_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ")
_RECORD_START = re.compile(r"^(?:\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}|\[\d{4}-\d{2}-\d{2} )")
_TRACEBACK_HEADER = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s+File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')
_CHAIN = re.compile(
    r"^(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)"
)
_RUN_BOUNDARY = re.compile(r"Starting gunicorn |Hang up: ")
# Library code: anything installed (site-packages), the standard library, the old
# server's own folder in Azure ML images, and <frozen ...> pseudo-files.
_LIBRARY_PATH = re.compile(
    r"site-packages|dist-packages|[\\/]lib[\\/]python\d[\d.]*[\\/]|[\\/]Python\d+[\\/]Lib[\\/]"
    r"|^/var/azureml-server/|^/opt/amldebug/|[\\/]amldebug[\\/]payload[\\/]|^<",  # amldebug's own launcher
    re.IGNORECASE,
)
_PID_PHASE = re.compile(
    r"\[(?P<pid>\d+)\] \S+ - (?:(?P<started>Invoking user's init function)"
    r"|Users?'s init has completed successfully|Worker with pid \d+ ready for serving traffic)"
)
_ENTRY_SCRIPT_SETTING = re.compile(r"^Entry Script Name: (?P<path>\S.*)$")
_FOUND_USER_SCRIPT = re.compile(r"Found (?:user|driver) script at (?P<path>\S+)")


def is_user_path(path: str) -> bool:
    """True for a traceback path that belongs to the user's code, not a library (a Cython
    module names its .pyx source relative to its package: library code too)."""
    return not _LIBRARY_PATH.search(path) and not path.endswith((".pyx", ".pxd", ".pxi"))


_INSTALLED = re.compile(r"[\\/](?:site|dist)-packages[\\/](?P<package>[A-Za-z_][\w]*)")


def installed_package(path: str) -> str | None:
    """The top-level package of a path inside site-packages ('sklearn'), or None."""
    match = _INSTALLED.search(path)
    return match.group("package") if match else None


def raised_in_package(segment: Segment, user_frame: Frame | None) -> tuple[str, Frame] | None:
    """(package, frame) when the exception was raised inside an installed package that the
    user's code called or imported (the last real frame is in site-packages, after the user's);
    the scoring server's own frames do not count."""
    frames = [f for f in segment.frames if not f.path.startswith("<")]
    if user_frame is None or user_frame not in frames or frames[-1] is user_frame:
        return None
    after = frames[frames.index(user_frame) + 1:]
    inside = [(installed_package(f.path), f) for f in after if installed_package(f.path)]
    if not inside or inside[-1][0].startswith("azureml_inference_server_http"):
        return None
    return inside[-1]


@functools.lru_cache(maxsize=512)
def _multiline(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` with ^ and $ matching at every line (rules are written for one line)."""
    return re.compile(pattern.pattern, pattern.flags | re.MULTILINE)


class Log:
    """The lines of a log with the helpers builders need (1-based line numbers)."""

    def __init__(self, text: str) -> None:
        self.raw = text.splitlines()
        # `docker logs -t` / `kubectl logs --timestamps` put an RFC 3339 stamp in front of
        # every line, which would hide a traceback's indentation.
        self.lines = [_DOCKER_TIMESTAMP.sub("", line, count=1) for line in self.raw]
        # Patterns run over the whole text at once (a regex's own loop is far faster than one
        # search per line in Python); offsets map back to line numbers.
        self.text = "\n".join(self.lines)
        self._starts = [0]
        for line in self.lines[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)
        self._source_lines: set[int] = set()
        self._boundaries = [hit.number for hit in self.hits((_RUN_BOUNDARY,))]
        # A traceback quotes source code, and source code may hold the very message a rule looks
        # for (`raise UserScriptError(f"... does not have a run() function defined.")`): the
        # line after a `File "...", line N, in f` frame is never matched.
        self._source_lines = {hit.number + 1 for hit in self.hits((_FRAME,))}
        self._tracebacks: list[Traceback] | None = None
        self._tb_starts: list[int] = []
        self._phases: dict[str, tuple[int, int]] | None = None
        self._roots: list[str] | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def line(self, number: int) -> str:
        return self.lines[number - 1]

    def quote(self, number: int) -> tuple[int, str]:
        text = self.raw[number - 1].rstrip()
        if len(text) > MAX_QUOTED_CHARS:
            text = text[: MAX_QUOTED_CHARS - 4] + " ..."
        return number, text

    def hits(self, patterns: Sequence[re.Pattern[str]], start: int = 1, stop: int | None = None) -> list[Hit]:
        """Lines in [start, stop] that any of ``patterns`` matches: one hit per line, the first pattern wins."""
        stop = len(self.lines) if stop is None else min(stop, len(self.lines))
        if not self.lines or stop < max(start, 1):
            return []
        pos, endpos = self._starts[max(start, 1) - 1], self._starts[stop - 1] + len(self.lines[stop - 1])
        best: dict[int, tuple[int, re.Match[str]]] = {}
        for index, pattern in enumerate(patterns):
            for match in _multiline(pattern).finditer(self.text, pos, endpos):
                first = bisect.bisect_right(self._starts, match.start())
                last = bisect.bisect_right(self._starts, max(match.start(), match.end() - 1))
                for number in range(first, last + 1):
                    if number in best and best[number][0] <= index or number in self._source_lines:
                        continue
                    # a match that ran over a line break (\s) is redone on each line alone
                    line_match = match if first == last else pattern.search(self.lines[number - 1])
                    if line_match:
                        best[number] = (index, line_match)
        return [Hit(n, self.lines[n - 1], best[n][1]) for n in sorted(best)]

    def first(self, pattern: re.Pattern[str], start: int = 1, stop: int | None = None) -> Hit | None:
        found = self.hits((pattern,), start, stop)
        return found[0] if found else None

    def run_of(self, number: int) -> int:
        """Index of the server run holding ``number``; runs start at each gunicorn (re)start."""
        return bisect.bisect_right(self._boundaries, number)

    @property
    def run_starts(self) -> tuple[int, ...]:
        """Lines where a server run starts (each gunicorn start or reload)."""
        return tuple(self._boundaries)

    def run_end(self, number: int) -> int:
        """Last line of the run holding ``number``."""
        index = bisect.bisect_right(self._boundaries, number)
        return self._boundaries[index] - 1 if index < len(self._boundaries) else len(self.lines)

    @property
    def tracebacks(self) -> list[Traceback]:
        if self._tracebacks is None:
            self._tracebacks = []
            number = 1
            while number <= len(self.lines):
                if _TRACEBACK_HEADER in self.lines[number - 1]:
                    tb = _parse_traceback(self.lines, number)
                    self._tracebacks.append(tb)
                    number = tb.end + 1
                else:
                    number += 1
            self._tb_starts = [tb.start for tb in self._tracebacks]
        return self._tracebacks

    def traceback_at(self, number: int, *, lookahead: int = 0) -> Traceback | None:
        """The traceback that holds line ``number``, or starts at most ``lookahead`` lines after it."""
        tracebacks = self.tracebacks
        index = bisect.bisect_right(self._tb_starts, number + lookahead) - 1
        if index < 0:
            return None
        tb = tracebacks[index]
        return tb if tb.end >= number else None

    def worker_phases(self) -> dict[str, tuple[int, int]]:
        """pid -> (line where its init() started, line where init() finished); 0 when not logged."""
        if self._phases is None:
            self._phases = {}
            for hit in self.hits((_PID_PHASE,)):
                started, finished = self._phases.get(hit.match["pid"], (0, 0))
                if hit.match["started"]:
                    started = started or hit.number
                else:
                    finished = finished or hit.number
                self._phases[hit.match["pid"]] = (started, finished)
        return self._phases

    def phase(self, pid: str, before: int) -> str | None:
        """'init()' or 'run()': where worker ``pid`` was at line ``before``, if the log says."""
        started, finished = self.worker_phases().get(pid, (0, 0))
        if finished and finished < before:
            return "run()"
        if started and started < before:
            return "init()"
        return None

    def app_roots(self) -> list[str]:
        """Folders that user paths are shown relative to: the entry script's, then the image's app root."""
        if self._roots is not None:
            return self._roots
        roots = []
        for hit in self.hits((_ENTRY_SCRIPT_SETTING, _FOUND_USER_SCRIPT)):
            path = hit.match.group("path").strip()
            if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
                folder = re.split(r"[\\/][^\\/]*$", path)[0]
                if folder and folder not in roots:
                    roots.append(folder)
        roots.append("/var/azureml-app")
        self._roots = roots
        return roots

    def display(self, path: str) -> str:
        for root in self.app_roots():
            for sep in ("/", "\\"):
                if path.startswith(root + sep):
                    return path[len(root) + 1 :]
        return path

    def location(self, frame: Frame | None) -> str | None:
        return None if frame is None else f"{self.display(frame.path)}:{frame.line}"



def _parse_traceback(lines: list[str], start: int) -> Traceback:
    segments: list[Segment] = []
    frames: list[Frame] = []
    exception, exception_at = "", 0
    in_message = False
    number = start + 1
    last = start
    limit = min(len(lines), start + 600)
    while number <= limit:
        text = lines[number - 1]
        if _RECORD_START.match(text):
            break
        if not in_message:
            match = _FRAME.match(text)
            if match:
                frames.append(Frame(match["path"], int(match["line"]), match["func"], number))
            elif not text.strip():
                break
            elif not text[0].isspace():
                exception, exception_at, in_message = text.strip(), number, True
            last = number
            number += 1
            continue
        if not text.strip():
            following = number + 1
            while following <= limit and not lines[following - 1].strip():
                following += 1
            if following <= limit and _CHAIN.match(lines[following - 1]):
                segments.append(Segment(tuple(frames), exception, exception_at))
                frames, exception, exception_at, in_message = [], "", 0, False
                number = following + 1
                while number <= limit and not lines[number - 1].strip():
                    number += 1
                if number <= limit and lines[number - 1].startswith(_TRACEBACK_HEADER):
                    number += 1
                last = number - 1
                continue
            break
        if text.startswith(_TRACEBACK_HEADER):
            break
        last = number  # continuation of a multi-line exception message
        number += 1
    segments.append(Segment(tuple(frames), exception, exception_at))
    return Traceback(start, last, tuple(segments))


LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z] \[\d+\]")


def logged_exception(log: str) -> str:
    """The last exception traceback the scoring server logged, or ''."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return ""
    first = starts[-1]
    # A chained exception ("The above exception was the direct cause...") is one log
    # record with several tracebacks: go back to the record's first one (the user's).
    for i in range(first, -1, -1):
        if LOG_LINE_START.match(lines[i]) or lines[i].startswith(protocol.LOG_MARK):
            first = min(j for j in starts if j >= i)
            break
    last = first
    for j in range(first + 1, len(lines)):
        if LOG_LINE_START.match(lines[j]) or lines[j].startswith(protocol.LOG_MARK):
            break
        last = j
    return "\n".join(lines[first:last + 1])
