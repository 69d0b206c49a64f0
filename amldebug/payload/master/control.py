"""The master's control pipe: the host writes "reload" (what SIGHUP does, without a round
trip through the Docker API: about 20 ms) or "status SEQ" (is a debugger attached?); the
serving worker writes "ready GENERATION"."""

import os
import signal
import sys

from ..common import pipes, protocol
from ..common.state import Shared, write_answer
from .standby import Standby


def client_connected():
    """True when a debugger client is attached (asked in the master: a worker's own view of
    this is wrong at times)."""
    debugpy = sys.modules.get("debugpy")
    try:
        return bool(debugpy and debugpy.is_client_connected())
    except Exception:
        return False


def handle(line, wakeup=lambda: None):
    """Act on one control line. ``wakeup``: rouse the master's main loop (gunicorn's arbiter
    sleeps up to a second between its rounds)."""
    command, argument = protocol.parse_control(line)
    if command == protocol.RELOAD:
        os.kill(os.getpid(), getattr(signal, protocol.RELOAD_SIGNAL))
    elif command == protocol.READY:
        Standby.ready(argument)
        wakeup()
    elif command == protocol.STATUS:
        write_answer(protocol.MASTER_ANSWER, protocol.MasterAnswer.new(attached=client_connected(),
                                                                       seq=argument or ""))


def start(wakeup=lambda: None):
    """Open the pipe ``control`` and serve it on an untraced thread (workers inherit its
    descriptor, to say they are ready)."""
    opened = pipes.open_fifo(protocol.CONTROL_PIPE)
    if opened is None:
        return None
    pipe = opened[1]
    Shared.control_fd = pipe.fileno()
    Standby.guard()

    def serve():
        for line in pipe:
            handle(line, wakeup)

    return pipes.untraced_thread(serve, "amldebug: reload channel")
