"""Host ports: is one free on the loopback interface, and which free one is next."""

from __future__ import annotations

import socket
import time

from ..errors import UsageError


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As Docker's port forwarder does: connections in TIME_WAIT (a debugger that just
        # detached) must not make a port look taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick(preferred: int, *, avoid: set[int] = frozenset(), host: str = "127.0.0.1", span: int = 100) -> int:
    """``preferred`` if free, else the next free port above it."""
    for port in range(preferred, min(preferred + span, 65536)):
        if port not in avoid and is_free(port, host):
            return port
    raise UsageError(f"no free port between {preferred} and {preferred + span - 1} on {host}; pass another port")


def wait_free(wanted: set[int], *, timeout: float, host: str = "127.0.0.1") -> None:
    """Give ports a replaced container held a moment to be released (no error if not)."""
    deadline = time.monotonic() + timeout
    while wanted and time.monotonic() < deadline:
        if all(is_free(p, host) for p in wanted):
            return
        time.sleep(0.05)
