"""container.run_once's error paths that a real engine cannot produce on demand (a wait
that times out, a removal that fails). Its normal path runs in every probe and import
check of the integration tests."""

import docker.errors
import pytest
import requests

from amldebug.engine import docker as container
from amldebug.errors import ContainerError


class _Box:
    short_id = "abc123"

    def __init__(self, wait_error=None, remove_error=None):
        self.wait_error, self.remove_error, self.removed = wait_error, remove_error, False

    def start(self):
        pass

    def wait(self, timeout):
        if self.wait_error:
            raise self.wait_error
        return {"StatusCode": 0}

    def logs(self):
        return b"AMLDEBUG-IMPORT-OK\n"

    def remove(self, force):
        self.removed = True
        if self.remove_error:
            raise self.remove_error


class _Client:
    def __init__(self, box):
        self.box = box
        self.containers = self

    def create(self, image, **kwargs):
        return self.box


def test_a_wait_that_times_out_is_a_clear_error_and_the_container_goes():
    box = _Box(wait_error=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(ContainerError, match=r"^image 'score:1' did not finish 'python check.py' within 60 s; check "
                                             r"that the Docker engine is not overloaded"):
        container.run_once(_Client(box), "sha256:1", ["python", "check.py"], ref="score:1", timeout=60)
    assert box.removed


def test_a_removal_that_fails_does_not_hide_the_result():
    box = _Box(remove_error=docker.errors.APIError("removal of container abc123 failed: device busy"))

    assert container.run_once(_Client(box), "sha256:1", ["python", "check.py"]) == (0, "AMLDEBUG-IMPORT-OK\n")
    assert box.removed
