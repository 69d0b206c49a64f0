"""The warm standby worker, the master's side: after each reload, once the serving worker is
ready, the master forks the next worker. It boots as far as a worker goes without the user's
code -- its debug session attached, the server set up -- and waits at a gate just before the
entry script is imported (worker/gate.py). A full reload opens the gate (instead of
gunicorn's own HUP: config re-read, fork, debug attach) and retires the old worker.

It is kept out of gunicorn's WORKERS until then: manage_workers would kill the oldest worker
to keep the configured count. Only with one worker (amldebug's default)."""

import os

from ..common import protocol
from ..common.state import Shared, say


class Standby(object):
    wanted = False  # the serving worker of this generation is ready: fork the next one
    lock = None  # the control thread and a reload both change ``wanted``: see guard()
    current = None  # (pid, gunicorn worker object, the gate's write end)

    @classmethod
    def guard(cls):
        """The lock over ``wanted`` and the generation (made in the main thread before the
        control thread starts)."""
        if cls.lock is None:
            import threading

            cls.lock = threading.Lock()
        return cls.lock

    @classmethod
    def enabled(cls, arbiter):
        return os.environ.get(protocol.ENV_STANDBY, protocol.ON) == protocol.ON and arbiter.num_workers == 1

    @classmethod
    def ready(cls, generation):
        """A worker said it is ready (on the control pipe): fork a standby after it, unless a
        save already started the next reload (a standby beside a booting worker would compete
        with it). ``generation``: the worker's, None from an older worker."""
        with cls.guard():
            if generation in (None, str(Shared.generation)):
                cls.wanted = True

    @classmethod
    def maybe_spawn(cls, arbiter):
        """In the master's main loop: fork the standby once the serving worker said ready."""
        if not cls.wanted or cls.current is not None or not cls.enabled(arbiter) or len(arbiter.WORKERS) != 1:
            return
        cls.wanted = False
        read_end, write_end = os.pipe()
        Shared.gate_fds = (read_end, write_end)  # the child finds them here
        try:
            pid = arbiter.spawn_worker()
        finally:
            Shared.gate_fds = None
        os.close(read_end)
        cls.current = (pid, arbiter.WORKERS.pop(pid), write_end)
        # diagnose counts its 'Booting worker' line as a reload's, not as a worker that died
        say(protocol.standby_forked(pid))

    @classmethod
    def discard(cls):
        if cls.current is not None:
            os.close(cls.current[2])  # the standby reads the end of file and exits
            cls.current = None

    @classmethod
    def activate(cls, arbiter):
        """Open the gate: the standby becomes the serving worker. False when there is none."""
        current, cls.current = cls.current, None
        if current is None:
            return False
        pid, worker, gate = current
        try:
            os.kill(pid, 0)
            os.write(gate, protocol.gate_line(Shared.generation))
        except OSError:
            return False
        finally:
            os.close(gate)
        import signal

        try:
            worker.tmp.notify()  # its heartbeat starts now, for gunicorn's timeout check
        except Exception:
            pass
        arbiter.WORKERS[pid] = worker
        for other in list(arbiter.WORKERS):
            if other != pid:
                arbiter.kill_worker(other, signal.SIGTERM)
        return pid
