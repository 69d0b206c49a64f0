"""A Debug Adapter Protocol client that attaches to debugpy the way VS Code does.

Used by the end-to-end tests and the benchmarks to stand in for VS Code: it attaches
to a debugpy adapter started with ``debugpy.listen()`` in the gunicorn master, follows
every forked worker into its own child session, sets breakpoints, and reports stops.

How debugpy 1.8 announces a forked child (read from ``debugpy/adapter/clients.py``
and ``servers.py``, and exercised by ``tests/unit/test_dap.py``): the child's pydevd
connects to the adapter, which calls ``Client.notify_of_subprocess`` on the parent's
client session. If the client said ``supportsStartDebuggingRequest: true`` in
``initialize`` the adapter sends a ``startDebugging`` reverse request; otherwise it
sends a ``debugpyAttach`` event. Either way the body is the parent's attach arguments
plus ``subProcessId`` and ``connect``; the client opens a second connection to the
same adapter port and runs initialize -> attach -> breakpoints -> configurationDone
there. The child does not run user code until that configurationDone, so
breakpoints in the worker's ``init()`` hit. Both ways work; the default is the
``debugpyAttach`` event (``DebugClient(start_debugging=False)``).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from amldebug.errors import AmlDebugError

__all__ = [
    "DapConnection",
    "DapError",
    "DebugClient",
    "Frame",
    "Session",
    "Stop",
    "initialize_roundtrip",
]


class DapError(AmlDebugError):
    """The adapter refused a request, closed the connection, or did not answer in time."""


def _initialize_arguments(start_debugging: bool = False) -> dict:
    # What VS Code sends for a "debugpy" session; debugpy rejects "uri" paths.
    return {
        "clientID": "vscode",
        "clientName": "amldebug",
        "adapterID": "debugpy",
        "locale": "en",
        "pathFormat": "path",
        "linesStartAt1": True,
        "columnsStartAt1": True,
        "supportsVariableType": True,
        "supportsVariablePaging": True,
        "supportsRunInTerminalRequest": False,
        "supportsProgressReporting": False,
        "supportsInvalidatedEvent": False,
        "supportsMemoryReferences": False,
        "supportsArgsCanBeInterpretedByShell": False,
        "supportsStartDebuggingRequest": start_debugging,
    }


class _Pending:
    """A request that was sent; ``result()`` waits for its response."""

    def __init__(self, connection: DapConnection, seq: int, command: str) -> None:
        self._connection = connection
        self.seq = seq
        self.command = command

    @property
    def done(self) -> bool:
        with self._connection._cond:
            return self.seq in self._connection._responses or self._connection._closed

    def result(self, timeout: float = 10) -> dict:
        """Return the response body; raise DapError on failure, timeout or a closed connection."""
        conn = self._connection
        with conn._cond:
            got = conn._cond.wait_for(lambda: self.seq in conn._responses or conn._closed, timeout)
            response = conn._responses.pop(self.seq, None)
            if response is None:
                if got:
                    raise DapError(f"{conn.name}: connection closed before the response to '{self.command}'{conn._why_closed()}")
                raise DapError(f"{conn.name}: no response to '{self.command}' within {timeout:g} s")
        if not response.get("success", False):
            message = response.get("message") or "failed"
            detail = ((response.get("body") or {}).get("error") or {}).get("format")
            if detail and detail != message:
                message = f"{message}: {detail}"
            raise DapError(f"{conn.name}: '{self.command}' failed: {message}")
        return response.get("body") or {}


class DapConnection:
    """One socket to a debug adapter: Content-Length framing and a reader thread.

    Events are queued as they arrive, so ``wait_event`` sees events that came before
    it was called. Reverse requests are answered from ``reverse_handlers`` (command ->
    callable(arguments) -> body); anything else gets ``success: false``. Listeners
    added with ``add_listener`` run on the reader thread for every event and must not
    block.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10, name: str | None = None) -> None:
        self.name = name or f"dap {host}:{port}"
        self.reverse_handlers: dict[str, Callable[[dict], dict]] = {}
        self._listeners: list[Callable[[dict], None]] = []
        self._seq = itertools.count(1)
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._events: list[dict] = []
        self._responses: dict[int, dict] = {}
        self._closed = False
        self._close_reason: str | None = None
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise DapError(f"cannot connect to the debug adapter at {host}:{port}: {exc}") from exc
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = threading.Thread(target=self._read_loop, name=f"{self.name} reader", daemon=True)
        self._reader.start()

    # -- sending -----------------------------------------------------------------

    def _write(self, message: dict) -> None:
        data = json.dumps(message).encode("utf-8")
        with self._send_lock:
            try:
                self._sock.sendall(b"Content-Length: %d\r\n\r\n" % len(data) + data)
            except OSError as exc:
                raise DapError(f"{self.name}: cannot send '{message.get('command', message.get('type'))}': {exc}") from exc

    def send(self, command: str, arguments: dict | None = None) -> _Pending:
        """Send a request without waiting; call ``.result(timeout)`` on the return value."""
        seq = next(self._seq)
        message: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        pending = _Pending(self, seq, command)
        with self._cond:
            if self._closed:
                raise DapError(f"{self.name}: cannot send '{command}', the connection is closed{self._why_closed()}")
        self._write(message)
        return pending

    def request(self, command: str, arguments: dict | None = None, timeout: float = 10) -> dict:
        """Send a request and return its response body; raise DapError if it fails or times out."""
        return self.send(command, arguments).result(timeout)

    # -- receiving ---------------------------------------------------------------

    def add_listener(self, listener: Callable[[dict], None]) -> None:
        """Call ``listener(event_message)`` on the reader thread for every event from now on."""
        self._listeners.append(listener)

    def wait_event(self, event: str, predicate: Callable[[dict], bool] | None = None, timeout: float = 10) -> dict:
        """Return (and consume) the oldest queued ``event`` message matching ``predicate``.

        Raises DapError on timeout or if the connection closes first.
        """
        found: list[dict] = []

        def ready() -> bool:
            for message in self._events:
                if message.get("event") == event and (predicate is None or predicate(message)):
                    found.append(message)
                    return True
            return self._closed

        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise DapError(f"{self.name}: no '{event}' event within {timeout:g} s")
            if not found:
                raise DapError(f"{self.name}: connection closed while waiting for '{event}'{self._why_closed()}")
            self._events.remove(found[0])
            return found[0]

    def events(self, event: str | None = None) -> list[dict]:
        """A snapshot of the queued (not yet consumed) events, optionally of one kind."""
        with self._cond:
            return [m for m in self._events if event is None or m.get("event") == event]

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def _why_closed(self) -> str:
        return f" ({self._close_reason})" if self._close_reason else ""

    def _read_message(self, buf: bytearray) -> dict | None:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                headers = bytes(buf[:end]).decode("ascii", "replace").split("\r\n")
                length = None
                for header in headers:
                    key, _, value = header.partition(":")
                    if key.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    raise ValueError(f"message without Content-Length: {headers!r}")
                start = end + 4
                while len(buf) < start + length:
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        return None
                    buf += chunk
                body = bytes(buf[start : start + length])
                del buf[: start + length]
                return json.loads(body.decode("utf-8"))
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            buf += chunk

    def _read_loop(self) -> None:
        buf = bytearray()
        reason = "closed by the adapter"
        try:
            while True:
                message = self._read_message(buf)
                if message is None:
                    break
                self._dispatch(message)
        except (OSError, ValueError) as exc:
            reason = f"read failed: {exc}"
        finally:
            with self._cond:
                if not self._closed:
                    self._closed = True
                    self._close_reason = reason
                self._cond.notify_all()

    def _dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "response":
            with self._cond:
                self._responses[message.get("request_seq")] = message
                self._cond.notify_all()
        elif kind == "event":
            with self._cond:
                self._events.append(message)
                self._cond.notify_all()
            for listener in list(self._listeners):
                listener(message)
        elif kind == "request":
            self._answer_reverse_request(message)

    def _answer_reverse_request(self, message: dict) -> None:
        command = message.get("command", "")
        response: dict[str, Any] = {
            "seq": next(self._seq),
            "type": "response",
            "request_seq": message.get("seq"),
            "command": command,
        }
        handler = self.reverse_handlers.get(command)
        if handler is None:
            response.update(success=False, message=f"amldebug's client does not handle '{command}'")
        else:
            try:
                response.update(success=True, body=handler(message.get("arguments") or {}))
            except Exception as exc:  # the adapter must get an answer whatever happens
                response.update(success=False, message=str(exc))
        try:
            self._write(response)
        except DapError:
            pass

    def close(self) -> None:
        """Close the socket and stop the reader thread; pending waits raise DapError."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._close_reason = "closed by the client"
            self._cond.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)


@dataclass(frozen=True)
class Frame:
    """One stack frame; ``path`` is as the adapter reports it (local, after pathMappings)."""

    path: str | None
    line: int
    name: str
    id: int = field(default=0, compare=False, repr=False)


@dataclass(eq=False)
class Session:
    """One DAP connection: the root process or one forked child."""

    connection: DapConnection
    name: str
    sub_process_id: int | None = None
    pid: int | None = None
    ended: bool = False

    @property
    def is_child(self) -> bool:
        return self.sub_process_id is not None


@dataclass(frozen=True)
class Stop:
    """A thread that stopped (breakpoint, exception, pause...) in some session."""

    session: Session
    thread_id: int
    reason: str
    frames: list[Frame]
    description: str = ""


class DebugClient:
    """Attaches to a debugpy adapter like VS Code's Python debugger, following forked children.

    ``breakpoints`` maps local file paths to line numbers; every session (root and each
    child) gets them. Call ``close()`` (or use it as a context manager) to detach
    without stopping the debuggee.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        path_mappings: list[dict],
        just_my_code: bool = True,
        breakpoints: dict[str, list[int]] | None = None,
        exception_filters: tuple[str, ...] = ("uncaught",),
        start_debugging: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.path_mappings = list(path_mappings)
        self.just_my_code = just_my_code
        self.breakpoints: dict[str, list[int]] = {p: list(ls) for p, ls in (breakpoints or {}).items()}
        # VS Code enables the "uncaught" filter by default.
        self.exception_filters = tuple(exception_filters)
        self.start_debugging = start_debugging
        self.errors: list[str] = []
        """Child sessions that failed to attach, as messages; wait_stopped() raises each once."""
        self._unreported: list[str] = []
        self._sessions: list[Session] = []
        self._stops: list[tuple[Session, dict]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._timeout = 10.0

    def __enter__(self) -> DebugClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def sessions(self) -> list[Session]:
        """Every session opened so far, root first, including ended ones."""
        with self._cond:
            return list(self._sessions)

    def attach_config(self) -> dict:
        """The attach arguments of the root session, as a VS Code launch.json would give them."""
        return {
            "name": "amldebug: attach",
            "type": "python",
            "request": "attach",
            "connect": {"host": self.host, "port": self.port},
            "pathMappings": self.path_mappings,
            "justMyCode": self.just_my_code,
            "subProcess": True,
        }

    def attach(self, timeout: float = 10) -> Session:
        """Attach the root session; children are attached as the adapter announces them."""
        self._timeout = timeout
        return self._start_session(self.attach_config(), sub_process_id=None, timeout=timeout)

    def _start_session(self, config: dict, sub_process_id: int | None, timeout: float) -> Session:
        name = config.get("name") or "session"
        conn = DapConnection(self.host, self.port, timeout=timeout, name=name)
        session = Session(connection=conn, name=name, sub_process_id=sub_process_id)
        try:
            conn.reverse_handlers["startDebugging"] = lambda args: self._on_start_debugging(args)
            conn.add_listener(lambda message: self._on_event(session, message))
            conn.request("initialize", _initialize_arguments(self.start_debugging), timeout)
            # debugpy answers "attach" only after "configurationDone"; between the two it
            # sends "initialized", which is the cue to configure breakpoints.
            attach = conn.send("attach", config)
            with conn._cond:
                answered = conn._cond.wait_for(
                    lambda: any(m.get("event") == "initialized" for m in conn._events) or attach.seq in conn._responses or conn._closed,
                    timeout,
                )
            if not answered:
                raise DapError(f"{name}: neither 'initialized' nor a response to 'attach' within {timeout:g} s")
            if attach.done:
                attach.result(0)  # raises with the adapter's reason if attach was refused
                # Answered without "initialized": the child exited before we came, and
                # debugpy reports that as a session that ended at once, not an error.
                session.ended = True
                conn.close()
                with self._cond:
                    self._sessions.append(session)
                return session
            conn.wait_event("initialized", timeout=0)
            with self._cond:
                sent = {p: list(ls) for p, ls in self.breakpoints.items()}
            for path, lines in sent.items():
                conn.request("setBreakpoints", _breakpoint_arguments(path, lines), timeout)
            conn.request("setExceptionBreakpoints", {"filters": list(self.exception_filters)}, timeout)
            conn.request("configurationDone", None, timeout)
            attach.result(timeout)
            with self._cond:
                self._sessions.append(session)
                # set_breakpoints() calls made while this session was configuring did
                # not reach it; from here on they do.
                missed = {p: list(ls) for p, ls in self.breakpoints.items() if sent.get(p) != ls}
                closing = self._closing
                self._cond.notify_all()
            if closing:  # close() ran while this child was attaching
                _disconnect_quietly(conn)
                return session
            for path, lines in missed.items():
                conn.request("setBreakpoints", _breakpoint_arguments(path, lines), timeout)
        except BaseException:
            conn.close()
            raise
        return session

    def _on_event(self, session: Session, message: dict) -> None:
        # Runs on the session's reader thread: never wait for a response here.
        event = message.get("event")
        body = message.get("body") or {}
        if event == "stopped":
            with self._cond:
                self._stops.append((session, body))
                self._cond.notify_all()
        elif event == "process":
            session.pid = body.get("systemProcessId", session.pid)
        elif event == "debugpyAttach":
            self._spawn_child(body)
        elif event == "terminated":
            with self._cond:
                session.ended = True
                closing = self._closing
                self._cond.notify_all()
            if not closing:
                # VS Code answers "terminated" with "disconnect"; until then the adapter
                # keeps the session (and itself) alive.
                threading.Thread(target=_disconnect_quietly, args=(session.connection,), daemon=True).start()

    def _on_start_debugging(self, arguments: dict) -> dict:
        self._spawn_child(arguments.get("configuration") or {})
        return {}

    def _spawn_child(self, body: dict) -> None:
        with self._cond:
            if self._closing:
                return
        threading.Thread(target=self._attach_child, args=(dict(body),), name="attach child", daemon=True).start()

    def _attach_child(self, body: dict) -> None:
        # VS Code starts a new debug session with the event body as its configuration;
        # the body is the parent's attach arguments plus subProcessId. The socket goes to
        # the port this client reached, not body["connect"]: behind Docker's port
        # mapping the adapter only knows its in-container address.
        config = {**self.attach_config(), **body, "request": "attach"}
        config.pop("startDebugging", None)
        try:
            self._start_session(config, sub_process_id=body.get("subProcessId"), timeout=self._timeout)
        except Exception as exc:  # reported through wait_stopped(), the thread has no caller
            with self._cond:
                message = f"attaching child process {body.get('subProcessId')} failed: {exc}"
                self.errors.append(message)
                self._unreported.append(message)
                self._cond.notify_all()

    def set_breakpoints(self, path: str, lines: list[int]) -> None:
        """Replace the breakpoints of local file ``path`` in every live session (and future ones)."""
        with self._cond:
            self.breakpoints[path] = list(lines)
            live = [s for s in self._sessions if not s.ended]
        for session in live:
            session.connection.request("setBreakpoints", _breakpoint_arguments(path, lines), self._timeout)

    def wait_stopped(self, timeout: float = 30) -> Stop:
        """Wait for the next stop in any session and return it with its stack."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._stops or self._unreported, timeout)
            if self._stops:
                session, body = self._stops.pop(0)
            elif ok:
                message = "; ".join(self._unreported)
                self._unreported.clear()
                raise DapError(message)
            else:
                raise DapError(f"no thread stopped within {timeout:g} s in {len(self._sessions)} session(s)")
        thread_id = body.get("threadId")
        trace = session.connection.request("stackTrace", {"threadId": thread_id, "startFrame": 0, "levels": 50}, self._timeout)
        frames = [
            Frame(path=(f.get("source") or {}).get("path"), line=f.get("line", 0), name=f.get("name", ""), id=f.get("id", 0))
            for f in trace.get("stackFrames", [])
        ]
        return Stop(session=session, thread_id=thread_id, reason=body.get("reason", ""), frames=frames, description=body.get("description", ""))

    def evaluate(self, stop: Stop, expression: str) -> str:
        """Evaluate ``expression`` in the top frame of ``stop``; return the result as the debugger shows it."""
        if not stop.frames:
            raise DapError(f"thread {stop.thread_id} has no frames to evaluate '{expression}' in")
        body = stop.session.connection.request(
            "evaluate", {"expression": expression, "frameId": stop.frames[0].id, "context": "watch"}, self._timeout
        )
        return body.get("result", "")

    def continue_(self, stop: Stop) -> None:
        """Resume the stopped session (debugpy resumes all its threads)."""
        stop.session.connection.request("continue", {"threadId": stop.thread_id}, self._timeout)

    def close(self) -> None:
        """Disconnect every session without terminating the debuggee, children first."""
        with self._cond:
            self._closing = True
            sessions = list(reversed(self._sessions))
        for session in sessions:
            _disconnect_quietly(session.connection)


def _breakpoint_arguments(path: str, lines: list[int]) -> dict:
    return {
        "source": {"path": path},
        "breakpoints": [{"line": line} for line in lines],
        "lines": list(lines),
        "sourceModified": False,
    }


def _disconnect_quietly(conn: DapConnection, timeout: float = 3) -> None:
    try:
        if not conn.closed:
            conn.request("disconnect", {"restart": False, "terminateDebuggee": False}, timeout)
    except DapError:
        pass  # already gone: nothing to detach from
    finally:
        conn.close()


def initialize_roundtrip(
    host: str, port: int, timeout: float = 5, *, linger: float = 0.5, settle: float = 0.25
) -> float:
    """Connect, send ``initialize``, wait for its response and disconnect; return the seconds taken.

    The time covers connect + initialize, not the disconnect. A plain TCP connect is no
    readiness test behind Docker's port forwarder; this is. Raises DapError if the
    adapter does not answer.

    The probe stays connected until ``linger`` seconds after it connected. debugpy's
    adapter listens for clients a few milliseconds before the debuggee's own pydevd
    connection is registered with it; a client that ends its session inside that
    window makes the adapter exit ("All debug servers disconnected"), and the debuggee
    then waits in ``wait_for_client()`` forever. Lingering keeps the probe's session
    open past that window, so the adapter still accepts the real client afterwards.

    After the disconnect the probe waits for the adapter to close the connection, then
    ``settle`` seconds more. debugpy 1.8.22 greets every new client on its accept thread
    by sending ``debugpySockets`` to the oldest session's client (``Client.__init__`` ->
    ``sessions.report_sockets()``); when that is a session whose connection was just
    closed but which is not yet removed (up to 0.11 s later seen on a loaded machine), the
    send raises ``NoMoreMessages``, the accept thread dies, and every later client
    connects and never gets an answer. A client that connects right after the probe
    returned (the next probe, the real client) hit exactly that.

    The same accept thread dies if a client connects before the adapter has set
    ``clients.listener`` (``AttributeError`` in the same call), a few ms after the port
    opened; no linger helps there. Probe once ``debugpy.listen()`` has returned (the
    launcher's "listening" state), not from the moment the port opens.
    """
    start = time.perf_counter()
    conn = DapConnection(host, port, timeout=timeout, name=f"probe {host}:{port}")
    try:
        conn.request("initialize", _initialize_arguments(), timeout)
        elapsed = time.perf_counter() - start
        remaining = linger - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        conn.request("disconnect", {"restart": False, "terminateDebuggee": False}, timeout)
        with conn._cond:
            conn._cond.wait_for(lambda: conn._closed, timeout)
        time.sleep(settle)
    finally:
        conn.close()
    return elapsed
