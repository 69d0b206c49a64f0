"""The first minutes with a real engine: F5 from 'amldebug init' finds a local scoring image
and names it; two demos in one folder; a takeover ends the first session with a message;
tracebacks name local files; stages print as plain lines; DOCKER_CONTEXT reaches the engine."""

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from amldebug.engine import docker as engine
from amldebug.errors import ImageError
from amldebug.engine.discover import _no_server_mark, find_scoring_image
from tests.integration.helpers import amldebug
from tests.support.images import build_from_dockerfile

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _label_only_image(client, base: str, tag: str, labels: dict) -> None:
    """An image FROM a local ``base`` with labels only: no RUN, no network, a new creation time."""
    build_from_dockerfile(client, f"FROM {base}\nLABEL {' '.join(f'{k}={v}' for k, v in labels.items())}\n", tag)


@pytest.fixture
def made_images(docker_client, test_images):
    """Images this test builds (labelled; removed after it)."""
    label = f"amldebug.test.discover={uuid.uuid4().hex[:8]}"
    yield label
    for image in docker_client.images.list(filters={"label": label}):
        for attempt in range(50):  # the probe's throwaway container may still be on its way out
            try:
                engine.remove_image(docker_client, image.id)
                break
            except ImageError:
                time.sleep(0.2)


def test_discovery_takes_the_newest_image_with_the_server(docker_client, made_images):
    key, value = made_images.split("=")
    with_server, without = f"amldebug-test/discover-srv:{value}", f"amldebug-test/discover-none:{value}"
    _label_only_image(docker_client, "amldebug-test/azmlinfsrv:1", with_server, {key: value})
    time.sleep(1.1)  # the one without the server is newer, and looks like an Azure ML image
    _label_only_image(docker_client, "amldebug-test/base:bookworm", without, {key: value, "azureml": "1"})
    seen = []

    found = find_scoring_image(docker_client, seen.append)

    assert seen[0] == "amldebug: looking for a local image with azmlinfsrv"
    picked = docker_client.images.get(found)
    # Another run on this shared engine may have built a newer scoring image meanwhile.
    assert found == with_server or picked.attrs["Created"] > docker_client.images.get(with_server).attrs["Created"]
    assert found != without and _no_server_mark(docker_client.images.get(without)).exists()


def test_f5_from_init_starts_the_local_scoring_image_and_names_it(capsys, docker_client, test_images, tmp_path,
                                                                  monkeypatch, service_name):
    assert amldebug(capsys, "init", tmp_path / "proj")[0] == 0
    monkeypatch.chdir(tmp_path / "proj")
    code, out, err = amldebug(capsys, "attach", "--detach", "--no-wait", "--name", service_name)  # no --image

    assert code == 0, err
    assert err.splitlines()[0] == f"amldebug: starting service '{service_name}'"  # C1: before any probe
    picked = next(line for line in err.splitlines() if line.startswith("amldebug: no --image given; using '"))
    image = picked.split("'")[1]
    assert f"amldebug: service '{service_name}' runs from image '{image}'" in err
    assert engine.find_services(docker_client, service_name)[0].image.id == docker_client.images.get(image).id
    code, out, err = amldebug(capsys, "score", "--name", service_name, "--file", "sample-request.json", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == 200


def test_stages_are_plain_lines_with_their_times(capsys, server_image, workspace, service_name):
    code, out, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--model-dir", "sample/model",
                              "--name", service_name, "--detach", "--no-wait", "--json")
    assert code == 0, err
    lines = err.splitlines()
    stages = [line for line in lines if line.endswith(" s]")]
    names = [s.rsplit(" [", 1)[0].replace("fetching debugpy", "debugpy") for s in stages]  # fetched once per cache
    assert names == [
        f"amldebug: probing image '{server_image}'", "amldebug: debugpy for Python 3.11",
        "amldebug: launching the container", "amldebug: waiting for init()"]
    times = [float(s.rsplit("[", 1)[1][:-3]) for s in stages]
    assert times == sorted(times)
    assert lines[-1].startswith(f"amldebug: service '{service_name}' is ready for a debugger on localhost:")
    assert [line for line in lines if line.startswith("amldebug: starting")] == [lines[0]]  # C1: one begin line
    described = json.loads(out)
    assert described["name"] == service_name and described["launch_json"].endswith(".vscode/launch.json")
    code, out, _ = amldebug(capsys, "status", "--name", service_name, "--json")
    assert [s["name"] for s in json.loads(out)] == [service_name]


def test_quiet_prints_the_start_the_choice_made_and_the_ready_line_only(capsys, workspace, service_name,
                                                                         monkeypatch, tmp_path):
    """No --image and no engine: the process runtime is taken, and -q still says so."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    code, out, err = amldebug(capsys, "attach", "sample", "--model-dir", "sample/model", "--name", service_name,
                              "--detach", "--no-wait", "-q")
    try:
        assert code == 0, err
        lines = err.splitlines()
        assert lines[0] == f"amldebug: starting service '{service_name}'"
        assert lines[1].startswith("amldebug: no --image given and no Docker engine answers at ")
        assert lines[1].endswith("using the process runtime (this machine's Python)")
        assert lines[-1].startswith(f"amldebug: service '{service_name}' is ready for a debugger on localhost:")
        assert not [line for line in lines if line.endswith(" s]")]  # no stages
    finally:
        amldebug(capsys, "down", "--name", service_name)


def test_a_traceback_from_the_container_names_the_local_file(capsys, server_image, workspace, service_name):
    code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--model-dir", "sample/model",
                            "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    score = workspace / "sample" / "score.py"
    code, _, err = amldebug(capsys, "score", "--name", service_name, "-d", '{"nodata": 1}')
    assert code == 4
    assert f'File "{score}", line 20, in run' in err and "/var/azureml-app/sample/score.py" not in err
    code, out, _ = amldebug(capsys, "logs", "--name", service_name)
    assert f'File "{score}", line 20, in run' in out and "/var/azureml-app/sample/" not in out


def _read_until(stream, text: str, timeout: float = 90) -> list:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r}; got {lines}")


def test_a_second_demo_refuses_and_an_attach_takes_over_cleanly(capsys, server_image, tmp_path, monkeypatch,
                                                                 service_name):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / service_name  # the demo's service is named after its folder
    first = subprocess.Popen([sys.executable, "-m", "amldebug", "demo", "--folder", service_name, "--image",
                              server_image], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        started = _read_until(first.stderr, "is ready for a debugger")
        assert started[0] == f"amldebug: starting service '{service_name}' (amldebug demo)"

        code, _, err = amldebug(capsys, "demo", "--folder", service_name, "--image", server_image)
        assert code == 2
        assert (f"service '{service_name}' of {service_name}/ is already running in another terminal "
                f"(pid {first.pid}: Ctrl-C there stops it)") in err
        assert f"'amldebug down --name {service_name}'" in err
        assert first.poll() is None  # the first demo still serves

        code, _, err = amldebug(capsys, "attach", folder, "--image", server_image, "--detach", "--no-wait")
        assert code == 0, err
        assert (f"amldebug: taking over service '{service_name}' from the 'amldebug attach' that runs it "
                f"(pid {first.pid})") in err
        rest = first.stderr.read()
        assert first.wait(30) == 0, rest
        assert (f"amldebug: service '{service_name}' was taken over by another 'amldebug attach'" in rest
                and "409" not in rest and "error" not in rest), rest
        code, out, _ = amldebug(capsys, "status", "--name", service_name, "--json")
        assert json.loads(out)[0]["state"] == "Running"  # the new one serves
    finally:
        if first.poll() is None:
            first.terminate()
            first.wait(30)


def test_a_second_demo_while_the_first_still_starts_refuses_and_the_first_goes_on(capsys, server_image,
                                                                                    tmp_path, monkeypatch,
                                                                                    service_name):
    monkeypatch.chdir(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "amldebug", "demo", "--folder", service_name, "--image",
                              server_image], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert first.stderr.readline().startswith(f"amldebug: starting service '{service_name}'")
        code, _, err = amldebug(capsys, "demo", "--folder", service_name, "--image", server_image)
        assert code == 2
        assert (f"service '{service_name}' of {service_name}/ is already running in another terminal "
                f"(pid {first.pid}: Ctrl-C there stops it)") in err, err
        assert f"'amldebug down --name {service_name}'" in err
        _read_until(first.stderr, "is ready for a debugger")  # the first was not taken over
        assert first.poll() is None
    finally:
        first.terminate()
        assert first.wait(30) == 0


def test_docker_context_reaches_the_engine(capsys, docker_client, tmp_path, monkeypatch):
    config = tmp_path / "dockercfg"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"here").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "here", "Metadata": {},
                                                "Endpoints": {"docker": {"Host": "unix:///var/run/docker.sock"}}}))
    (config / "config.json").write_text(json.dumps({"currentContext": "here"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert engine.docker_endpoint() == ("unix:///var/run/docker.sock", "here", None)
    assert engine.connect().version()["ApiVersion"]
    code, _, err = amldebug(capsys, "status")
    assert code == 0, err


def test_down_from_another_terminal_ends_the_foreground_session_cleanly(capsys, server_image, workspace,
                                                                        service_name):
    first = subprocess.Popen([sys.executable, "-m", "amldebug", "attach", "sample", "--image", server_image,
                              "--model-dir", "sample/model", "--name", service_name, "--no-wait"], cwd=workspace,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _read_until(first.stderr, "is ready for a debugger")
        assert amldebug(capsys, "down", "--name", service_name)[0] == 0
        rest = first.stderr.read()
        assert first.wait(30) == 0, rest
        assert f"amldebug: service '{service_name}' was removed ('amldebug down'?); this session ends" in rest
        assert "error" not in rest and "409" not in rest, rest
    finally:
        if first.poll() is None:
            first.terminate()
            first.wait(30)
