"""The state file the in-container launcher writes (payload/common/state.py ``write_state``):
status (starting, listening, waiting, attached, reloading, ready, failed), the reload
generation, and the pid, as payload/common/protocol.py defines them (:class:`Status`,
:class:`StateRecord`). Polling it is how amldebug learns that a worker is ready.

Layout: ``<cache>/state/`` (0700) holds a folder per service (0700, ours: the process
runtime's registry and log, the foreground session's owner file), and in it ``run/``, the
only part the service writes: it is mounted into the container, owned by the image's user
(or, when we cannot give it away, open to all but reachable only through our 0700 parents,
since a bind mount needs no access to the folders above it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..core.paths import cache_root
from ..payload.common.protocol import STATE_FILE, StateRecord, Status

__all__ = ["ATTACHABLE", "SETTLED", "StateFile", "StateRecord", "Status", "held", "state_folder", "state_root"]

ATTACHABLE = (Status.WAITING, Status.LISTENING, Status.ATTACHED, Status.READY, Status.FAILED)
SETTLED = (Status.READY, Status.FAILED)


def state_root() -> Path:
    return cache_root() / "state"


def state_folder(service: str) -> Path:
    return state_root() / service


@contextlib.contextmanager
def held(service: str, what: str) -> Iterator[Optional[int]]:
    """Hold a lock named for ``service`` and ``what`` while the block runs (an ``amldebug
    demo`` session, from its first line to its end). Yields None when this process holds it,
    or the pid of the process that does (nothing is held then). The kernel drops the lock
    with its process, so a killed session leaves none behind."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".{service}.{what}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            yield int(text) if text.isdigit() else 0
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield None
    finally:
        os.close(fd)


def _start_time(pid: int) -> Optional[str]:
    """When ``pid`` started (so a reused pid does not pass for the owner), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


class StateFile:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.channel = self.folder / "run"  # what the launcher writes (mounted into a container)
        self.path = self.channel / STATE_FILE

    def reset(self, *, owner: Optional[tuple[int, int]] = None, session: Optional[str] = None) -> None:
        """Empty the service's folder for a new start. ``owner``: the (uid, gid) the service
        runs as, when it is not us (a container's user); None for a local process, which
        runs as us. ``session``: the start's id, so that only that service removes it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        root = self.folder.parent
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
        self.folder.mkdir(mode=0o700)
        self.folder.chmod(0o700)  # mkdir's mode is masked by the umask
        self.channel.mkdir(mode=0o700)
        if session:
            (self.folder / "session").write_text(session)
        if owner is not None and tuple(owner) != (os.geteuid(), os.getegid()):
            try:
                os.chown(self.channel, *owner)
            except PermissionError:  # not root: reachable only through our 0700 parents
                self.channel.chmod(0o777)

    def claim(self) -> None:
        """Record that this process (a foreground ``attach``) owns the service and removes
        it when it ends; a service whose owner is gone is an orphan (after a SIGKILL)."""
        owner = self.folder / "owner.json"
        tmp = owner.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "started": _start_time(os.getpid())}))
        os.replace(tmp, owner)

    def orphaned(self) -> bool:
        """True when a foreground session owned the service and that process is gone."""
        try:
            owner = json.loads((self.folder / "owner.json").read_text())
        except (OSError, ValueError):
            return False
        return _start_time(int(owner.get("pid", 0))) != owner.get("started")

    def remove(self, session: Optional[str] = None) -> None:
        """Remove the service's folder (the service is gone); with ``session``, only while it
        is still that start's (a replacement started under the same name keeps its own)."""
        if session:
            try:
                if (self.folder / "session").read_text() != session:
                    return
            except OSError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def owner_pid(self) -> Optional[int]:
        try:
            return int(json.loads((self.folder / "owner.json").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def read(self) -> StateRecord:
        """What the server last said (an empty record before it said anything)."""
        try:
            return StateRecord.decode(self.path.read_text()) or StateRecord()
        except OSError:
            return StateRecord()

    def wait(self, predicate: Callable[[StateRecord], bool], timeout: float, *,
             alive: Callable[[], bool] = lambda: True, poll: float = 0.01) -> Optional[StateRecord]:
        """Poll until predicate(state) holds (return it); None if ``alive()`` turns false;
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        next_alive_check = 0.0
        while True:
            state = self.read()
            if state and predicate(state):
                return state
            now = time.monotonic()
            if now >= next_alive_check:
                if not alive():
                    state = self.read()
                    return state if state and predicate(state) else None
                next_alive_check = now + 0.25
            if now >= deadline:
                raise TimeoutError
            time.sleep(poll)
