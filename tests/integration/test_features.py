"""Features that had no end-to-end test (issue 10, section 7): the environment-file rebuild,
reload ordering, --debug-bind, logs --follow, the watch command and WORKER_PRELOAD=true.
Real engine, real image, real debugpy; nothing is mocked."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import docker
import pytest
import requests

import amldebug
from amldebug.envbuild import image as build
from amldebug.service.registry import _existing
from amldebug.session import get_service
from tests.conftest import marker_line
from tests.integration.conftest import BASE_IMAGE
from tests.integration.helpers import Request, client_from_launch_json
from tests.integration.helpers import amldebug as run_cli
from tests.support.dap import DapError, initialize_roundtrip

pytestmark = pytest.mark.docker

BUILD_APP = Path(__file__).resolve().parents[1] / "fixtures" / "build" / "app"


# -- helpers -------------------------------------------------------------------------------


class Child:
    """``python -m amldebug ARGS`` as a subprocess; its stdout and stderr lines are collected."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "amldebug", *map(str, args)], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._readers = [threading.Thread(target=self._read, args=(stream, self.lines[key]), daemon=True)
                         for key, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_line(self, text: str, stream: str = "err", timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines[stream]):
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {stream} line containing {text!r} (exit {self.proc.poll()}); "
                             f"stdout: {self.lines['out'][-30:]}; stderr: {self.lines['err'][-30:]}")

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def children():
    started: list[Child] = []

    def start(*args, cwd=None):
        started.append(Child(*args, cwd=cwd))
        return started[-1]

    yield start
    for child in started:
        child.stop()


def _attach(capsys, name, *extra, source="sample", model="sample/model"):
    code, out, err = run_cli(capsys, "attach", source, "--model-dir", model, "--name", name, "--detach", *extra)
    assert code == 0, err
    return get_service(name), out, err


def _score(service, body='{"data": [1, 2, 3]}'):
    return requests.post(service.scoring_uri, data=body, timeout=30, headers={"Content-Type": "application/json"})


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _host_address() -> str:
    """This machine's first non-loopback IPv4 address that is not a Docker bridge's."""
    try:
        listing = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True,
                                 text=True, timeout=10).stdout
    except OSError:
        listing = ""
    for line in listing.splitlines():
        fields = line.split()
        interface, address = fields[1], fields[3].split("/")[0]
        if not interface.startswith(("docker", "br-", "veth")):
            return address
    pytest.skip("this machine has no non-loopback IPv4 address outside Docker's bridges")


# -- 1. the environment file changes: the image is rebuilt and the new package serves --------

IMPORTING_RUN = '''
def run(raw_data):
    data = json.loads(raw_data)["data"]
    try:
        import amldebug_test_extra  # only the rebuilt image has it
    except ImportError:
        return {"result": [x * scale for x in data], "extra": None}
    return {"result": [x * scale for x in data], "extra": amldebug_test_extra.VERSION}
'''


def _pure_wheel(folder: Path, version: str) -> Path:
    """A pure-Python wheel of the package amldebug_test_extra, made here (nothing to download)."""
    dist = f"amldebug_test_extra-{version}"
    files = {
        "amldebug_test_extra/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: amldebug-test-extra\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: amldebug-tests\nRoot-Is-Purelib: true\n"
                                   "Tag: py3-none-any\n",
    }
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(text.encode())}" for name, text in files.items()]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def test_changed_env_file_rebuilds_the_image_and_the_new_package_serves(capsys, docker_client, test_images,
                                                                        tmp_path, monkeypatch, service_name,
                                                                        watching):
    app = tmp_path / "app"
    shutil.copytree(BUILD_APP, app)
    score = app / "score.py"
    score.write_text(score.read_text().split("\ndef run(")[0] + IMPORTING_RUN)
    wheel = _pure_wheel(tmp_path / "wheels", "2.5")  # outside the watched folder
    monkeypatch.chdir(tmp_path)
    tags_before = {t for image in docker_client.images.list() for t in image.tags}

    service, _, err = _attach(capsys, service_name, "--env", "app/requirements.txt", "--base-image", BASE_IMAGE,
                              "--no-wait", source="app", model="app/model")
    first_image = service.spec.image
    assert first_image.startswith("amldebug-env:"), first_image
    created = [first_image] if first_image not in tags_before else []
    assert _score(service).json() == {"result": [3, 6, 9], "extra": None}
    first_box = service.container_id

    watch = watching(service)
    requirements = app / "requirements.txt"
    requirements.write_text(requirements.read_text() + f"../wheels/{wheel.name}\n")
    watch.wait_report("requirements.txt: changed: recreating the service")
    try:
        watch.wait_report("amldebug: reloaded: service recreated", timeout=300)
        assert not [r for r in watch.reports if "failed" in r], watch.reports
        again = get_service(service_name)
        assert again.spec.image != first_image and again.spec.image.startswith("amldebug-env:")
        assert again.container_id != first_box
        expected = build.env_hash(build.read_environment(requirements), docker_client.images.get(BASE_IMAGE).id)
        assert docker_client.images.get(again.spec.image).labels[build.LABEL_HASH] == expected
        if again.spec.image not in tags_before:
            created.append(again.spec.image)
        assert _score(again).json() == {"result": [3, 6, 9], "extra": "2.5"}
    finally:
        watch.stop()
        for leftover in _existing(service_name, None):
            leftover.delete()
        for tag in created:  # only the images this test built
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.NotFound:
                pass


# -- 4. reload() returns only once the new worker serves ---------------------------------------

SLOW_INIT = '''"""init() takes 1.5 s: a reload that returned before the new worker serves would be seen."""

import time

VERSION = "r0"


def init():
    time.sleep(1.5)


def run(raw_data):
    return {"version": VERSION}
'''


@pytest.mark.parametrize("runtime", ["container", "process"])
def test_reload_returns_once_the_new_worker_serves(server_image, workspace, service_name, runtime):
    score = workspace / "sample" / "score.py"
    score.write_text(SLOW_INIT)
    where = {"image": server_image} if runtime == "container" else {"runtime": "process"}
    service = amldebug.attach("sample", name=service_name, wait=False, **where)
    assert service.run({"data": [1]}) == {"version": "r0"}
    for n in range(1, 4):
        _edit(score, f'VERSION = "r{n - 1}"', f'VERSION = "r{n}"')
        result = service.reload()
        assert not result.restarted and result.seconds >= 1.5  # it waited for init()
        # At once: not the old worker's answer, not a refused connection while none serves.
        answer = requests.post(service.scoring_uri, data="{}", timeout=30,
                               headers={"Content-Type": "application/json"})
        assert (answer.status_code, answer.json()) == (200, {"version": f"r{n}"})


# -- 5a. --debug-bind really binds elsewhere ---------------------------------------------------

@pytest.mark.parametrize("runtime", ["container", "process"])
def test_debug_bind_listens_on_the_host_address_and_the_default_does_not(capsys, workspace, server_image,
                                                                         service_name, runtime):
    address = _host_address()
    where = ["--image", server_image] if runtime == "container" else ["--runtime", "process"]
    exposed, _, err = _attach(capsys, service_name, *where, "--no-wait", "--debug-bind", "0.0.0.0")
    assert "warning: the debug port will listen on 0.0.0.0: anyone who can reach it can run any code" in err
    assert initialize_roundtrip(address, exposed.debug_port, timeout=10) < 10

    private_name = service_name + "-lo"
    try:
        private, _, err = _attach(capsys, private_name, *where, "--no-wait")
        assert "warning" not in err
        assert initialize_roundtrip("127.0.0.1", private.debug_port, timeout=10) < 10
        with pytest.raises(DapError, match="cannot connect to the debug adapter"):
            initialize_roundtrip(address, private.debug_port, timeout=5)
    finally:
        for leftover in _existing(private_name, None):
            leftover.delete()


# -- 5b. logs --follow ----------------------------------------------------------------------

def test_logs_follow_prints_new_lines_and_ends_with_the_service(capsys, workspace, server_image, service_name,
                                                                children):
    score = workspace / "sample" / "score.py"
    _edit(score, '    return {"result": result, "version": "v1"}',
          '    print("scored", data, flush=True)\n    return {"result": result, "version": "v1"}')
    service, _, _ = _attach(capsys, service_name, "--image", server_image, "--no-wait")
    follow = children("logs", "--name", service_name, "--follow")
    follow.wait_line("Booting worker with pid", stream="out")  # the tail so far

    assert _score(service, '{"data": [7, 8]}').status_code == 200
    follow.wait_line("scored [7, 8]", stream="out", timeout=15)
    result = service.reload()
    follow.wait_line(f"Booting worker with pid: {result.worker_pid}", stream="out", timeout=15)
    assert follow.proc.poll() is None  # still following

    service.delete()
    assert follow.wait(timeout=30) == 0
    assert "Traceback" not in "\n".join(follow.lines["err"]), follow.lines["err"]


# -- 5c. the watch command ------------------------------------------------------------------

def test_watch_command_reloads_a_detached_service_and_leaves_it_running(capsys, workspace, server_image,
                                                                         service_name, children):
    score = workspace / "sample" / "score.py"
    service, _, _ = _attach(capsys, service_name, "--image", server_image, "--no-wait")
    box = service.container_id
    watch = children("watch", "--name", service_name)
    watch.wait_line(f"for service '{service_name}' - Ctrl-C to stop")
    watch.wait_line("amldebug: saves reach the server through named pipes in its state folder")
    time.sleep(0.5)  # the observer starts after that line

    _edit(score, '"version": "v1"', '"version": "v2"')
    line = watch.wait_line("amldebug: patched run() in ", timeout=30)
    assert "debugger" not in line  # none is attached
    assert _score(service).json() == {"result": [3, 6, 9], "version": "v2"}

    watch.proc.send_signal(signal.SIGINT)
    assert watch.wait(timeout=15) == 0
    assert "Traceback" not in "\n".join(watch.lines["err"]), watch.lines["err"]
    after = get_service(service_name)
    assert (after.state, after.container_id) == ("Running", box)  # watch does not own the service
    assert _score(after).json()["version"] == "v2"


# -- 5d. WORKER_PRELOAD=true ----------------------------------------------------------------

def test_worker_preload_serves_stops_and_reloads_by_recreating(capsys, workspace, server_image, service_name,
                                                               watching):
    score = workspace / "sample" / "score.py"
    service, _, _ = _attach(capsys, service_name, "--image", server_image, "-e", "WORKER_PRELOAD=true")
    assert "WORKER_PRELOAD=true" in service._backend.box.attrs["Config"]["Env"]
    first_box = service.container_id
    run_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [run_line]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()
        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v1"}

        capsys.readouterr()
        watch = watching(service)
        _edit(score, '    return {"result": result, "version": "v1"}',
              '    bonus = len(result)  # marker: run-new\n    return {"result": result, "version": "v2", "n": bonus}')
        report = watch.wait_report("amldebug: reloaded: restarted the service in ", timeout=60)
        assert report.endswith("; re-attach the debugger")
    assert "WORKER_PRELOAD=true loads score.py in the gunicorn master, so a reload must restart the container" \
        in capsys.readouterr().err

    again = get_service(service_name)
    assert again.container_id != first_box
    new_line = marker_line(score, "run-new")
    with client_from_launch_json(workspace, service_name, {score: [new_line]}) as client:  # re-attach
        client.attach(timeout=15)
        again.wait_for_deployment()
        request = Request(again.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), new_line)
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}
