"""An Azure ML project described with azureml-core's own classes (no workspace) becomes a
debuggable local service: its environment (azureml-core itself among the packages) is
built offline on the test base image, and inside the service azureml-core's
``Model.get_model_path`` finds the model where amldebug placed it.

The same project as an inference configuration FILE gives the same image (no rebuild) and
the same answers through ``amldebug attach --inference-config``.
"""

import importlib.metadata
import json
import textwrap

import pytest
import requests

import amldebug
from amldebug.envbuild import image as build
from tests.conftest import marker_line, require_azureml
from tests.integration.conftest import BASE_IMAGE
from tests.integration.helpers import Request, client_from_launch_json
from tests.integration.helpers import amldebug as run_cli

pytestmark = pytest.mark.docker

require_azureml()
from azureml.core import Environment  # noqa: E402
from azureml.core.model import InferenceConfig  # noqa: E402

SCORE = '''\
import json
import os

from azureml.core.model import Model

weights = None
model_path = None


def init():
    global weights, model_path
    model_path = Model.get_model_path("clf")  # marker: get-model-path
    with open(model_path) as f:
        weights = json.load(f)


def run(raw_data):
    data = json.loads(raw_data)["data"]  # marker: run-data
    scaled = [x * weights["scale"] for x in data]
    return {"result": scaled, "model_path": model_path, "cwd": os.getcwd(), "greeting": os.environ.get("GREETING")}
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """project/score.py, models/clf.json and a requirements file pinned to this machine's
    azureml-core and scoring server (the wheels pip already has)."""
    root = tmp_path_factory.mktemp("azml")
    (root / "project").mkdir()
    (root / "project" / "score.py").write_text(SCORE)
    (root / "models").mkdir()
    (root / "models" / "clf.json").write_text(json.dumps({"scale": 5}))
    pins = [f"{name}=={importlib.metadata.version(name)}"
            for name in ("azureml-core", "azureml-inference-server-http")]
    (root / "requirements.txt").write_text("\n".join(pins) + "\n")
    return root


@pytest.fixture(scope="module")
def environment(project):
    env = Environment.from_pip_requirements("amldebug-it", str(project / "requirements.txt"))
    env.environment_variables = {"GREETING": "from-the-environment"}
    return env


def test_inference_config_object_builds_debugs_and_resolves_the_model(
        capsys, docker_client, test_images, built_images, project, environment, service_name, monkeypatch):
    monkeypatch.chdir(project)
    config = InferenceConfig(entry_script="score.py", source_directory="project", environment=environment)

    service = amldebug.attach(inference_config=config, models=["models/clf.json"], model_version="3",
                              base_image=BASE_IMAGE, name=service_name)
    assert service.spec.image.startswith("amldebug-env:")
    image = docker_client.images.get(service.spec.image)
    assert image.labels[build.LABEL_BASE] == BASE_IMAGE
    assert "RUN" not in " ".join(step.get("CreatedBy", "") for step in image.history()[:6])

    score = project / "project" / "score.py"
    model_line, run_line = marker_line(score, "get-model-path"), marker_line(score, "run-data")
    with client_from_launch_json(project, service_name, {score: [model_line, run_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), model_line, "init")
        client.continue_(stop)

        request = Request(service.scoring_uri, '{"data": [1, 2]}')
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        assert client.evaluate(stop, "model_path") == "'/var/azureml-app/azureml-models/clf/3/clf.json'"
        client.continue_(stop)
        answer = request.result().json()
    # azureml-core's own lookup, run inside the service, found the placed model: the
    # path Azure ML gives (under AML_APP_ROOT), from the app root the server runs in.
    assert answer == {"result": [5, 10], "model_path": "/var/azureml-app/azureml-models/clf/3/clf.json",
                      "cwd": "/var/azureml-app",
                      "greeting": "from-the-environment"}
    service.delete()


def test_the_same_project_as_a_file_reuses_the_image_and_serves_the_same(
        capsys, docker_client, test_images, built_images, project, environment, service_name, monkeypatch):
    monkeypatch.chdir(project)
    config_file = project / "inferenceconfig.json"
    config_file.write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "project",
                                       "environment": Environment._serialize_to_dict(environment)}, indent=2))

    code, out, err = run_cli(capsys, "attach", "--inference-config", config_file, "--base-image", BASE_IMAGE,
                             "--model-dir", "models/clf.json", "--model-version", "3", "--name", service_name,
                             "--detach", "--no-wait")
    assert code == 0, err
    assert "amldebug: up to date: amldebug-env:" in err  # the object's build, found again
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    answer = requests.post(uri, json={"data": [3]}, timeout=30).json()
    assert answer["result"] == [15] and answer["model_path"] == "/var/azureml-app/azureml-models/clf/3/clf.json"
    assert answer["greeting"] == "from-the-environment"

    # In the same shape as YAML, with an -e value that wins over the environment's.
    yaml_file = project / "inferenceconfig.yml"
    yaml_file.write_text(textwrap.dedent("""\
        entryScript: score.py
        sourceDirectory: project
        environment:
          environmentVariables:
            GREETING: from-yaml
          python:
            condaDependenciesFile: conda.yml
        """))
    # The conda lines azureml-core wrote above (python, pip), so the image is the same one.
    (project / "conda.yml").write_text("dependencies:\n  - python=3.8.13\n  - pip:\n    - -r requirements.txt\n  - pip\n")
    code, out, err = run_cli(capsys, "attach", "--inference-config", yaml_file, "--base-image", BASE_IMAGE,
                             "--model-dir", "models/clf.json", "--model-version", "3", "--name", service_name,
                             "-e", "GREETING=from-the-flag", "--detach", "--no-wait")
    assert code == 0, err
    assert "amldebug: up to date: amldebug-env:" in err
    assert "offline build installs into the base image's Python" not in err  # nothing was built
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    assert requests.post(uri, json={"data": [1]}, timeout=30).json()["greeting"] == "from-the-flag"

    # The environment on its own, as Environment.save_to_directory writes it, given to --env
    # with the code as flags: the same image again, and the environment's variables.
    environment.save_to_directory(str(project / "env"), overwrite=True)
    code, out, err = run_cli(capsys, "attach", "project", "--env", project / "env" / "azureml_environment.json",
                             "--base-image", BASE_IMAGE, "--model-dir", "models/clf.json", "--model-version", "3",
                             "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    assert "amldebug: up to date: amldebug-env:" in err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    assert requests.post(uri, json={"data": [2]}, timeout=30).json() == {
        "result": [10], "model_path": "/var/azureml-app/azureml-models/clf/3/clf.json", "cwd": "/var/azureml-app",
        "greeting": "from-the-environment"}
    code, _, err = run_cli(capsys, "down", "--name", service_name)
    assert code == 0, err
