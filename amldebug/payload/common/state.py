"""The payload's half of the state folder, and what a forked worker inherits from the master.

The host learns what happened from files here (faster than a log line: Docker's log follower
lags by hundreds of ms), and the generation number ties a "ready" to the reload that caused it.
"""

import os
import sys

from . import protocol


class Shared(object):
    """Values of the whole server: set in the master, copied into each worker by the fork."""

    generation = 0  # the reload being served (a standby learns its own at the gate)
    workers = 1  # how many workers gunicorn keeps (a patch reaches only one)
    control_fd = None  # the master's control pipe: the serving worker writes "ready" to it
    gate_fds = None  # (read end, write end) of the gate of the standby being forked


def folder():
    """The state folder, or None (a server started without one)."""
    return os.environ.get(protocol.ENV_STATE) or None


def say(message):
    sys.stdout.write(protocol.log_line(message) + "\n")
    sys.stdout.flush()


def write_file(name, text):
    """Write ``name`` in the state folder whole (a temp file renamed into place); the host
    reads it, as root or as the user who owns the folder."""
    where = folder()
    if not where:
        return
    tmp = os.path.join(where, protocol.temp_name(name, os.getpid()))
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(where, name))
    except OSError:
        pass


def write_state(status, **fields):
    """Tell the host the server's status (a :class:`protocol.Status`) and ``fields`` of
    :class:`protocol.StateRecord`."""
    record = protocol.StateRecord.new(status=protocol.Status(status).value, generation=Shared.generation,
                                      pid=os.getpid(), **fields)
    write_file(protocol.STATE_FILE, record.encode())


def write_answer(name, record):
    """Answer the host (or say what the master did) in the file ``name``."""
    write_file(name, record.encode())
