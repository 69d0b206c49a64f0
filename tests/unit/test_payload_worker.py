"""A gunicorn worker's parts of the payload (payload/worker/), each in a real process: the hot
patcher answering the host's patch request on its own pipe, and the boot hooked into
gunicorn's Worker.load_wsgi (ready: state.json and the "ready" line on the master's control
pipe; failed: the traceback kept for the master's 503 answers). The host's side is amldebug's
own (engine/channel.py, engine/statefile.py)."""

from __future__ import annotations

import os
import textwrap

import pytest

from amldebug.engine import channel
from amldebug.engine.statefile import StateFile, Status
from amldebug.payload.common import protocol

from . import payload_process

SCORE = textwrap.dedent('''\
    model = None


    def init():
        global model
        model = {"scale": 3}


    def run(raw):
        return raw * model["scale"]
''')

# A worker that loaded score.py as the server does (ENTRY is what worker/boot.py notes), with
# the patcher started; "call N" runs run(N) in it.
PATCHER = r"""
import importlib.util
path, workers = sys.argv[2], int(sys.argv[3])
spec = importlib.util.spec_from_file_location("entry_module", path)
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)
entry.init()
patcher = module("worker.patcher")
module("common.state").Shared.workers = workers
with open(path) as f:
    patcher.ENTRY.update(globals=entry.init.__globals__, filename=path, source=f.read())
patcher.Patcher.start()
say("serving", os.getpid())
for line in sys.stdin:
    say(entry.run(int(line.split()[1])), entry.model is not None)
"""


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def _patch(state, pid: int, seq: str) -> protocol.PatchAnswer:
    assert channel.send(state / protocol.patch_pipe(pid), protocol.PatchRequest.new(seq=seq).encode())
    answer = channel.wait_answer(state / protocol.PATCH_ANSWER, lambda a: a.seq == seq, 10,
                                 record=protocol.PatchAnswer)
    assert answer is not None, "the worker did not answer"
    return answer


def _call(child, n: int) -> list[str]:
    child.stdin.write(f"call {n}\n")
    child.stdin.flush()
    return child.stdout.readline().split()


def test_the_patcher_swaps_run_on_the_hosts_request_and_declines_an_init_change(state, tmp_path):
    score = tmp_path / "score.py"
    score.write_text(SCORE)
    child = payload_process.start(PATCHER, state, str(score), "1")
    try:
        word, pid = child.stdout.readline().split()
        assert word == "serving" and channel.reachable(state / protocol.patch_pipe(int(pid)))
        assert _call(child, 2) == ["6", "True"]
        score.write_text(SCORE.replace('raw * model["scale"]', 'raw * model["scale"] + 1'))
        answer = _patch(state, int(pid), "p1")
        assert answer.ok and list(answer.functions) == ["run"] and answer.pid == int(pid)
        assert answer.traced is False and answer.ms >= 0
        assert _call(child, 2) == ["7", "True"]  # the new run(), the model init() loaded kept
        score.write_text(SCORE.replace('"scale": 3', '"scale": 4'))
        answer = _patch(state, int(pid), "p2")
        assert not answer.ok and answer.reason == "init() changed"
        assert _call(child, 2) == ["7", "True"]  # the last good code keeps serving
    finally:
        payload_process.stop(child)


def test_a_worker_among_several_declines_the_patch(state, tmp_path):
    score = tmp_path / "score.py"
    score.write_text(SCORE)
    child = payload_process.start(PATCHER, state, str(score), "2")
    try:
        pid = int(child.stdout.readline().split()[1])
        score.write_text(SCORE.replace('raw * model["scale"]', 'raw * model["scale"] + 1'))
        answer = _patch(state, pid, "p3")
        assert not answer.ok and answer.reason == "WORKER_COUNT=2: only one worker could be patched"
    finally:
        payload_process.stop(child)


# gunicorn's Worker.load_wsgi as the payload hooks it, with the server's own loading replaced
# by "ok" (init() took 12.5 ms) or "fail" (init() raised, and the server exits the worker).
BOOT = r"""
import signal
boot = module("worker.boot")
shared = module("common.state").Shared
read_end, shared.control_fd = os.pipe()
signal.signal(signal.SIGURG, lambda *a: None)  # the master's inbox handler, inherited by the fork
shared.generation = 4

def load(worker):
    if sys.argv[2] == "fail":
        try:
            raise ImportError("No module named 'sklearn'")
        except ImportError:
            sys.exit(3)
    boot.ENTRY["init_time_ms"] = 12.5
    return "app"

try:
    say("loaded", boot.load_wsgi(load, None))
except SystemExit as exc:
    say("exit", exc.code)
say("sigurg", signal.getsignal(signal.SIGURG) == signal.SIG_DFL)
os.close(shared.control_fd)
say("control", repr(os.read(read_end, 100).decode()))
"""


def test_a_booted_worker_says_ready_to_the_host_and_to_the_master(state):
    child = payload_process.start(BOOT, state, "ok")
    try:
        lines = child.stdout.read().splitlines()
    finally:
        payload_process.stop(child)
    assert [line for line in lines if not line.startswith("amldebug:")] == [
        "loaded app", "sigurg True", "control " + repr(protocol.ready_line(4) + "\n")]
    assert protocol.log_line(f"worker {child.pid} ready") in lines
    record = StateFile(state.parent).read()
    assert (record.status, record.generation, record.pid, record.init_ms) == (Status.READY, 4, child.pid, 12.5)
    assert not (state / protocol.FAILURE_FILE).exists()


def test_a_worker_that_fails_to_boot_keeps_the_users_error_for_the_503_answers(state):
    child = payload_process.start(BOOT, state, "fail")
    try:
        lines = child.stdout.read().splitlines()
    finally:
        payload_process.stop(child)
    assert lines == ["exit 3", "sigurg True", "control ''"]  # no "ready" for the master
    failure = (state / protocol.FAILURE_FILE).read_text()
    assert "ImportError: No module named 'sklearn'" in failure and "SystemExit" not in failure
    assert StateFile(state.parent).read() == {}  # the master says "failed" once it reaps the worker


def test_the_payload_keeps_its_packages_off_sys_path(tmp_path):
    """The user's code must not find our common, master or worker packages (launch.py takes
    its folder off sys.path; the server still finds its own modules)."""
    code = ("import sys, importlib.util\n"
            "print(importlib.util.find_spec('common') is None, importlib.util.find_spec('master') is None)\n")
    server = tmp_path / "azmlinfsrv"
    server.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(protocol.ENV_PREFIX)}
    env.update({protocol.ENV_SERVER: str(server), protocol.ENV_PREIMPORT: protocol.OFF})
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(payload_process.PAYLOAD / protocol.LAUNCHER)], capture_output=True,
                            text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "True True"
