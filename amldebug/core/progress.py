"""How a long step says where it is: a *stage* is a progress message of its own type.

Every long step reports through one callable, ``progress(text)`` (a ``Callable[[str], None]``:
the CLI's reporter, ``print`` to stderr, ``list.append`` in a test). A stage is a
:class:`Stage`, a ``str`` whose text is the whole line ("amldebug: probing image 'x'"), so a
plain callable prints it as it is; the CLI's reporter (``amldebug.cli.progress``) shows it
with the time elapsed, as a rich spinner on a terminal or a plain line in a pipe or a VS Code
task. Details of a stage (pip's or docker's own lines) are plain messages that start with
two spaces.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str], None]


class Stage(str):
    """A progress message that begins a stage of a long step."""


class Notice(str):
    """A choice made for the user (the image picked when none was named, the runtime fallen
    back to, a port moved): shown even with -q/--quiet, since what runs depends on it."""


def notice(progress: Progress, text: str) -> None:
    """Report a choice made for the user (see :class:`Notice`)."""
    progress(Notice(text))


def stage(progress: Progress, text: str) -> None:
    """Report the beginning of a stage: ``text`` says what is being done ("probing image 'x'")."""
    progress(Stage(f"amldebug: {text}"))
