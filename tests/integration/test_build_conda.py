"""Conda files of the public samples built as Azure ML builds them, against the real engine
and the real package index: conda packages from PyPI, the image's Python, an environment
that imports (issue 12, section 2). Three image builds at most; the wheel cache stays on
disk between runs (UV_CACHE_DIR, default ~/.cache/amldebug-tests/uv)."""

import os
import re
import time
from pathlib import Path

import docker
import pytest

from amldebug.errors import BuildError
from amldebug.envbuild import image as build
from amldebug.envbuild import resolve
from amldebug.envbuild.image import build_image
from tests.integration.conftest import BASE_IMAGE
from tests.support.cli import amldebug

pytestmark = pytest.mark.docker

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "conda"
PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
PROBE = {"python": "/usr/bin/python3", "version": "3.11", "machine": "x86_64", "libc": "glibc 2.36", "abiflags": ""}


@pytest.fixture(autouse=True)
def wheel_cache(monkeypatch):
    if not os.environ.get("UV_CACHE_DIR"):
        monkeypatch.setenv("UV_CACHE_DIR", str(Path.home() / ".cache" / "amldebug-tests" / "uv"))


@pytest.fixture
def built(docker_client):
    """Image ids a test builds (and hashes whose images must not exist); removed after."""
    ids = []
    yield ids
    for image_id in ids:
        for _ in range(20):  # a container run with remove=True may still be going away
            try:
                docker_client.images.remove(image_id, force=True)
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.5)


def _fresh(docker_client, env_file: Path) -> str:
    digest = build.env_hash(build.read_environment(env_file), docker_client.images.get(BASE_IMAGE).id)
    for image in docker_client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}):
        docker_client.images.remove(image.id, force=True)
    return digest


def test_sklearn_1_2_2_with_unpinned_numpy_builds_an_image_that_imports(docker_client, test_images, built):
    """azureml-examples' inference-schema sample: python=3.10, scikit-learn=1.2.2, numpy and
    pandas unpinned, as conda packages. pip alone picks numpy 2 and `import sklearn` fails."""
    env_file = SAMPLES / "inference-schema-env.yml"
    _fresh(docker_client, env_file)
    lines = []
    result = build_image(env_file, base_image=BASE_IMAGE, client=docker_client, progress=lines.append)
    built.append(result.image_id)
    assert result.built
    assert "amldebug: conda 'scikit-learn=1.2.2' -> 'scikit-learn==1.2.2.*' (conda's '=1.2.2' means 1.2.2.*)" in lines
    assert "amldebug: conda 'numpy' -> 'numpy'" in lines
    assert ("amldebug: conda channels ignored (conda-forge): packages come from the host's package index (PyPI)"
            in lines)
    assert (f"amldebug: building on '{BASE_IMAGE}' (--base-image), Python 3.11; the environment pins python=3.10: "
            "Azure ML would create Python 3.10 with conda") in lines, lines
    assert any(line.startswith("amldebug: unpinned packages bounded to releases before 2023-03-09") and
               "scikit-learn==1.2.2 (the newest pin)" in line for line in lines), lines
    assert any(re.match(r"amldebug: checking that the image imports \d+ modules \(sklearn, numpy, pandas", line)
               for line in lines), lines
    assert not any(line.startswith(("  pip: ", "  docker: ")) for line in lines)

    output = docker_client.containers.run(result.tag, ["python3", "-c", (
        "import sklearn, numpy, pandas, pkg_resources, azureml_inference_server_http\n"
        "from sklearn.linear_model import LinearRegression\n"
        "print(sklearn.__version__, numpy.__version__, LinearRegression().fit([[0], [1]], [0, 2]).predict([[2]])[0])")],
        remove=True, network_mode="none").decode().split()
    assert output[0] == "1.2.2" and output[1].startswith("1.") and float(output[2]) == pytest.approx(4.0)


def test_an_environment_that_does_not_import_is_a_build_failure_naming_the_package(docker_client, test_images,
                                                                                    tmp_path):
    """numpy 2 pinned next to a scikit-learn compiled against numpy 1.x: the worker would never
    boot; the build says why, names scikit-learn, and removes the image it built."""
    env_file = tmp_path / "requirements.txt"
    env_file.write_text("scikit-learn==1.2.2\nnumpy==2.0.0\n")
    digest = _fresh(docker_client, env_file)
    with pytest.raises(BuildError) as caught:
        build_image(env_file, base_image=BASE_IMAGE, client=docker_client, progress=lambda _: None)
    message = str(caught.value)
    assert message.startswith("the built environment does not import: 'import sklearn' (scikit-learn) fails in the "
                              "image's Python 3.11 with ValueError: numpy.dtype size changed"), message
    assert "add 'numpy<2' to the environment file" in message
    assert docker_client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}) == []


def test_an_environment_whose_newest_pin_is_old_still_gets_a_setuptools_that_imports(docker_client, test_images,
                                                                                     built, tmp_path):
    """six==1.16.0 (2021) bounds the unpinned packages to 2021; a setuptools of then needs the
    stdlib's distutils, which Debian's python3 (and Python 3.12+) lack: pkg_resources must
    still import, as in every conda Python."""
    env_file = tmp_path / "requirements.txt"
    env_file.write_text("six==1.16.0\n")
    _fresh(docker_client, env_file)
    lines = []
    result = build_image(env_file, base_image=BASE_IMAGE, client=docker_client, progress=lines.append)
    built.append(result.image_id)
    assert any(line.startswith("amldebug: unpinned packages bounded to releases before 2021-05-05")
               and line.endswith("packages and setuptools stay current") for line in lines), lines
    output = docker_client.containers.run(result.tag, ["python3", "-c", (
        "import pkg_resources, setuptools, six; print(setuptools.__version__, six.__version__)")],
        remove=True, network_mode="none").decode().split()
    assert int(output[0].split(".")[0]) >= 60 and output[1] == "1.16.0", output


def test_a_pin_with_no_build_for_the_image_python_names_the_pythons_it_has(docker_client, test_images):
    """A v1 notebook's environment: python=3.6.2 and scikit-learn==0.22.1, which has no wheel for 3.11."""
    lines = []
    with pytest.raises(BuildError) as caught:
        build_image(SAMPLES / "v1-sklearn-0.22-py36.yml", base_image=BASE_IMAGE, client=docker_client,
                    progress=lines.append)
    message = str(caught.value)
    assert message.startswith("scikit-learn==0.22.1 has no build for the base image's CPython 3.11 (the environment "
                              "pins python=3.6.2; the line on the base image says why the build is for 3.11); it has builds for Python "
                              "3.5, 3.6, 3.7, 3.8"), message
    assert message.endswith("or pass --base-image with an image whose Python is 3.8")
    assert not any(line.startswith("amldebug: installed") for line in lines)  # refused before installing anything


def test_every_pin_without_a_build_is_named_on_one_error_line(docker_client, test_images, capsys):
    """The app-insights notebook's myenv.yml: numpy==1.19.5 and scikit-learn==0.22.1, neither
    with a wheel for 3.11. One try names both (it named numpy, then scikit-learn on the next)."""
    env_file = (PROJECTS / "MachineLearningNotebooks" / "how-to-use-azureml" / "deployment" /
                "enable-app-insights-in-production-service" / "myenv.yml")
    code, out, err = amldebug(capsys, "build", "--env", env_file, "--base-image", BASE_IMAGE)
    assert code == 1 and out == ""
    assert [line for line in err.splitlines() if line.startswith("amldebug: error:")] == [
        "amldebug: error: numpy==1.19.5 has no build for the base image's CPython 3.11 (the environment pins "
        "python=3.10.18; the line on the base image says why the build is for 3.11); it has builds for Python 3.6, 3.7, 3.8, 3.9 (and "
        "source that needs a compiler, which the offline build does not run). scikit-learn==0.22.1 has no build for "
        "CPython 3.11 either; it has builds for Python 3.5, 3.6, 3.7, 3.8 (and source that needs a compiler, which "
        "the offline build does not run). Pin numpy and scikit-learn releases with wheels for Python 3.11, or pass "
        "--base-image with an image whose Python is 3.8"], err
    assert "amldebug: installed" not in err and "Traceback" not in err


def test_a_pure_python_sdist_is_built_on_the_host_instead_of_backtracking(tmp_path):
    """azureml-defaults[fuse] needs fusepy, which exists only as an sdist: wheels-only pip fell
    back to azureml-defaults 1.0.45 (2019). Resolution only: no image."""
    target = tmp_path / "site-packages"
    target.mkdir()
    lines = []
    resolve.install(resolve.Steps(pip=("azureml-dataset-runtime[fuse]",)), target, PROBE, lines.append)
    have = resolve.installed(target)
    assert "amldebug: fusepy==3.0.1 exists only as source: built into a pure-Python wheel on the host" in lines
    assert (target / "fuse.py").is_file() and int(have["azureml-dataset-runtime"][0].split(".")[0]) >= 1
    assert int(have["azureml-dataset-runtime"][0].split(".")[1]) > 50, have["azureml-dataset-runtime"]
    assert not any("far below" in line for line in lines), lines


def test_a_dependency_held_back_far_below_its_newest_release_is_reported(tmp_path):
    """The encrypted-deploy notebook's environment (v1-sklearn-fuse.yml): scikit-learn==1.5.1 bounds
    azureml-defaults to mid-2024, whose '~=1.2.1' holds the server at 1.2.2, which holds flask,
    flask-cors and gunicorn back in turn. Each fall names the requirement that caused it, the
    dependencies too (only direct requirements were reported). Resolution only: no image."""
    target = tmp_path / "site-packages"
    target.mkdir()
    lines = []
    environment = ["scikit-learn==1.5.1", "numpy==1.23.5", "azureml-dataset-runtime[pandas,fuse]", "azureml-defaults"]
    resolve.install(resolve.Steps(pip=tuple(environment), added=("azureml-inference-server-http", resolve.SETUPTOOLS)), target, PROBE, lines.append)
    warnings = [line for line in lines if line.startswith("amldebug: warning: ")]
    expected = [
        r"azureml-inference-server-http resolved to 1\.2\.\d+ \(\S+\), far below \S+ \(\S+\); held back by "
        r"azureml-defaults 1\.56\.0\.post1 \(azureml-inference-server-http~=1\.2\.1\)",
        r"flask resolved to 2\.3\.2 \(2023-05-01\), far below \S+ \(\S+\); held back by azureml-inference-server-http "
        r"1\.2\.\d+ \(flask<=2\.3\.2\)",
        r"gunicorn resolved to 22\.0\.0 \(2024-04-16\), far below \S+ \(\S+\); held back by "
        r"azureml-inference-server-http 1\.2\.\d+ \(gunicorn==22\.0\.0\)",
    ]
    for pattern in expected:
        assert any(re.fullmatch("amldebug: warning: " + pattern, line) for line in warnings), (pattern, warnings)
    # Bounded by the environment (the pins) or by amldebug (setuptools<82): never reported.
    assert not any(line.startswith(("amldebug: warning: numpy ", "amldebug: warning: scikit-learn ",
                                    "amldebug: warning: setuptools ")) for line in warnings), warnings
