"""Several models, as ``Model.deploy(models=[first, second])`` places them: each at
azureml-models/<name>/<version>/, AZUREML_MODEL_DIR the folder that holds them all (as
LocalWebservice sets it for several models), and azureml-core's own
``Model.get_model_path('first')`` and ``('second')`` in init() finding each one. Through an
inference configuration file with a repeated ``--model-dir``, and through the Python API's
``models=[...]``; the environment (azureml-core among its packages) is built offline once.
"""

import importlib.metadata
import json

import pytest
import requests

import amldebug
from tests.conftest import require_azureml
from tests.integration.conftest import BASE_IMAGE
from tests.integration.helpers import amldebug as run_cli

pytestmark = pytest.mark.docker

require_azureml()

SCORE = '''\
import json
import os

from azureml.core.model import Model


def init():
    global paths, scales
    paths = {name: Model.get_model_path(name) for name in ("first", "second")}
    scales = {}
    for name, path in paths.items():
        if os.path.isdir(path):
            path = os.path.join(path, "weights.json")
        with open(path) as f:
            scales[name] = json.load(f)["scale"]


def run(raw_data):
    x = json.loads(raw_data)["data"]
    return {"first": x * scales["first"], "second": x * scales["second"], "paths": paths,
            "model_dir": os.environ.get("AZUREML_MODEL_DIR")}
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "project").mkdir()
    (root / "project" / "score.py").write_text(SCORE)
    (root / "models" / "a").mkdir(parents=True)
    (root / "models" / "a" / "weights.json").write_text(json.dumps({"scale": 2}))
    (root / "models" / "b.json").write_text(json.dumps({"scale": 7}))
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ("azureml-core", "azureml-inference-server-http")]
    (root / "requirements.txt").write_text("\n".join(pins) + "\n")
    (root / "inferenceconfig.json").write_text(json.dumps({
        "entryScript": "score.py", "sourceDirectory": "project",
        "environment": {"python": {"condaDependencies": {"dependencies": ["python=3.11", {"pip": pins}]}}}}))
    return root


def test_model_get_model_path_finds_each_of_several_models(
        capsys, test_images, built_images, project, service_name, monkeypatch):
    monkeypatch.chdir(project)
    code, out, err = run_cli(capsys, "attach", "--inference-config", "inferenceconfig.json", "--base-image",
                             BASE_IMAGE, "--model-dir", "first=models/a", "--model-dir", "second:3=models/b.json",
                             "--name", service_name, "--detach", "--no-wait")
    assert code == 0, err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    answer = requests.post(uri, json={"data": 5}, timeout=30).json()
    assert answer == {"first": 10, "second": 35, "model_dir": "azureml-models/",
                      "paths": {"first": "/var/azureml-app/azureml-models/first/1/a",
                                "second": "/var/azureml-app/azureml-models/second/3/b.json"}}
    tasks = json.loads((project / ".vscode" / "tasks.json").read_text())
    args = next(t for t in tasks["tasks"] if t["label"] == f"amldebug: {service_name}")["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--model-dir"] == ["first:1=models/a",
                                                                             "second:3=models/b.json"]

    # The Python API's models=[...] (local paths, named after them; the same configuration,
    # so the image built above is found again).
    (project / "models" / "first.json").write_text(json.dumps({"scale": 3}))
    (project / "models" / "second").mkdir()
    (project / "models" / "second" / "weights.json").write_text(json.dumps({"scale": 4}))
    service = amldebug.attach(inference_config="inferenceconfig.json", models=["models/first.json", "models/second"],
                              base_image=BASE_IMAGE, name=service_name, wait=False)
    answer = service.run({"data": 1})
    assert answer["first"] == 3 and answer["second"] == 4
    assert answer["paths"] == {"first": "/var/azureml-app/azureml-models/first/1/first.json",
                               "second": "/var/azureml-app/azureml-models/second/1/second"}
    service.delete()
