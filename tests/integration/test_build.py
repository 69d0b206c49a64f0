"""`amldebug build` against the real engine: packages resolved on the host for the image's
Python, an image built with no network inside it, then served and scored by amldebug."""

import io
import re
import shutil
import tarfile
import time
from pathlib import Path

import docker
import pytest
import requests

from amldebug.errors import ImageError
from amldebug.envbuild import image as build
from amldebug.envbuild.image import BuildError, build_image
from tests.integration.conftest import BASE_IMAGE
from tests.integration.helpers import amldebug
from tests.support.images import build_from_dockerfile

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "build"
LABEL_TEST = "amldebug.test.build"


def _quiet(_: str) -> None:
    pass


def _remove_built(client, digest: str) -> None:
    for image in client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}):
        client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """amldebug's cache for the module's builds (the autouse fixture is per test)."""
    return tmp_path_factory.getbasetemp() / "amldebug-cache"


@pytest.fixture(scope="module")
def created(docker_client):
    """Image ids the tests build; removed at the end (services on them are gone by then)."""
    ids = []
    yield ids
    for image_id in reversed(ids):
        try:
            docker_client.images.remove(image_id, force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="module")
def cold_build(docker_client, test_images, cache, created):
    """One cold build of app/requirements.txt (server + six) on the offline Debian base."""
    env = build.read_environment(FIXTURES / "app" / "requirements.txt")
    _remove_built(docker_client, build.env_hash(env, docker_client.images.get(BASE_IMAGE).id))
    lines = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMLDEBUG_CACHE", str(cache))
        result = build_image(FIXTURES / "app" / "requirements.txt", base_image=BASE_IMAGE, client=docker_client,
                             progress=lines.append)
    created.append(result.image_id)
    return result, lines


@pytest.fixture
def app_workspace(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "app", ws / "app")
    monkeypatch.chdir(ws)
    return ws


def test_build_then_serve_and_score(capsys, docker_client, cold_build, app_workspace, service_name):
    result, lines = cold_build
    assert result.built and result.tag.startswith("amldebug-env:")
    image = docker_client.images.get(result.tag)
    assert image.id == result.image_id
    assert image.labels[build.LABEL_HASH] == result.tag.split(":")[1]
    assert image.labels[build.LABEL_BASE] == BASE_IMAGE
    # Stages with counts and seconds, no raw pip or docker lines (issue 13).
    assert not any(line.startswith(("  pip: ", "  docker: ")) for line in lines)
    assert any(re.match(r"amldebug: installed \d+ packages in \d+\.\d s$", line) for line in lines), lines
    assert any(re.match(r"amldebug: image built in \d+\.\d s$", line) for line in lines), lines
    # Only COPY/ENV/LABEL steps: nothing ran (and nothing could download) inside the build.
    history = " ".join(step.get("CreatedBy", "") for step in image.history()[:6])
    assert "RUN" not in history and "COPY" in history

    code, out, err = amldebug(capsys, "attach", "app", "--image", result.tag, "--model-dir", "app/model",
                              "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    answer = requests.post(uri, json={"data": [1, 2, 3]}, timeout=30).json()
    assert answer["result"] == [3, 6, 9] and answer["six"].startswith("1.")
    code, _, err = amldebug(capsys, "down", "--name", service_name)
    assert code == 0, err


def test_unchanged_inputs_return_the_image_without_building(docker_client, cold_build, created):
    first, _ = cold_build
    started = time.monotonic()
    again = build_image(FIXTURES / "app" / "requirements.txt", base_image=BASE_IMAGE, client=docker_client,
                        progress=_quiet)
    assert time.monotonic() - started < 1.0
    assert (again.built, again.tag, again.image_id) == (False, first.tag, first.image_id)
    assert again.seconds < 1.0
    # --tag on a warm build: the same image, now also under that name, still labelled with the hash.
    named = build_image(FIXTURES / "app" / "requirements.txt", base_image=BASE_IMAGE, tag="amldebug-test/env:warm",
                        client=docker_client, progress=_quiet)
    assert (named.built, named.image_id) == (False, first.image_id)
    assert "amldebug-test/env:warm" in docker_client.images.get(first.image_id).tags
    docker_client.images.remove("amldebug-test/env:warm")


def test_changed_requirements_build_a_new_image(docker_client, cold_build, created, tmp_path):
    first, _ = cold_build
    req = tmp_path / "requirements.txt"
    req.write_text((FIXTURES / "app" / "requirements.txt").read_text() + "idna\n")
    result = build_image(req, base_image=BASE_IMAGE, tag="amldebug-test/env:changed", client=docker_client,
                         progress=_quiet)
    created.append(result.image_id)
    assert result.built and result.tag == "amldebug-test/env:changed"
    assert result.image_id != first.image_id
    image = docker_client.images.get(result.tag)
    assert image.labels[build.LABEL_HASH] != first.tag.split(":")[1]
    output = docker_client.containers.run(result.tag, ["python3", "-c", "import idna, six; print('ok')"],
                                          remove=True, network_mode="none")
    assert output.strip() == b"ok"


def test_unknown_package_is_named_and_nothing_is_tagged(docker_client, test_images, tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("six\namldebug-no-such-package-xyz==1.0\n")
    digest = build.env_hash(build.read_environment(req), docker_client.images.get(BASE_IMAGE).id)
    tags_before = {t for image in docker_client.images.list() for t in image.tags}
    lines = []
    with pytest.raises(BuildError) as caught:
        build_image(req, base_image=BASE_IMAGE, client=docker_client, progress=lines.append)
    message = str(caught.value)
    assert message.startswith("no package named 'amldebug-no-such-package-xyz' on the package index; check the name")
    assert "uv said:" in message and "was not found in the package registry" in message
    assert docker_client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}) == []
    assert {t for image in docker_client.images.list() for t in image.tags} == tags_before


@pytest.fixture(scope="module")
def no_python_image(docker_client, test_images):
    """The base with its Python deleted (built offline: RUN only removes files)."""
    image = build_from_dockerfile(docker_client, f"FROM {BASE_IMAGE}\nRUN rm -f /usr/bin/python3*\n"
                                  f"LABEL {LABEL_TEST}=nopython\n", "amldebug-test/nopython:1")
    yield "amldebug-test/nopython:1"
    docker_client.images.remove(image.id, force=True)


def test_base_without_python_fails_clearly(docker_client, no_python_image):
    with pytest.raises(ImageError) as caught:
        build_image(None, base_image=no_python_image, client=docker_client, progress=_quiet)
    message = str(caught.value)
    assert message.startswith(f"base image '{no_python_image}' has no Python")
    assert "pass --base-image with an image that has Python 3" in message


def test_base_without_a_shell_fails_clearly(docker_client, test_images):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"empty"))
    docker_client.api.import_image_from_data(data.getvalue(), repository="amldebug-test/empty", tag="1")
    try:
        with pytest.raises(ImageError, match=r"base image 'amldebug-test/empty:1' cannot run /bin/sh .*needs a base "
                                             r"image with a shell and Python 3"):
            build_image(None, base_image="amldebug-test/empty:1", client=docker_client, progress=_quiet)
    finally:
        docker_client.images.remove("amldebug-test/empty:1", force=True)


def test_missing_base_image_says_pull_or_pass_a_local_one(docker_client):
    notes = []
    with pytest.raises(ImageError) as caught:
        build_image(None, base_image="amldebug-test/absent:1", client=docker_client, progress=notes.append)
    message = str(caught.value)
    assert message.startswith("cannot pull base image 'amldebug-test/absent:1' from docker.io"), message
    assert "docker pull amldebug-test/absent:1" in message and "--base-image with a local image" in message
    assert notes[0].startswith("amldebug: pulling base image 'amldebug-test/absent:1'"), notes


def test_conda_file_with_only_pip_packages_builds(docker_client, test_images, created, tmp_path):
    env = tmp_path / "conda.yml"
    env.write_text("name: x\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                   "    - azureml-inference-server-http\n    - six\n")
    _remove_built(docker_client, build.env_hash(build.read_environment(env), docker_client.images.get(BASE_IMAGE).id))
    result = build_image(env, base_image=BASE_IMAGE, client=docker_client, progress=_quiet)
    created.append(result.image_id)
    assert result.built
    output = docker_client.containers.run(
        result.tag, ["sh", "-c", "command -v azmlinfsrv && python3 -c 'import six, azureml_inference_server_http'"],
        remove=True, network_mode="none")
    assert output.strip() == b"/opt/amldebug-env/bin/azmlinfsrv"


@pytest.mark.parametrize("version, installed", [("3.9", True), ("3.11", False)])
@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_markers_are_evaluated_for_the_image_python(tmp_path, version, installed, resolver):
    """pip alone would evaluate python_version against the host's Python (pypa/pip#11010)."""
    probe = {"python": "/usr/bin/python3", "version": version, "machine": "x86_64", "libc": "glibc 2.36",
             "markers": {"python_version": version, "python_full_version": version + ".0"}}
    target = tmp_path / "site-packages"
    target.mkdir()
    lines = ['six; python_version < "3.10"', 'idna; python_version >= "3.10"']
    if resolver == "pip":
        build.pip_install(lines, target, probe, _quiet)
    else:
        build.resolve.install(build.resolve.Steps(pip=tuple(lines)), target, probe, _quiet)
    assert (target / "six.py").is_file() is installed
    assert (target / "idna").is_dir() is not installed


def test_attach_with_env_builds_then_serves(capsys, docker_client, test_images, tmp_path, monkeypatch, service_name):
    """`amldebug attach --env FILE` without --image: build (or reuse) the image, then serve."""
    import shutil

    from tests.integration.helpers import amldebug as run_cli

    app = tmp_path / "app"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "build" / "app", app)
    monkeypatch.chdir(tmp_path)
    base = "amldebug-test/base:bookworm"
    code, out, err = run_cli(capsys, "build", "--env", "app/requirements.txt", "--base-image", base)
    assert code == 0, err
    tag = out.strip()
    assert tag.startswith("amldebug-env:")
    code, out, err = run_cli(capsys, "attach", "app", "--env", "app/requirements.txt", "--base-image", base,
                             "--model-dir", "app/model", "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    assert f"up to date: {tag}" in err  # the build above made it: attach reuses it
    code, out, err = run_cli(capsys, "build", "--env", "app/requirements.txt", "--base-image", base, "--json")
    assert code == 0, err
    assert {k: v for k, v in __import__("json").loads(out).items() if k != "seconds"} == {"tag": tag, "built": False}
    code, out, err = run_cli(capsys, "status", "--name", service_name, "--json")
    assert __import__("json").loads(out)[0]["image"] == tag
    code, out, err = run_cli(capsys, "score", "--name", service_name, "--data", '{"data": [2]}')
    assert code == 0, err
    answer = __import__("json").loads(out)
    assert answer["result"] == [6] and answer["six"].count(".") >= 1  # six comes from the built image
