"""Troubleshooting commands against real failing services: the printed cause and fix."""

import json

import pytest

from amldebug.engine import docker as engine
from tests.conftest import marker_line
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker

INIT_OK = "    model = loaded  # marker: init-loaded"
INIT_RAISES = '    raise RuntimeError("feature store unreachable")  # marker: init-raise'


def _start(capsys, image, name, *extra):
    code, out, err = amldebug(capsys, "attach", "sample", "--image", image, "--name", name, "--detach",
                              "--no-wait", *extra)
    return code, out, err


def test_init_exception_at_start_is_shown_and_no_container_is_left(capsys, docker_client, server_image,
                                                                   workspace, service_name):
    score = workspace / "sample" / "score.py"
    score.write_text(score.read_text().replace(INIT_OK, INIT_RAISES))
    code, _, err = _start(capsys, server_image, service_name, "--model-dir", "sample/model")
    assert code == 3
    assert f"service '{service_name}' failed to start" in err
    assert "RuntimeError: feature store unreachable" in err
    assert f'score.py", line {marker_line(score, "init-raise")}, in init' in err
    assert engine.find_services(docker_client, service_name) == []


def test_diagnose_and_logs_name_the_init_exception_of_a_running_service(capsys, server_image, workspace,
                                                                        service_name):
    score = workspace / "sample" / "score.py"
    code, _, err = _start(capsys, server_image, service_name, "--model-dir", "sample/model")
    assert code == 0, err
    score.write_text(score.read_text().replace(INIT_OK, INIT_RAISES))
    code, _, err = amldebug(capsys, "reload", "--name", service_name)
    assert code == 1 and "RuntimeError: feature store unreachable" in err

    code, out, _ = amldebug(capsys, "diagnose", "--name", service_name, "--json")
    assert code == 0
    findings = {f["rule"]: f for f in json.loads(out)}
    init = findings["init-exception"]
    assert init["location"] == f"score.py:{marker_line(score, 'init-raise')}"
    assert "amldebug attach" in init["fix"]

    code, out, _ = amldebug(capsys, "logs", "--name", service_name, "--tail", "200")
    assert code == 0
    log, _, report = out.partition("-- amldebug diagnose")
    assert "User's init function failed" in log
    assert f"score.py:{marker_line(score, 'init-raise')}" in report


def test_score_failure_prints_the_exception_the_container_logged(capsys, server_image, workspace, service_name):
    code, _, err = _start(capsys, server_image, service_name, "--model-dir", "sample/model")
    assert code == 0, err
    code, out, err = amldebug(capsys, "score", "--name", service_name, "--data", '{"values": [1]}')
    assert code == 4
    assert "scoring failed with HTTP 500" in err
    assert "KeyError: 'data'" in err
    assert f'score.py", line {marker_line(workspace / "sample" / "score.py", "run-data")}, in run' in err

    (workspace / "req.json").write_text('{"data": [2]}')
    code, out, err = amldebug(capsys, "score", "--name", service_name, "--file", "req.json")
    assert code == 0, err
    assert json.loads(out) == {"result": [6], "version": "v1"}
    assert "HTTP 200 in" in err


def test_model_path_shows_what_was_placed_and_a_wrong_name(capsys, server_image, workspace, service_name):
    code, _, err = _start(capsys, server_image, service_name, "--model-dir", "sample/model",
                          "--model-name", "weights", "--model-version", "3")
    assert code == 0, err
    code, out, err = amldebug(capsys, "model-path", "weights", "--name", service_name)
    assert code == 0, err
    assert "Model.get_model_path('weights') -> azureml-models/weights/3/model" in out
    assert "  azureml-models/weights/3/model/weights.json" in out

    code, out, err = amldebug(capsys, "model-path", "regressor", "--name", service_name)
    assert code == 2
    assert "Model regressor not found in cache at /var/azureml-app/azureml-models/regressor" in err
    assert "--model-name regressor" in err
