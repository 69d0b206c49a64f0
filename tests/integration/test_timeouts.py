"""A pause at a breakpoint longer than the image's own timeouts (issue 10, section 7): an
image whose ENV sets WORKER_TIMEOUT=4 and SCORING_TIMEOUT_MS=3000 must neither kill the
paused worker nor silently switch debugging off in its thread."""

import time

import pytest

from amldebug.session import get_service
from tests.conftest import marker_line
from tests.integration.helpers import Request, amldebug, client_from_launch_json
from tests.support.images import build_from_dockerfile

pytestmark = pytest.mark.docker

TIMEOUTS_IMAGE = "amldebug-test/timeouts:1"
LABEL_BASE = "amldebug.test.timeouts.base"


@pytest.fixture(scope="session")
def timeouts_image(docker_client, test_images):
    """The server image with short timeouts in its ENV; rebuilt only when its base changed."""
    base = docker_client.images.get(test_images["azmlinfsrv"])
    for image in docker_client.images.list(name=TIMEOUTS_IMAGE):
        if image.labels.get(LABEL_BASE) == base.id:
            return TIMEOUTS_IMAGE
    build_from_dockerfile(docker_client, f"FROM {test_images['azmlinfsrv']}\n"
                          f"ENV WORKER_TIMEOUT=4 SCORING_TIMEOUT_MS=3000\nLABEL {LABEL_BASE}={base.id}\n",
                          TIMEOUTS_IMAGE)
    return TIMEOUTS_IMAGE


def test_a_pause_past_the_image_timeouts_answers_and_stops_again(capsys, docker_client, timeouts_image, workspace,
                                                                 service_name):
    env = docker_client.images.get(timeouts_image).attrs["Config"]["Env"]
    assert {"WORKER_TIMEOUT=4", "SCORING_TIMEOUT_MS=3000"} <= set(env)  # the test means something
    score = workspace / "sample" / "score.py"
    code, _, err = amldebug(capsys, "attach", "sample", "--image", timeouts_image, "--model-dir", "sample/model",
                            "--name", service_name, "--detach")
    assert code == 0, err
    service = get_service(service_name)
    run_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [run_line]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        worker = stop.session.pid
        time.sleep(12)  # three times WORKER_TIMEOUT, four times SCORING_TIMEOUT_MS
        assert client.evaluate(stop, "data") == "[1, 2, 3]"
        client.continue_(stop)
        answer = request.result()
        assert (answer.status_code, answer.json()) == (200, {"result": [3, 6, 9], "version": "v1"})

        # The same worker, and debugging still on in its request thread: the next request stops too.
        request = Request(service.scoring_uri, '{"data": [2]}')
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), run_line)
        assert stop.session.pid == worker
        assert client.evaluate(stop, "data") == "[2]"
        client.continue_(stop)
        assert request.result().json() == {"result": [6], "version": "v1"}
    log = service.get_logs()
    # One serving worker all along (the warm standby, forked once it was ready, is named by the launcher).
    assert log.count("Booting worker with pid") - log.count("amldebug: standby worker") == 1, log[-3000:]
    assert "WORKER TIMEOUT" not in log, log[-3000:]  # gunicorn's kill of a silent worker
    assert "Scoring timeout after" not in log, log[-3000:]  # the server's SIGALRM around run()
    assert "Scoring timeout is set to 604800000" in log  # debug mode's week replaced the image's 3000 ms
