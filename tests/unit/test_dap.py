"""amldebug.dap against a real debugpy in a local process that forks like the gunicorn master.

The debuggee listens with debugpy.listen(), waits for the client, stops nowhere by
itself, then forks a child that runs work() and writes the result to a file while
the parent waits for it: the shape of azmlinfsrv's master and its worker.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.dap import DapConnection, DapError, DebugClient, initialize_roundtrip

PROGRAM = """\
import os
import sys
import time

import debugpy
import debugpy.server.api

_settrace = debugpy.server.api._settrace


def _connect_pydevd(*args, **kwargs):
    # listen() calls this once the adapter listens for clients and for pydevd, before
    # pydevd connects to it and registers.
    open(sys.argv[2] + ".adapter", "w").close()
    time.sleep(float(os.environ["CONNECT_DELAY"]))
    return _settrace(*args, **kwargs)


debugpy.server.api._settrace = _connect_pydevd
debugpy.listen(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2] + ".ready", "w").close()
debugpy.wait_for_client()


def work(n):
    doubled = n * 2
    result = doubled + 1  # WORK_LINE
    return result  # WORK_RETURN_LINE


def main():
    base = 20
    base = base + 1  # PARENT_LINE
    pid = os.fork()
    if pid == 0:
        value = work(base)
        with open(sys.argv[2], "w") as f:
            f.write(str(value))
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)  # PARENT_END_LINE
    sys.exit(code)


main()
"""


def _line(marker: str) -> int:
    for number, text in enumerate(PROGRAM.splitlines(), start=1):
        if text.endswith("# " + marker):
            return number
    raise AssertionError(f"marker {marker} not in PROGRAM")


WORK_LINE = _line("WORK_LINE")
WORK_RETURN_LINE = _line("WORK_RETURN_LINE")
PARENT_LINE = _line("PARENT_LINE")
PARENT_END_LINE = _line("PARENT_END_LINE")
HOST = "127.0.0.1"


def _free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port from bind(port 0) is free again once the test closes its socket, and the
    kernel may hand it to the next bind to port 0: debugpy.listen() makes one for its
    adapter's endpoints before the adapter binds the chosen port, and then the adapter
    cannot listen ("Error listening for incoming Client connections on 127.0.0.1:P:
    Address already in use" in its log). Ports below ip_local_port_range are never
    handed out that way.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in 10000-{low}")


def _adapter_pids(port: int) -> list[int]:
    """PIDs of the daemonized debugpy adapter that debugpy.listen() spawned on ``port``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1].rstrip(b"/").endswith(b"debugpy/adapter") and b"--port" in argv:
            if argv[argv.index(b"--port") + 1 : argv.index(b"--port") + 2] == [str(port).encode()]:
                pids.append(int(entry.name))
    return pids


class Debuggee:
    def __init__(self, script: Path, tmp: Path, connect_delay: float = 0) -> None:
        self.script = script
        self.port = _free_port()
        self.result = tmp / "result.txt"
        self.ready = Path(str(self.result) + ".ready")
        self.adapter_ready = Path(str(self.result) + ".adapter")
        # No DEBUGPY_LOG_DIR here: with pydevd logging on, a fork sometimes copies the
        # log file's lock while another thread holds it, and the child hangs for good.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGPY_LOG")}
        env["CONNECT_DELAY"] = str(connect_delay)
        with open(tmp / "debuggee.out", "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-Xfrozen_modules=off", str(script), str(self.port), str(self.result)],
                cwd=script.parent,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the forked child joins this process group: one killpg ends both
            )

    def wait_ready(self, timeout: float = 10) -> None:
        """Wait until debugpy.listen() returned: pydevd is connected to the adapter."""
        self._wait_for(self.ready, "debugpy.listen() did not return", timeout, 0.01)

    def wait_adapter(self, timeout: float = 10) -> None:
        """Wait until the adapter listens for clients, before pydevd connects to it."""
        self._wait_for(self.adapter_ready, "the adapter did not start", timeout, 0.001)

    def _wait_for(self, path: Path, what: str, timeout: float, poll: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self.process.poll() is None, f"debuggee exited with {self.process.returncode} before listening"
            assert time.monotonic() < deadline, f"{what} within {timeout:g} s"
            time.sleep(poll)

    def wait_result(self, timeout: float = 10) -> str:
        assert self.process.wait(timeout) == 0
        return self.result.read_text()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)
        # The adapter daemonizes out of the process group; it exits by itself once its
        # debuggee and clients are gone. Give it a moment, then make sure.
        deadline = time.monotonic() + 2
        while (pids := _adapter_pids(self.port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start(tmp_path):
    """start(run_dir=None) -> Debuggee; everything started is killed and every client closed at the end."""
    started: list[Debuggee] = []
    clients: list[DebugClient] = []

    def _start(run_dir: Path | None = None, wait: bool = True, connect_delay: float = 0) -> Debuggee:
        run_dir = run_dir or tmp_path / "app"
        run_dir.mkdir(parents=True, exist_ok=True)
        script = run_dir / "prog.py"
        script.write_text(PROGRAM)
        debuggee = Debuggee(script, tmp_path, connect_delay)
        started.append(debuggee)
        if wait:
            debuggee.wait_ready()
        return debuggee

    def _client(debuggee: Debuggee, **kwargs) -> DebugClient:
        kwargs.setdefault("path_mappings", [])
        client = DebugClient(HOST, debuggee.port, **kwargs)
        clients.append(client)
        return client

    _start.client = _client
    yield _start
    for client in clients:
        client.close()
    for debuggee in started:
        debuggee.kill()


def test_breakpoint_in_forked_child_stops_in_a_child_session(start):
    debuggee = start()
    client = start.client(debuggee, breakpoints={str(debuggee.script): [WORK_LINE]})
    root = client.attach()

    stop = client.wait_stopped(timeout=10)

    assert stop.session is not root
    assert stop.session.is_child
    assert stop.session.sub_process_id not in (None, debuggee.process.pid)
    assert stop.reason == "breakpoint"
    assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(debuggee.script), WORK_LINE, "work")
    assert client.evaluate(stop, "doubled") == "42"
    # The default flow: the adapter announced the child with a debugpyAttach event.
    assert [e["body"]["subProcessId"] for e in root.connection.events("debugpyAttach")] == [stop.session.sub_process_id]
    client.continue_(stop)
    assert debuggee.wait_result() == "43"
    assert client.errors == []


def test_start_debugging_reverse_request_also_reaches_the_child(start):
    debuggee = start()
    client = start.client(debuggee, breakpoints={str(debuggee.script): [WORK_LINE]}, start_debugging=True)
    root = client.attach()

    stop = client.wait_stopped(timeout=10)

    assert stop.session.is_child
    assert (stop.frames[0].path, stop.frames[0].line) == (str(debuggee.script), WORK_LINE)
    assert root.connection.events("debugpyAttach") == []  # announced by startDebugging instead
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_breakpoint_in_parent_stops_in_the_root_session(start):
    debuggee = start()
    client = start.client(debuggee, breakpoints={str(debuggee.script): [PARENT_LINE]})
    root = client.attach()

    stop = client.wait_stopped(timeout=10)

    assert stop.session is root
    assert not root.is_child
    assert root.pid == debuggee.process.pid
    assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(debuggee.script), PARENT_LINE, "main")
    assert client.evaluate(stop, "base") == "20"
    client.continue_(stop)
    assert debuggee.wait_result() == "43"
    with pytest.raises(DapError, match="no thread stopped"):
        client.wait_stopped(timeout=0.2)  # that line runs once: exactly one stop


def test_path_mappings_report_the_local_path(start, tmp_path):
    remote = tmp_path / "container" / "var" / "azureml-app"
    local = tmp_path / "host" / "src"
    debuggee = start(run_dir=remote)
    local.mkdir(parents=True)
    shutil.copy(debuggee.script, local / "prog.py")
    mappings = [{"localRoot": str(local), "remoteRoot": str(remote)}]
    client = start.client(debuggee, path_mappings=mappings, breakpoints={str(local / "prog.py"): [WORK_LINE]})
    client.attach()

    stop = client.wait_stopped(timeout=10)

    assert stop.session.is_child
    assert (stop.frames[0].path, stop.frames[0].line) == (str(local / "prog.py"), WORK_LINE)
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_set_breakpoints_reaches_live_and_later_sessions(start):
    debuggee = start()
    script = str(debuggee.script)
    client = start.client(debuggee, breakpoints={script: [PARENT_LINE]})
    root = client.attach()

    stop = client.wait_stopped(timeout=10)
    assert (stop.session, stop.frames[0].line) == (root, PARENT_LINE)
    client.set_breakpoints(script, [WORK_LINE])  # the child does not exist yet
    client.continue_(stop)

    stop = client.wait_stopped(timeout=10)
    assert (stop.session.is_child, stop.frames[0].line) == (True, WORK_LINE)
    client.set_breakpoints(script, [WORK_RETURN_LINE, PARENT_END_LINE])  # both sessions are live
    client.continue_(stop)

    stop = client.wait_stopped(timeout=10)
    assert (stop.session.is_child, stop.frames[0].line) == (True, WORK_RETURN_LINE)
    assert client.evaluate(stop, "result") == "43"
    client.continue_(stop)

    stop = client.wait_stopped(timeout=10)
    assert (stop.session, stop.frames[0].line) == (root, PARENT_END_LINE)
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_close_detaches_and_lets_the_debuggee_run_on(start):
    debuggee = start()
    client = start.client(debuggee, breakpoints={str(debuggee.script): [PARENT_LINE, WORK_LINE]})
    root = client.attach()
    stop = client.wait_stopped(timeout=10)
    assert stop.session is root

    client.close()  # while stopped, before the fork: nobody is left to stop the child

    assert debuggee.wait_result() == "43"
    assert root.connection.closed


def test_initialize_roundtrip_leaves_the_adapter_ready_for_the_client(start):
    debuggee = start()

    # With the default linger: a probe that hangs up at once can catch the adapter before
    # the debuggee registered with it, and the adapter then exits (see the test below).
    seconds = initialize_roundtrip(HOST, debuggee.port, timeout=5)
    again = initialize_roundtrip(HOST, debuggee.port, timeout=5)

    assert 0 < seconds < 2 and 0 < again < 2
    client = start.client(debuggee, breakpoints={str(debuggee.script): [WORK_LINE]})
    client.attach()
    stop = client.wait_stopped(timeout=10)
    assert (stop.session.is_child, stop.frames[0].line) == (True, WORK_LINE)
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_probing_before_the_debuggee_registered_does_not_kill_the_adapter(start):
    # The adapter accepts clients some ms before the debuggee's pydevd has registered
    # with it (longer on a loaded machine, which connect_delay stands for); a probe that
    # ended its session in that gap made the adapter exit. With linger=0 this fails.
    #
    # Probing before the adapter announced its endpoints is another matter: debugpy 1.8.22
    # accepts clients before it sets clients.listener, and a client that connects in that
    # gap ends the adapter's accept thread ("AttributeError: module
    # 'debugpy.adapter.clients' has no attribute 'listener'" in Client.__init__), so it
    # answers nobody after that, whatever the probe does. The product never connects that
    # early: the launcher writes its "listening" state after debugpy.listen() returned.
    debuggee = start(wait=False, connect_delay=0.1)
    debuggee.wait_adapter()
    initialize_roundtrip(HOST, debuggee.port, timeout=5)

    client = start.client(debuggee, breakpoints={str(debuggee.script): [PARENT_LINE]})
    client.attach(timeout=5)
    stop = client.wait_stopped(timeout=10)
    assert stop.frames[0].line == PARENT_LINE
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_a_failed_request_raises_with_the_adapters_message(start):
    debuggee = start()
    client = start.client(debuggee, breakpoints={str(debuggee.script): [PARENT_LINE]})
    client.attach()
    stop = client.wait_stopped(timeout=10)

    with pytest.raises(DapError, match="NameError"):
        client.evaluate(stop, "no_such_name")
    with pytest.raises(DapError, match="'attach' failed: Invalid message"):
        stop.session.connection.request("attach", {"connect": {"host": HOST, "port": debuggee.port}})
    client.continue_(stop)
    assert debuggee.wait_result() == "43"


def test_nothing_listening_is_a_dap_error():
    with pytest.raises(DapError, match=f"{HOST}:"):
        initialize_roundtrip(HOST, _free_port(), timeout=1)


# -- DapConnection against a scripted fake adapter ------------------------------------


def _frame(message: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(message) + message


class FakeAdapter:
    """Accepts one connection, sends ``greeting`` at once, records what it receives.

    With ``hang_up`` it closes the connection when the first bytes arrive, as an
    adapter that dies mid-request does.
    """

    def __init__(self, greeting: list[bytes], hang_up: bool = False) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.got_data = threading.Event()
        self._greeting = greeting
        self._hang_up = hang_up
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for chunk in self._greeting:
                conn.sendall(chunk)
            while data := conn.recv(65536):
                self.received += data
                self.got_data.set()
                if self._hang_up:
                    break

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def fake_adapter():
    made: list[FakeAdapter] = []

    def _make(greeting: list[bytes], hang_up: bool = False) -> FakeAdapter:
        made.append(FakeAdapter(greeting, hang_up))
        return made[-1]

    yield _make
    for fake in made:
        fake.close()


def test_events_that_arrive_before_wait_event_are_kept(fake_adapter):
    event = b'{"seq": 1, "type": "event", "event": "debugpyAttach", "body": {"subProcessId": 7}}'
    other = b'{"seq": 2, "type": "event", "event": "output", "body": {"output": "x"}}'
    # Split across writes, as TCP may deliver it.
    fake = fake_adapter([_frame(other), _frame(event)[:10], _frame(event)[10:]])
    conn = DapConnection(HOST, fake.port)
    try:
        time.sleep(0.2)  # both events are in before anyone waits
        message = conn.wait_event("debugpyAttach", timeout=1)
        assert message["body"] == {"subProcessId": 7}
        with pytest.raises(DapError, match="no 'debugpyAttach' event"):
            conn.wait_event("debugpyAttach", timeout=0.1)  # consumed
        assert conn.wait_event("output", lambda m: m["body"]["output"] == "x", timeout=0)["seq"] == 2
    finally:
        conn.close()


def test_request_without_response_times_out(fake_adapter):
    conn = DapConnection(HOST, fake_adapter([]).port)
    try:
        started = time.monotonic()
        with pytest.raises(DapError, match="no response to 'threads' within 0.3 s"):
            conn.request("threads", timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2
    finally:
        conn.close()


def test_unknown_reverse_request_gets_a_failure_response(fake_adapter):
    reverse = b'{"seq": 5, "type": "request", "command": "runInTerminal", "arguments": {}}'
    fake = fake_adapter([_frame(reverse)])
    conn = DapConnection(HOST, fake.port)
    try:
        assert fake.got_data.wait(2)
        time.sleep(0.05)
        assert b'"request_seq": 5' in fake.received
        assert b'"success": false' in fake.received
    finally:
        conn.close()


def test_adapter_hanging_up_fails_pending_requests_at_once(fake_adapter):
    fake = fake_adapter([], hang_up=True)
    conn = DapConnection(HOST, fake.port)
    try:
        started = time.monotonic()
        with pytest.raises(DapError, match="connection closed before the response to 'initialize'"):
            conn.request("initialize", {}, timeout=5)
        assert time.monotonic() - started < 1
        with pytest.raises(DapError, match="closed"):
            conn.send("threads")
    finally:
        conn.close()
