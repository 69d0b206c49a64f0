"""The reload channel: named pipes the launcher opens in the service's state folder (mounted
into a container), so a reload or a hot patch reaches the server without the Docker API.

``control`` is read by the gunicorn master (a line ``reload`` does what SIGHUP does;
``status SEQ`` answers in ``master.json`` whether a debugger client is attached);
``patch-<pid>`` by the serving worker, which answers in ``patch.json``. A pipe nobody reads
(a worker that died, or Docker Desktop, whose VM does not share pipes with the host) fails
to open at once, and the caller falls back to a signal through the engine.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

CONTROL = "control"
PATCH_ANSWER = "patch.json"
MASTER_ANSWER = "master.json"


def patch_pipe(pid: int) -> str:
    return f"patch-{pid}"


def send(pipe: Path, line: str) -> bool:
    """Write one line to ``pipe`` if something reads it; False when nothing does."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR):
            return False
        raise
    try:
        if not os.path.exists(pipe) or not _is_pipe(fd):
            return False
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _is_pipe(fd: int) -> bool:
    import stat

    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def wait_answer(path: Path, matches: Callable[[dict], bool], timeout: float, *, poll: float = 0.001) -> Optional[dict]:
    """Poll the JSON file at ``path`` until ``matches`` holds; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = json.loads(path.read_text())
        except (OSError, ValueError):
            answer = None
        if answer is not None and matches(answer):
            return answer
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)
