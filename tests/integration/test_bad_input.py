"""attach refuses bad input with a message naming the value and the fix, a non-zero exit,
and nothing half-done: no container, launch.json untouched."""

import pytest

from amldebug.engine import docker as engine
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker


def _attach(capsys, *args):
    return amldebug(capsys, "attach", "sample", "--detach", "--model-dir", "sample/model", *args)


def test_image_not_present(capsys, docker_client, workspace, service_name):
    code, _, err = _attach(capsys, "--image", "contoso/score:missing", "--name", service_name)
    assert code == 3
    assert "image 'contoso/score:missing' is not present locally; pull it" in err
    assert engine.find_services(docker_client, service_name) == []
    assert not (workspace / ".vscode" / "launch.json").exists()


def test_image_without_the_scoring_server(capsys, docker_client, test_images, workspace, service_name):
    code, _, err = _attach(capsys, "--image", "amldebug-test/base:bookworm", "--name", service_name)
    assert code == 3
    assert "image 'amldebug-test/base:bookworm' cannot serve a scoring script: no azmlinfsrv on PATH" in err
    assert "azureml-inference-server-http" in err
    assert engine.find_services(docker_client, service_name) == []


def test_unparsable_launch_json_stops_before_anything_starts(capsys, docker_client, server_image, workspace,
                                                             service_name):
    launch = workspace / ".vscode" / "launch.json"
    launch.parent.mkdir()
    broken = '{\n  // mine\n  "configurations": [ {"name": "x",, } ]\n}\n'
    launch.write_text(broken)
    code, _, err = _attach(capsys, "--image", server_image, "--name", service_name)
    assert code == 1
    assert f"{launch}:3:" in err
    assert launch.read_text() == broken
    assert engine.find_services(docker_client, service_name) == []


def test_import_error_at_start_shows_the_exception(capsys, docker_client, server_image, workspace, service_name):
    score = workspace / "sample" / "score.py"
    score.write_text(score.read_text().replace("from mypkg.features import scale_all",
                                               "from mypkg.features import scale_al"))
    code, _, err = _attach(capsys, "--image", server_image, "--name", service_name, "--no-wait")
    assert code == 3
    assert "ImportError: cannot import name 'scale_al' from 'mypkg.features'" in err
    assert engine.find_services(docker_client, service_name) == []
