"""Environments built as Azure ML builds them (issue 18), on the real engine, with no
--base-image: the Python the file pins, conda's part then pip's on top, named packages at
their newest releases, a date bound that never makes a file unsatisfiable.

Each test builds through the CLI (``amldebug build --env``) as a user would, and checks what
the user reads (the build log) and what the image holds (its Python and packages)."""

from __future__ import annotations

import json
import re

import docker
import pytest

from amldebug.envbuild import image as build
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker


PY39 = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
PY311 = "mcr.microsoft.com/azureml/minimal-py311-inference:latest"


def _untag(docker_client, ref: str) -> None:
    try:
        docker_client.images.remove(ref)  # the tag only: the test registry's image stays
    except docker.errors.NotFound:
        pass


@pytest.fixture(scope="module", autouse=True)
def mirror(registry_mirror, docker_client):
    """Azure ML's registry, as a corporate user reaches it: the test registry, through
    AMLDEBUG_REGISTRY_MIRROR. The prebuilt images are not present locally at the start, so the
    first build that wants one pulls it."""
    for ref in (PY39, PY311):
        _untag(docker_client, ref)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AMLDEBUG_REGISTRY_MIRROR", registry_mirror)
        yield registry_mirror
    for ref in (PY39, PY311):
        _untag(docker_client, ref)


@pytest.fixture(scope="module")
def built(docker_client):
    """The tags the module built, removed at its end."""
    tags = []
    yield tags
    for tag in tags:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.NotFound:
            pass


class Built:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def _build(capsys, tmp_path, text: str, name: str = "conda.yml") -> Built:
    env = tmp_path / name
    env.write_text(text, encoding="utf-8")
    return Built(*amldebug(capsys, "build", "--env", env))


def _in_image(docker_client, tag: str, code: str) -> dict:
    out = docker_client.containers.run(tag, ["/bin/sh", "-c", f'exec "$(command -v python3 || command -v python)" -c '
                                                              f'"$0"', code], remove=True, network_mode="none")
    return json.loads(out.decode().strip().splitlines()[-1])


_VERSIONS = ("import json, sys\nfrom importlib import metadata\n"
             "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
             "**{d.metadata['Name'].lower(): d.version for d in metadata.distributions()}}))")


def test_a_python_3_9_pin_is_built_on_azure_ml_s_3_9_image_pulled_conda_first_then_pip_replacing_numpy(
        docker_client, other_images, tmp_path, built, capsys):
    """conda's numpy=1.24.3 first; then pip's numba==0.56.4, which needs numpy<1.24, replaces it
    (Azure ML builds this; one resolver pass called it unsatisfiable). python=3.9 means Azure
    ML's Python 3.9 inference image, pulled (with progress) through the mirror, with no
    --base-image."""
    result = _build(capsys, tmp_path, "name: py39\nchannels: [conda-forge]\ndependencies:\n  - python=3.9\n"
                                      "  - numpy=1.24.3\n  - pip\n  - pip:\n    - numba==0.56.4\n")
    assert result.returncode == 0, result.stderr
    built.append(result.stdout.strip())
    log = result.stderr.splitlines()
    choice = next(line for line in log if line.startswith("amldebug: building for Python"))
    assert choice == (f"amldebug: building for Python 3.9 (python=3.9) on '{PY39}', Azure ML's prebuilt inference "
                      "image for Python 3.9"), result.stderr
    pulled = [line for line in log if "pulling base image" in line or "Pull complete" in line or "Download" in line]
    assert pulled and log.index(pulled[0]) < log.index(choice), result.stderr
    assert ("amldebug: the pip step replaced numpy 1.24.3 (from conda's part) with 1.23.5, as Azure ML's "
            "'pip install -U' does") in log, result.stderr
    assert log.index(choice) < next(i for i, line in enumerate(log) if "resolving" in line)
    have = _in_image(docker_client, result.stdout.strip(), _VERSIONS)
    assert have["python"] == "3.9" and have["numpy"] == "1.23.5" and have["numba"] == "0.56.4"


def test_a_python_the_machine_lacks_is_built_on_the_nearest_one_with_builds_for_every_pin_named_as_a_deviation(
        docker_client, other_images, tmp_path, built, monkeypatch, capsys):
    """python=3.8 with numpy==1.19.5 (wheels for 3.6 to 3.9): no 3.8 image here, none from Azure
    ML, no conda channel: Python 3.9, said as a deviation before anything is resolved."""
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", "127.0.0.1:9")  # no registry: nothing to pull
    result = _build(capsys, tmp_path, "dependencies:\n  - python=3.8\n  - numpy=1.19.5\n")
    assert result.returncode == 0, result.stderr
    built.append(result.stdout.strip())
    choice = next(line for line in result.stderr.splitlines() if "building for Python" in line)
    assert choice.startswith("amldebug: the environment pins python=3.8; no local image has Python 3.8 and Azure ML "
                             "publishes no inference image for it; conda's channels cannot be reached"), choice
    assert "building for Python 3.9 on '" in choice
    assert choice.endswith("the nearest Python with builds for every pin (a deviation: Azure ML would run Python 3.8)")
    have = _in_image(docker_client, result.stdout.strip(), _VERSIONS)
    assert have["python"] == "3.9" and have["numpy"] == "1.19.5"


def test_a_same_day_lower_bound_beyond_the_date_bound_is_not_unsatisfiable(docker_client, test_images, tmp_path,
                                                                            built, capsys):
    """botocore==1.31.0 bounds unpinned packages to its upload time; boto3 1.28.0, the release
    made for it, came out 15 s later, so 'boto3>=1.28.0' had no release under the bound. The
    bound is relaxed for the packages in the conflict, with a line saying so, and the file
    builds as it does in Azure ML."""
    result = _build(capsys, tmp_path, "dependencies:\n  - python=3.11\n  - pip:\n    - botocore==1.31.0\n"
                                      "    - boto3>=1.28.0\n")
    assert result.returncode == 0, result.stderr
    built.append(result.stdout.strip())
    assert any(line.startswith("amldebug: the date bound (2023-07-06) leaves no solution for boto3; those take "
                               "today's releases") for line in result.stderr.splitlines()), result.stderr
    have = _in_image(docker_client, result.stdout.strip(), _VERSIONS)
    assert have["botocore"] == "1.31.0" and have["boto3"] == "1.28.0"


@pytest.mark.corpus_heavy
def test_named_packages_keep_their_newest_release_and_the_dependencies_give_way(docker_client, test_images, tmp_path,
                                                                               built, capsys):
    """scikit-learn, numpy, pandas, joblib (conda) and azureml-defaults (pip), all unpinned, on
    Python 3.11: one resolver pass took azureml-defaults 1.0.85 (2020) so that numpy could be
    2.x, and its ruamel.yaml 0.15 failed to compile. Named packages now stay newest."""
    result = _build(capsys, tmp_path, "dependencies:\n  - python=3.11\n  - scikit-learn\n  - numpy\n  - pandas\n  - joblib\n"
                              "  - pip\n  - pip:\n    - azureml-defaults\n")
    assert result.returncode == 0, result.stderr
    built.append(result.stdout.strip())
    assert not any("resolved to" in line and "azureml-defaults" in line.split("resolved to")[0]
                   for line in result.stderr.splitlines()), result.stderr
    newest = max(build.resolve.matching(build.resolve.fetch_releases("azureml-defaults"), ">=0"),
                 key=lambda r: r.uploaded)
    have = _in_image(docker_client, result.stdout.strip(), _VERSIONS)
    assert have["azureml-defaults"] == newest.version, (have["azureml-defaults"], newest.version)
    assert have["python"] == "3.11" and "scikit-learn" in have and "pandas" in have
