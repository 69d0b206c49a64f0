"""Which Python and base image an environment is built for (envbuild/python.py), without an
engine: the engine's answers (local images, pulls, conda's reachability) are stood in for here;
tests/integration/test_env_as_azureml.py and test_registry.py do the same on the real engine."""

from __future__ import annotations

import pytest

from amldebug.envbuild import image as build
from amldebug.envbuild import python
from amldebug.errors import ImageError
from amldebug.sources.envfile import Environment


class Image:
    def __init__(self, ref: str) -> None:
        self.id = f"sha256:{abs(hash(ref)):x}"
        self.tags = [ref]


def _probe(version: str, **more) -> dict:
    return {"version": version, "python": "/usr/bin/python3", "machine": "x86_64", "libc": "glibc 2.35",
            "markers": {}, **more}


@pytest.fixture
def engine(monkeypatch):
    """A stand-in engine: ``images`` (ref -> Python) present locally, ``pullable`` (ref -> Python)
    in a registry, and whether conda's channels answer. Records what was pulled."""
    state = {"local": {}, "pullable": {}, "conda": False, "pulled": []}

    def use(client, ref, progress):
        if ref in state["local"]:
            return python.Base(ref, Image(ref), _probe(state["local"][ref]), "")
        if ref in state["pullable"]:
            state["pulled"].append(ref)
            version = state["pullable"][ref]
            return python.Base(ref, Image(ref), _probe(version, conda="/opt/conda/bin/conda"), "")
        raise ImageError(f"cannot pull base image '{ref}' from mcr.microsoft.com; set AMLDEBUG_REGISTRY_MIRROR")

    monkeypatch.setattr(python, "_use", use)
    monkeypatch.setattr(python, "local_pythons", lambda client, progress: [
        (ref, Image(ref), _probe(version)) for ref, version in state["local"].items()])
    monkeypatch.setattr(python, "conda_reachable", lambda: state["conda"])
    return state


def _env(*conda: str, image=None, source="/p/conda.yml") -> Environment:
    from pathlib import Path

    return Environment(Path(source), (), conda, (), (), image)


def test_azure_ml_s_image_for_the_pinned_python_comes_first_then_any_local_image_with_it(engine):
    engine["local"] = {"mine/scoring:3": "3.9", python.PREBUILT["3.9"]: "3.9", "other:1": "3.11"}
    base = python.choose(_env("python=3.9.7", "numpy"), None, None, print)
    assert base.ref == python.PREBUILT["3.9"] and not base.deviation and not engine["pulled"]
    assert base.why == (f"building for Python 3.9 (python=3.9.7) on '{python.PREBUILT['3.9']}', a local image with "
                        "Python 3.9")
    del engine["local"][python.PREBUILT["3.9"]]
    engine["pullable"] = {python.PREBUILT["3.9"]: "3.9"}
    assert python.choose(_env("python=3.9"), None, None, print).ref == python.PREBUILT["3.9"]  # pulled, not 'mine'
    assert engine["pulled"] == [python.PREBUILT["3.9"]]
    engine["pullable"] = {}
    base = python.choose(_env("python=3.9"), None, None, print)
    assert base.ref == "mine/scoring:3" and base.why.startswith(
        "building for Python 3.9 (python=3.9) on 'mine/scoring:3', a local image with Python 3.9 (Azure ML's inference "
        "image for it cannot be pulled (cannot pull base image")


def test_without_a_local_image_azure_ml_s_prebuilt_image_for_that_python_is_pulled(engine):
    engine["local"] = {"other:1": "3.11"}
    engine["pullable"] = {python.PREBUILT["3.12"]: "3.12"}
    base = python.choose(_env("python=3.12"), None, None, print)
    assert engine["pulled"] == [python.PREBUILT["3.12"]] and base.ref == python.PREBUILT["3.12"]
    assert base.why.endswith("Azure ML's prebuilt inference image for Python 3.12")


def test_the_environment_s_own_image_is_used_when_its_python_is_the_pin_and_a_conda_base_is_not(engine):
    engine["local"] = {"team/base:7": "3.11", python.CONDA_BASE_IMAGE: "3.12", "x:1": "3.10"}
    base = python.choose(_env("python=3.11", image="team/base:7"), None, None, print)
    assert base.ref == "team/base:7" and base.why.endswith("the environment's own image")
    base = python.choose(_env("python=3.10", image=python.CONDA_BASE_IMAGE), None, None, print)
    assert base.ref == "x:1"  # Azure ML's conda base image's own Python is never the environment's


def test_azure_ml_s_way_when_conda_s_channels_answer_and_its_base_can_be_pulled(engine):
    engine["pullable"] = {python.CONDA_BASE_IMAGE: "3.12"}
    engine["conda"] = True
    base = python.choose(_env("python=3.8"), None, None, print)
    assert base.conda and base.ref == python.CONDA_BASE_IMAGE
    assert base.probe["version"] == "3.8" and base.probe["python"] == "/azureml-envs/amldebug/bin/python"


def test_otherwise_the_nearest_python_with_builds_for_every_pin_is_a_named_deviation(engine):
    engine["local"] = {"a:1": "3.11", "b:1": "3.9", "c:1": "3.13"}
    from amldebug.envbuild.resolve import Release
    import datetime as dt

    when = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
    index = {"scikit-learn": {"0.24.1": Release("0.24.1", when, (
        "scikit_learn-0.24.1-cp38-cp38-manylinux2010_x86_64.whl", "scikit_learn-0.24.1-cp39-cp39-manylinux2010_x86_64.whl"))}}
    base = python.choose(_env("python=3.8", "scikit-learn=0.24.1"), None, None, print,
                         lambda: ({"scikit-learn": "==0.24.1"}, index))
    assert base.ref == "b:1" and base.deviation
    assert base.why.startswith("the environment pins python=3.8; no local image has Python 3.8 and Azure ML publishes "
                               "no inference image for it; conda's channels cannot be reached")
    assert base.why.endswith("building for Python 3.9 on 'b:1', the nearest Python with builds for every pin (a "
                             "deviation: Azure ML would run Python 3.8)")
    # 3.10 is as near to 3.9 as to 3.11: pins that only have 3.11 wheels pick 3.11
    index = {"numpy": {"1.26.0": Release("1.26.0", when, ("numpy-1.26.0-cp311-cp311-manylinux_2_17_x86_64.whl",))}}
    base = python.choose(_env("python=3.10"), None, None, print, lambda: ({"numpy": "==1.26.0"}, index))
    assert base.ref == "a:1"


def test_base_image_wins_and_says_what_azure_ml_would_create(engine):
    engine["local"] = {"given:1": "3.11"}
    base = python.choose(_env("python=3.8"), "given:1", None, print)
    assert base.ref == "given:1" and base.deviation
    assert base.why == ("building on 'given:1' (--base-image), Python 3.11; the environment pins python=3.8: Azure ML "
                        "would create Python 3.8 with conda")


def test_no_image_at_all_names_every_path_tried_and_the_fix(engine):
    with pytest.raises(ImageError) as caught:
        python.choose(_env("python=3.9"), None, None, print)
    message = str(caught.value)
    assert message.startswith("the environment pins python=3.9 and no image with a Python can be had for it: Azure "
                              "ML's inference image for it cannot be pulled")
    assert "AMLDEBUG_REGISTRY_MIRROR" in message and "--base-image" in message


def test_the_conda_file_for_azure_ml_s_way_keeps_channels_conda_and_pip_parts():
    env = Environment(None, ("numba==0.56.4", "--extra-index-url https://x/simple"), ("python=3.8", "numpy=1.24.3"),
                      ("conda-forge",))
    assert build.conda_yaml(env) == (
        'name: amldebug\nchannels:\n  - "conda-forge"\ndependencies:\n  - "python=3.8"\n  - "numpy=1.24.3"\n'
        '  - pip:\n    - "numba==0.56.4"\n    - "--extra-index-url https://x/simple"\n')
    text = python.conda_dockerfile("sha256:abc", labels={"amldebug.env.hash": "0123"})
    assert text.splitlines() == [
        "FROM sha256:abc",
        "COPY conda.yml /tmp/amldebug/conda.yml",
        "RUN conda env create -p /azureml-envs/amldebug -f /tmp/amldebug/conda.yml && conda clean -aqy",
        "RUN /azureml-envs/amldebug/bin/python -c 'import azureml_inference_server_http' 2>/dev/null || "
        "/azureml-envs/amldebug/bin/python -m pip install --no-cache-dir azureml-inference-server-http",
        "ENV PATH=/azureml-envs/amldebug/bin:$PATH AZUREML_CONDA_ENVIRONMENT_PATH=/azureml-envs/amldebug",
        'LABEL amldebug.env.hash="0123"']


def test_with_no_pin_the_default_python_goes_the_same_way_and_falls_back_to_a_local_image(engine):
    engine["local"] = {"team/py39:2": "3.9"}
    base = python.choose(Environment(None, ("scikit-learn",)), None, None, print)
    assert base.ref == "team/py39:2" and base.why.startswith(
        "building for Python 3.9 (no pin: amldebug's default, Python 3.9) on 'team/py39:2', a local image with "
        "Python 3.9 (Azure ML's inference image for it cannot be pulled")
    engine["pullable"] = {python.DEFAULT_BASE_IMAGE: "3.9"}
    assert python.choose(Environment(None, ("six",)), None, None, print).ref == python.DEFAULT_BASE_IMAGE
    engine["local"] = {"team/base:1": "3.11"}
    base = python.choose(_env("numpy", image="team/base:1"), None, None, print)  # its own image, no pin: as it is
    assert base.ref == "team/base:1" and base.why == ("building on 'team/base:1' (the environment's image), Python "
                                                      "3.11; the environment pins no Python")
