"""container.run_once's error paths that a real engine cannot produce on demand (a wait
that times out, a removal that fails). Its normal path runs in every probe and import
check of the integration tests."""

from pathlib import Path

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


def test_a_port_taken_during_the_start_is_named_from_dockers_whole_message():
    """Docker puts the port after 200 characters of endpoint ids; the message used to be cut
    there, so users saw '...driver failed programming external connect' and no hint."""
    text = ('500 Server Error for http+docker://localhost/v1.41/containers/0f3c/start: Internal Server Error '
            '("driver failed programming external connectivity on endpoint amldebug-t-ab12 '
            '(5d0c3a9e1f2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d): '
            'Bind for 127.0.0.1:5678 failed: port is already allocated")')
    assert len(text.split("Bind for")[0]) > 200
    assert container.port_taken(text) == "127.0.0.1:5678"
    assert container.port_taken("Error starting userland proxy: listen tcp4 127.0.0.1:5001: bind: address already "
                                "in use") == "127.0.0.1:5001"
    assert container.port_taken("failed: port is already allocated") == ""
    assert container.port_taken("no such image") is None


def test_the_start_error_for_a_taken_port_names_it_and_removes_the_container(monkeypatch):
    """The race itself (another program binds the port between amldebug's check and Docker's
    start) cannot be produced on demand, so the container's start fails here with Docker's text."""
    text = ("driver failed programming external connectivity on endpoint amldebug-x (" + "f" * 64 + "): "
            "Bind for 127.0.0.1:5678 failed: port is already allocated")
    removed = []

    class Box:
        def start(self):
            raise docker.errors.APIError(text)

    class Containers:
        def create(self, *args, **kwargs):
            return Box()

    class Client:
        containers = Containers()

    monkeypatch.setattr(container, "_own_network", lambda client, spec, labels: "net")
    monkeypatch.setattr(container, "remove", lambda box: removed.append(box))
    from amldebug.core.spec import ServiceSpec, layout

    spec = ServiceSpec(name="x", source_dir="/tmp", entry_script="score.py", image="img")
    lay = layout(spec)
    with pytest.raises(ContainerError) as info:
        container.start_service(Client(), spec, lay, ["x"], Path("/tmp"), Path("/tmp"), 5001, 5678, session="s")
    assert "port 127.0.0.1:5678 of service 'x' was taken by another program" in str(info.value)
    assert "--port/--debug-port" in str(info.value) and len(removed) == 1
