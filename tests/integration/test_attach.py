"""`amldebug attach` end to end: real engine, real image, real debugpy, a DAP client that
attaches with the generated launch.json, breakpoints on the LOCAL files."""

import contextlib
import json
import socket

import pytest
import requests

from amldebug.engine import docker as engine
from tests.conftest import marker_line
from tests.integration.helpers import Request, amldebug, client_from_launch_json

pytestmark = pytest.mark.docker


@contextlib.contextmanager
def held_port():
    """A port on 127.0.0.1 that something else listens on, for the duration."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _containers(client, name):
    return engine.find_services(client, name)


def test_breakpoints_in_init_and_run_hit_at_local_paths(capsys, target, workspace, service_name):
    score = workspace / "sample" / "score.py"
    features = workspace / "sample" / "mypkg" / "features.py"
    code, out, err = amldebug(capsys, "attach", "sample", *target, "--model-dir", "sample/model",
                              "--name", service_name, "--detach")
    assert code == 0, err
    assert f"service:     {service_name}" in out
    assert "ready for a debugger on localhost:" in err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))

    init_line = marker_line(score, "init-loaded")
    run_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name,
                                 {score: [init_line, run_line], features: [2]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), init_line, "init")
        assert client.evaluate(stop, "loaded['scale']") == "3"
        client.continue_(stop)

        request = Request(uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        client.continue_(stop)
        # A breakpoint in a module of the source directory (imported with `from mypkg ...`).
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(features), 2)
        assert client.evaluate(stop, "factor") == "3"
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v1"}


def test_status_and_down(capsys, docker_client, server_image, workspace, service_name):
    code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--model-dir", "sample/model",
                            "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    code, out, _ = amldebug(capsys, "status", "--name", service_name, "--json")
    assert code == 0
    [info] = json.loads(out)  # status --json: one array
    assert info["name"] == service_name and info["state"] == "Running"
    assert requests.post(info["scoring_uri"], json={"data": [2]}).json()["result"] == [6]
    box = _containers(docker_client, service_name)[0]
    assert info["container_id"] == box.id
    bindings = box.attrs["HostConfig"]["PortBindings"]
    assert {b[0]["HostIp"] for b in bindings.values()} == {"127.0.0.1"}
    assert bindings["5678/tcp"][0]["HostPort"] == str(info["debug_port"])

    code, out, _ = amldebug(capsys, "down", "--name", service_name)
    assert code == 0 and f"removed service '{service_name}'" in out
    assert _containers(docker_client, service_name) == []
    code, _, err = amldebug(capsys, "down", "--name", service_name)
    assert code == 1 and f"no amldebug service named '{service_name}'" in err


def test_taken_ports_move_to_the_next_free_one(capsys, docker_client, server_image, workspace, service_name):
    with held_port() as taken:
        code, out, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                                  "--model-dir", "sample/model", "--detach", "--debug-port", taken,
                                  "--port", taken + 1)
    assert code == 0, err
    assert f"debug port {taken} is in use; using" in err
    launch = json.loads((workspace / ".vscode" / "launch.json").read_text())
    port = launch["configurations"][0]["connect"]["port"]
    assert port != taken and f"debug port:  localhost:{port}" in out


def test_replacing_a_service_keeps_one_container_and_one_launch_entry(capsys, docker_client, server_image,
                                                                      workspace, service_name):
    for _ in range(2):
        code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                                "--model-dir", "sample/model", "--detach", "--no-wait")
        assert code == 0, err
    assert len(_containers(docker_client, service_name)) == 1
    launch = json.loads((workspace / ".vscode" / "launch.json").read_text())
    assert [c["name"] for c in launch["configurations"]] == [f"amldebug: {service_name}"]


def test_exact_ports_fail_when_taken_and_name_the_amldebug_service_holding_them(capsys, docker_client, server_image,
                                                                                 workspace, service_name):
    # What the F5 task runs: VS Code will attach to the port launch.json names, so moving on
    # to another port would attach it to whatever holds this one.
    with held_port() as taken:
        code, out, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                                  "--model-dir", "sample/model", "--detach", "--debug-port", taken,
                                  "--port", taken + 1, "--exact-ports")
    assert (code, out) == (2, "")
    assert f"--debug-port {taken} is in use; stop what holds it, or run this 'amldebug attach' once with another --debug-port" in err
    assert _containers(docker_client, service_name) == [] and not (workspace / ".vscode" / "launch.json").exists()

    other = service_name + "-other"
    try:
        code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", other, "--model-dir",
                                "sample/model", "--detach", "--no-wait", "--port", taken + 2, "--debug-port", taken + 3)
        assert code == 0, err
        code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", service_name,
                                "--model-dir", "sample/model", "--detach", "--no-wait", "--port", taken + 2,
                                "--debug-port", taken + 4, "--exact-ports")
        assert code == 2
        assert (f"--port {taken + 2} is in use by amldebug service '{other}' "
                f"('amldebug down --name {other}' stops it)") in err
        assert _containers(docker_client, service_name) == []
        # F5 again on the service that holds them: it is replaced, its ports are its own.
        code, _, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--name", other, "--model-dir",
                                "sample/model", "--detach", "--no-wait", "--port", taken + 2, "--debug-port", taken + 3,
                                "--exact-ports")
        assert code == 0, err
        assert len(_containers(docker_client, other)) == 1
    finally:
        amldebug(capsys, "down", "--name", other)


def test_every_reporting_command_prints_one_json_document(capsys, server_image, workspace, service_name):
    """--json gives one document a program can parse: an object, or an array for status."""
    code, out, err = amldebug(capsys, "attach", "sample", "--image", server_image, "--model-dir", "sample/model",
                              "--name", service_name, "--detach", "--no-wait", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == service_name

    from amldebug.engine.statefile import StateFile, state_folder

    serving = StateFile(state_folder(service_name)).read()["pid"]
    score = workspace / "sample" / "score.py"
    score.write_text(score.read_text().replace('"version": "v1"', '"version": "v2"'))  # run() only
    code, out, err = amldebug(capsys, "reload", "--name", service_name, "--json")
    assert code == 0, err
    reloaded = json.loads(out)
    assert (reloaded["name"], reloaded["restarted"], reloaded["via"]) == (service_name, False, "pipe")
    assert reloaded["ms"] > 0 and reloaded["worker_pid"] != serving  # always a fresh worker, never a patch
    code, out, err = amldebug(capsys, "score", "--name", service_name, "-d", '{"data": [1]}', "--json")
    assert json.loads(out)["answer"]["version"] == "v2"

    code, out, err = amldebug(capsys, "model-path", "model", "--name", service_name, "--json")
    assert code == 0, err
    assert json.loads(out)["path"] == "/var/azureml-app/azureml-models/model/1/model"
    code, out, err = amldebug(capsys, "model-path", "nosuch", "--name", service_name, "--json")
    assert code == 2 and json.loads(out)["error"].startswith("Model nosuch not found in cache at ")

    code, out, err = amldebug(capsys, "status", "--name", service_name, "--json-lines")
    assert code == 0 and [json.loads(line)["name"] for line in out.splitlines()] == [service_name]

    code, out, err = amldebug(capsys, "down", "--name", service_name, "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": service_name, "removed": True}
