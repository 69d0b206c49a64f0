"""Real-engine fixtures. In CI (CI=true or AMLDEBUG_REQUIRE_DOCKER=1) a missing engine or
test image is a FAILURE; elsewhere these tests skip with the reason."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amldebug.engine import docker as engine
from amldebug.errors import DockerUnavailableError

IMAGES = {"azmlinfsrv": "amldebug-test/azmlinfsrv:1", "runit": "amldebug-test/runit:1"}
# Image Pythons other than the host's, and Azure ML's non-root user (tests/integration/test_image_pythons.py).
OTHER_IMAGES = {"py39": "amldebug-test/azmlinfsrv-py39:1", "py313": "amldebug-test/azmlinfsrv-py313:1",
                "nonroot": "amldebug-test/azmlinfsrv-nonroot:1"}
BASE_IMAGE = "amldebug-test/base:bookworm"
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "images" / "build.py"


def _required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("AMLDEBUG_REQUIRE_DOCKER") == "1"


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = engine.connect()
    except DockerUnavailableError as exc:
        if _required():
            pytest.fail(f"Docker is required here but: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    yield client
    # A safety net for this session's own left-overs (another test run may share the engine).
    from tests.conftest import SESSION_PREFIX

    for box in engine.find_services(client):
        if box.labels.get(engine.LABEL_SERVICE, "").startswith(SESSION_PREFIX):
            engine.remove(box)


@pytest.fixture(scope="session")
def test_images(docker_client):
    """Build the offline test images if they are missing (cached by tag)."""
    missing = [ref for ref in [BASE_IMAGE, *IMAGES.values(), *OTHER_IMAGES.values()]
               if not docker_client.images.list(name=ref)]
    if missing:
        result = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"could not build the test images:\n{result.stderr[-3000:]}")
    return IMAGES


@pytest.fixture(scope="session")
def other_images(test_images):
    """The images for Python 3.9 (bullseye), 3.13 (trixie) and uid 1000 ('dockeruser')."""
    return OTHER_IMAGES


@pytest.fixture
def nonroot_image(other_images):
    return other_images["nonroot"]


@pytest.fixture(params=sorted(IMAGES))
def image(request, test_images):
    """Each image kind: command 'azmlinfsrv' and command 'runsvdir /var/runit'."""
    return test_images[request.param]


@pytest.fixture(params=[*sorted(IMAGES), "process"])
def target(request):
    """Where the service runs, as attach options: each image kind, and the no-Docker runtime
    (azmlinfsrv from this Python, which the test extra installs)."""
    if request.param == "process":
        return ["--runtime", "process"]
    return ["--image", request.getfixturevalue("test_images")[request.param]]


@pytest.fixture
def server_image(test_images):
    return test_images["azmlinfsrv"]


@pytest.fixture
def watching():
    """watching(service): the real reload loop in a thread (helpers.Watching), stopped after the test."""
    from tests.integration.helpers import Watching

    started = []

    def start(service, **options):
        started.append(Watching(service, **options))
        return started[-1]

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="module")
def built_images(docker_client):
    """Images amldebug builds in the module (labelled with their environment's hash); removed at its end."""
    import docker

    from amldebug.envbuild import image as imagebuild

    before = {image.id for image in docker_client.images.list(filters={"label": imagebuild.LABEL_HASH})}
    yield
    for image in docker_client.images.list(filters={"label": imagebuild.LABEL_HASH}):
        if image.id not in before:
            try:
                docker_client.images.remove(image.id, force=True)
            except docker.errors.APIError:
                pass


@pytest.fixture(scope="session")
def registry(other_images, docker_client, tmp_path_factory):
    """A real registry (Debian's docker-registry) on a free 127.0.0.1 port, holding the test
    images under Azure ML's repository names (tests/support/registry.py): the py39 image as
    azureml/minimal-ubuntu22.04-py39-cpu-inference:latest, the Python 3.11 one as
    azureml/minimal-py311-inference:latest. Its address is also in AMLDEBUG_TEST_REGISTRY for
    tests that run amldebug in another process. Stopped at the end of the session."""
    from tests.support import registry as support

    try:
        running = support.start(docker_client, tmp_path_factory.mktemp("registry"))
    except support.RegistryUnavailable as exc:
        if _required():
            pytest.fail(f"a registry is required here but: {exc}")
        pytest.skip(str(exc))
    os.environ[support.ADDRESS_VARIABLE] = running.address
    yield running
    os.environ.pop(support.ADDRESS_VARIABLE, None)
    running.stop()


@pytest.fixture(scope="session")
def registry_mirror(registry):
    """"127.0.0.1:PORT": with AMLDEBUG_REGISTRY_MIRROR set to it, amldebug pulls
    mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest and
    mcr.microsoft.com/azureml/minimal-py311-inference:latest from the test registry."""
    return registry.address
