"""The azureml-core bridge's pure parts, with azureml-core's real classes (no Docker, no Azure)."""

import json
import os
import pickle
import sys
from base64 import b64encode
from types import SimpleNamespace

import pytest

from amldebug import azureml_bridge as bridge
from amldebug.core.spec import resolve_spec
from amldebug.errors import AmlDebugError, ServiceNotFoundError, UsageError
from amldebug.envbuild import image as build
from amldebug.watch import ReloadLoop
from tests.conftest import require_azureml  # noqa: E402

azureml_core = require_azureml()
from azureml.core.environment import Environment  # noqa: E402
from azureml.core.model import InferenceConfig  # noqa: E402
from azureml.core.webservice import LocalWebservice  # noqa: E402


@pytest.fixture
def sample(workspace):
    return workspace / "sample"


def _environment(**variables):
    env = Environment("amldebug-test")
    env.environment_variables = dict(variables)
    return env


def test_inference_config_gives_the_spec_the_flags_give(sample):
    config = InferenceConfig(entry_script="score.py", source_directory="sample",
                             environment=_environment(GREETING="hi", MODE="x"))

    spec = bridge.spec_from_inference_config(config, models=["sample/model"], image="img:1", name="svc",
                                             env={"MODE": "debug"})

    assert spec == resolve_spec("sample", entry_script="score.py", model_dir="sample/model", image="img:1",
                                name="svc", env={"GREETING": "hi", "MODE": "debug"}).replace(file_env=("GREETING",))
    assert spec.source_dir == str(sample) and spec.model_name == "model"


def test_inference_config_without_source_directory_serves_the_scripts_folder(sample):
    config = InferenceConfig(entry_script="sample/score.py")

    spec = bridge.spec_from_inference_config(config, name="svc", image="img:1")

    assert (spec.source_dir, spec.entry_script, spec.env, spec.model_dir) == (str(sample), "score.py", (), None)


def test_entry_script_in_a_subfolder_of_the_source_directory_stays_relative(sample):
    (sample / "app").mkdir()
    (sample / "app" / "main.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")

    spec = bridge.spec_from_inference_config(InferenceConfig(entry_script="app/main.py", source_directory="sample"),
                                             image="img:1")

    assert (spec.source_dir, spec.entry_script) == (str(sample), "app/main.py")


def test_user_managed_environment_runs_its_base_image_as_it_is(sample):
    env = _environment(GREETING="hi")
    env.python.user_managed_dependencies = True
    env.docker.base_image = "myregistry.azurecr.io/scoring:7"
    messages = []

    spec = bridge.spec_from_inference_config(InferenceConfig(entry_script="score.py", source_directory="sample",
                                                             environment=env), progress=messages.append)

    assert (spec.image, spec.env_file, dict(spec.env)) == ("myregistry.azurecr.io/scoring:7", None, {"GREETING": "hi"})
    assert messages == []


def test_several_models_are_placed_side_by_side_and_an_unknown_model_is_refused(sample):
    config = InferenceConfig(entry_script="score.py", source_directory="sample")
    spec = bridge.spec_from_inference_config(config, models=["sample/model", "sample/mypkg"], image="img:1")
    assert [(name, version) for _, name, version in spec.models] == [("model", "1"), ("mypkg", "1")]
    with pytest.raises(UsageError, match=r"neither a local path nor an azureml-core Model"):
        bridge.spec_from_inference_config(config, models=[object()], image="img:1")
    with pytest.raises(UsageError, match="'source_dir' comes from the InferenceConfig"):
        bridge.spec_from_inference_config(config, source_dir="sample")


class _RegisteredModel:
    """What amldebug uses of azureml.core.Model: name, version and download(). There is no
    workspace here to download from, so download writes the file a real one would."""

    name, version = "clf", 4

    def __init__(self, fail=None):
        self.fail = fail
        self.calls = []

    def download(self, target_dir=".", exist_ok=False):
        self.calls.append((target_dir, exist_ok))
        if self.fail:
            raise self.fail
        path = os.path.join(target_dir, "clf.pkl")
        with open(path, "w") as f:
            f.write("weights")
        return path


def test_a_registered_model_is_downloaded_into_the_cache_and_placed_by_its_name_and_version(sample, tmp_path):
    model = _RegisteredModel()

    spec = bridge.spec_from_inference_config(InferenceConfig(entry_script="score.py", source_directory="sample"),
                                             models=model, image="img:1")

    target = os.environ["AMLDEBUG_CACHE"] + "/models/clf/4"
    assert [call[1] for call in model.calls] == [True]
    assert (spec.model_dir, spec.model_name, spec.model_version) == (target + "/clf.pkl", "clf", "4")
    assert bridge.place_model(model)["model_dir"] == target + "/clf.pkl" and len(model.calls) == 1  # cached

    failing = _RegisteredModel(fail=RuntimeError("AuthenticationException: token expired\nmore"))
    failing.version = 5
    with pytest.raises(AmlDebugError, match=r"cannot download model clf:5 from its workspace: "
                                            r"AuthenticationException: token expired; download it yourself"):
        bridge.place_model([failing])
    assert sorted(os.listdir(os.environ["AMLDEBUG_CACHE"] + "/models/clf")) == ["4"]  # nothing half-downloaded


def test_missing_azureml_core_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "azureml.core.webservice", None)

    with pytest.raises(bridge.AzureMLNotInstalledError) as caught:
        bridge.find_local_webservice("svc")

    assert str(caught.value) == "azureml-core is not installed; pip install 'amldebug[azureml]'"


def test_stand_in_workspace_says_a_workspace_is_needed():
    with pytest.raises(UsageError, match=r"needs an Azure ML workspace .*'workspace\.subscription_id'"):
        bridge._NoWorkspace().subscription_id
    assert not hasattr(bridge._NoWorkspace(), "__wrapped__")


def _labels(config, models_local=(), models_remote=(), name="svc"):
    """The labels LocalWebservice._run_container writes, with azureml-core's own objects."""
    def enc(value):
        return b64encode(pickle.dumps(value)).decode()

    return {
        "amlDeploymentConfig": enc(LocalWebservice.deploy_configuration(port=6789)),
        "amlImageConfig": enc(None),
        "amlInferenceConfig": enc(config),
        "amlIsService": "True",
        "amlModelPathDir": "model/0",
        "amlModelsLocal": enc(list(models_local)),
        "amlModelsRemote": enc(list(models_remote)),
        "amlServiceName": name,
        "amlOverrideConfig": enc(None),
        "containerName": name,
    }


class _Client:
    """docker.DockerClient's containers.list, enough for the label lookup."""

    def __init__(self, *boxes):
        self.boxes = boxes
        self.containers = self

    def list(self, all=False, filters=None):
        wanted = filters["label"]
        return [b for b in self.boxes if f"containerName={b.labels.get('containerName')}" == wanted]


def _box(labels, env, image_env=("PATH=/usr/bin", "AML_APP_ROOT=/var/azureml-app"), tags=("svc:latest",)):
    image = SimpleNamespace(tags=list(tags), id="sha256:abc", attrs={"Config": {"Env": list(image_env)}})
    return SimpleNamespace(labels=labels, image=image, attrs={"Config": {"Env": [*image_env, *env]}})


def test_local_webservice_container_gives_a_spec_from_its_labels_and_env(sample):
    config = InferenceConfig(entry_script="score.py", source_directory="sample", environment=_environment(GREETING="hi"))
    local = [{"name": "model", "image_path": "model", "local_path": str(sample / "model")}]
    box = _box(_labels(config, local), ["AZUREML_MODEL_DIR=azureml-models/model/0", "GREETING=hi"])

    spec = bridge.spec_from_local_webservice_container(_Client(box), "svc", port=7001)

    assert spec == resolve_spec(sample, entry_script="score.py", model_dir=sample / "model", image="svc:latest",
                                name="svc", env={"GREETING": "hi"}, port=7001)


def test_local_webservice_container_without_readable_labels_needs_the_source_dir(sample):
    env = ["AZUREML_ENTRY_SCRIPT=sample/score.py"]
    box = _box({"containerName": "svc"}, env)

    with pytest.raises(UsageError, match=r"copied to /var/azureml-app/sample; pass the source directory"):
        bridge.spec_from_local_webservice_container(_Client(box), "svc")
    spec = bridge.spec_from_local_webservice_container(_Client(box), "svc", source_dir=sample)
    assert (spec.source_dir, spec.entry_script) == (str(sample), "score.py")
    assert dict(spec.env) == {"AZUREML_ENTRY_SCRIPT": "sample/score.py"}  # not in the image: set on the container

    with pytest.raises(UsageError, match="whose name is 'other'"):
        bridge.spec_from_local_webservice_container(
            _Client(_box({"containerName": "svc"}, ["AZUREML_ENTRY_SCRIPT=other/score.py"])), "svc", source_dir=sample)
    with pytest.raises(ServiceNotFoundError, match="containerName=nope"):
        bridge.spec_from_local_webservice_container(_Client(box), "nope")


def test_registered_models_on_the_container_ask_for_a_downloaded_copy(sample):
    config = InferenceConfig(entry_script="score.py", source_directory="sample")
    box = _box(_labels(config, models_remote=["mymodel:3"]), [])

    with pytest.raises(UsageError, match=r"registered model\(s\) mymodel:3; download one"):
        bridge.spec_from_local_webservice_container(_Client(box), "svc")


def test_label_unpickler_loads_azureml_classes_and_refuses_anything_else(sample):
    config = InferenceConfig(entry_script="score.py", source_directory="sample")

    loaded = bridge._read_label({"x": b64encode(pickle.dumps(config)).decode()}, "x")

    assert isinstance(loaded, InferenceConfig) and loaded.source_directory == str(sample)

    class Gadget:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    assert bridge._read_label({"x": b64encode(pickle.dumps(Gadget())).decode()}, "x") is None


class _FakeLocalWebservice:
    def __init__(self, source_dir):
        self.name = "svc"
        self.scoring_uri = "http://localhost:6789/score"
        self._inference_config = SimpleNamespace(source_directory=str(source_dir), entry_script="score.py")
        self.reloads = []

    def reload(self, wait=False):
        print("Starting Docker container...")  # azureml-core prints to stdout
        self.reloads.append(wait)

    def get_logs(self, num_lines=5000):
        return ""


def test_target_reloads_through_the_webservice_and_reports_a_restart(sample, capsys):
    service = _FakeLocalWebservice(sample)
    target = bridge.LocalWebserviceTarget(service)
    messages = []

    ReloadLoop(target, report=messages.append).handle([str(sample / "score.py")])

    assert service.reloads == [True]
    assert (target.spec.source_dir, target.spec.env_file, target.spec.model_dir) == (str(sample), None, None)
    assert messages[0] == "amldebug: reloading score.py"  # contract C1: the begin line, then one end line
    assert messages[1].startswith("amldebug: reloaded: restarted the service in ")
    assert messages[1].endswith("; re-attach the debugger") and len(messages) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Starting Docker container" in err


def test_target_refuses_to_watch_a_folder_reload_does_not_copy(sample, tmp_path):
    with pytest.raises(UsageError, match=f"copies '{sample}' on reload"):
        bridge.LocalWebserviceTarget(_FakeLocalWebservice(sample), tmp_path)


def test_an_inference_config_object_and_its_file_read_the_same(sample, workspace):
    from amldebug.sources.azureml import from_inference_config, read_inference_config

    (workspace / "requirements.txt").write_text("scikit-learn==1.5.0\nazureml-defaults\n")
    env = Environment.from_pip_requirements("amldebug-test", str(workspace / "requirements.txt"))
    env.environment_variables = {"GREETING": "hi"}
    config = InferenceConfig(entry_script="score.py", source_directory="sample", environment=env)
    path = workspace / "inferenceconfig.json"
    path.write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "sample",
                                "environment": Environment._serialize_to_dict(env)}))

    from_object, from_file = from_inference_config(config), read_inference_config(path)

    assert from_object.environment.pip == ("scikit-learn==1.5.0", "azureml-defaults")
    assert build.env_hash(from_object.environment, "base") == build.env_hash(from_file.environment, "base")
    assert (from_object.source_dir, from_object.entry_script, dict(from_object.env), from_object.base_image) == \
        (from_file.source_dir, from_file.entry_script, dict(from_file.env), from_file.base_image) == \
        (sample, "score.py", {"GREETING": "hi"}, None)
    # azureml-core's default training image is not taken as the user's choice, and it says so.
    assert any(f"the base image {env.docker.base_image} is azureml-core's default training image" in note
               for note in from_object.notes)


def test_an_environment_saved_to_a_directory_reads_like_the_object(workspace):
    from amldebug.sources.azureml import from_environment, read_environment_definition

    (workspace / "requirements.txt").write_text("six==1.16.0\n")
    env = Environment.from_pip_requirements("amldebug-test", str(workspace / "requirements.txt"))
    env.environment_variables = {"GREETING": "hi"}
    env.save_to_directory(str(workspace / "env"), overwrite=True)  # the JSON, and conda_dependencies.yml beside it

    saved = read_environment_definition(workspace / "env" / "azureml_environment.json")
    live = from_environment(env)

    assert saved.environment.pip == live.environment.pip == ("six==1.16.0",)
    assert build.env_hash(saved.environment, "base") == build.env_hash(live.environment, "base")
    assert (dict(saved.env), saved.base_image) == (dict(live.env), live.base_image) == ({"GREETING": "hi"}, None)
    assert saved.notes[-1].endswith(f"(pass --base-image {env.docker.base_image} to use it)")
    assert build.read_environment(workspace / "env" / "azureml_environment.json").pip == ("six==1.16.0",)


def test_api_refuses_conflicting_arguments_before_downloading_anything(sample):
    import amldebug

    model = _RegisteredModel()
    config = InferenceConfig(entry_script="score.py", source_directory="sample")
    with pytest.raises(UsageError, match="source_dir, entry_script and the environment come from"):
        amldebug.attach("sample", inference_config=config, models=model)
    with pytest.raises(UsageError, match="pass models or model_dir/model_name, not both"):
        amldebug.attach("sample", image="img:1", model_dir="sample/model", models=model)
    assert model.calls == []
