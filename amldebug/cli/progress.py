"""What a long command prints while it works (attach, demo, build): each stage with the
time elapsed, as a rich spinner on a terminal, as plain lines elsewhere.

Plain lines (contract C1 with the VS Code task's problem matcher) when stderr is not a
terminal, when ``NO_COLOR`` is set (https://no-color.org: present and not empty), when
``TERM=dumb``, or when ``AMLDEBUG_PROGRESS=plain`` (what the generated VS Code tasks set,
since a task runs in a pty). ``quiet``: no stages and no chatter; warnings, errors, choices made
for the user (a :class:`~amldebug.core.progress.Notice`: the image picked, a port moved) and
the lines a command prints with :meth:`Reporter.always` (the start and ready lines) remain.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Mapping, Optional

from ..core.progress import Notice, Stage


def progress_mode(isatty: bool, environ: Mapping[str, str] = os.environ) -> str:
    """'rich' or 'plain' for a stream that is (or is not) a terminal, in ``environ``."""
    if environ.get("AMLDEBUG_PROGRESS", "").lower() == "plain" or environ.get("NO_COLOR"):
        return "plain"
    if environ.get("TERM") == "dumb" or not isatty:
        return "plain"
    return "rich"


def _important(text: str) -> bool:
    """A message that -q/--quiet still shows."""
    lowered = text.lower()
    return "warning" in lowered or "error" in lowered


class Reporter:
    """The ``progress`` callable of a command: ``reporter(text)`` prints a message, a
    :class:`~amldebug.core.progress.Stage` begins a stage; :meth:`finish` ends the last one
    (call it before printing a command's result)."""

    def __init__(self, *, quiet: bool = False, stream: Optional[IO[str]] = None,
                 environ: Mapping[str, str] = os.environ, clock=time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = progress_mode(isatty, environ)
        self.quiet = quiet
        self.clock = clock
        self.started = clock()
        self._stage: Optional[str] = None
        self._stage_started = 0.0
        self._status = None  # the rich spinner, while a stage runs on a terminal
        self._console = None
        if self.mode == "rich":
            try:  # typer brings rich; without it, plain lines
                from rich.console import Console
            except ImportError:
                self.mode = "plain"
            else:
                self._console = Console(file=self.stream, highlight=False, markup=False, emoji=False)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def __call__(self, text: str) -> None:
        if isinstance(text, Stage):
            self._begin(str(text))
        elif text.startswith("  "):  # a stage's detail (pip's, docker's own lines)
            if self.quiet:
                return
            if self._status is not None:
                self._status.update(f"{self._stage}  {text.strip()[:70]}")
            else:
                self._line(text)
        elif not self.quiet or isinstance(text, Notice) or _important(text):
            self._line(text)

    def always(self, text: str) -> None:
        """A line every mode prints (also with --quiet): the start and ready lines of C1."""
        self._line(text)

    def _begin(self, text: str) -> None:
        self._end_stage()
        self._stage, self._stage_started = text, self.clock()
        if self.quiet:
            return
        if self.mode == "plain":
            self._write(f"{text} [{self.elapsed():.1f} s]")
        else:
            self._status = self._console.status(text, spinner="dots")
            self._status.start()

    def _end_stage(self) -> None:
        if self._stage is None:
            return
        text, took = self._stage, self.clock() - self._stage_started
        self._stage = None
        if self._status is not None:
            self._status.stop()
            self._status = None
            self._console.print(f"{text} ({took:.1f} s)")

    def finish(self) -> None:
        """End the last stage (a terminal's spinner becomes a line with its time)."""
        self._end_stage()

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        """A command that fails or is interrupted leaves no spinner under its error message."""
        self.finish()

    def _line(self, text: str) -> None:
        if self._status is not None:
            self._console.print(text)  # above the spinner
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        self.stream.write(f"{text}\n")  # one write per line (see app._line)
        self.stream.flush()
