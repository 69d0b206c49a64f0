"""The wire between amldebug on the host and its payload in the scoring server, written once.

Every name both sides use is here: the environment variables the host sets on the server's
process, the files and named pipes in the state folder, the status words of ``state.json``,
the lines on the pipes and the JSON answers, the signals, and the one log line the host reads
back. So are the functions that turn a message into a line and a line into a message; the
host and the payload call the same ones.

Loaded twice: the host imports it as ``amldebug.payload.common.protocol``; the payload, which
runs in the IMAGE's Python (3.8 to 3.13), loads the same file by path (launch.py makes the
payload folder the package ``amldebug_payload``). Hence: the standard library only, nothing
newer than Python 3.8, and nothing done at import beyond defining names.

The state folder (``AMLDEBUG_STATE``, mounted into a container) holds::

    state.json       the server's status, the reload generation, the pid that wrote it
    control          the master's pipe: "reload", "status SEQ" (host), "ready GENERATION" (worker)
    patch-<pid>      a worker's pipe: one JSON patch request per line
    patch.json       a worker's answer to a patch request
    master.json      the master's answer to "status SEQ"
    standby.json     the warm standby worker, once it waits at its gate
    failure.txt      the traceback of a worker that failed to boot (the 503 answers show it)
    inbox/           "<seq>.<pipe>" files, relayed to the pipe on SIGURG (Docker Desktop's path)
    undelivered.json the master's word that an inbox line's pipe had no reader

A new message gets its encoder and decoder here and an example in
tests/unit/protocol_messages.py (test_protocol.py fails until it has one, and
test_protocol_literals.py fails when a name of this module is spelled anywhere else). A
transport other than the state folder (an exec stream to a pod) carries the same lines.
"""

import enum
import json
import re

# --- Environment: the host sets these on the server's process; the payload reads them ----------

ENV_PREFIX = "AMLDEBUG_"
ENV_STATE = "AMLDEBUG_STATE"  # the state folder: every file and pipe below lives there
ENV_DEBUG_PORT = "AMLDEBUG_DEBUG_PORT"  # debugpy listens there (unset: no debugger)
ENV_DEBUG_HOST = "AMLDEBUG_DEBUG_HOST"  # ... on this interface
ENV_WAIT = "AMLDEBUG_WAIT"  # ON: hold the master before the first fork until a client attaches
ENV_SERVER = "AMLDEBUG_SERVER"  # the image's azmlinfsrv script, run as __main__ after set-up
ENV_SERVER_HOST = "AMLDEBUG_SERVER_HOST"  # the scoring server binds this (a local process: loopback)
ENV_SERVICE = "AMLDEBUG_SERVICE"  # the service's name: marks its processes
ENV_SESSION = "AMLDEBUG_SESSION"  # the start's id: marks a local server's processes, its debug adapter too
ENV_STANDBY = "AMLDEBUG_STANDBY"  # OFF: no warm standby worker
ENV_PIPES = "AMLDEBUG_PIPES"  # PIPES_LOCAL: make the pipes in a folder of the container's own
ENV_PREIMPORT = "AMLDEBUG_PREIMPORT"  # OFF: do not import the server's dependencies in the master

ON = "1"
OFF = "0"
PIPES_LOCAL = "local"

DEFAULT_DEBUG_PORT = 5678
DEFAULT_DEBUG_HOST = "0.0.0.0"  # a container's own interface, published on the host's loopback
DEFAULT_SERVER = "azmlinfsrv"

# --- The payload's files, as the host runs them ----------------------------------------------

LAUNCHER = "launch.py"  # the server's entry: the launcher, which hands over to azmlinfsrv
PROBE_SCRIPT = "probe.py"  # prints the image's Python, server and user as JSON
IMPORT_CHECK_SCRIPT = "importcheck.py"  # imports the entry script as the server would
MODEL_PATH_SCRIPT = "modelpath.py"  # resolves a model as Model.get_model_path does
SERVER_SHIM = "azmlinfsrv_shim.py"  # stands in for the azmlinfsrv script where there is none
IMPORT_OK = "AMLDEBUG-IMPORT-OK"  # importcheck.py's last line when the import worked
DEBUGPY_LIB = "lib"  # lib/cpXY/debugpy: the debugpy copy for Python X.Y


def debugpy_tag(major, minor):
    """The folder under :data:`DEBUGPY_LIB` that holds debugpy for Python major.minor."""
    return "cp%d%d" % (major, minor)


# --- The state folder: files and pipes ---------------------------------------------------------

STATE_FILE = "state.json"
CONTROL_PIPE = "control"
PATCH_ANSWER = "patch.json"
MASTER_ANSWER = "master.json"
STANDBY_FILE = "standby.json"
FAILURE_FILE = "failure.txt"
INBOX = "inbox"
UNDELIVERED = "undelivered.json"
_PATCH_PIPE = "patch-%d"
_FIFO_PROBE = ".fifo-probe-%d"
_TEMP = ".%s.%d.tmp"


def patch_pipe(pid):
    """The pipe the worker ``pid`` reads patch requests from."""
    return _PATCH_PIPE % int(pid)


def fifo_probe(pid):
    """A named pipe the master makes and removes to learn whether the state folder takes pipes."""
    return _FIFO_PROBE % int(pid)


def temp_name(name, pid):
    """Where ``pid`` writes ``name`` before renaming it into place (no reader sees half a file)."""
    return _TEMP % (name, int(pid))


# --- Status: what state.json says ------------------------------------------------------------


class Status(str, enum.Enum):
    """The server's status as ``state.json`` gives it."""

    STARTING = "starting"
    LISTENING = "listening"  # debugpy listens (the server is not started yet)
    WAITING = "waiting"  # ... and holds before init() until a client attaches
    ATTACHED = "attached"
    RELOADING = "reloading"
    READY = "ready"  # a worker imported the entry script and ran init()
    FAILED = "failed"  # a worker could not: the server answers 503 until the next reload


# --- Signals (names, as the Docker API and the signal module spell them) ------------------------

RELOAD_SIGNAL = "SIGHUP"  # gunicorn's own reload: reaches the master without any pipe
INBOX_SIGNAL = "SIGURG"  # "the inbox has lines": its default action is none, so a stray one harms nobody


# --- Lines on the control pipe ----------------------------------------------------------------

RELOAD = "reload"  # host -> master: do what SIGHUP does
STATUS = "status"  # host -> master: "status SEQ"; the master answers in master.json
READY = "ready"  # serving worker -> master: "ready GENERATION"; the master may fork a standby


def _control(command, argument=None):
    return command if argument is None else "%s %s" % (command, argument)


def reload_line():
    return _control(RELOAD)


def status_line(seq):
    return _control(STATUS, seq)


def ready_line(generation):
    return _control(READY, int(generation))


def parse_control(line):
    """``(command, argument)`` of a control line; the argument is None when there is none,
    the command None for a line of no known command."""
    words = line.strip().split(None, 1)
    if not words or words[0] not in (RELOAD, STATUS, READY):
        return None, None
    return words[0], (words[1].strip() if len(words) > 1 else None)


# --- The standby's gate: master -> standby worker ----------------------------------------------


def gate_line(generation):
    """What the master writes to open a standby's gate: the generation it serves."""
    return ("%d\n" % int(generation)).encode()


def parse_gate(data):
    """The generation of a complete gate line (bytes), or None while it is incomplete."""
    if not data.endswith(b"\n"):
        return None
    return int(data)


# --- JSON records: patch requests, answers, state.json --------------------------------------


def _field(name, default=None):
    return property(lambda self: self.get(name, default))


class Record(dict):
    """A JSON object that crosses: a dict (old readers keep working) whose fields are also
    attributes, so neither side spells a field name."""

    @classmethod
    def fields(cls):
        return sorted(name for klass in cls.__mro__ for name, value in vars(klass).items()
                      if isinstance(value, property))

    @classmethod
    def new(cls, **fields):
        """A record with these fields (a name the record lacks is a TypeError)."""
        unknown = sorted(set(fields) - set(cls.fields()))
        if unknown:
            raise TypeError("%s has no field %s" % (cls.__name__, ", ".join(unknown)))
        return cls(fields)

    def encode(self):
        """One line of JSON (the pipes carry one message a line)."""
        return json.dumps(self, sort_keys=True)

    @classmethod
    def decode(cls, text):
        """The record in ``text``, or None when it is no JSON object (a half-written file)."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            return None
        return cls(value) if isinstance(value, dict) else None


class StateRecord(Record):
    """``state.json``: the payload's last word on the server."""

    status = _field("status")
    generation = _field("generation", 0)  # the reload it belongs to (a "ready" of an earlier one is stale)
    pid = _field("pid")  # the process that wrote it: the serving worker once it is READY
    init_ms = _field("init_ms")  # how long init() took, in a READY of a worker


class PatchRequest(Record):
    """A line on ``patch-<pid>``: patch the entry script from its file on disk."""

    seq = _field("seq")


class PatchAnswer(Record):
    """``patch.json``: the worker's answer to a patch request."""

    seq = _field("seq")
    pid = _field("pid")
    ok = _field("ok", False)
    functions = _field("functions", ())  # the functions swapped (when ok)
    reason = _field("reason")  # why not (when not ok): a full reload serves the save
    ms = _field("ms")
    traced = _field("traced")  # whether the debugger's tracer was on while it patched


class MasterAnswer(Record):
    """``master.json``: the master's answer to ``status SEQ``."""

    seq = _field("seq")
    attached = _field("attached", False)  # a debugger client is attached


class StandbyRecord(Record):
    """``standby.json``: a standby worker waits at its gate."""

    pid = _field("pid")
    generation = _field("generation", 0)


class UndeliveredRecord(Record):
    """``undelivered.json``: the inbox line ``seq`` found no reader of its pipe."""

    seq = _field("seq")
    pipe = _field("pipe")


# --- The inbox: a line for a pipe, left as a file ----------------------------------------------


def inbox_entry(seq, pipe):
    """The name of a line for ``pipe`` left in the inbox."""
    return "%s.%s" % (seq, pipe)


def inbox_temp(seq):
    """Its name while it is being written (the relay skips names that start with a dot)."""
    return ".%s.tmp" % seq


def parse_inbox_entry(name):
    """``(seq, pipe)`` of an inbox file name; None for a line still being written."""
    seq, _, pipe = name.partition(".")
    if name.startswith(".") or not seq or not pipe:
        return None
    return seq, pipe


# --- The one log line the host reads back (diagnose tells a standby's boot from a restart) ------

LOG_MARK = "amldebug:"
_STANDBY_FORKED = "standby worker %d forked: it waits for the next save"
_STANDBY_FORKED_RE = re.compile(r"^amldebug: standby worker (?P<pid>\d+) forked")


def log_line(message):
    """A line of the payload's in the server's log."""
    return "%s %s" % (LOG_MARK, message)


def standby_forked(pid):
    """The message the master logs when it forks a standby worker."""
    return _STANDBY_FORKED % int(pid)


def standby_forked_pid(line):
    """The pid in a log line that says a standby worker was forked, else None."""
    match = _STANDBY_FORKED_RE.match(line)
    return match.group("pid") if match else None
