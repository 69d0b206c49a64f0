"""gunicorn's master (its Arbiter), patched for a debug session: a worker that fails to boot
does not take the server down, a reload opens the warm standby's gate, and the standby is
forked once the serving worker is ready."""

import os

from ..common.protocol import Status
from ..common.state import Shared, say, write_state
from .responder import FailureResponder
from .standby import Standby


class Master(object):
    arbiter = None  # gunicorn's Arbiter, once its main loop runs


def wakeup():
    """Rouse the arbiter's main loop (it sleeps up to a second between its rounds)."""
    if Master.arbiter is not None:
        Master.arbiter.wakeup()


def boot_failed(arbiter):
    """A worker failed to boot. gunicorn would halt the whole server, and in a debug session
    the debugger with it: keep the master and wait for a reload; meanwhile answer 503 unless
    another worker (WORKER_COUNT > 1) still serves."""
    arbiter._amldebug_broken = True
    for pid in list(arbiter.WORKERS):
        try:
            os.kill(pid, 0)
        except OSError:
            arbiter.WORKERS.pop(pid, None)
    write_state(Status.FAILED)
    say("worker failed to boot; the server waits for a fix (save the file or run 'amldebug reload'); "
        "until then requests get HTTP 503 with the error")
    if not arbiter.WORKERS:
        FailureResponder.start(arbiter)


def install():
    """Patch gunicorn's Arbiter; nothing when gunicorn is not there."""
    try:
        from gunicorn import arbiter, errors
    except ImportError:
        return False
    Arbiter = arbiter.Arbiter

    orig_reap = Arbiter.reap_workers
    orig_manage = Arbiter.manage_workers
    orig_hup = Arbiter.handle_hup

    def reap_workers(self):
        while True:
            try:
                return orig_reap(self)
            except errors.HaltServer as exc:
                if exc.exit_status not in (self.WORKER_BOOT_ERROR, getattr(self, "APP_LOAD_ERROR", 4)):
                    raise
                boot_failed(self)

    def manage_workers(self):
        Master.arbiter = self
        Shared.workers = self.num_workers  # the workers forked next know how many serve
        if getattr(self, "_amldebug_broken", False):
            # A standby that failed in init() is reaped while the worker it replaced is still
            # shutting down, so reap_workers saw a live worker; once that one is gone too,
            # nobody serves: answer 503 from here instead of leaving requests hanging.
            if not self.WORKERS and FailureResponder.current is None:
                FailureResponder.start(self)
            return None
        result = orig_manage(self)
        Standby.maybe_spawn(self)
        return result

    def handle_hup(self):
        self._amldebug_broken = False
        FailureResponder.stop()
        with Standby.guard():
            Shared.generation += 1
            Standby.wanted = False  # the next standby waits for this reload's worker to be ready
        write_state(Status.RELOADING)
        pid = Standby.activate(self)
        if pid:
            say("fresh worker %d (the standby): importing the entry script and running init()" % pid)
            return None
        say("new worker: importing the entry script and running init()")
        return orig_hup(self)

    Arbiter.reap_workers = reap_workers
    Arbiter.manage_workers = manage_workers
    Arbiter.handle_hup = handle_hup
    return True
