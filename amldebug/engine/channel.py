"""The reload channel, the host's end: named pipes the launcher opens in the service's state
folder (mounted into a container), so a reload or a hot patch reaches the server without the
Docker API. The names and the lines themselves are the protocol's (payload/common/protocol.py).

``control`` is read by the gunicorn master (a line ``reload`` does what SIGHUP does;
``status SEQ`` answers in ``master.json`` whether a debugger client is attached);
``patch-<pid>`` by the serving worker, which answers in ``patch.json``. A pipe nobody reads
(a worker that died, or Docker Desktop, whose VM does not share pipes with the host) fails
to open at once. Then the line goes by the *inbox*: a file in the state folder's ``inbox``
(a plain file: every bind mount shares those) and SIGURG to the container through the
engine, on which the gunicorn master passes the line on to its pipe inside the container.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

from ..payload.common import protocol
from ..payload.common.protocol import (CONTROL_PIPE as CONTROL, INBOX, INBOX_SIGNAL, MASTER_ANSWER, PATCH_ANSWER,
                                       UNDELIVERED, patch_pipe)

__all__ = ["CONTROL", "INBOX", "INBOX_SIGNAL", "MASTER_ANSWER", "PATCH_ANSWER", "UNDELIVERED", "Undelivered",
           "patch_pipe", "post", "reachable", "send", "wait_answer"]

R = TypeVar("R", bound=protocol.Record)


class Undelivered(Exception):
    """A line posted to the inbox found no reader of its pipe."""


def _writer(pipe: Path) -> Optional[int]:
    """A write end of ``pipe`` when it is a named pipe something reads; else None."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR):
            return None
        raise
    try:
        if os.path.exists(pipe) and _is_pipe(fd):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def send(pipe: Path, line: str) -> bool:
    """Write one line to ``pipe`` if something reads it; False when nothing does."""
    fd = _writer(pipe)
    if fd is None:
        return False
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def post(folder: Path, pipe: str, line: str) -> Optional[str]:
    """Leave ``line`` for ``pipe`` in the inbox of the state folder ``folder`` (the caller then
    sends :data:`INBOX_SIGNAL`); its sequence number, or None when there is no inbox."""
    inbox = folder / INBOX
    if not inbox.is_dir():
        return None
    seq = str(time.time_ns())
    tmp = inbox / protocol.inbox_temp(seq)
    try:
        tmp.write_text(line.rstrip("\n") + "\n")
        tmp.chmod(0o644)  # the container's user reads it, whatever this host's umask
        os.replace(tmp, inbox / protocol.inbox_entry(seq, pipe))
    except OSError:
        return None
    return seq


def reachable(pipe: Path) -> bool:
    """Whether this host can write to ``pipe`` itself (something in the service reads it)."""
    fd = _writer(pipe)
    if fd is not None:
        os.close(fd)
    return fd is not None


def _is_pipe(fd: int) -> bool:
    import stat

    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def wait_answer(path: Path, matches: Callable[[R], bool], timeout: float, *, record: type[R] = protocol.Record,
                poll: float = 0.001, posted: Optional[str] = None) -> Optional[R]:
    """Poll the JSON file at ``path``, read as a ``record`` (a :class:`protocol.Record`), until
    ``matches`` holds; None after ``timeout`` seconds. ``posted``: the line went by the inbox
    with this sequence number; :class:`Undelivered` when the master found no reader for it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = _read(path, record)
        if answer is not None and matches(answer):
            return answer
        undelivered = _read(path.parent / UNDELIVERED, protocol.UndeliveredRecord) if posted is not None else None
        if undelivered is not None and undelivered.seq == posted:
            raise Undelivered(posted)
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def _read(path: Path, record: type[R]) -> Optional[R]:
    try:
        return record.decode(path.read_text())
    except (OSError, ValueError):
        return None
