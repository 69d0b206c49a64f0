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


# --- pulls: AMLDEBUG_REGISTRY_MIRROR, progress, and the message when a registry cannot be reached ---

MCR_REF = "mcr.microsoft.com/azureml/minimal-py311-inference:latest"


@pytest.mark.parametrize("value, expected", [
    ("", None), ("127.0.0.1:5000", "127.0.0.1:5000"), (" https://mirror.corp:443/mcr/ ", "mirror.corp:443/mcr"),
])
def test_the_mirror_setting_is_read_as_a_registry_and_an_optional_prefix(value, expected):
    assert container.registry_mirror({"AMLDEBUG_REGISTRY_MIRROR": value}) == expected


@pytest.mark.parametrize("ref, mirror, expected", [
    (MCR_REF, "127.0.0.1:5000", "127.0.0.1:5000/azureml/minimal-py311-inference:latest"),
    (MCR_REF, "mirror.corp/mcr", "mirror.corp/mcr/azureml/minimal-py311-inference:latest"),
    ("mcr.microsoft.com/azureml/x@sha256:" + "a" * 64, "m:1", "m:1/azureml/x@sha256:" + "a" * 64),
    (MCR_REF, None, None),
    ("docker.io/library/python:3.11", "127.0.0.1:5000", None),  # the mirror stands for mcr only
    ("mcr.microsoft.com.evil.example/azureml/x:1", "127.0.0.1:5000", None),
])
def test_an_mcr_ref_is_rewritten_to_the_mirror_and_no_other(ref, mirror, expected):
    assert container.mirrored_ref(ref, mirror) == expected


class _Image:
    def __init__(self, image_id):
        self.id = image_id


class _PullClient:
    """The engine's side of a pull: ``api.pull`` streams ``chunks`` (or raises ``error``),
    the pulled image is then known under the name pulled; tags and untags are recorded."""

    def __init__(self, chunks=(), error=None):
        self.chunks, self.error = list(chunks), error
        self.names: dict[str, _Image] = {}
        self.pulled, self.tagged, self.untagged = [], [], []
        self.api, self.images = self, self

    def pull(self, repo, tag, stream, decode):
        assert stream and decode
        self.pulled.append(f"{repo}:{tag}")
        if self.error:
            raise self.error
        self.names[f"{repo}:{tag}"] = _Image("sha256:pulled")
        return iter(self.chunks)

    def get(self, ref):
        if ref not in self.names:
            raise docker.errors.ImageNotFound(ref)
        return self.names[ref]

    def tag(self, image_id, repo, tag, force):
        self.tagged.append(f"{repo}:{tag}")
        self.names[f"{repo}:{tag}"] = _Image(image_id)
        return True

    def remove_image(self, name, noprune):
        self.untagged.append(name)
        self.names.pop(name)


_CHUNKS = [
    {"status": "Pulling from azureml/minimal-py311-inference", "id": "latest"},
    {"status": "Already exists", "id": "aaaa"},
    {"status": "Pulling fs layer", "id": "bbbb"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 4_000_000}, "id": "bbbb"},
    {"status": "Downloading", "progressDetail": {"current": 2_000_000, "total": 4_000_000}, "id": "bbbb"},
    {"status": "Download complete", "id": "bbbb"},
    {"status": "Extracting", "progressDetail": {"current": 4_000_000, "total": 4_000_000}, "id": "bbbb"},
    {"status": "Pull complete", "id": "bbbb"},
    {"status": "Digest: sha256:" + "c" * 64},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5000/azureml/minimal-py311-inference:latest"},
]


def test_an_mcr_image_is_pulled_from_the_mirror_and_known_by_its_mcr_name_only(monkeypatch):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5000")
    client, lines = _PullClient(_CHUNKS), []

    image = container.pull_image(client, MCR_REF, what="base image", progress=lines.append)

    mirrored = "127.0.0.1:5000/azureml/minimal-py311-inference:latest"
    assert client.pulled == [mirrored] and client.tagged == [MCR_REF] and client.untagged == [mirrored]
    assert image.id == "sha256:pulled" and set(client.names) == {MCR_REF}
    assert lines[0] == f"amldebug: pulling base image '{MCR_REF}' from 127.0.0.1:5000 (AMLDEBUG_REGISTRY_MIRROR)"
    # One line per change of a layer's state (the repeated Downloading is not one), then the total.
    assert lines[1:9] == ["  Pulling from azureml/minimal-py311-inference", "  aaaa: Already exists",
                          "  bbbb: Pulling fs layer", "  bbbb: Downloading", "  bbbb: Download complete",
                          "  bbbb: Extracting", "  bbbb: Pull complete", "  Digest: sha256:" + "c" * 64]
    assert lines[-1].startswith(f"  pulled base image '{MCR_REF}' in ") and lines[-1].endswith("(4.0 MB downloaded)")


def test_a_layers_progress_is_reported_at_most_every_second():
    ticks = iter([0.0, 0.3, 1.2, 1.5, 2.6, 2.7])
    chunks = [{"status": "Downloading", "progressDetail": {"current": n * 1_000_000, "total": 10_000_000}, "id": "bb"}
              for n in range(1, 7)]
    lines = []
    container._follow_pull(iter(chunks), lines.append, clock=lambda: next(ticks))
    assert lines == ["  bb: Downloading", "  bb: Downloading 30% of 10.0 MB", "  bb: Downloading 50% of 10.0 MB"]


def test_an_unreachable_mirror_names_the_image_the_mirror_and_the_setting(monkeypatch):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5999")
    refused = docker.errors.APIError(
        "500 Server Error", explanation='Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: '
                                       'connection refused')
    client = _PullClient(error=refused)

    with pytest.raises(container.ImageError) as info:
        container.pull_image(client, MCR_REF, what="base image",
                             hint="or pass --base-image with a local image that has Python")

    assert str(info.value) == (
        f"cannot pull base image '{MCR_REF}' from 127.0.0.1:5999 (AMLDEBUG_REGISTRY_MIRROR): connection refused; "
        f"start the mirror, fix AMLDEBUG_REGISTRY_MIRROR, pull the image yourself ('docker pull {MCR_REF}'), or "
        "pass --base-image with a local image that has Python")
    assert client.tagged == [] and client.names == {}


@pytest.mark.parametrize("explanation, cause, fix", [
    ("manifest for 127.0.0.1:5000/azureml/minimal-py311-inference:latest not found: manifest unknown: manifest "
     "unknown", "no such image there (manifest unknown)",
     "copy the image to the mirror as '127.0.0.1:5000/azureml/minimal-py311-inference:latest'"),
    ('Get "https://127.0.0.1:5000/v2/": x509: certificate signed by unknown authority',
     "TLS: x509: certificate signed by unknown authority", "trust the mirror's certificate"),
    ('Head "http://127.0.0.1:5000/v2/azureml/x/manifests/latest": no basic auth credentials',
     "not authorized", "log in to the mirror ('docker login 127.0.0.1:5000')"),
])
def test_each_cause_of_a_failed_pull_through_the_mirror_has_its_own_fix(monkeypatch, explanation, cause, fix):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5000")
    client = _PullClient(error=docker.errors.APIError("500 Server Error", explanation=explanation))
    with pytest.raises(container.ImageError) as info:
        container.pull_image(client, MCR_REF)
    message = str(info.value)
    assert message.startswith(f"cannot pull image '{MCR_REF}' from 127.0.0.1:5000 (AMLDEBUG_REGISTRY_MIRROR): {cause}")
    assert fix in message and "fix AMLDEBUG_REGISTRY_MIRROR" in message


def test_without_a_mirror_an_unreachable_mcr_points_at_the_setting(monkeypatch):
    monkeypatch.delenv("AMLDEBUG_REGISTRY_MIRROR", raising=False)
    error = docker.errors.APIError("500", explanation='Get "https://mcr.microsoft.com/v2/": dial tcp: lookup '
                                                       'mcr.microsoft.com on 10.0.0.53:53: no such host')
    client = _PullClient(error=error)
    with pytest.raises(container.ImageError) as info:
        container.pull_image(client, MCR_REF, what="base image")
    assert str(info.value).startswith(
        f"cannot pull base image '{MCR_REF}' from mcr.microsoft.com: no such host (mcr.microsoft.com does not "
        "resolve); set AMLDEBUG_REGISTRY_MIRROR=host:port to a registry that mirrors mcr.microsoft.com")
    assert client.pulled == [MCR_REF]


def test_an_error_in_the_middle_of_a_pull_is_reported_and_nothing_is_tagged(monkeypatch):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5000")
    client = _PullClient([_CHUNKS[0], {"error": "unexpected EOF", "errorDetail": {"message": "unexpected EOF"}}])
    with pytest.raises(container.ImageError, match=r"from 127.0.0.1:5000 \(AMLDEBUG_REGISTRY_MIRROR\): unexpected EOF"):
        container.pull_image(client, MCR_REF)
    assert client.tagged == []


def test_an_mcr_image_pulled_by_hand_under_the_mirrors_name_is_found(monkeypatch):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5000")
    client = _PullClient()
    client.names["127.0.0.1:5000/azureml/minimal-py311-inference:latest"] = _Image("sha256:mine")
    assert container.find_image(client, MCR_REF).id == "sha256:mine"
    assert client.tagged == [MCR_REF]
    monkeypatch.delenv("AMLDEBUG_REGISTRY_MIRROR")
    assert container.find_image(client, "mcr.microsoft.com/azureml/other:1") is None


def test_a_missing_mcr_image_names_the_mirror_to_pull_it_from(monkeypatch):
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:5000")
    with pytest.raises(container.ImageError) as info:
        container.get_image(_PullClient(), MCR_REF)
    assert str(info.value) == (
        f"image '{MCR_REF}' is not present locally; pull it ('docker pull 127.0.0.1:5000/azureml/"
        f"minimal-py311-inference:latest' (AMLDEBUG_REGISTRY_MIRROR) or 'docker pull {MCR_REF}') or build one "
        "with 'amldebug build'")
