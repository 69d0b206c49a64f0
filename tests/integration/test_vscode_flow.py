"""The F5 workflow pieces against real runs: the task's problem matcher against what
amldebug really prints, `init` projects that check and serve in both runtimes, `demo`."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from amldebug import vscode
from amldebug.runtime.registry import get_service
from amldebug.watch import ReloadLoop
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker


def _task(workspace, name):
    tasks = vscode.parse_jsonc((workspace / ".vscode" / "tasks.json").read_text())
    return next(t for t in tasks["tasks"] if t["label"] == f"amldebug: {name}")


def test_problem_matcher_matches_what_amldebug_prints(capsys, target, workspace, service_name):
    code, _, err = amldebug(capsys, "attach", "sample", *target, "--model-dir", "sample/model",
                            "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    matcher = _task(workspace, service_name)["problemMatcher"]
    begins = re.compile(matcher["background"]["beginsPattern"])
    ends = re.compile(matcher["background"]["endsPattern"])
    lines = err.splitlines()
    first_begin = next(i for i, line in enumerate(lines) if begins.search(line))
    first_end = next(i for i, line in enumerate(lines) if ends.search(line))
    assert first_begin < first_end
    launch = vscode.parse_jsonc((workspace / ".vscode" / "launch.json").read_text())
    config = next(c for c in launch["configurations"] if c["name"] == f"amldebug: {service_name}")
    assert config["preLaunchTask"] == f"amldebug: {service_name}"

    # A syntax error saved while the watcher runs: the line VS Code's Problems panel reads.
    reports = []
    loop = ReloadLoop(get_service(service_name), report=reports.append)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    time.sleep(0.3)
    score = workspace / "sample" / "score.py"
    lines = score.read_text().splitlines()
    broken_line = next(i for i, line in enumerate(lines, 1) if line.startswith("def run("))
    lines[broken_line - 1] = "def run(raw_data:"
    score.write_text("\n".join(lines) + "\n")
    deadline = time.monotonic() + 10
    while not reports and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop.set()
    thread.join(5)
    problem = re.compile(matcher["pattern"]["regexp"]).match(reports[0])
    assert problem, reports
    assert problem.group(matcher["pattern"]["file"]) == str(score)
    assert int(problem.group(matcher["pattern"]["line"])) == broken_line
    assert problem.group(matcher["pattern"]["severity"]) == "error"


def test_the_task_command_starts_the_service_as_f5_would(target, workspace, service_name, capsys):
    code, _, err = amldebug(capsys, "vscode", "sample", *target, "--model-dir", "sample/model",
                            "--name", service_name, "--no-wait", "--port", "17901", "--debug-port", "17902")
    assert code == 0, err
    task = _task(workspace, service_name)
    ends = re.compile(task["problemMatcher"]["background"]["endsPattern"])
    proc = subprocess.Popen([task["command"], *task["args"]], cwd=workspace, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if ends.search(line):
                break
        else:
            pytest.fail(f"the task never printed its end pattern: {seen}")
        answer = requests.post("http://127.0.0.1:17901/score", data='{"data": [1]}',
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.json()["result"] == [3]
    finally:
        proc.send_signal(signal.SIGINT)  # as VS Code's "terminate task"
        proc.wait(30)
    with pytest.raises(Exception, match=f"no amldebug service named '{service_name}'"):
        get_service(service_name)


@pytest.mark.parametrize("runtime", ["container", "process"])
def test_init_project_checks_and_serves(capsys, test_images, tmp_path, monkeypatch, runtime):
    monkeypatch.chdir(tmp_path)
    name = "t-init-" + runtime
    code, out, err = amldebug(capsys, "init", name, "--image", test_images["azmlinfsrv"])
    assert code == 0, err
    project = tmp_path / name
    monkeypatch.chdir(project)
    code, out, err = amldebug(capsys, "check")
    assert code == 0, out + err
    assert out.count("PASS") == 5
    extra = ["--runtime", "process"] if runtime == "process" else []
    code, out, err = amldebug(capsys, "attach", "--detach", "--no-wait", *extra)
    try:
        assert code == 0, err
        code, out, err = amldebug(capsys, "score", "--file", "sample-request.json")
        assert code == 0, err
        assert json.loads(out) == {"predictions": [5.5, 10.0]}
    finally:
        amldebug(capsys, "down", "--name", name)


def _demo(tmp_path, *args):
    env = dict(os.environ, AMLDEBUG_CACHE=str(tmp_path / "cache"))
    return subprocess.Popen([sys.executable, "-m", "amldebug", "demo", "--port", "18001", "--debug-port", "18002",
                             *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("kind", ["default", "container"])
def test_demo_serves_until_ctrl_c(tmp_path, test_images, kind):
    args = ["--image", test_images["azmlinfsrv"]] if kind == "container" else []
    proc = _demo(tmp_path, *args)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "is ready for a debugger" in line or not line:
                break
        text = "".join(lines)
        if kind == "container":
            assert f"using the container runtime: image '{test_images['azmlinfsrv']}' is present" in text
        else:  # no image named: the newest local image with the server, named
            assert "amldebug demo: using the container runtime: image '" in text
            assert "' is the newest local image with azmlinfsrv" in text
        assert "is ready for a debugger on localhost:18002" in text
        answer = requests.post("http://127.0.0.1:18001/score", data=(tmp_path / "amldebug-demo" /
                                                                   "sample-request.json").read_text(),
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.json() == {"predictions": [5.5, 10.0]}
        assert (tmp_path / ".vscode" / "launch.json").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopping service 'amldebug-demo'" in err
    assert "scoring URI: http://localhost:18001/score" in out


def _listening_addresses(port: int) -> set:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_foreground_attach_follows_a_model_change_and_stays_local(workspace, tmp_path):
    """A model save recreates the service (update()); the foreground command keeps serving
    and streaming, and the process runtime listens on 127.0.0.1 only."""
    env = dict(os.environ, AMLDEBUG_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "amldebug", "attach", "sample", "--runtime", "process",
                             "--model-dir", "sample/model", "--name", "t-foreground", "--no-wait",
                             "--port", "18101", "--debug-port", "18102"],
                            cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def wait_for(text):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if text in line:
                    return line
                if not line and proc.poll() is not None:
                    break
            pytest.fail(f"never saw {text!r}")

        wait_for("is ready for a debugger")
        wait_for("save to reload")
        assert _listening_addresses(18101) == {"127.0.0.1"}
        assert _listening_addresses(18102) == {"127.0.0.1"}
        (workspace / "sample" / "model" / "weights.json").write_text('{"scale": 5}')
        wait_for("service recreated")
        answer = requests.post("http://127.0.0.1:18101/score", data='{"data": [1]}',
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.json()["result"] == [5]
        assert proc.poll() is None  # still in the foreground, following the new service
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0
    assert _listening_addresses(18101) == set()
