"""amldebug's launcher: runs as PID 1 of a debug container (or as the process runtime's
server), in the IMAGE's Python, before the scoring server.

It puts the debugpy copy that amldebug mounted beside it on sys.path, makes gunicorn keep
the master alive when a worker fails to boot (so the next save can recover and the debug
session survives), starts debugpy in this process -- the gunicorn master -- with
subprocess support so forked workers are debuggable, optionally waits for a client, then
hands over to the image's own ``azmlinfsrv``. Settings come from AMLDEBUG_* variables.
Kept free of anything newer than Python 3.8: it runs in whatever Python the image has.
"""

import json
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "amldebug:"


STATE = {"generation": 0}


def say(message):
    sys.stdout.write("%s %s\n" % (MARK, message))
    sys.stdout.flush()


def write_state(status, **fields):
    """Tell amldebug on the host what happened, through a file in a folder it mounted.

    Faster to notice than a log line (Docker's log follower lags by hundreds of ms),
    and the generation number ties a "ready" to the reload that caused it.
    """
    folder = os.environ.get("AMLDEBUG_STATE")
    if not folder:
        return
    fields.update(status=status, generation=STATE["generation"], pid=os.getpid())
    text = json.dumps(fields, sort_keys=True)
    tmp = os.path.join(folder, ".state.%d.tmp" % os.getpid())
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # amldebug on the host reads it, as root or as the user who owns the folder
        os.replace(tmp, os.path.join(folder, "state.json"))
    except OSError:
        pass


def patch_gunicorn():
    try:
        from gunicorn import arbiter, errors
        from gunicorn.workers import base
    except ImportError:
        return
    Arbiter = arbiter.Arbiter

    orig_reap = Arbiter.reap_workers
    orig_manage = Arbiter.manage_workers
    orig_hup = Arbiter.handle_hup
    orig_load = base.Worker.load_wsgi

    def reap_workers(self):
        # gunicorn halts the whole server when a worker fails to boot; in a debug
        # session that would kill the debugger. Keep the master, wait for a reload.
        while True:
            try:
                return orig_reap(self)
            except errors.HaltServer as exc:
                if exc.exit_status not in (self.WORKER_BOOT_ERROR, getattr(self, "APP_LOAD_ERROR", 4)):
                    raise
                self._amldebug_broken = True
                for pid in list(self.WORKERS):
                    try:
                        os.kill(pid, 0)
                    except OSError:
                        self.WORKERS.pop(pid, None)
                write_state("failed")
                say("worker failed to boot; the server waits for a fix (save the file or run 'amldebug reload'); "
                    "until then requests get HTTP 503 with the error")
                if not self.WORKERS:  # a worker still alive (WORKER_COUNT > 1) keeps serving instead
                    FailureResponder.start(self)

    def manage_workers(self):
        STATE["arbiter"] = self
        STATE["workers"] = self.num_workers  # the workers forked next know how many serve
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
            STATE["generation"] += 1
            Standby.wanted = False  # the next standby waits for this reload's worker to be ready
        write_state("reloading")
        pid = Standby.activate(self)
        if pid:
            say("fresh worker %d (the standby): importing the entry script and running init()" % pid)
            return None
        say("new worker: importing the entry script and running init()")
        return orig_hup(self)

    def load_wsgi(self):
        import signal

        signal.signal(signal.SIGURG, signal.SIG_DFL)  # the inbox is the master's (its handler came with the fork)
        patch_server()
        try:
            result = orig_load(self)
        except BaseException as exc:
            record_failure(exc)
            raise
        Patcher.start()  # before "ready": a save right after it finds the patch pipe
        write_state("ready", init_ms=ENTRY.get("init_ms"))
        say("worker %d ready" % os.getpid())
        Standby.worker_ready()
        return result

    Arbiter.reap_workers = reap_workers
    Arbiter.manage_workers = manage_workers
    Arbiter.handle_hup = handle_hup
    base.Worker.load_wsgi = load_wsgi


class Standby(object):
    """The warm standby worker: after each reload, once the serving worker is ready, the
    master forks the next worker. It boots as far as a worker goes without the user's code
    -- its debug session attached, the server set up -- and waits at a gate just before the
    entry script is imported. A full reload opens the gate (instead of gunicorn's own HUP:
    config re-read, fork, debug attach) and retires the old worker.

    It is kept out of gunicorn's WORKERS until then: manage_workers would kill the oldest
    worker to keep the configured count. Only with one worker (amldebug's default)."""

    wanted = False
    lock = None  # the control thread and a reload both change ``wanted``: see guard()
    current = None  # in the master: (pid, gunicorn worker object, the gate's write end)
    gate_fds = None  # in the standby (inherited): the gate pipe

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
        return os.environ.get("AMLDEBUG_STANDBY", "1") == "1" and arbiter.num_workers == 1

    @classmethod
    def maybe_spawn(cls, arbiter):
        """In the master's main loop: fork the standby once the serving worker said ready."""
        if not cls.wanted or cls.current is not None or not cls.enabled(arbiter) or len(arbiter.WORKERS) != 1:
            return
        cls.wanted = False
        read_end, write_end = os.pipe()
        cls.gate_fds = (read_end, write_end)  # the child finds them here
        try:
            pid = arbiter.spawn_worker()
        finally:
            cls.gate_fds = None
        os.close(read_end)
        cls.current = (pid, arbiter.WORKERS.pop(pid), write_end)
        # diagnose counts its 'Booting worker' line as a reload's, not as a worker that died
        say("standby worker %d forked: it waits for the next save" % pid)

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
            os.write(gate, ("%d\n" % STATE["generation"]).encode())
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

    @classmethod
    def gate(cls):
        """In a worker, before the entry script is imported: a standby waits here."""
        fds, cls.gate_fds = cls.gate_fds, None
        if fds is None:
            return
        import threading

        read_end, write_end = fds
        os.close(write_end)
        main = threading.current_thread()
        name = main.name
        main.name = "standby worker (waits for a save)"  # what VS Code's call stack shows
        _set_comm("standby worker")
        _write_answer("standby.json", {"pid": os.getpid(), "generation": STATE["generation"]})
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(read_end, 64)
            if not chunk:  # discarded by the master
                os._exit(0)
            data += chunk
        os.close(read_end)
        STATE["generation"] = int(data)
        main.name = name
        _set_comm("worker")

    @classmethod
    def worker_ready(cls):
        """In the serving worker: tell the master it may fork the next standby now (not
        before: they would compete for the CPU)."""
        if CONTROL["fd"] is not None:
            try:
                os.write(CONTROL["fd"], ("ready %d\n" % STATE["generation"]).encode())
            except OSError:
                pass


def _set_comm(name):
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


CONTROL = {"fd": None}  # the master's control pipe, inherited by the workers


def client_connected():
    """True when a debugger client is attached (asked in the master)."""
    debugpy = sys.modules.get("debugpy")
    try:
        return bool(debugpy and debugpy.is_client_connected())
    except Exception:
        return False


# The entry script as this worker loaded it: its globals (the server keeps the module out of
# sys.modules), the file name its code carries, the source it ran, init()'s time.
ENTRY = {}


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
        Standby.gate()
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
        ENTRY["init_ms"] = round((time.time() - started) * 1000, 1)
        return result

    UserScript.load_script = load_script
    UserScript.invoke_init = invoke_init
    UserScript._amldebug = True


def _untraced_thread(target, name):
    """A thread the debugger neither traces nor pauses ("pause all" leaves it running)."""
    import threading

    def run():
        try:
            import debugpy

            debugpy.trace_this_thread(False)
        except Exception:
            pass
        target()

    thread = threading.Thread(target=run, name=name)
    thread.daemon = True
    thread.pydev_do_not_trace = True
    thread.is_pydev_daemon_thread = True
    thread.start()
    return thread


PIPES = {"dir": None}  # where the named pipes are (decided once, in the master; workers inherit it)


def pipe_dir():
    """The state folder, where amldebug on the host opens the pipes itself; else (no named
    pipe can be made there, or AMLDEBUG_PIPES=local) a folder of the container's own, which
    the host reaches through the inbox relay. None without a state folder."""
    if PIPES["dir"] is None and os.environ.get("AMLDEBUG_STATE"):
        folder = os.environ["AMLDEBUG_STATE"]
        probe = os.path.join(folder, ".fifo-probe-%d" % os.getpid())
        try:
            if os.environ.get("AMLDEBUG_PIPES") == "local":
                raise OSError("local pipes asked for")
            os.mkfifo(probe)
            os.unlink(probe)
            PIPES["dir"] = folder
        except OSError:
            import tempfile

            try:
                PIPES["dir"] = tempfile.mkdtemp(prefix="amldebug-pipes-")
            except OSError:  # no pipes at all: reloads still come as SIGHUP through the engine
                PIPES["dir"] = ""
    return PIPES["dir"] or None


def _fifo(name):
    """A named pipe, opened for reading (and writing, so it never reads an end of file
    between writers); None where there is no state folder."""
    folder = pipe_dir()
    if not folder:
        return None
    path = os.path.join(folder, name)
    try:
        if os.path.exists(path):
            os.unlink(path)
        os.mkfifo(path)
        os.chmod(path, 0o666)  # amldebug on the host writes it (its folder's parents are private)
        return path, os.fdopen(os.open(path, os.O_RDWR), "r")
    except OSError:
        return None


INBOX = "inbox"
UNDELIVERED = "undelivered.json"


def start_inbox():
    """Where the host cannot open the pipes (Docker Desktop's VM shares none with the host,
    or they live in the container's own folder), it leaves each line as a file in the state
    folder's ``inbox`` -- named ``<seq>.<pipe>`` -- and sends SIGURG through the Docker API
    (its default action is to do nothing, so a stray one harms no process). The master
    passes each line on to its pipe, which works inside the container."""
    import signal

    state = os.environ.get("AMLDEBUG_STATE")
    if not state:
        return
    inbox = os.path.join(state, INBOX)
    try:
        if not os.path.isdir(inbox):
            os.mkdir(inbox)
    except OSError:
        return
    try:
        os.chmod(inbox, 0o777)  # the host writes here, whoever the container's user is
    except OSError:
        pass  # not ours to change (made by an earlier start): it may be writable all the same

    def deliver(target, line):
        try:
            fd = os.open(os.path.join(pipe_dir() or "", target), os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # nobody reads that pipe (a worker that died)
            return False
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
            return True
        except OSError:  # a full pipe: its reader is stuck
            return False
        finally:
            os.close(fd)

    def relay(signum, frame):
        try:
            names = sorted(os.listdir(inbox))
        except OSError:
            return
        for name in names:
            seq, _, target = name.partition(".")
            if name.startswith(".") or not target:
                continue  # a line still being written (".<seq>.tmp")
            path = os.path.join(inbox, name)
            try:
                with open(path) as f:
                    line = f.read()
            except OSError:
                if not os.path.exists(path):
                    continue  # taken by another process
                line = None  # unreadable (the host's umask): answered, not tried again
            try:
                os.unlink(path)  # whoever removes it delivers it (a worker inherits this handler)
            except OSError:
                continue
            if line is None or not deliver(target, line):
                _write_answer(UNDELIVERED, {"seq": seq, "pipe": target})  # the host need not wait

    signal.signal(signal.SIGURG, relay)


def _write_answer(name, fields):
    folder = os.environ.get("AMLDEBUG_STATE")
    tmp = os.path.join(folder, ".%s.%d.tmp" % (name, os.getpid()))
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(fields, sort_keys=True))
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(folder, name))
    except OSError:
        pass


class Patcher(object):
    """A worker's hot-patch channel: amldebug on the host writes one JSON line per save to
    the pipe ``patch-<pid>``; the answer goes to ``patch.json``. Runs untraced: the AST diff
    takes about 80 ms under the debugger's tracer, 3 ms without."""

    @classmethod
    def start(cls):
        if "globals" not in ENTRY:
            return
        opened = _fifo("patch-%d" % os.getpid())
        if opened is None:
            return
        path, pipe = opened
        import atexit

        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
        _untraced_thread(lambda: cls.serve(pipe), "amldebug: hot patch")

    @classmethod
    def serve(cls, pipe):
        for line in pipe:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            _write_answer("patch.json", cls.handle(request))

    @staticmethod
    def handle(request):
        import time

        started = time.time()
        answer = {"seq": request.get("seq"), "pid": os.getpid()}
        try:
            if STATE.get("workers", 1) > 1:  # the others would go on serving the old code
                raise ValueError("WORKER_COUNT=%d: only one worker could be patched" % STATE["workers"])
            hotpatch = load_hotpatch()
            filename = ENTRY["filename"]
            with open(filename) as f:
                source = f.read()
            changed, codes = hotpatch.plan(ENTRY["source"], source, filename)
            hotpatch.apply(ENTRY["globals"], codes, filename)
            ENTRY["source"] = source
            answer.update(ok=True, functions=changed)
        except Exception as exc:  # Declined, or an unreadable file: a full reload serves it
            answer.update(ok=False, reason=str(exc) or type(exc).__name__)
        # untraced: the debugger's tracer would make the AST diff take 80 ms instead of 3
        answer.update(ms=round((time.time() - started) * 1000, 1), traced=sys.gettrace() is not None)
        return answer


def load_hotpatch():
    """payload/hotpatch.py, under a name no user module takes (loaded once, in the master)."""
    module = sys.modules.get("amldebug_hotpatch")
    if module is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("amldebug_hotpatch", os.path.join(HERE, "hotpatch.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["amldebug_hotpatch"] = module
    return module


def start_control():
    """The master's channel: a line ``reload`` on the pipe ``control`` does what SIGHUP does,
    without a round trip through the Docker API (about 20 ms)."""
    opened = _fifo("control")
    if opened is None:
        return
    pipe = opened[1]
    CONTROL["fd"] = pipe.fileno()
    Standby.guard()

    def serve():
        import signal

        for line in pipe:
            if line.strip() == "reload":
                os.kill(os.getpid(), signal.SIGHUP)
            elif line.startswith("ready"):
                # Only the worker of the current generation: a "ready" read after a save
                # already started the next reload would fork a standby beside a booting worker.
                with Standby.guard():
                    if line[len("ready"):].strip() in ("", str(STATE["generation"])):
                        Standby.wanted = True
                arbiter = STATE.get("arbiter")
                if arbiter is not None:
                    arbiter.wakeup()
            elif line.startswith("status"):  # a worker's own view of this is wrong at times
                _write_answer("master.json", {"attached": client_connected(), "seq": line[len("status"):].strip()})

    _untraced_thread(serve, "amldebug: reload channel")


def quiet_extra_keys_warning():
    """azmlinfsrv's config check compares variable NAMES with field names, so every variable
    it supports (AML_APP_ROOT, AZUREML_SOURCE_DIRECTORY, ...: Azure ML sets them too) is
    reported as an "extra key" at each worker boot. Drop that warning when it lists only
    such names (a config file with truly unknown keys keeps it), and say so once."""
    import logging

    class Filter(logging.Filter):
        def filter(self, record):
            message = record.getMessage()
            if "Found extra keys in the config file" not in message:
                return True
            # Logged while the config module runs; its alias table is defined by then.
            config = sys.modules.get("azureml_inference_server_http.server.config")
            known = set(getattr(config, "alias_mapping", ()))
            listed = message.split("Extra keys = ", 1)[-1].strip("[] \n")
            names = [name.strip(" '\"") for name in listed.split(",") if name.strip()]
            return not names or not set(names) <= known

    logging.getLogger("azmlinfsrv").addFilter(Filter())
    say("hiding the server's 'Found extra keys in the config file' warning: azmlinfsrv compares the names "
        "of the variables it supports with its own field names and lists them all")


FAILURE_FILE = "failure.txt"


def record_failure(exc):
    """Keep the traceback of a worker that failed to boot, for the master's 503 answers.
    The server catches the user's exception and calls sys.exit(3) in its handler, so the
    user's error is the SystemExit's context."""
    import traceback

    error = exc.__context__ if isinstance(exc, SystemExit) and exc.__context__ is not None else exc
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    folder = os.environ.get("AMLDEBUG_STATE")
    if not folder:
        return
    try:
        with open(os.path.join(folder, FAILURE_FILE), "w") as f:
            f.write(text)
    except OSError:
        pass


class FailureResponder(object):
    """While no worker can serve (the entry script failed in import or init()), answer on
    the server's own sockets at once with HTTP 503 and the error, instead of leaving
    requests queued with nobody to accept them. Runs as a thread of the master; stops at
    the next reload."""

    current = None

    def __init__(self, arbiter):
        import threading

        self.sockets = [getattr(listener, "sock", listener) for listener in arbiter.LISTENERS]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="amldebug: HTTP 503 while no worker serves")
        self.thread.daemon = True

    @classmethod
    def start(cls, arbiter):
        cls.stop()
        cls.current = cls(arbiter)
        cls.current.thread.start()

    @classmethod
    def stop(cls):
        if cls.current is not None:
            cls.current.stopped.set()
            cls.current.thread.join(1)  # before new workers are forked: no accept() of ours competes
            cls.current = None

    def body(self):
        error = ""
        try:
            with open(os.path.join(os.environ.get("AMLDEBUG_STATE", ""), FAILURE_FILE)) as f:
                error = f.read()
        except OSError:
            pass
        head = ("amldebug: no worker can serve: the entry script failed in import or init(); "
                "save a fix (or run 'amldebug reload') and the service serves again\n")
        return (head + ("\n" + error if error else "")).encode("utf-8", "replace")

    def run(self):
        import select

        while not self.stopped.is_set():
            try:
                ready = select.select(self.sockets, [], [], 0.2)[0]
            except (OSError, ValueError):
                return
            for sock in ready:
                if self.stopped.is_set():
                    return
                try:
                    conn = sock.accept()[0]
                except (OSError, IOError):  # taken by a new worker, or nothing there
                    continue
                self.answer(conn)

    def answer(self, conn):
        import time

        deadline = time.time() + 5  # one slow client must not hold the only thread that answers
        try:
            conn.setblocking(True)
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536 and time.time() < deadline:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            # Read the request body too: closing with unread data would reset the connection
            # before the client reads the answer.
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and value.strip().isdigit():
                    length = min(int(value.strip()), 64 * 1024 * 1024)
            received = len(rest)
            while received < length and time.time() < deadline:
                chunk = conn.recv(65536)  # read and drop
                if not chunk:
                    break
                received += len(chunk)
            body = self.body()
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except (OSError, IOError):
            pass
        finally:
            try:
                conn.close()
            except (OSError, IOError):
                pass


def start_debugger():
    port = int(os.environ.get("AMLDEBUG_DEBUG_PORT", "5678"))
    host = os.environ.get("AMLDEBUG_DEBUG_HOST", "0.0.0.0")
    lib = os.path.join(HERE, "lib", "cp%d%d" % sys.version_info[:2])
    if os.path.isdir(lib):
        sys.path.insert(0, lib)
    import debugpy

    debugpy.listen((host, port))
    write_state("listening")
    say("debugger listening on port %d" % port)
    # While a user connects VS Code, load the server's dependencies (untraced, since no
    # client is attached yet), so the worker boots quickly once they are.
    preimport()
    if os.environ.get("AMLDEBUG_WAIT", "1") == "1":
        write_state("waiting")
        say("waiting for a debugger to attach before init()")
        debugpy.wait_for_client()
        write_state("attached")
        say("debugger attached")


# The scoring server's own dependencies, imported once in the master so that each worker
# gunicorn forks (at start and at every reload) finds them loaded: this is most of a
# worker's boot time. Only third-party modules without configuration side effects; the
# server's config and the user's code are still imported fresh in every worker.
PREIMPORT = (
    "flask", "flask_cors", "werkzeug", "pydantic", "pydantic_settings", "inference_schema.schema_util",
    "opentelemetry.sdk.trace", "opentelemetry.sdk._logs", "opentelemetry.sdk.resources",
    "azure.monitor.opentelemetry.exporter", "azureml_inference_server_http.server",
)


def preimport():
    if os.environ.get("AMLDEBUG_PREIMPORT", "1") != "1":
        return
    import importlib

    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def bind_scoring_host(host):
    """The server binds 0.0.0.0 (right inside a container, whose port amldebug publishes on
    127.0.0.1 only); as a local process it must bind the loopback interface itself."""
    if not host:
        return
    import azureml_inference_server_http.amlserver as amlserver

    amlserver.DEFAULT_HOST = host


def main():
    server = os.environ.get("AMLDEBUG_SERVER") or "azmlinfsrv"
    write_state("starting")
    patch_gunicorn()
    quiet_extra_keys_warning()
    start_control()
    start_inbox()
    load_hotpatch()
    if os.environ.get("AMLDEBUG_DEBUG_PORT"):
        start_debugger()
    else:
        preimport()
    bind_scoring_host(os.environ.get("AMLDEBUG_SERVER_HOST"))
    sys.argv = [server] + sys.argv[1:]
    runpy.run_path(server, run_name="__main__")


if __name__ == "__main__":
    main()
