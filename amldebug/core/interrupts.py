"""Signals that end a session: Ctrl-C (SIGINT), SIGTERM (how VS Code ends a task) and
SIGHUP (a closed terminal) all become one exception, so every ``finally`` that removes a
service runs whichever way the session ends.

Python turns only SIGINT into an exception by itself; SIGTERM and SIGHUP would end the
process without running any clean-up. The first signal raises :class:`Interrupted`; later
ones, while the clean-up runs, only say so (a second Ctrl-C must not leave a half-removed
container). ``deferred()`` holds a signal back over a few lines that must not be split
(a process started but not yet recorded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None),
                            getattr(signal, "SIGHUP", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """The session was ended by a signal; ``exit_status`` is the shell's 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_status = 128 + signum


class _State:
    installed = False
    raised = False
    signum: int | None = None  # the signal that was raised as Interrupted
    depth = 0
    pending: int | None = None


_state = _State()


def _handler(signum, frame) -> None:
    if _state.raised:
        os.write(2, b"amldebug: still cleaning up; it ends by itself in a moment\n")
        return
    if _state.depth:
        _state.pending = signum
        return
    _state.raised, _state.signum = True, signum
    raise Interrupted(signum)


def raised_status() -> int | None:
    """128 + N when signal N ended the session through :class:`Interrupted`, else None."""
    return None if _state.signum is None else 128 + _state.signum


def install() -> None:
    """Route the session-ending signals to :class:`Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        if signal.getsignal(sig) is signal.SIG_IGN:  # 'nohup amldebug attach &' must outlive its terminal
            continue
        signal.signal(sig, _handler)
    _state.installed, _state.raised, _state.pending, _state.depth, _state.signum = True, False, None, 0, None


@contextlib.contextmanager
def deferred():
    """Hold a session-ending signal until the block is done (then raise it)."""
    if not _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending is not None and not _state.raised:
            signum, _state.pending = _state.pending, None
            _state.raised, _state.signum = True, signum
            raise Interrupted(signum)
