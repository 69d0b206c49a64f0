import json

import pytest

from amldebug.core.spec import ServiceSpec, layout, parse_env_pairs, resolve_spec, service_name_from
from amldebug.diagnose.log import logged_exception
from amldebug.errors import UsageError
from amldebug.vscode.entries import launch_config


def test_defaults_from_the_folder(workspace):
    spec = resolve_spec("sample", model_dir="sample/model")
    assert spec.name == "sample"
    assert spec.source_dir == str(workspace / "sample")
    assert (spec.model_name, spec.model_version) == ("model", "1")
    assert spec.workspace == str(workspace)


def test_layout_places_code_and_model_as_localwebservice(workspace):
    spec = resolve_spec("sample", model_dir="sample/model/weights.json", model_name="reg", model_version="7")
    lay = layout(spec)
    assert lay.code_dir == "/var/azureml-app/sample"
    assert lay.env["AZUREML_ENTRY_SCRIPT"] == "sample/score.py"
    assert lay.env["AZUREML_SOURCE_DIRECTORY"] == "sample"
    assert lay.env["AZUREML_MODEL_DIR"] == "azureml-models/reg/7"
    assert lay.model_target == "/var/azureml-app/azureml-models/reg/7/weights.json"
    # Debug mode: nothing kills a paused worker, one worker.
    assert lay.env["WORKER_TIMEOUT"] == "0" and lay.env["WORKER_COUNT"] == "1"
    assert int(lay.env["SCORING_TIMEOUT_MS"]) >= 24 * 3600 * 1000


def test_user_env_wins(workspace):
    lay = layout(resolve_spec("sample", env={"WORKER_COUNT": "2", "X": "1"}))
    assert lay.env["WORKER_COUNT"] == "2" and lay.env["X"] == "1"


def test_model_file_name_without_extension(workspace):
    assert resolve_spec("sample", model_dir="sample/model/weights.json").model_name == "weights"


@pytest.mark.parametrize("kwargs, message", [
    ({"entry_script": "../score.py"}, "must be a path inside"),
    ({"name": "Bad Name"}, "service name 'Bad Name' is not valid"),
    ({"model_version": "2"}, "--model-name/--model-version need --model-dir"),
    ({"model_dir": "sample/model", "model_version": "v2"}, "model version 'v2' must be a whole number"),
    ({"port": 70000}, "--port 70000 is not a TCP port"),
    ({"runtime": "vm"}, "--runtime 'vm' is not known"),
    ({"env_file": "nope.txt"}, "environment file 'nope.txt' does not exist"),
])
def test_bad_values_are_named(workspace, kwargs, message):
    with pytest.raises(UsageError, match=message):
        resolve_spec("sample", **kwargs)


def test_spec_survives_the_container_label(workspace):
    spec = resolve_spec("sample", model_dir="sample/model", env={"A": "1"}, image="img:1")
    assert ServiceSpec.from_label(spec.to_label(), values={"A": "1", "PATH": "/bin"}) == spec


def test_the_label_keeps_variable_keys_but_not_their_values(workspace):
    label = resolve_spec("sample", env={"API_KEY": "s3cret-value"}).to_label()
    assert "API_KEY" in label and "s3cret-value" not in label


def test_labels_of_the_previous_version_still_load(workspace):
    spec = resolve_spec("sample", env={"A": "1"}, image="img:1")
    old = json.loads(spec.to_label())
    old["env"] = [["A", "1"]]  # how labels were written before values were left out
    assert ServiceSpec.from_label(json.dumps(old)) == spec


@pytest.mark.parametrize("item, message", [
    ("=x", "'' is not a variable name"),
    ("1A=x", "'1A' is not a variable name"),
    ("A B=x", "'A B' is not a variable name"),
    ("NOT_SET_ANYWHERE", "NOT_SET_ANYWHERE is not set there"),
])
def test_bad_env_items_are_named(item, message):
    with pytest.raises(UsageError, match=message):
        parse_env_pairs([item], environ={})


def test_env_key_alone_takes_the_value_from_the_environment():
    assert parse_env_pairs(["TOKEN", "A=b=c"], environ={"TOKEN": "t"}) == {"TOKEN": "t", "A": "b=c"}


def test_service_name_is_container_safe(tmp_path):
    folder = tmp_path / "My Project (v2)"
    folder.mkdir()
    assert service_name_from(folder) == "my-project-v2"


def test_launch_config_maps_the_workspace_folder(workspace):
    config = launch_config(resolve_spec("sample"))
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}/sample",
                                       "remoteRoot": "/var/azureml-app/sample"}]
    assert config["type"] == "debugpy" and config["request"] == "attach"
    assert config["connect"] == {"host": "localhost", "port": 5678}


def test_launch_config_for_the_workspace_itself(workspace, monkeypatch):
    monkeypatch.chdir(workspace / "sample")
    config = launch_config(resolve_spec("."))
    assert config["pathMappings"][0]["localRoot"] == "${workspaceFolder}"


def test_launch_config_outside_the_workspace_is_absolute(workspace, tmp_path):
    config = launch_config(resolve_spec("sample", workspace=tmp_path / "elsewhere"))
    assert config["pathMappings"][0]["localRoot"] == (workspace / "sample").as_posix()


SERVER_LOG = """\
2026-11-24 22:31:24,684 I [54] azmlinfsrv - Worker with pid 54 ready for serving traffic
2026-11-24 22:31:24,806 E [54] azmlinfsrv - Encountered Exception: Traceback (most recent call last):
  File "/var/azureml-app/sample/score.py", line 20, in run
    data = json.loads(raw_data)["data"]
KeyError: 'data'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/opt/site-packages/azureml_inference_server_http/server/user_script.py", line 139, in invoke_run
    raise UserScriptException(ex) from ex
azureml_inference_server_http.server.user_script.UserScriptException: Caught an unhandled exception

2026-11-24 22:31:24,807 I [54] azmlinfsrv - POST /score 500 3.485ms 92
"""


def test_logged_exception_keeps_the_users_frames_of_a_chained_traceback():
    text = logged_exception(SERVER_LOG)
    assert text.startswith("2026-11-24 22:31:24,806 E [54] azmlinfsrv - Encountered Exception")
    assert 'File "/var/azureml-app/sample/score.py", line 20, in run' in text
    assert text.rstrip().endswith("Caught an unhandled exception")
    assert "POST /score" not in text


def test_logged_exception_none():
    assert logged_exception("all good\n") == ""
