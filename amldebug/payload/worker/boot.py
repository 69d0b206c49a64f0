"""A worker's boot, hooked into gunicorn's Worker.load_wsgi (installed by the master before it
forks, run in each worker): a standby waits at its gate, the entry script's module and source
are noted as the server loads it (the hot patcher needs them), init() is timed, a failure is
kept for the master's 503 answers, and the host is told when the worker is ready."""

import os
import signal

from ..common import protocol, state
from ..common.protocol import Status
from . import gate
from .patcher import ENTRY, Patcher


def _unwrap(function):
    while getattr(function, "__wrapped__", None) is not None:
        function = function.__wrapped__
    return function


def patch_server():
    """In a worker: note the entry script's module and source as the server loads it, and
    time init()."""
    try:
        from azureml_inference_server_http.server.user_script import UserScript
    except Exception:
        return
    if getattr(UserScript, "_amldebug", False):
        return
    orig_load = UserScript.load_script
    orig_init = UserScript.invoke_init

    def load_script(self, app_root):
        gate.gate()
        path = os.path.join(app_root, (self.entry_script or "").replace("/", os.sep))
        source = None
        try:
            with open(path) as f:
                source = f.read()
        except (OSError, UnicodeDecodeError):
            pass
        result = orig_load(self, app_root)
        code = getattr(_unwrap(self._user_init), "__code__", None)
        if source is not None and code is not None:
            ENTRY.update(globals=_unwrap(self._user_init).__globals__, filename=code.co_filename, source=source)
        return result

    def invoke_init(self):
        import time

        started = time.time()
        result = orig_init(self)
        ENTRY["init_time_ms"] = round((time.time() - started) * 1000, 1)
        return result

    UserScript.load_script = load_script
    UserScript.invoke_init = invoke_init
    UserScript._amldebug = True


def record_failure(exc):
    """Keep the traceback of a worker that failed to boot, for the master's 503 answers.
    The server catches the user's exception and calls sys.exit(3) in its handler, so the
    user's error is the SystemExit's context."""
    import traceback

    error = exc.__context__ if isinstance(exc, SystemExit) and exc.__context__ is not None else exc
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    where = state.folder()
    if not where:
        return
    try:
        with open(os.path.join(where, protocol.FAILURE_FILE), "w") as f:
            f.write(text)
    except OSError:
        pass


def load_wsgi(orig_load, worker):
    """gunicorn's Worker.load_wsgi with amldebug's boot around it."""
    # The inbox is the master's (its handler came with the fork).
    signal.signal(getattr(signal, protocol.INBOX_SIGNAL), signal.SIG_DFL)
    patch_server()
    try:
        result = orig_load(worker)
    except BaseException as exc:
        record_failure(exc)
        raise
    Patcher.start()  # before "ready": a save right after it finds the patch pipe
    state.write_state(Status.READY, init_ms=ENTRY.get("init_time_ms"))
    state.say("worker %d ready" % os.getpid())
    gate.worker_ready()
    return result


def install():
    """Hook gunicorn's Worker.load_wsgi; nothing when gunicorn is not there."""
    try:
        from gunicorn.workers import base
    except ImportError:
        return False
    orig_load = base.Worker.load_wsgi
    base.Worker.load_wsgi = lambda self: load_wsgi(orig_load, self)
    return True
