"""How a control line (``reload``, ``status SEQ``, a patch request) reaches the server, how
its answer comes back, and how the status the server writes (starting, ready, failed; the
worker's generation) is read: a property of the runtime, not of each caller.

:class:`Pipes`: the named pipes in the state folder that this host shares with the server
(a local process; a container whose mounted folder this host can open). :class:`PipesOrInbox`:
the pipes when this host can open them, else a file in the mounted folder's inbox and a
signal through the engine that makes the server read it (Docker Desktop, where the
container's pipes are in a VM). A runtime with no shared folder (a pod) would carry the
lines over an exec stream instead, behind the same two methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Protocol

from . import channel
from .statefile import StateFile, StateRecord

# How a line went: "pipe" (the state folder's named pipe), "engine" (the inbox, and a signal
# through the engine); and the sequence the inbox gave it (its answer carries it), or None.
Sent = tuple[str, Optional[str]]


class Transport(Protocol):
    def tell(self, folder: Path, pipe: str, line: str) -> Optional[Sent]:
        """Write ``line`` to the server's ``pipe``; None when it cannot reach it."""

    def reach(self, folder: Path) -> Optional[str]:
        """How a save reaches the server now: "pipe", "engine", or None (neither: an older
        launcher; a reload is still gunicorn's SIGHUP)."""

    def status(self, state: StateFile) -> StateRecord:
        """The status the server wrote last ({} before it wrote any)."""

    def wait(self, state: StateFile, predicate: Callable[[StateRecord], bool], timeout: float, *,
             alive: Callable[[], bool], poll: float = 0.01) -> Optional[StateRecord]:
        """The first status that ``predicate`` accepts; None when ``alive()`` turns false;
        TimeoutError after ``timeout`` seconds."""


class Pipes:
    """Named pipes in the state folder this host shares with the server, and the status
    file the server writes there."""

    def status(self, state: StateFile) -> StateRecord:
        return state.read()

    def wait(self, state: StateFile, predicate: Callable[[StateRecord], bool], timeout: float, *,
             alive: Callable[[], bool], poll: float = 0.01) -> Optional[StateRecord]:
        return state.wait(predicate, timeout, alive=alive, poll=poll)

    def tell(self, folder: Path, pipe: str, line: str) -> Optional[Sent]:
        return ("pipe", None) if channel.send(folder / pipe, line) else None

    def reach(self, folder: Path) -> Optional[str]:
        return "pipe" if channel.reachable(folder / channel.CONTROL) else None


class PipesOrInbox(Pipes):
    """The pipes, else the inbox in the mounted folder relayed by ``signal`` (the engine's)."""

    def __init__(self, signal: Callable[[str], None]) -> None:
        self._signal = signal

    def tell(self, folder: Path, pipe: str, line: str) -> Optional[Sent]:
        sent = super().tell(folder, pipe, line)
        if sent is not None:
            return sent
        posted = channel.post(folder, pipe, line)
        if posted is None:
            return None
        self._signal(channel.INBOX_SIGNAL)
        return "engine", posted

    def reach(self, folder: Path) -> Optional[str]:
        return super().reach(folder) or ("engine" if (folder / channel.INBOX).is_dir() else None)
