"""Every scoring image: Python 3.9 (Debian bullseye), 3.13 (trixie), and the bookworm image
running as Azure ML's non-root 'dockeruser' (uid 1000). `amldebug attach`, a real DAP client
attached with the generated launch.json, breakpoints in init() and run() at the LOCAL file."""

import platform
import sys

import pytest

from amldebug.core.spec import PAYLOAD_ROOT
from amldebug.engine import docker as engine
from amldebug.engine import inject
from amldebug.session import get_service
from tests.conftest import marker_line
from tests.integration.helpers import Request, Watching, amldebug, client_from_launch_json

pytestmark = pytest.mark.docker

# kind: (the image's Python, the debugpy release amldebug must put in front of it)
EXPECTED = {"py39": ("3.9", "1.8.21"), "py313": ("3.13", None), "nonroot": ("3.11", None)}  # None: the host's


def _attach(capsys, image, name, *extra):
    code, out, err = amldebug(capsys, "attach", "sample", "--image", image, "--model-dir", "sample/model",
                              "--name", name, "--detach", *extra)
    assert code == 0, err
    return out, err


def _exec(docker_client, name, command):
    box = engine.find_services(docker_client, name)[0]
    result = box.exec_run(command)
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_breakpoints_in_init_and_run_hit_on_each_image(capsys, docker_client, other_images, kind, workspace,
                                                       service_name):
    python, debugpy_release = EXPECTED[kind]
    score = workspace / "sample" / "score.py"
    out, err = _attach(capsys, other_images[kind], service_name)
    assert "ready for a debugger on localhost:" in err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))

    init_line, run_line = marker_line(score, "init-loaded"), marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [init_line, run_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), init_line, "init")
        assert client.evaluate(stop, "loaded['scale']") == "3"
        assert client.evaluate(stop, "__import__('sys').version_info[:2]") == str(tuple(map(int, python.split("."))))
        client.continue_(stop)

        request = Request(uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v1"}

    tag = "cp" + python.replace(".", "")
    in_image = _exec(docker_client, service_name, [
        "python", "-c", f"import sys; sys.path.insert(0, '{PAYLOAD_ROOT}/lib/{tag}'); import debugpy; "
                        "print(debugpy.__version__)"])
    assert in_image == (debugpy_release or inject._debugpy_version())


def test_nonroot_image_runs_as_uid_1000_and_reload_logs_model_path_work(capsys, docker_client, nonroot_image,
                                                                         workspace, service_name):
    score = workspace / "sample" / "score.py"
    _attach(capsys, nonroot_image, service_name)
    service = get_service(service_name)
    box = engine.find_services(docker_client, service_name)[0]

    run_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [run_line]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()
        processes = box.top(ps_args="-o pid,uid,args")["Processes"]  # docker top needs the pid column
        assert {row[1] for row in processes} == {"1000"}, processes
        assert any("launch.py" in row[-1] for row in processes), processes
        assert _exec(docker_client, service_name, ["id", "-un"]) == "dockeruser"

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert client.evaluate(stop, "__import__('os').getuid()") == "1000"
        client.continue_(stop)
        assert request.result().json()["version"] == "v1"

        watch = Watching(service)
        try:
            text = score.read_text()
            score.write_text(text.replace('    return {"result": result, "version": "v1"}',
                                          '    bonus = len(result)  # marker: run-new\n'
                                          '    return {"result": result, "version": "v2", "n": bonus}'))
            new_line = marker_line(score, "run-new")
            client.set_breakpoints(str(score), [new_line])  # as VS Code re-sends them on save
            watch.wait_report("amldebug: patched run() in ")  # the hot patch, in this Python
            request = Request(service.scoring_uri)
            stop = client.wait_stopped(timeout=30)
            assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), new_line, "run")
            client.continue_(stop)
            assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}
        finally:
            watch.stop()

    code, out, err = amldebug(capsys, "logs", "--name", service_name, "--tail", "200")
    assert code == 0, err
    assert "ready for serving traffic" in out and "POST /score 200" in out

    code, out, err = amldebug(capsys, "model-path", "model", "--name", service_name)
    assert code == 0, err
    assert "Model.get_model_path('model') -> azureml-models/model/1/model" in out
    assert "  azureml-models/model/1/model/weights.json" in out


def test_import_check_runs_as_the_images_user(capsys, nonroot_image, workspace):
    score = workspace / "sample" / "score.py"
    # The import itself tells who runs it: a PASS means score.py was imported as uid 1000.
    score.write_text("import os\nassert os.getuid() == 1000, 'imported as uid %d' % os.getuid()\n" + score.read_text())
    code, out, err = amldebug(capsys, "check", "sample", "--model-dir", "sample/model", "--image", nonroot_image)
    assert code == 0, out + err
    assert f"PASS  image: {nonroot_image} runs azmlinfsrv" in out
    assert f"PASS  import in image: score.py imports in {nonroot_image}" in out
    # An import that fails as that user is reported, so the PASS above means something.
    score.write_text("import not_in_the_image\ndef init(): pass\ndef run(d): pass\n")
    code, out, err = amldebug(capsys, "check", "sample", "--model-dir", "sample/model", "--image", nonroot_image)
    assert code != 0
    assert "FAIL  import in image: score.py does not import" in out + err
    assert "not_in_the_image" in out + err


def test_a_payload_cache_left_private_by_an_older_amldebug_is_repaired(capsys, docker_client, nonroot_image,
                                                                       workspace, service_name):
    # amldebug before this change made lib/cpXY with mkdtemp (0700, root's): as uid 1000 the
    # launcher then failed with "No module named 'debugpy'".
    payload = inject.payload_dir()
    target = inject.ensure_debugpy(payload, "%d.%d" % sys.version_info[:2], platform.machine())
    for path in (payload, payload / "lib", target):
        path.chmod(0o700)
    (target / "debugpy" / "__init__.py").chmod(0o600)
    _attach(capsys, nonroot_image, service_name, "--no-wait")
    service = get_service(service_name)
    assert service.run({"data": [1]}) == {"result": [3], "version": "v1"}
    assert _exec(docker_client, service_name, [
        "python", "-c", f"import sys; sys.path.insert(0, '{PAYLOAD_ROOT}/lib/{target.name}'); import debugpy"]) == ""
