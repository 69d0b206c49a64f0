"""An Azure ML v2 online deployment, written like azureml-examples'
cli/endpoints/online/managed/sample/blue-deployment.yml (model-1's score.py reading
os.path.join(AZUREML_MODEL_DIR, "model/sklearn_regression_model.pkl")), attached with
``amldebug attach --deployment``: code and model placed as azure-ai-ml's local endpoint
places them, init() and run() breakpoints hit at the local file and line, and the F5 task
reading the file again.

The sample's image (mcr.microsoft.com/azureml/openmpi...) cannot be pulled here: the
deployment names the local test image, and the model is a small pickle made here (the
sample's score.py loads it with joblib; this one with pickle, which the image has).
"""

import json
import pickle
import textwrap

import docker
import pytest
import requests

from amldebug import vscode
from amldebug.sources.deployment import model_folder_hash
from tests.conftest import marker_line
from tests.integration.conftest import IMAGES
from tests.integration.helpers import Request, client_from_launch_json
from tests.integration.helpers import amldebug as run_cli

pytestmark = pytest.mark.docker

SCORE = '''\
import json
import logging
import os
import pickle


def init():
    global model, model_path
    # AZUREML_MODEL_DIR is an environment variable created during deployment.
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    logging.info("Init complete")  # marker: init-load


def run(raw_data):
    data = json.loads(raw_data)["data"]  # marker: run-data
    result = [sum(w * x for w, x in zip(model["coef"], row)) + model["intercept"] for row in data]
    return {"result": result, "model_path": model_path, "cwd": os.getcwd(),
            "app_root": os.environ["AML_APP_ROOT"], "model_dir": os.environ["AZUREML_MODEL_DIR"],
            "greeting": os.environ.get("GREETING")}
'''


@pytest.fixture
def sample(tmp_path, monkeypatch):
    """The azureml-examples layout: cli/endpoints/online/{model-1,managed/sample}."""
    online = tmp_path / "cli" / "endpoints" / "online"
    (online / "model-1" / "model").mkdir(parents=True)
    (online / "model-1" / "onlinescoring").mkdir()
    (online / "model-1" / "onlinescoring" / "score.py").write_text(SCORE)
    with open(online / "model-1" / "model" / "sklearn_regression_model.pkl", "wb") as f:
        pickle.dump({"coef": [1.0, 2.0], "intercept": 0.5}, f)
    (online / "managed" / "sample").mkdir(parents=True)
    deployment = online / "managed" / "sample" / "blue-deployment.yml"
    deployment.write_text(textwrap.dedent(f"""\
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
        name: blue
        endpoint_name: my-endpoint
        model:
          path: ../../model-1/model/
        code_configuration:
          code: ../../model-1/onlinescoring/
          scoring_script: score.py
        environment:
          image: {IMAGES["azmlinfsrv"]}
        environment_variables:
          GREETING: from-the-deployment
        request_settings:
          request_timeout_ms: 3000
        instance_type: Standard_DS3_v2
        instance_count: 1
        """))
    monkeypatch.chdir(tmp_path)
    return tmp_path, deployment, online / "model-1"


def test_a_v2_deployment_is_placed_as_the_local_endpoint_places_it_and_debugs(
        capsys, test_images, sample, service_name):
    workspace, deployment, model_1 = sample
    code, out, err = run_cli(capsys, "attach", "--deployment", deployment.relative_to(workspace),
                             "--name", service_name, "--detach")
    assert code == 0, err
    assert "request_settings.request_timeout_ms is 3000 ms" in err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    # azure-ai-ml names an unnamed inline model after its content, version 1, and mounts the
    # model path's parent folder (model-1/) there.
    model_dir = f"/var/azureml-app/azureml-models/{model_folder_hash(model_1 / 'model')}/1"

    score = model_1 / "onlinescoring" / "score.py"
    init_line, run_line = marker_line(score, "init-load"), marker_line(score, "run-data")
    with client_from_launch_json(workspace, service_name, {score: [init_line, run_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), init_line, "init")
        assert client.evaluate(stop, "model_path") == repr(f"{model_dir}/model/sklearn_regression_model.pkl")
        client.continue_(stop)

        request = Request(uri, '{"data": [[1, 2], [3, 4]]}')
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        client.continue_(stop)
        answer = request.result().json()
    assert answer == {"result": [5.5, 11.5], "model_path": f"{model_dir}/model/sklearn_regression_model.pkl",
                      "cwd": "/var/azureml-app/onlinescoring", "app_root": "/var/azureml-app/onlinescoring/",
                      "model_dir": model_dir, "greeting": "from-the-deployment"}

    # F5 runs 'attach --deployment FILE' again: the file, not what it gave (code, model, image).
    tasks = vscode.parse_jsonc((workspace / ".vscode" / "tasks.json").read_text())
    args = next(t for t in tasks["tasks"] if t["label"] == f"amldebug: {service_name}")["args"]
    assert args[args.index("--deployment") + 1] == "cli/endpoints/online/managed/sample/blue-deployment.yml"
    for flag in ("--image", "--model-dir", "--entry-script", "--env"):
        assert flag not in args
    assert "-e" not in args  # the file's variables come from the file

    # What F5 runs, after an edit of the file: the new variable is served.
    deployment.write_text(deployment.read_text().replace("from-the-deployment", "edited"))
    code, out, err = run_cli(capsys, *args[args.index("attach"):], "--detach", "--no-wait")
    assert code == 0, err
    assert requests.post(uri, json={"data": [[0, 0]]}, timeout=30).json()["greeting"] == "edited"

    code, out, err = run_cli(capsys, "down", "--name", service_name)
    assert code == 0, err
    with pytest.raises(requests.ConnectionError):
        requests.get(uri, timeout=5)


def test_image_on_the_command_line_wins_and_a_registered_model_says_how_to_fetch_it(
        capsys, test_images, sample, service_name):
    workspace, deployment, model_1 = sample
    registered = deployment.with_name("blue-deployment-with-registered-assets.yml")
    registered.write_text(textwrap.dedent("""\
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
        name: blue
        endpoint_name: my-endpoint
        model: azureml:my-model:1
        code_configuration:
          code: ../../model-1/onlinescoring/
          scoring_script: score.py
        environment: azureml:my-env:1
        instance_type: Standard_DS3_v2
        instance_count: 1
        """))
    code, out, err = run_cli(capsys, "attach", "--deployment", registered, "--name", service_name, "--detach")
    assert code == 2 and "Traceback" not in err
    assert "model 'azureml:my-model:1' is registered in Azure ML" in err
    assert "'az ml model download --name my-model --version 1" in err

    # The model downloaded as 'az ml model download' lays it out, and a local image for the
    # registered environment: placed under the registered name and version.
    downloaded = workspace / "models" / "my-model" / "model"
    downloaded.mkdir(parents=True)
    (downloaded / "sklearn_regression_model.pkl").write_bytes(
        (model_1 / "model" / "sklearn_regression_model.pkl").read_bytes())
    code, out, err = run_cli(capsys, "attach", "--deployment", registered, "--model-dir", downloaded,
                             "--image", IMAGES["azmlinfsrv"], "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    answer = requests.post(uri, json={"data": [[1, 1]]}, timeout=30).json()
    assert answer["model_dir"] == "/var/azureml-app/azureml-models/my-model/1"
    assert answer["result"] == [3.5]
    tasks = json.loads((workspace / ".vscode" / "tasks.json").read_text())
    args = next(t for t in tasks["tasks"] if t["label"] == f"amldebug: {service_name}")["args"]
    assert args[args.index("--image") + 1] == IMAGES["azmlinfsrv"]  # given on the command line: kept for F5
    assert args[args.index("--model-dir") + 1] == "models/my-model/model"


def test_a_build_context_is_built_with_the_engine(capsys, docker_client, test_images, sample, service_name):
    workspace, deployment, model_1 = sample
    context = workspace / "cli" / "endpoints" / "online" / "context"
    context.mkdir()
    (context / "greeting.txt").write_text("from-the-dockerfile")
    (context / "Dockerfile").write_text(f"FROM {IMAGES['azmlinfsrv']}\nCOPY greeting.txt /opt/greeting.txt\n"
                                        "ENV GREETING=from-the-dockerfile-env\n")
    deployment.write_text(deployment.read_text().replace(
        f"environment:\n  image: {IMAGES['azmlinfsrv']}\n", "environment:\n  build:\n    path: ../../context\n")
        .replace("environment_variables:\n  GREETING: from-the-deployment\n", ""))
    tag = f"amldebug-context/{service_name}:latest"
    try:
        code, out, err = run_cli(capsys, "attach", "--deployment", deployment, "--name", service_name, "--detach",
                                 "--no-wait")
        assert code == 0, err
        assert f"building {context / 'Dockerfile'}" in err
        uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
        assert requests.post(uri, json={"data": [[1, 1]]}, timeout=30).json()["greeting"] == \
            "from-the-dockerfile-env"
        args = json.loads((workspace / ".vscode" / "tasks.json").read_text())["tasks"][0]["args"]
        assert "--image" not in args  # F5 builds the context again (the engine's cache: at once)

        # A Dockerfile that fails names itself and the step.
        (context / "Dockerfile").write_text(f"FROM {IMAGES['azmlinfsrv']}\nCOPY missing.txt /opt/\n")
        code, out, err = run_cli(capsys, "attach", "--deployment", deployment, "--name", service_name, "--detach",
                                 "--no-wait")
        assert code != 0 and f"docker build of {context / 'Dockerfile'} failed" in err and "Traceback" not in err
    finally:
        run_cli(capsys, "down", "--name", service_name)
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_the_python_api_attaches_a_deployment(test_images, sample, service_name):
    import amldebug

    workspace, deployment, model_1 = sample
    service = amldebug.attach(deployment=str(deployment), name=service_name, wait=False)
    try:
        answer = service.run({"data": [[2, 0]]})
        assert answer["result"] == [2.5] and answer["greeting"] == "from-the-deployment"
        assert answer["model_dir"] == f"/var/azureml-app/azureml-models/{model_folder_hash(model_1 / 'model')}/1"
    finally:
        service.delete()


def test_the_placement_holds_in_every_runtime(capsys, target, sample, service_name):
    """The runit image (Azure ML's runsvdir chain) and the no-Docker runtime place the same way."""
    workspace, deployment, model_1 = sample
    code, out, err = run_cli(capsys, "attach", "--deployment", deployment, *target, "--name", service_name,
                             "--detach", "--no-wait")
    assert code == 0, err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    answer = requests.post(uri, json={"data": [[1, 0]]}, timeout=30).json()
    model_dir = f"azureml-models/{model_folder_hash(model_1 / 'model')}/1"
    assert answer["result"] == [1.5] and answer["greeting"] == "from-the-deployment"
    assert answer["model_dir"].endswith(model_dir) and answer["model_path"].startswith(answer["model_dir"])
    assert answer["cwd"].endswith("/onlinescoring") and answer["app_root"].rstrip("/").endswith("/onlinescoring")
    code, _, err = run_cli(capsys, "down", "--name", service_name)
    assert code == 0, err


def test_check_imports_the_script_where_the_deployment_places_it(capsys, test_images, sample):
    """check's import of the scoring script runs in the v2 layout: a script in a subfolder
    imports its sibling (AML_APP_ROOT is the script's folder) and finds the model the file
    names at import time; in LocalWebservice's layout both failed."""
    workspace, deployment, model_1 = sample
    sub = model_1 / "onlinescoring" / "sub"
    sub.mkdir()
    (sub / "helper.py").write_text("GREETING = 'from-a-sibling'\n")
    (sub / "score.py").write_text(
        "import os\nimport helper\n\n"
        "MODEL = os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model', 'sklearn_regression_model.pkl')\n"
        "assert os.path.isfile(MODEL), MODEL + ' is not placed'\n\n\n"
        "def init():\n    pass\n\n\ndef run(raw_data):\n    return helper.GREETING\n")
    deployment.write_text(deployment.read_text().replace("scoring_script: score.py", "scoring_script: sub/score.py"))
    code, out, err = run_cli(capsys, "check", "--deployment", deployment)
    assert f"PASS  image: {IMAGES['azmlinfsrv']} runs azmlinfsrv" in out, out + err
    assert f"PASS  import in image: sub/score.py imports in {IMAGES['azmlinfsrv']}" in out, out + err
    assert code == 0, out + err
    # A sibling that is not there is reported, so the PASS above means something.
    (sub / "helper.py").unlink()
    code, out, err = run_cli(capsys, "check", "--deployment", deployment)
    assert code == 1 and "FAIL  import in image: sub/score.py does not import" in out, out + err
    assert "No module named 'helper'" in out + err
