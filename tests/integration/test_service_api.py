"""The Python API: a LocalWebservice-shaped object over a real container."""

import json

import pytest

import amldebug
from amldebug.errors import ScoringError
from tests.conftest import marker_line

pytestmark = pytest.mark.docker


def test_run_update_delete(server_image, workspace, service_name, docker_client):
    service = amldebug.attach("sample", image=server_image, model_dir="sample/model", name=service_name,
                              wait=False, port=17601, debug_port=17602)
    assert service.state == "Running" and service.scoring_uri == "http://localhost:17601/score"
    assert service.run({"data": [1]}) == {"result": [3], "version": "v1"}

    with pytest.raises(ScoringError) as failure:
        service.run('{"values": [1]}')
    assert failure.value.status == 500
    assert "unexpected error" in failure.value.body  # the server's generic answer...
    line = marker_line(workspace / "sample" / "score.py", "run-data")
    assert f'score.py", line {line}, in run' in failure.value.logged_exception  # ...and what it logged

    service.update(port=17611, debug_port=17612, env={"SCALE_NOTE": "x"})
    assert service.port == 17611
    launch = json.loads((workspace / ".vscode" / "launch.json").read_text())
    assert launch["configurations"][0]["connect"]["port"] == 17612
    service.wait_for_deployment()
    assert service.run({"data": [2]})["result"] == [6]
    assert "SCALE_NOTE=x" in service._backend.box.attrs["Config"]["Env"]

    again = amldebug.get_service(service_name)
    assert again.container_id == service.container_id
    service.delete()
    assert service.state == "Deleted"
