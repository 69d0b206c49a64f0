"""What the demo's Ctrl-C and init's down leave behind (issue 10, section 7): no container,
no network, no process of the service. The demo runs as a real subprocess that gets a real
SIGINT; the engine and /proc are asked afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from amldebug.engine import docker as engine
from amldebug.engine.statefile import state_folder
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker


def _unique_folder(tmp_path: Path) -> Path:
    # The folder's name is the service's; "t-" lets the session fixture sweep a leftover.
    return tmp_path / f"t-{uuid.uuid4().hex[:8]}"


def _service_processes(name: str) -> list[str]:
    """Processes (pid and command line) whose environment says they serve ``name``."""
    wanted = f"AMLDEBUG_SERVICE={name}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            with open(entry / "stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:  # gone, or not ours to read
            continue
        if wanted in environ and not zombie:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _leftovers(client, name: str) -> dict:
    return {
        "containers": [c.name for c in client.containers.list(all=True,
                                                              filters={"label": f"{engine.LABEL_SERVICE}={name}"})],
        "networks": [n.name for n in client.networks.list() if name in n.name
                     or name in (n.attrs.get("Labels") or {}).values()],
        "processes": _service_processes(name),
    }


def _wait_clean(client, name: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = _leftovers(client, name)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


class Demo:
    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "amldebug", "demo", *args], cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=s, daemon=True)
                        for s in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_err(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no stderr line with {text!r} (exit {self.proc.poll()}):\n" + "\n".join(self.err[-40:]))

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _where(runtime: str, image: str) -> list[str]:
    return ["--runtime", runtime, *(["--image", image] if runtime == "container" else [])]


@pytest.mark.parametrize("runtime, signum", [("container", signal.SIGINT), ("process", signal.SIGINT),
                                             ("container", signal.SIGTERM), ("process", signal.SIGTERM),
                                             ("container", signal.SIGHUP)],
                         ids=["container-SIGINT", "process-SIGINT", "container-SIGTERM", "process-SIGTERM",
                              "container-SIGHUP"])
def test_demo_ctrl_c_leaves_nothing_behind(docker_client, server_image, tmp_path, runtime, signum):
    """Ctrl-C, VS Code ending the task (SIGTERM) or a closed terminal (SIGHUP) once it serves."""
    folder = _unique_folder(tmp_path)
    name = folder.name
    demo = Demo("--folder", str(folder), *_where(runtime, server_image), cwd=tmp_path)
    try:
        demo.wait_err(f"service '{name}' is ready for a debugger")
        uri = next(line.split()[-1] for line in list(demo.out) if line.startswith("scoring URI:"))
        assert requests.get(uri[: -len("/score")] + "/", timeout=10).status_code == 200
        running = _leftovers(docker_client, name)
        if runtime == "container":
            assert running["containers"] == [f"amldebug-{name}"], running
        else:
            assert running["processes"] and not running["containers"], running  # what is checked below exists

        demo.proc.send_signal(signum)
        code = demo.finish()
    finally:
        demo.kill()
    stderr = "\n".join(demo.err)
    assert f"amldebug: stopping service '{name}'" in stderr
    assert "Traceback" not in stderr, stderr
    # Ctrl-C once the service runs is how a session ends: 0 (130 is for an interrupted start).
    assert code == 0, f"exit {code}:\n{stderr[-2000:]}"
    assert _wait_clean(docker_client, name) == {"containers": [], "networks": [], "processes": []}
    with pytest.raises(requests.ConnectionError):
        requests.get(uri, timeout=5)
    assert not (state_folder(name) / "process.json").exists()


@pytest.mark.parametrize("runtime", ["container", "process"])
def test_ctrl_c_while_starting_leaves_nothing_behind(capsys, docker_client, server_image, tmp_path, runtime):
    """Ctrl-C while the service starts (init() still running): exit 130 and nothing left."""
    folder = _unique_folder(tmp_path)
    name = folder.name
    code, _, err = amldebug(capsys, "init", folder, "--image", server_image)
    assert code == 0, err
    score = folder / "score.py"
    text = score.read_text()
    assert "def init():\n" in text
    score.write_text("import time\n" + text.replace("def init():\n", "def init():\n    time.sleep(120)\n", 1))
    demo = Demo("--folder", str(folder), *_where(runtime, server_image), "--no-wait", cwd=tmp_path)
    try:
        demo.wait_err(f"amldebug: starting service '{name}'")
        deadline = time.monotonic() + 60
        while not any(_leftovers(docker_client, name).values()):  # it has started something
            assert time.monotonic() < deadline and demo.proc.poll() is None, "\n".join(demo.err)
            time.sleep(0.1)
        time.sleep(1.0)  # into the wait for init()
        assert demo.proc.poll() is None and not [line for line in demo.err if "is ready" in line]
        demo.proc.send_signal(signal.SIGINT)
        code = demo.finish()
    finally:
        demo.kill()
    stderr = "\n".join(demo.err)
    assert "Traceback" not in stderr, stderr
    assert code == 130, f"exit {code}:\n{stderr[-2000:]}"
    assert _wait_clean(docker_client, name) == {"containers": [], "networks": [], "processes": []}


@pytest.mark.parametrize("runtime", ["container", "process"])
def test_init_attach_down_leaves_nothing_behind(capsys, docker_client, server_image, tmp_path, monkeypatch, runtime):
    folder = _unique_folder(tmp_path)
    name = folder.name
    code, out, err = amldebug(capsys, "init", folder, "--image", server_image)
    assert code == 0, err
    monkeypatch.chdir(folder)
    extra = ["--runtime", "process"] if runtime == "process" else []
    try:
        code, out, err = amldebug(capsys, "attach", "--detach", "--no-wait", *extra)
        assert code == 0, err
        assert f"service:     {name}" in out
        running = _leftovers(docker_client, name)
        assert running["containers"] if runtime == "container" else running["processes"], running

        code, out, err = amldebug(capsys, "down", "--name", name)
        assert code == 0, err
        assert out.strip() == f"removed service '{name}'"
    finally:
        from amldebug.service.registry import _existing

        for leftover in _existing(name, None):
            leftover.delete()
    assert _wait_clean(docker_client, name) == {"containers": [], "networks": [], "processes": []}
    code, _, err = amldebug(capsys, "status", "--name", name)
    assert code != 0 and f"no amldebug service named '{name}'" in err
