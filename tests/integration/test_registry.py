"""Pulls through a real registry (Debian's docker-registry on 127.0.0.1, tests/support/registry.py):
a base image named by the registry's own address, an mcr.microsoft.com image through
AMLDEBUG_REGISTRY_MIRROR, and a mirror that does not answer."""

import re
import socket

import docker
import pytest

from amldebug.envbuild import image as imagebuild
from amldebug.errors import ExitStatus
from tests.integration.helpers import amldebug
from tests.support.registry import LABEL

pytestmark = pytest.mark.docker

PY39 = "azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
PY311 = "azureml/minimal-py311-inference:latest"
MCR_PY311 = f"mcr.microsoft.com/{PY311}"


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    """A small pure-Python environment (six; amldebug adds the server)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements.txt").write_text("six\n")
    return "requirements.txt"


@pytest.fixture
def pulled(docker_client, registry):
    """names.append(ref): an image the test pulls, absent before the test and removed after it,
    with what was built on it. A copy left behind, even untagged under a build, would turn the
    pull into a no-op; a real mcr image on a developer's machine makes the test skip."""

    def remove_pulled(ref):
        name = ref.split("/", 1)[1]  # "azureml/X:tag", as the registry holds it
        image_id = registry.image_id(name)
        try:
            image = docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            pass
        else:
            if image.id != image_id:
                pytest.skip(f"'{ref}' is present locally and is not this suite's: pull tests need it absent")
        _remove_with_descendants(docker_client, image_id)

    class Names(list):
        def append(self, ref):
            remove_pulled(ref)
            super().append(ref)

    names = Names()
    yield names
    for ref in names:
        remove_pulled(ref)


def _remove_with_descendants(client, image_id):
    """Remove an image and every image built on it (the images amldebug built, their steps)."""
    children = {}
    for entry in client.api.images(all=True):
        children.setdefault(entry.get("ParentId") or "", []).append(entry["Id"])

    def remove(current):
        for child in children.get(current, []):
            remove(child)
        try:
            client.api.remove_image(current, force=True, noprune=True)  # parents go in this order, after
        except docker.errors.NotFound:
            pass

    remove(image_id)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_a_base_image_named_by_a_registry_is_pulled_with_progress_then_built_on(
        capsys, docker_client, registry, env_file, pulled):
    ref = registry.ref(PY39)
    pulled.append(ref)

    code, out, err = amldebug(capsys, "build", "--env-file", env_file, "--base-image", ref)

    assert code == 0, err
    lines = err.splitlines()
    assert any(line.startswith(f"amldebug: pulling base image '{ref}'") for line in lines), err
    # A line per change of a layer's state: the test image's layers exist, the registry's own is downloaded.
    assert any(re.fullmatch(r"  [0-9a-f]{12}: Already exists", line) for line in lines), err
    for state in ("Pulling fs layer", "Download complete", "Pull complete"):
        assert any(re.fullmatch(rf"  [0-9a-f]{{12}}: {state}", line) for line in lines), (state, err)
    assert any(re.fullmatch(rf"  pulled base image '{re.escape(ref)}' in \d+\.\d s \(4\.0 MB downloaded\)", line)
               for line in lines), err
    image = docker_client.images.get(ref)
    assert image.labels[LABEL] == PY39  # the registry's image, not the local test image
    built = docker_client.images.get(out.strip())
    assert built.labels[imagebuild.LABEL_BASE] == ref and built.labels[imagebuild.LABEL_BASE_ID] == image.id


def test_an_mcr_image_is_pulled_through_the_mirror_setting_and_tagged_under_its_mcr_name(
        capsys, docker_client, registry, registry_mirror, env_file, pulled, monkeypatch):
    pulled.append(MCR_PY311)
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", registry_mirror)

    code, out, err = amldebug(capsys, "build", "--env-file", env_file, "--base-image", MCR_PY311)

    assert code == 0, err
    assert f"amldebug: pulling base image '{MCR_PY311}' from {registry_mirror} (AMLDEBUG_REGISTRY_MIRROR)" in err
    assert f"  Status: Downloaded newer image for {registry_mirror}/{PY311}" in err.splitlines()
    image = docker_client.images.get(MCR_PY311)
    assert image.labels[LABEL] == PY311  # what the registry holds under Azure ML's name
    assert image.tags == [MCR_PY311]  # the mirror's name was only the way in
    built = docker_client.images.get(out.strip())
    assert built.labels[imagebuild.LABEL_BASE] == MCR_PY311 and built.labels[imagebuild.LABEL_BASE_ID] == image.id
    # Found locally from now on: a second build pulls nothing.
    code, out_again, err = amldebug(capsys, "build", "--env-file", env_file, "--base-image", MCR_PY311)
    assert code == 0 and out_again == out and "pulling" not in err, err


def test_an_unreachable_mirror_is_named_with_the_setting_and_leaves_nothing(
        capsys, docker_client, env_file, monkeypatch):
    mirror = f"127.0.0.1:{_closed_port()}"
    if docker_client.images.list(name=MCR_PY311):
        pytest.skip(f"'{MCR_PY311}' is present locally: amldebug would not pull it")
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", mirror)
    containers_before = {c.id for c in docker_client.containers.list(all=True)}

    code, out, err = amldebug(capsys, "build", "--env-file", env_file, "--base-image", MCR_PY311)

    assert code == ExitStatus.DOCKER and out == ""
    assert (f"cannot pull base image '{MCR_PY311}' from {mirror} (AMLDEBUG_REGISTRY_MIRROR): connection refused; "
            f"start the mirror, fix AMLDEBUG_REGISTRY_MIRROR, pull the image yourself ('docker pull {MCR_PY311}'), "
            "or pass --base-image with a local image that has Python") in err
    assert "Traceback" not in err
    for name in (MCR_PY311, f"{mirror}/{PY311}"):
        assert docker_client.images.list(name=name.rsplit(":", 1)[0]) == [], name
    created = [c for c in docker_client.containers.list(all=True) if c.id not in containers_before]
    assert not [c.name for c in created if PY311.split(":")[0] in str(c.attrs["Config"]["Image"])]
