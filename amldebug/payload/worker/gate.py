"""The warm standby worker, the worker's side (master/standby.py forks it): wait at the gate
before the entry script is imported, and tell the master when a worker is ready."""

import os

from ..common import protocol
from ..common.state import Shared, write_answer

WAITING_THREAD = "standby worker (waits for a save)"  # what VS Code's call stack shows
WAITING_COMM = "standby worker"  # what ps shows


def set_comm(name):
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


def gate():
    """In a worker, before the entry script is imported: a standby waits here until the master
    writes the generation it serves, or exits when the master drops it. Other workers pass."""
    fds, Shared.gate_fds = Shared.gate_fds, None
    if fds is None:
        return
    import threading

    read_end, write_end = fds
    os.close(write_end)
    main = threading.current_thread()
    name = main.name
    main.name = WAITING_THREAD
    set_comm(WAITING_COMM)
    write_answer(protocol.STANDBY_FILE, protocol.StandbyRecord.new(pid=os.getpid(), generation=Shared.generation))
    data = b""
    generation = None
    while generation is None:
        chunk = os.read(read_end, 64)
        if not chunk:  # discarded by the master
            os._exit(0)
        data += chunk
        generation = protocol.parse_gate(data)
    os.close(read_end)
    Shared.generation = generation
    main.name = name
    set_comm("worker")


def worker_ready():
    """In the serving worker: tell the master it may fork the next standby now (not before:
    they would compete for the CPU)."""
    if Shared.control_fd is not None:
        try:
            os.write(Shared.control_fd, (protocol.ready_line(Shared.generation) + "\n").encode())
        except OSError:
            pass
