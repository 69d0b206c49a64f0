"""The edit loop against a real engine: save score.py, the watcher reloads, the SAME debug
session stops in the new code; broken saves keep the last good code serving."""

import time

import pytest
import requests

from amldebug.runtime.registry import get_service
from tests.conftest import marker_line
from tests.integration.helpers import Request, amldebug, client_from_launch_json

pytestmark = pytest.mark.docker


def _attach(capsys, target, name, *extra):
    target = ["--image", target] if isinstance(target, str) else target
    code, _, err = amldebug(capsys, "attach", "sample", *target, "--model-dir", "sample/model",
                            "--name", name, "--detach", *extra)
    assert code == 0, err
    return get_service(name)


def _score(service, body='{"data": [1, 2, 3]}'):
    return requests.post(service.scoring_uri, data=body, timeout=30, headers={"Content-Type": "application/json"})


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_save_reloads_and_the_same_session_stops_in_the_new_code(capsys, target, workspace, service_name,
                                                                 watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, target, service_name)
    with client_from_launch_json(workspace, service_name, {score: [marker_line(score, "run-scaled")]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()  # with --wait, gunicorn binds its port after the attach
        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), marker_line(score, "run-scaled"))
        client.continue_(stop)
        assert request.result().json()["version"] == "v1"
        root = client.sessions[0]

        watch = watching(service)
        _edit(score, '    return {"result": result, "version": "v1"}',
              '    bonus = len(result)  # marker: run-new\n    return {"result": result, "version": "v2", "n": bonus}')
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])  # as VS Code re-sends them on save
        watch.wait_report("reloaded score.py")

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), new_line, "run")
        assert client.evaluate(stop, "result") == "[3, 6, 9]"
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}
        assert client.sessions[0] is root and not root.ended  # no re-attach


def test_syntax_error_keeps_old_code_serving_and_next_save_recovers(capsys, server_image, workspace,
                                                                   service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    _edit(score, '"version": "v1"}', '"version": "v2"')  # unbalanced brace
    report = watch.wait_report("error:")
    assert report.startswith(f"{score}:") and "still serving the last good code" in report
    assert _score(service).json()["version"] == "v1"
    _edit(score, '"version": "v2"', '"version": "v2"}')
    watch.wait_report("reloaded score.py")
    assert _score(service).json()["version"] == "v2"
    assert watch.loop.reloads == 1


def test_exception_in_new_init_is_reported_and_a_fix_recovers(capsys, server_image, workspace, service_name,
                                                              watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    _edit(score, "    model = loaded  # marker: init-loaded",
          '    raise RuntimeError("weights are stale")  # marker: init-raise')
    report = watch.wait_report("reload failed")
    assert "RuntimeError: weights are stale" in report
    assert f'File "/var/azureml-app/sample/score.py", line {marker_line(score, "init-raise")}, in init' in report
    assert service.state == "Running"  # the master (and a debugger on it) survived
    _edit(score, '    raise RuntimeError("weights are stale")  # marker: init-raise',
          "    model = loaded  # marker: init-loaded")
    _edit(score, '"version": "v1"', '"version": "v3"')
    watch.wait_report("reloaded")
    assert _score(service).json() == {"result": [3, 6, 9], "version": "v3"}


def test_a_burst_of_saves_gives_one_reload(capsys, server_image, workspace, service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    original = score.read_text()
    for i in range(10):
        score.write_text(original.replace('"version": "v1"', f'"version": "b{i}"'))
        time.sleep(0.02)
    watch.wait_report("reloaded")
    time.sleep(1.5)
    assert watch.loop.reloads == 1, watch.reports
    assert _score(service).json()["version"] == "b9"
