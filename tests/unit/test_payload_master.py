"""The gunicorn master's parts of the payload (payload/master/), each in a real process with real
pipes, signals and sockets: the control pipe, the inbox relay, the warm standby's bookkeeping
(a forked standby at its gate) and the HTTP 503 responder while no worker is alive. The host's
side is amldebug's own (engine/channel.py, engine/statefile.py)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
import time

import pytest

from amldebug.engine import channel
from amldebug.engine.statefile import StateFile, Status
from amldebug.payload.common import protocol

from . import payload_process

CONTROL = r"""
import signal
control = module("master.control")
standby = module("master.standby").Standby
shared = module("common.state").Shared
signal.signal(signal.SIGHUP, lambda signum, frame: say("SIGHUP"))
def wakeup():
    say("wakeup", standby.wanted)
    standby.wanted = False
control.start(wakeup)
if len(sys.argv) > 2:
    module("master.inbox").start()
say("started", shared.control_fd is not None)
for line in sys.stdin:  # the test sets the generation the master serves
    shared.generation = int(line)
    say("generation", shared.generation)
"""


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def _answer(child) -> list[str]:
    return child.stdout.readline().split()


def test_the_control_pipe_reloads_answers_status_and_takes_a_workers_ready(state):
    child = payload_process.start(CONTROL, state)
    try:
        assert _answer(child) == ["started", "True"]
        control = state / protocol.CONTROL_PIPE
        assert channel.reachable(control)
        # "status SEQ": is a debugger attached? (no debugpy in this process: no)
        assert channel.send(control, protocol.status_line("s1"))
        answer = channel.wait_answer(state / protocol.MASTER_ANSWER, lambda a: a.seq == "s1", 5,
                                     record=protocol.MasterAnswer)
        assert answer is not None and answer.attached is False
        # "reload": what SIGHUP does (gunicorn's own handler, in the server)
        assert channel.send(control, protocol.reload_line())
        assert _answer(child) == ["SIGHUP"]
        # a worker of the generation being served is ready: fork a standby after it
        assert channel.send(control, protocol.ready_line(0))
        assert _answer(child) == ["wakeup", "True"]
        # a "ready" of an earlier generation (a save already started the next reload): no standby
        child.stdin.write("2\n")
        child.stdin.flush()
        assert _answer(child) == ["generation", "2"]
        assert channel.send(control, protocol.ready_line(1))
        assert _answer(child) == ["wakeup", "False"]
        assert channel.send(control, "nonsense") and channel.send(control, protocol.ready_line(2))
        assert _answer(child) == ["wakeup", "True"]
    finally:
        payload_process.stop(child)


def test_a_line_left_in_the_inbox_reaches_the_control_pipe_on_sigurg(state):
    """Docker Desktop's path: the host cannot open the pipe; the master relays the line."""
    child = payload_process.start(CONTROL, state, "with the inbox")
    try:
        assert _answer(child) == ["started", "True"]
        assert (state / protocol.INBOX).is_dir()
        seq = channel.post(state, protocol.CONTROL_PIPE, protocol.status_line("s2"))
        child.send_signal(getattr(signal, protocol.INBOX_SIGNAL))
        answer = channel.wait_answer(state / protocol.MASTER_ANSWER, lambda a: a.seq == "s2", 5,
                                     record=protocol.MasterAnswer, posted=seq)
        assert answer is not None and answer.attached is False
        lost = channel.post(state, protocol.patch_pipe(1), protocol.PatchRequest.new(seq="s3").encode())
        child.send_signal(getattr(signal, protocol.INBOX_SIGNAL))
        with pytest.raises(channel.Undelivered):  # no worker 1 reads its pipe: said at once
            channel.wait_answer(state / protocol.PATCH_ANSWER, lambda a: True, 5, posted=lost)
        assert list((state / protocol.INBOX).iterdir()) == []
    finally:
        payload_process.stop(child)


# --- the standby, with real forks: the master's bookkeeping and the worker's gate -------------


@pytest.fixture
def payload(state, monkeypatch):
    """The payload loaded in this process as the server loads it (its class state reset after)."""
    sys.path.insert(0, str(payload_process.PAYLOAD))
    try:
        import launch
    finally:
        sys.path.pop(0)
    monkeypatch.setenv(protocol.ENV_STATE, str(state))
    standby = launch.module("master.standby").Standby
    shared = launch.module("common.state").Shared
    responder = launch.module("master.responder").FailureResponder
    yield launch.module
    responder.stop()
    standby.discard()
    standby.wanted, shared.generation, shared.gate_fds = False, 0, None


class Worker:
    """What gunicorn keeps of a worker (its heartbeat file is all the standby touches)."""

    class tmp:
        @staticmethod
        def notify():
            pass


class Arbiter:
    """gunicorn's Arbiter as the standby uses it: a real fork per worker."""

    num_workers = 1

    def __init__(self, module, serving: int):
        self.module = module
        self.WORKERS = {serving: Worker()}
        self.killed: list[tuple[int, int]] = []
        self.LISTENERS: list = []

    def spawn_worker(self) -> int:
        pid = os.fork()
        if pid == 0:  # the worker: wait at the gate, then say which generation it serves
            code = 99
            try:
                gate = self.module("worker.gate")
                gate.gate()
                code = 10 + self.module("common.state").Shared.generation
            finally:
                os._exit(code)
        self.WORKERS[pid] = Worker()
        return pid

    def kill_worker(self, pid: int, sig: int) -> None:
        self.killed.append((pid, sig))


def _exit_code(pid: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"worker {pid} did not exit")


def _standby_record(state, pid: int) -> protocol.StandbyRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            record = protocol.StandbyRecord.decode((state / protocol.STANDBY_FILE).read_text())
        except OSError:
            record = None
        if record is not None and record.pid == pid:
            return record
        time.sleep(0.01)
    raise AssertionError("the standby did not say it waits")


def test_a_standby_is_forked_after_a_ready_and_its_gate_opens_on_the_reload(payload, state):
    standby = payload("master.standby").Standby
    shared = payload("common.state").Shared
    arbiter = Arbiter(payload, serving=os.getpid())
    standby.maybe_spawn(arbiter)
    assert standby.current is None  # nobody said ready yet
    standby.ready("1")  # a stale generation
    standby.maybe_spawn(arbiter)
    assert standby.current is None
    standby.ready("0")
    standby.maybe_spawn(arbiter)
    pid = standby.current[0]
    assert list(arbiter.WORKERS) == [os.getpid()]  # kept out of gunicorn's count until it serves
    assert _standby_record(state, pid).generation == 0
    standby.maybe_spawn(arbiter)
    assert standby.current[0] == pid  # one standby at a time
    shared.generation = 3  # the reload
    assert standby.activate(arbiter) == pid
    assert _exit_code(pid) == 13  # it left the gate serving generation 3
    assert pid in arbiter.WORKERS and arbiter.killed == [(os.getpid(), signal.SIGTERM)]
    assert standby.current is None and standby.activate(arbiter) is False


def test_a_discarded_standby_exits_and_none_is_forked_with_more_workers_or_when_turned_off(payload, state,
                                                                                          monkeypatch):
    standby = payload("master.standby").Standby
    arbiter = Arbiter(payload, serving=os.getpid())
    standby.ready(None)  # an older worker's "ready" with no generation
    standby.maybe_spawn(arbiter)
    pid = standby.current[0]
    _standby_record(state, pid)
    standby.discard()
    assert _exit_code(pid) == 0 and standby.current is None
    arbiter.num_workers = 2
    standby.ready("0")
    standby.maybe_spawn(arbiter)
    assert standby.current is None
    arbiter.num_workers = 1
    monkeypatch.setenv(protocol.ENV_STANDBY, protocol.OFF)
    standby.maybe_spawn(arbiter)
    assert standby.current is None


# --- HTTP 503 while no worker serves ---------------------------------------------------------


def _dead_child() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(3)  # "Worker failed to boot"
    os.waitpid(pid, 0)
    return pid


def _get(port: int, body: bytes = b"") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST" if body else "GET", "/score", body=body or None)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_the_master_answers_503_with_the_error_while_no_worker_is_alive(payload, state):
    boot = payload("worker.boot")
    master = payload("master.arbiter")
    responder = payload("master.responder").FailureResponder
    try:
        try:
            raise ValueError("model file missing")
        except ValueError:
            raise SystemExit(3)  # as the server ends a worker whose init() failed
    except SystemExit as exc:
        boot.record_failure(exc)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    arbiter = Arbiter(payload, serving=_dead_child())
    arbiter.LISTENERS = [listener]
    try:
        master.boot_failed(arbiter)
        assert arbiter.WORKERS == {}  # the dead worker is dropped
        assert StateFile(state.parent).read().status == Status.FAILED  # the host reads it as such
        status, text = _get(port, body=b'{"data": [1]}')
        assert status == 503
        assert "no worker can serve" in text and "ValueError: model file missing" in text
        assert _get(port)[0] == 503  # and again
        responder.stop()  # a reload: the new worker accepts from here on
        assert responder.current is None
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.settimeout(0.5)
            with pytest.raises(socket.timeout):
                conn.recv(100)  # queued for a worker: nobody answers in its place
    finally:
        listener.close()


def test_a_live_worker_keeps_serving_without_the_503_responder(payload, state):
    master = payload("master.arbiter")
    responder = payload("master.responder").FailureResponder
    arbiter = Arbiter(payload, serving=os.getpid())  # another worker (WORKER_COUNT > 1) is alive
    master.boot_failed(arbiter)
    assert list(arbiter.WORKERS) == [os.getpid()] and responder.current is None
