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
from amldebug.session import get_service
from amldebug.watch import ReloadLoop
from tests.integration.helpers import Request, amldebug
from tests.support.dap import DebugClient
from tests.support.vscode_task import TaskRun, resolve

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
    while not any(ends.search(r) for r in reports) and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop.set()
    thread.join(5)
    # Between the reload's begin and end lines, as the Problems panel needs (contract C1).
    assert [bool(begins.search(r)) for r in reports] == [True, False, False], reports
    assert ends.search(reports[-1]), reports
    problem = re.compile(matcher["pattern"]["regexp"]).match(reports[1])
    assert problem, reports
    assert problem.group(matcher["pattern"]["file"]) == str(score)
    assert int(problem.group(matcher["pattern"]["line"])) == broken_line
    assert problem.group(matcher["pattern"]["severity"]) == "error"


def _matcher(task):
    background = task["problemMatcher"]["background"]
    return background["beginsPattern"], background["endsPattern"], task["problemMatcher"]["pattern"]


def _classify(task, line):
    """What VS Code's background collector does with a line, in its order (problemCollectors.ts:
    the begins pattern, then the ends pattern, then the problem pattern)."""
    begins, ends, pattern = _matcher(task)
    if re.search(begins, line):
        return "begin"
    if re.search(ends, line):
        return "end"
    return "problem" if re.search(pattern["regexp"], line) else None


def test_the_task_command_starts_the_service_as_f5_would(target, workspace, service_name, capsys):
    code, _, err = amldebug(capsys, "vscode", "sample", *target, "--model-dir", "sample/model",
                            "--name", service_name, "--no-wait", "--port", "17901", "--debug-port", "17902")
    assert code == 0, err
    task = _task(workspace, service_name)
    begins, ends, _ = _matcher(task)
    run = TaskRun(task, workspace)
    try:
        _, first = run.next_line(60)
        assert re.search(begins, first), first  # VS Code sees the start at once (and is active from the start)
        run.wait_for(ends, 90)
        answer = requests.post("http://127.0.0.1:17901/score", data='{"data": [1]}',
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.json()["result"] == [3]
        assert not [line for _, line in run.lines if TaskRun.has_escape_codes(line)]
    finally:
        code = run.stop()
    assert code == 0, "\n".join(line for _, line in run.lines)
    with pytest.raises(Exception, match=f"no amldebug service named '{service_name}'"):
        get_service(service_name)


def _save_and_read(run, task, path, text, timeout=60):
    """Save ``text`` to ``path`` as an editor does, then the amldebug lines of the reload up to its end."""
    path.write_text(text)
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = run.next_line(deadline - time.monotonic())
        if item is None:
            break
        kind = _classify(task, item[1])
        if kind:
            seen.append((kind, item[1]))
        if kind == "end":
            return seen
    pytest.fail(f"the reload never ended: {seen}\n" + _dump(run))


def _dump(run):
    return "\n".join(f"{at:.3f} {chunk!r}" for at, chunk in run.raw[-30:])


def test_a_bad_save_then_a_good_one_begin_report_end_then_begin_end(workspace, service_name, server_image, capsys):
    """What VS Code's Problems panel needs: a syntax error between a begin and an end line, and
    the next good save's begin/end pair, which clears it (VS Code clears only at an end)."""
    code, _, err = amldebug(capsys, "vscode", "sample", "--image", server_image, "--model-dir", "sample/model",
                            "--name", service_name, "--no-wait", "--port", "17911", "--debug-port", "17912")
    assert code == 0, err
    task = _task(workspace, service_name)
    # PYTHONUNBUFFERED (common in dev containers) made print() write a line's text and its
    # newline separately, so the streamed log spliced into amldebug's own lines and VS Code
    # missed a begin or an end line: the CLI now writes each line whole.
    run = TaskRun(task, workspace, extra_env={"PYTHONUNBUFFERED": "1"})
    score = workspace / "sample" / "score.py"
    good = score.read_text()
    try:
        run.wait_for(_matcher(task)[1], 90)
        run.wait_for("save to reload", 30)
        lines = good.splitlines()
        broken_line = next(i for i, line in enumerate(lines, 1) if line.startswith("def run("))
        lines[broken_line - 1] = "def run(raw_data:"

        bad = _save_and_read(run, task, score, "\n".join(lines) + "\n")
        fixed = _save_and_read(run, task, score, good.replace("return", "return  ", 1))
    finally:
        run.stop()
    assert [kind for kind, _ in bad] == ["begin", "problem", "end"], _dump(run)
    problem = re.match(task["problemMatcher"]["pattern"]["regexp"], bad[1][1])
    assert problem.group(task["problemMatcher"]["pattern"]["file"]) == str(score)
    assert int(problem.group(task["problemMatcher"]["pattern"]["line"])) == broken_line
    assert [kind for kind, _ in fixed] == ["begin", "end"], fixed


# F5 in a project that names no image reaches the image discovery of contract C2 (the cli
# branch's engine/discover.py); until that is merged the task ends in "no image given".
def _f5_request(folder, name, debug_port, request_file):
    """What F5 does once the task is ready, then a request: attach with the launch.json entry
    (its pathMappings as VS Code resolves them), breakpoints in init() and run() of the local
    score.py. Returns where it stopped (path, line, function) each time, what the breakpoints
    were, and the answer."""
    launch = vscode.parse_jsonc((folder / ".vscode" / "launch.json").read_text())
    config = next(c for c in launch["configurations"] if c["name"] == f"amldebug: {name}")
    assert config["preLaunchTask"] == f"amldebug: {name}"
    mappings = [{key: resolve(value, folder, sys.executable) for key, value in m.items()}
                for m in config["pathMappings"]]
    score = folder / "score.py"
    lines = score.read_text().splitlines()
    init_line = next(i for i, text in enumerate(lines, 1) if 'model_dir = os.environ.get("AZUREML_MODEL_DIR")' in text)
    run_line = next(i for i, text in enumerate(lines, 1) if "prediction = predict(row)" in text)
    stops = []
    with DebugClient("127.0.0.1", debug_port, path_mappings=mappings, just_my_code=config["justMyCode"],
                     breakpoints={str(score): [init_line, run_line]}) as client:
        client.attach(timeout=30)
        stop = client.wait_stopped(60)  # the service held before init() for the debugger
        stops.append((stop.frames[0].path, stop.frames[0].line, stop.frames[0].name))
        client.continue_(stop)
        request = Request(get_service(name).scoring_uri, request_file.read_text())
        stop = client.wait_stopped(60)
        stops.append((stop.frames[0].path, stop.frames[0].line, stop.frames[0].name))
        client.set_breakpoints(str(score), [])  # run() is in a loop over the rows
        client.continue_(stop)
        answer = request.result(60).json()
    return stops, [(str(score), init_line, "init"), (str(score), run_line, "run")], answer


def _on_ports(task, port, debug_port):
    """The task with other ports than 5001/5678, which other sessions on a shared machine hold
    (the task passes --exact-ports: it fails rather than move)."""
    args = list(task["args"])
    args[args.index("--debug-port") + 1] = str(debug_port)
    return {**task, "args": [*args, "--port", str(port)]}


def _f5_starts_and_stops(folder, name, port, debug_port):
    """F5 in ``folder``: its task announces itself on the first line, gets ready, and VS Code
    then stops in init() and run() and gets the sample answer; never 'no image given'."""
    task = _on_ports(_task(folder, name), port, debug_port)
    run = TaskRun(task, folder)
    try:
        _, first = run.next_line(60)
        assert re.search(_matcher(task)[0], first), first
        run.wait_for(_matcher(task)[1], 120)
        stopped, breakpoints, answer = _f5_request(folder, name, debug_port, folder / "sample-request.json")
        assert stopped == breakpoints
        assert answer == {"predictions": [5.5, 10.0]}
    finally:
        code = run.stop()
    text = "\n".join(line for _, line in run.lines)
    assert "no image given" not in text and "image 'None'" not in text, text
    assert code == 0, text


def test_f5_in_a_fresh_init_project_starts_a_service(tmp_path, test_images, capsys, monkeypatch):
    """`amldebug init` records no image; F5 must still start something (a local scoring image
    found as the probe checks it, or the process runtime), never 'no image given'."""
    monkeypatch.chdir(tmp_path)
    code, _, err = amldebug(capsys, "init", "t-f5-init")
    assert code == 0, err
    project = tmp_path / "t-f5-init"
    _f5_starts_and_stops(project, "t-f5-init", 17921, 17922)


def test_f5_in_the_demos_folder_starts_a_service(tmp_path, test_images, capsys, monkeypatch):
    """The folder `amldebug demo` writes is a project of its own: opened in VS Code, its F5 task
    starts the service again (after the demo itself was stopped)."""
    demo = _demo(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = demo.stderr.readline()
            if "is ready for a debugger" in line or not line:
                break
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    folder = tmp_path / "amldebug-demo"
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))  # the demo's, for the registry
    _f5_starts_and_stops(folder, "amldebug-demo", 17931, 17932)


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
            assert "' has azmlinfsrv (the newest local image that shows it)" in text
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
