"""Hardening against a real engine: nobody else at the debugger, every way a session ends
removes what it started, a failed init() answers, nothing secret or open on disk, and the
process runtime's model is a real folder."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from amldebug.engine import docker as engine
from amldebug.engine.statefile import state_folder
from amldebug.session import get_service
from tests.integration.helpers import Watching, amldebug
from tests.support.dap import initialize_roundtrip

pytestmark = pytest.mark.docker

BASE_IMAGE = "amldebug-test/base:bookworm"

# Run in a second container on the engine: try the service's debug port (a DAP initialize,
# the first step of running code through the debugger) and its scoring port, by IP.
ATTACKER = r"""
import json, socket, sys
ip, debug_port, scoring_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"seq": 1, "type": "request", "command": "initialize", "arguments": {"adapterID": "x"}}).encode()
result = {}
for what, port, payload in (("debug", debug_port, b"Content-Length: %d\r\n\r\n" % len(body) + body),
                            ("scoring", scoring_port, b"GET / HTTP/1.0\r\n\r\n")):
    try:
        s = socket.create_connection((ip, port), timeout=3)
        s.settimeout(3)
        s.sendall(payload)
        data = s.recv(200)
        result[what] = "answered: %r" % data[:60] if data else "closed"
    except OSError as exc:
        result[what] = "refused: %s" % exc
print(json.dumps(result))
"""


def _attack(client, ip: str, debug_port: int, scoring_port: int, **run) -> dict:
    box = client.containers.run(BASE_IMAGE, ["python3", "-c", ATTACKER, ip, str(debug_port), str(scoring_port)],
                                detach=True, labels={engine.LABEL_KIND: "test-attacker"}, **run)
    try:
        box.wait(timeout=60)
        return json.loads(box.logs().decode().strip().splitlines()[-1])
    finally:
        box.remove(force=True)


def test_other_containers_cannot_reach_the_debug_or_scoring_port(capsys, docker_client, server_image, workspace,
                                                                  service_name):
    code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                            "--model-dir", "sample/model", "--detach", "--no-wait")
    assert code == 0, err
    service = get_service(service_name)
    box = docker_client.containers.get(service.container_id)
    networks = box.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"amldebug-{service_name}"]  # a network of its own
    ip = next(iter(networks.values()))["IPAddress"]
    # The host still reaches both ports on 127.0.0.1 ...
    assert initialize_roundtrip("127.0.0.1", service.debug_port) > 0
    assert requests.get(f"http://127.0.0.1:{service.port}/", timeout=5).status_code == 200
    # ... a container on the default bridge, where the attack was shown, does not:
    result = _attack(docker_client, ip, 5678, 5001)
    assert result["debug"].startswith("refused"), result
    assert result["scoring"].startswith("refused"), result
    # ... and neither does one on a user network, nor one by the host's bridge gateway address.
    gateway = next(iter(networks.values()))["Gateway"]
    result = _attack(docker_client, gateway, service.debug_port, service.port)
    assert result["debug"].startswith("refused") and result["scoring"].startswith("refused"), result
    # Removing the service removes its network.
    assert amldebug(capsys, "down", service_name)[0] == 0
    assert not docker_client.networks.list(names=[f"amldebug-{service_name}"])


def test_the_attack_would_work_without_the_network_of_its_own(docker_client, server_image):
    """The check above can fail: the same attacker reaches a container on the default bridge."""
    target = docker_client.containers.run(BASE_IMAGE, ["python3", "-m", "http.server", "5001"], detach=True,
                                          labels={engine.LABEL_KIND: "test-attacker"})
    try:
        target.reload()
        ip = target.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 20
        while True:
            result = _attack(docker_client, ip, 5678, 5001)
            if result["scoring"].startswith("answered") or time.monotonic() > deadline:
                break
        assert result["scoring"].startswith("answered"), result
    finally:
        target.remove(force=True)


# -- every way a session ends ------------------------------------------------------------

def _start_foreground(workspace: Path, name: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "amldebug", "attach", "sample", "--name", name, "--model-dir", "sample/model",
         "--no-wait", *extra],
        cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})


def _leftovers(client, name: str) -> list[str]:
    found = [f"container {b.name} ({b.status})" for b in
             client.containers.list(all=True, filters={"label": f"{engine.LABEL_SERVICE}={name}"})]
    found += [f"network {n.name}" for n in client.networks.list(names=[f"amldebug-{name}"])]
    found += [f"process {pid}" for pid in _server_processes(name)]
    if state_folder(name).exists():
        found.append(f"state folder {state_folder(name)}")
    return found


def _server_processes(name: str) -> list[int]:
    """Local server processes of service ``name`` (the process runtime)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"AMLDEBUG_SERVICE={name}\0".encode() in environ:
            pids.append(int(entry.name))
    return pids


def _wait_gone(client, name: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = _leftovers(client, name)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


@pytest.mark.parametrize("runtime", ["container", "process"])
@pytest.mark.parametrize("signame", sorted(SIGNALS))
def test_a_signal_at_any_moment_of_a_session_leaves_nothing(docker_client, server_image, workspace, runtime,
                                                             signame):
    """Each signal at several moments: during start-up (before, around and after the
    container's create and start) and while the session serves."""
    target = ["--image", server_image] if runtime == "container" else ["--runtime", "process"]
    rng = random.Random(f"{runtime}-{signame}")
    moments = [0.2, 0.6, 1.0, 1.5, 2.2] if runtime == "container" else [0.2, 0.5, 0.9, 1.4]
    moments = [m + rng.uniform(0, 0.2) for m in moments] + ["ready"]
    for number, moment in enumerate(moments):
        name = f"t-sig-{runtime[0]}{signame[3:].lower()}{number}-{os.getpid() % 1000}"
        # PYTHONFAULTHANDLER: a session that does not end is made to print where it hangs (SIGABRT)
        proc = _start_foreground(workspace, name, *target, env={"PYTHONFAULTHANDLER": "1"})
        try:
            if moment == "ready":
                _wait_line(proc, "is ready for a debugger", 60)
            else:
                time.sleep(moment)
            signum = SIGNALS[signame]
            proc.send_signal(signum)
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                pytest.fail(f"{signame} at {moment}: still running after 60 s; it was at:\n"
                            f"{proc.communicate(timeout=30)[1][-6000:]}")
            err = proc.stderr.read()
            left = _wait_gone(docker_client, name)
            assert not left, f"{signame} at {moment}: left {left}; stderr: {err[-2000:]}"
            assert "internal error" not in err
            if moment == "ready" or "is ready for a debugger" in err:  # the usual end of a serving session
                assert code == 0 and f"amldebug: stopping service '{name}'" in err, (code, err[-2000:])
            elif code != -signum:  # (-N: the signal came before amldebug had set its handlers)
                assert code == 128 + signum and err.rstrip().endswith("interrupted"), (code, err[-2000:])
        finally:
            if proc.poll() is None:
                proc.kill()
            for box in engine.find_services(docker_client, name):
                engine.remove(box)


def _wait_line(proc: subprocess.Popen, text: str, timeout: float) -> list[str]:
    lines: list[str] = []
    done = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if text in line:
                done.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), f"no line with {text!r}: {''.join(lines)[-2000:]}"
    return lines


def test_status_marks_a_service_whose_foreground_attach_was_killed(capsys, docker_client, server_image,
                                                                   workspace, service_name):
    proc = _start_foreground(workspace, service_name, "--image", server_image)
    try:
        _wait_line(proc, "is ready for a debugger", 60)
        code, out, _ = amldebug(capsys, "status", "--name", service_name)
        assert code == 0 and "Running" in out and "Orphaned" not in out
        proc.kill()
        proc.wait(10)
        code, out, _ = amldebug(capsys, "status", "--name", service_name)
        assert code == 0 and "Orphaned" in out, out
        code, out, _ = amldebug(capsys, "status", "--json")
        assert {"name": service_name, "state": "Orphaned"}.items() <= next(
            s for s in json.loads(out) if s["name"] == service_name).items()
        assert amldebug(capsys, "down", service_name)[0] == 0
        assert not _wait_gone(docker_client, service_name)
    finally:
        if proc.poll() is None:
            proc.kill()


class EngineProxy:
    """A Unix socket in front of the real engine's: closing it makes the engine go away for
    whoever talks through it (the engine and its containers stay)."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path, self.target = path, target
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.sockets: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn = self.server.accept()[0]
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.sockets += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.running = False
        self.server.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.path.unlink(missing_ok=True)


def test_an_engine_that_goes_away_is_named_not_an_internal_error(docker_client, server_image, workspace,
                                                                 service_name, tmp_path):
    proxy = EngineProxy(tmp_path / "docker.sock")
    proc = _start_foreground(workspace, service_name, "--image", server_image,
                             env={"DOCKER_HOST": f"unix://{proxy.path}"})
    try:
        _wait_line(proc, "is ready for a debugger", 60)
        proxy.stop()
        assert proc.wait(60) == 3
        err = proc.stderr.read()
        assert "internal error" not in err
        assert "stopped answering" in err and "amldebug down --name" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.stop()


# -- a failed init() answers -------------------------------------------------------------

def test_a_failed_init_answers_503_with_the_error_and_the_next_good_save_serves(capsys, server_image, workspace,
                                                                                 service_name):
    code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                            "--model-dir", "sample/model", "--detach", "--no-wait")
    assert code == 0, err
    service = get_service(service_name)
    watcher = Watching(service)
    try:
        score = workspace / "sample" / "score.py"
        good = score.read_text()
        score.write_text(good.replace("    model = loaded  # marker: init-loaded",
                                      "    model = loaded  # marker: init-loaded\n    raise ValueError('no model today')"))
        watcher.wait_report("reload failed")
        started = time.monotonic()
        code, out, err = amldebug(capsys, "score", "--name", service_name, "--data", '{"data": [1]}')
        assert time.monotonic() - started < 10
        assert code == 4 and "HTTP 503" in err
        assert "ValueError: no model today" in err and 'score.py", line' in err
        code, out, _ = amldebug(capsys, "status", "--name", service_name)
        assert "Running (init failed)" in out
        assert requests.get(service.scoring_uri[:-len("/score")] + "/", timeout=5).status_code == 503
        score.write_text(good)
        watcher.wait_report("reloaded")
        code, out, err = amldebug(capsys, "score", "--name", service_name, "--data", '{"data": [1]}')
        assert code == 0 and '"version": "v1"' in out, err
    finally:
        watcher.stop()


# -- nothing secret, nothing open --------------------------------------------------------

def test_env_values_are_not_written_to_disk_and_state_is_private(capsys, docker_client, server_image, workspace,
                                                                  service_name, monkeypatch):
    secret = "s3cret-" + os.urandom(6).hex()
    monkeypatch.setenv("FROM_ENV", "from-the-environment")
    code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                            "--model-dir", "sample/model", "-e", f"API_KEY={secret}", "-e", "FROM_ENV",
                            "--detach", "--no-wait")
    assert code == 0, err
    service = get_service(service_name)
    box = docker_client.containers.get(service.container_id)
    assert secret not in json.dumps(box.labels)
    tasks = (workspace / ".vscode" / "tasks.json").read_text()
    assert secret not in tasks and '"API_KEY"' in tasks and '"FROM_ENV"' in tasks
    cache = Path(os.environ["AMLDEBUG_CACHE"])
    for path in cache.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # The service has the values, and a service found again (another amldebug process) knows them.
    assert engine.exec_run(box, ["sh", "-c", "echo $API_KEY $FROM_ENV"])[1].split() == [secret, "from-the-environment"]
    assert dict(get_service(service_name).spec.env)["API_KEY"] == secret
    # The state folder: ours only; the part the service writes, the container user's.
    folder = state_folder(service_name)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "run" / "state.json").stat().st_mode) == 0o644
    assert amldebug(capsys, "down", service_name)[0] == 0
    assert not folder.exists()


# -- the process runtime's model is a folder ---------------------------------------------

WALKING_SCORE = '''
import json
import os

files = None


def init():
    global files
    files = sorted(os.path.relpath(os.path.join(root, name), os.environ["AZUREML_MODEL_DIR"])
                   for root, _, names in os.walk(os.environ["AZUREML_MODEL_DIR"]) for name in names)
    files[0]  # IndexError when os.walk sees nothing, as score.py files that do this fail


def run(raw_data):
    return {"files": files}
'''


def test_process_runtime_model_folder_is_seen_by_os_walk(capsys, workspace, service_name):
    (workspace / "sample" / "score.py").write_text(WALKING_SCORE)
    code, _, err = amldebug(capsys, "attach", "sample", "--runtime", "process", "--name", service_name,
                            "--model-dir", "sample/model", "--detach", "--no-wait")
    assert code == 0, err
    answer = get_service(service_name).run({"data": []})
    assert answer == {"files": ["model/weights.json"]}


@pytest.mark.parametrize("runtime", ["container", "process"])
def test_a_replaced_foreground_session_leaves_the_replacement_whole(capsys, docker_client, server_image, workspace,
                                                                    service_name, runtime):
    """F5 while a terminal attach runs: the terminal's session sees its service replaced and
    ends; the replacement keeps its container or process, network, state folder and registry."""
    target = ["--image", server_image] if runtime == "container" else ["--runtime", "process"]
    first = _start_foreground(workspace, service_name, *target)
    try:
        _wait_line(first, "is ready for a debugger", 60)
        code, _, err = amldebug(capsys, "attach", "sample", *target, "--name", service_name,
                                "--model-dir", "sample/model", "--no-wait", "--detach")
        assert code == 0, err
        first.wait(60)  # it ends: its service is gone
        service = get_service(service_name)
        assert service.state == "Running"
        assert (state_folder(service_name) / "run" / "state.json").is_file()
        if runtime == "container":
            assert docker_client.networks.list(names=[f"amldebug-{service_name}"])
        else:
            assert (state_folder(service_name) / "process.json").is_file()
        assert service.reload().worker_pid  # the reload still finds its state file
        assert service.run({"data": [1]})["version"] == "v1"
    finally:
        if first.poll() is None:
            first.kill()
