"""Azure ML v2 deployments and environments read, placed and refused as azure-ai-ml's local
endpoint would (no Docker); several models placed as Model.deploy(models=[...]) does.
Messages go through the CLI: exit code 2, the value named, the fix given, no traceback."""

import json
import textwrap
from pathlib import Path

import pytest

from amldebug.core.options import AttachOptions, task_argv
from amldebug.core.spec import ServiceSpec, layout, resolve_spec
from amldebug.engine.process import prepare_app_root, process_layout
from amldebug.session import spec_for
from amldebug.sources import read_environment, read_setup
from amldebug.sources.deployment import model_folder_hash, read_deployment
from amldebug.vscode.entries import task_options
from tests.support.cli import amldebug as run

IMAGE = "score:1"
MANAGED = "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json"
KUBERNETES = "https://azuremlschemas.azureedge.net/latest/kubernetesOnlineDeployment.schema.json"


@pytest.fixture(autouse=True)
def no_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def online(tmp_path, monkeypatch):
    """azureml-examples' cli/endpoints/online layout: model-1/{model,onlinescoring,environment}."""
    root = tmp_path / "online"
    (root / "model-1" / "model").mkdir(parents=True)
    (root / "model-1" / "model" / "sklearn_regression_model.pkl").write_bytes(b"pickle")
    (root / "model-1" / "onlinescoring").mkdir()
    (root / "model-1" / "onlinescoring" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n"
                                                                 "    return data\n")
    (root / "model-1" / "environment").mkdir()
    (root / "model-1" / "environment" / "conda.yaml").write_text(textwrap.dedent("""\
        name: model-env
        channels:
          - conda-forge
        dependencies:
          - python=3.12
          - pip
          - pip:
            - azureml-inference-server-http
            - joblib
        """))
    (root / "managed" / "sample").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def blue(online, environment="  image: score:1\n", extra="", schema=MANAGED) -> Path:
    return write(online / "managed" / "sample" / "blue-deployment.yml", f"""\
$schema: {schema}
name: blue
endpoint_name: my-endpoint
model:
  path: ../../model-1/model/
code_configuration:
  code: ../../model-1/onlinescoring/
  scoring_script: score.py
environment:
{environment}instance_type: Standard_DS3_v2
instance_count: 1
{extra}""")


# -- reading ------------------------------------------------------------------------------

def test_the_managed_sample_reads_as_the_local_endpoint_reads_it(online):
    setup = read_deployment(blue(online, "  conda_file: ../../model-1/environment/conda.yaml\n"
                                         "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"))
    assert (setup.kind, setup.name) == ("managed", "blue")
    assert setup.source_dir == online / "model-1" / "onlinescoring" and setup.entry_script == "score.py"
    assert setup.model.path == online / "model-1" / "model" and setup.model.name is None
    # The file's image is the base (a v2 file chose it; no default image is swapped in).
    assert setup.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert setup.environment.base_image == setup.base_image
    assert setup.environment.source == online / "model-1" / "environment" / "conda.yaml"
    assert "azureml-inference-server-http" in setup.environment.pip and "python=3.12" in setup.environment.conda
    assert setup.notes == ()


def test_the_kubernetes_sample_reads_too_and_its_timeout_is_reported(online, capsys):
    deployment = blue(online, extra=textwrap.dedent("""\
        type: kubernetes
        request_settings:
          request_timeout_ms: 3000
          max_queue_wait_ms: 3000
        resources:
          requests:
            cpu: "0.1"
        scale_settings:
          type: default
        tags:
          tag1: deployment-tag1-value
        """), schema=KUBERNETES)
    setup = read_deployment(deployment)
    assert (setup.kind, setup.request_timeout_ms, setup.notes) == ("kubernetes", 3000, ())
    spec = spec_for(AttachOptions(deployment=str(deployment)), progress=print)
    assert "request_settings.request_timeout_ms is 3000 ms" in capsys.readouterr().out
    assert layout(spec).env["SCORING_TIMEOUT_MS"] == str(7 * 24 * 3600 * 1000)  # debug mode: still off


def test_an_unnamed_model_is_named_after_its_content_as_azure_ai_ml_names_it(tmp_path):
    # Recorded from azure-ai-ml 1.35.2: Model(path=...).name for these files.
    model = tmp_path / "model"
    (model / "Sub").mkdir(parents=True)
    (model / "b.txt").write_bytes(b"weights")
    (model / "Sub" / "a.bin").write_bytes(b"\x00\x01\x02")
    (model / "A.json").write_bytes(b"z")
    assert model_folder_hash(model) == "4269dce7396486fe4d899cc91fab2d209931c97c5cf1dc712b5423d7c33a7188"
    assert model_folder_hash(model / "b.txt") == "da5068eee31542c7bd7a681c9c944f86be770969cb5ad7304944843557363928"


# -- placement ----------------------------------------------------------------------------

def test_code_and_model_are_placed_as_the_v2_local_endpoint_places_them(online):
    spec = spec_for(AttachOptions(deployment=str(blue(online))), progress=lambda _: None)
    name = model_folder_hash(online / "model-1" / "model")
    lay = layout(spec)
    model_dir = f"/var/azureml-app/azureml-models/{name}/1"
    assert (spec.name, spec.image, spec.model_name, spec.model_version) == ("blue", IMAGE, name, "1")
    assert lay.env["AML_APP_ROOT"] == "/var/azureml-app/onlinescoring/"
    assert lay.env["AZUREML_ENTRY_SCRIPT"] == "score.py"
    assert lay.env["AZUREML_MODEL_DIR"] == model_dir
    assert "AZUREML_SOURCE_DIRECTORY" not in lay.env
    assert lay.code_dir == "/var/azureml-app/onlinescoring" and lay.workdir == "/var/azureml-app/onlinescoring"
    assert lay.model_mounts == ((str(online / "model-1"), model_dir),)  # the model path's PARENT folder


def test_a_scoring_script_in_a_subfolder_and_a_named_model(online):
    (online / "model-1" / "onlinescoring" / "src").mkdir()
    (online / "model-1" / "onlinescoring" / "score.py").rename(online / "model-1" / "onlinescoring" / "src" / "score.py")
    deployment = blue(online)
    deployment.write_text(deployment.read_text().replace("scoring_script: score.py", "scoring_script: src/score.py")
                          .replace("model:\n", "model:\n  name: sklearn-model\n  version: 4\n"))
    spec = spec_for(AttachOptions(deployment=str(deployment)), progress=lambda _: None)
    lay = layout(spec)
    assert lay.env["AML_APP_ROOT"] == "/var/azureml-app/onlinescoring/src"
    assert lay.env["AZUREML_ENTRY_SCRIPT"] == "score.py"
    assert lay.args[:2] == ["--entry_script", "/var/azureml-app/onlinescoring/src/score.py"]
    assert lay.env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/sklearn-model/4"
    assert lay.workdir == "/var/azureml-app/onlinescoring/src"


def test_the_process_runtime_mirrors_the_v2_placement(online, tmp_path):
    spec = spec_for(AttachOptions(deployment=str(blue(online)), runtime="process"), progress=lambda _: None)
    state = tmp_path / "state"
    root = prepare_app_root(spec, state)
    lay = process_layout(spec, state, "azmlinfsrv", tmp_path)
    model_dir = Path(lay.env["AZUREML_MODEL_DIR"])
    assert model_dir.parent.parent == root / "azureml-models"
    assert (model_dir / "model" / "sklearn_regression_model.pkl").read_bytes() == b"pickle"
    assert lay.env["AML_APP_ROOT"].rstrip("/") == str(online / "model-1" / "onlinescoring")
    assert "AZUREML_SOURCE_DIRECTORY" not in lay.env


def test_variables_from_the_file_and_e_wins(online):
    deployment = blue(online, extra="environment_variables:\n  GREETING: hello\n  LEVEL: 1\n")
    spec = spec_for(AttachOptions(deployment=str(deployment), env=(("LEVEL", "2"),)), progress=lambda _: None)
    assert dict(spec.env) == {"GREETING": "hello", "LEVEL": "2"}
    assert spec.file_env == ("GREETING",)


def test_image_and_base_image_on_the_command_line_win(online):
    with_conda = blue(online, "  conda_file: ../../model-1/environment/conda.yaml\n  image: far.away/img:1\n")
    spec = spec_for(AttachOptions(deployment=str(with_conda), image="local:2"), progress=lambda _: None)
    assert spec.image == "local:2"
    plain = blue(online, "  image: far.away/img:1\n")
    spec = spec_for(AttachOptions(deployment=str(plain), base_image="local:3"), progress=lambda _: None)
    assert spec.image == "local:3"


def test_the_f5_task_reads_the_deployment_again(online):
    deployment = blue(online)
    spec = spec_for(AttachOptions(deployment=str(deployment), workspace=str(online)), progress=lambda _: None)
    argv = task_argv(task_options(spec))
    assert argv[argv.index("--deployment") + 1] == "managed/sample/blue-deployment.yml"
    assert not {"--image", "--model-dir", "--model-name", "--entry-script", "--env"} & set(argv)
    assert argv[0] == "--name"  # no SOURCE_DIR: the code comes from the file
    # A model given on the command line is kept (the file does not say it).
    other = online / "other.pkl"
    other.write_bytes(b"x")
    spec = spec_for(AttachOptions(deployment=str(deployment), workspace=str(online), model_dir=str(other)),
                    progress=lambda _: None)
    argv = task_argv(task_options(spec))
    assert argv[argv.index("--model-dir") + 1] == "other.pkl"


def test_a_v2_environment_yaml_is_taken_by_env(online):
    env = write(online / "model-1" / "environment" / "env.yml", """\
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        name: sklearn-env
        image: mcr.microsoft.com/azureml/minimal-py312-inference:latest
        conda_file: conda.yaml
        description: An environment
        """)
    setup = read_setup(env)
    assert setup.base_image == "mcr.microsoft.com/azureml/minimal-py312-inference:latest"
    assert setup.environment.source == online / "model-1" / "environment" / "conda.yaml"
    assert read_environment(env).pip == setup.environment.pip  # amldebug build --env takes it too


def test_a_build_context_is_read(online):
    context = online / "context"
    write(context / "Dockerfile", "FROM score:1\n")
    env = write(online / "env.yml", """\
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        name: ctx
        build:
          path: context
        """)
    setup = read_setup(env)
    assert (setup.environment, setup.base_image) == (None, None)
    assert (setup.build.path, setup.build.dockerfile) == (context, context / "Dockerfile")


# -- several models -----------------------------------------------------------------------

def test_several_models_each_at_their_name_and_version(workspace):
    (workspace / "models" / "a").mkdir(parents=True)
    (workspace / "models" / "b.pkl").write_bytes(b"b")
    spec = resolve_spec("sample", model_dir=("first=models/a", "second:3=models/b.pkl"))
    assert [(Path(p).name, n, v) for p, n, v in spec.models] == [("a", "first", "1"), ("b.pkl", "second", "3")]
    assert spec.model_dir == str(workspace / "models" / "a")  # the first model, as before (watch.py reads it)
    lay = layout(spec)
    assert lay.env["AZUREML_MODEL_DIR"] == "azureml-models/"  # as LocalWebservice sets it for several
    assert [target for _, target in lay.model_mounts] == ["/var/azureml-app/azureml-models/first/1/a",
                                                         "/var/azureml-app/azureml-models/second/3/b.pkl"]
    assert ServiceSpec.from_label(spec.to_label()) == spec
    argv = task_argv(task_options(spec))
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--model-dir"] == ["first:1=models/a",
                                                                             "second:3=models/b.pkl"]
    # One model named on the command line keeps the single-model form.
    one = resolve_spec("sample", model_dir="clf:2=models/b.pkl")
    assert (one.model_name, one.model_version, layout(one).env["AZUREML_MODEL_DIR"]) == \
        ("clf", "2", "azureml-models/clf/2")


def test_several_models_in_the_process_runtime(workspace, tmp_path):
    (workspace / "models" / "a").mkdir(parents=True)
    (workspace / "models" / "a" / "w.json").write_text("{}")
    (workspace / "models" / "b.pkl").write_bytes(b"b")
    spec = resolve_spec("sample", model_dir=("first=models/a", "second:3=models/b.pkl"), runtime="process")
    root = prepare_app_root(spec, tmp_path / "state")
    assert (root / "azureml-models" / "first" / "1" / "a" / "w.json").is_file()
    assert (root / "azureml-models" / "second" / "3" / "b.pkl").read_bytes() == b"b"


@pytest.mark.parametrize("args, message", [
    (("--model-dir", "first=models/a", "--model-dir", "models/b.pkl"),
     "--model-dir 'models/b.pkl': with several models give each its name: NAME[:VERSION]=PATH"),
    (("--model-dir", "first=models/a", "--model-dir", "first=models/b.pkl"),
     "are both model first:1; give each its own NAME[:VERSION]=PATH"),
    (("--model-dir", "first=models/a", "--model-dir", "second=models/b.pkl", "--model-name", "x"),
     "--model-name/--model-version name one model; with several --model-dir give each its name"),
    (("--model-dir", "first=models/none"), "model path 'models/none' (--model-dir first=models/none) does not exist"),
    (("--model-dir", "first:v2=models/a"), "model version 'v2' must be a whole number"),
])
def test_several_models_bad_input(capsys, workspace, args, message):
    (workspace / "models" / "a").mkdir(parents=True)
    (workspace / "models" / "b.pkl").write_bytes(b"b")
    code, _, err = run(capsys, "attach", "sample", "--image", IMAGE, *args)
    assert code == 2 and message in err and "Traceback" not in err


# -- bad input, through the CLI -----------------------------------------------------------

def test_a_missing_deployment_file(capsys, online):
    code, _, err = run(capsys, "attach", "--deployment", "nowhere.yml")
    assert code == 2 and "deployment 'nowhere.yml' does not exist; pass --deployment" in err


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("model:\n  path: ../../model-1/model/\n", "model: azureml:my-model:1\n"),
     "model 'azureml:my-model:1' is registered in Azure ML and amldebug does not fetch it; download it with "
     "'az ml model download --name my-model --version 1 --download-path models', then pass --model-dir "
     "models/my-model/"),
    (lambda t: t.replace("model:\n  path: ../../model-1/model/\n", "model: azureml:my-model@latest\n"),
     "--version N (the newest: az ml model list --name my-model --query [0].version -o tsv)"),
    (lambda t: t.replace("environment:\n  image: score:1\n", "environment: azureml:my-env:1\n"),
     "environment 'azureml:my-env:1' is registered in Azure ML and amldebug does not fetch it; export it with "
     "'az ml environment show --name my-env --version 1 -o yaml > environment.yml' and pass --env environment.yml, "
     "or pass --image"),
    (lambda t: t.replace("environment:\n  image: score:1\n",
                         "environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n"),
     "'az ml environment show --name sklearn-1.5 --label latest --registry-name azureml -o yaml > environment.yml'"),
    (lambda t: t.replace("  scoring_script: score.py\n", "  scoring_script: main.py\n"),
     "scoring script 'main.py' does not exist (looked at"),
    (lambda t: t.replace("  scoring_script: score.py\n", "  scoring_script: <SCORING_SCRIPT>\n"),
     "holds the placeholder <SCORING_SCRIPT>"),
    (lambda t: t.replace("  path: ../../model-1/model/\n", "  path: ../../model-9/model/\n"),
     "model path '../../model-9/model/' does not exist (looked at"),
    (lambda t: t.replace("code_configuration:\n  code: ../../model-1/onlinescoring/\n  scoring_script: score.py\n",
                         ""),
     "no 'code_configuration': this is a no-code deployment"),
    (lambda t: t.replace("environment:\n  image: score:1\n", "environment:\n  conda_file: conda.yml\n"),
     "the environment has neither 'environment.image' nor 'environment.build'"),
    (lambda t: t.replace("endpoint_name: my-endpoint", "endpoint_name: {{ENDPOINT_NAME}}"),
     "blue-deployment.yml:3: holds the placeholder {{ENDPOINT_NAME}} (a template its sample's script fills in)"),
    (lambda t: t.replace("model:\n  path: ../../model-1/model/\n", "model: [1, 2]\n"),
     "'model' must be a mapping with 'path'"),
    (lambda t: t + "request_settings:\n  request_timeout_ms: soon\n", "request_timeout_ms 'soon' is not a number"),
    (lambda t: t.replace("environment:\n  image: score:1\n", "environment: my-env:1\n"),
     "environment 'my-env:1' is neither a registered environment ('azureml:name:version'), the path of an "
     "environment YAML"),
    (lambda t: t.replace("name: blue", "name: blue\n  bad: [").replace("endpoint_name", "endpoint_name"),
     "not valid YAML"),
    # A value of the wrong type is named as such (it was 'missing', 'has no path', or taken silently).
    (lambda t: t.replace("  scoring_script: score.py\n", "  scoring_script: 5\n"),
     "blue-deployment.yml:8: 'code_configuration.scoring_script' must be the scoring script's file name, relative "
     "to the code folder (e.g. scoring_script: score.py), not 5"),
    (lambda t: t.replace("  path: ../../model-1/model/\n", "  path: 123\n"),
     "blue-deployment.yml:5: 'model.path' must be the path of the model file or folder, relative to the "
     "deployment's folder, not 123"),
    (lambda t: t.replace("  code: ../../model-1/onlinescoring/\n", "  code: ../../model-1/onlinescoring/score.py\n"),
     "blue-deployment.yml:7: code '../../model-1/onlinescoring/score.py' is a file ('{online}/model-1/onlinescoring/"
     "score.py'); code_configuration.code must be a folder, the one that holds the scoring script: write code: "
     "../../model-1/onlinescoring and scoring_script: score.py"),
    (lambda t: t + "request_settings: [1]\n",
     "blue-deployment.yml:13: 'request_settings' must be a mapping of settings (e.g. request_settings: "
     "{request_timeout_ms: 5000}), not [1]"),
    (lambda t: t.replace("  path: ../../model-1/model/\n", "  path: ../../model-1/model/\n  name: m\n  version: [1]\n"),
     "blue-deployment.yml:7: model version [1] must be a version such as 1 or '1.0' (a string or a number)"),
])
def test_bad_deployments_name_the_value_and_the_fix(capsys, online, change, message):
    deployment = blue(online)
    deployment.write_text(change(deployment.read_text()))
    code, _, err = run(capsys, "attach", "--deployment", deployment)
    assert code == 2, err
    assert message.replace("{online}", str(online)) in err and "Traceback" not in err


def test_a_registered_environment_is_replaced_by_image_or_env(online):
    deployment = blue(online, "  image: score:1\n")
    deployment.write_text(deployment.read_text().replace("environment:\n  image: score:1\n",
                                                         "environment: azureml:my-env:1\n"))
    assert spec_for(AttachOptions(deployment=str(deployment), image="local:1"), progress=lambda _: None).image == \
        "local:1"


@pytest.mark.parametrize("flag, message", [
    ("--inference-config", "is an Azure ML v2 online deployment (what 'az ml online-deployment create -f' reads), "
                           "not an inference configuration; pass it with --deployment blue-deployment.yml"),
    ("--env", "is an Azure ML v2 online deployment (what 'az ml online-deployment create -f' reads), not an "
              "environment; pass it with --deployment blue-deployment.yml"),
])
def test_a_v2_deployment_given_to_another_option_names_deployment(capsys, online, flag, message):
    code, _, err = run(capsys, "attach", online / "model-1" / "onlinescoring", flag, blue(online), "--image", IMAGE)
    assert code == 2 and message in err and "Traceback" not in err


def test_other_files_given_to_deployment_name_their_option(capsys, online):
    endpoint = write(online / "managed" / "sample" / "endpoint.yml", """\
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
        name: my-endpoint
        auth_mode: key
        """)
    code, _, err = run(capsys, "attach", "--deployment", endpoint)
    assert code == 2 and "is an Azure ML managed online endpoint (the endpoint its deployments belong to)" in err
    env = write(online / "env.yml", """\
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        image: score:1
        """)
    code, _, err = run(capsys, "attach", "--deployment", env)
    assert code == 2 and "is an Azure ML v2 environment, not a deployment; pass it with --env" in err
    config = online / "inferenceconfig.json"
    config.write_text(json.dumps({"entryScript": "score.py"}))
    code, _, err = run(capsys, "attach", "--deployment", config)
    assert code == 2 and "is an Azure ML v1 inference configuration (entryScript), not a v2 deployment; pass it " \
                         "with --inference-config" in err


def test_check_takes_a_deployment(capsys, online):
    """check places the model as attach --deployment does (the v2 local endpoint), not as
    LocalWebservice does (azureml-models/model/1/model, a relative AZUREML_MODEL_DIR)."""
    deployment = blue(online, "  conda_file: ../../model-1/environment/conda.yaml\n  image: score:1\n")
    code, out, err = run(capsys, "check", "--deployment", deployment)
    score, conda = online / "model-1" / "onlinescoring" / "score.py", online / "model-1" / "environment" / "conda.yaml"
    placed = f"/var/azureml-app/azureml-models/{model_folder_hash(online / 'model-1' / 'model')}/1"
    assert code == 0, out + err
    assert out.splitlines() == [
        f"PASS  entry script: {score} compiles and defines init() and run()",
        f"PASS  environment: {conda} lists azureml-inference-server-http",
        f"PASS  model: {online / 'model-1'} (the model path's parent folder) placed at {placed} (azure-ai-ml names a "
        f"model without a name by its content's sha256, version 1); AZUREML_MODEL_DIR={placed}; the model is at "
        "os.path.join(AZUREML_MODEL_DIR, 'model')"]
    # A named model: its name and version, as the local endpoint writes them.
    deployment.write_text(deployment.read_text().replace("  path: ../../model-1/model/\n",
                                                         "  path: ../../model-1/model/\n  name: sk\n  version: 3\n"))
    code, out, err = run(capsys, "check", "--deployment", deployment)
    assert code == 0, out + err
    assert "placed at /var/azureml-app/azureml-models/sk/3; AZUREML_MODEL_DIR=/var/azureml-app/azureml-models/sk/3; " \
           "the model is at os.path.join(AZUREML_MODEL_DIR, 'model')" in out


@pytest.mark.parametrize("environment, line", [
    ("  image: score:1\n  conda_file:\n    dependencies:\n      - pip:\n        - azureml-inference-server-http==1.4\n",
     "PASS  environment: {file} (environment.conda_file) lists azureml-inference-server-http==1.4"),
    (None, "FAIL  environment: {file}: environment 'azureml:my-env:3' is registered in Azure ML and amldebug does not "
           "fetch it\n      fix: export it with 'az ml environment show --name my-env --version 3 -o yaml > "
           "environment.yml' and pass --env environment.yml"),
])
def test_check_reads_a_deployments_environment_as_attach_does(capsys, online, environment, line):
    """An inline conda_file is the deployment's own lines, and a registered environment
    says how to export it (check looked for a requirements.txt beside the script)."""
    deployment = blue(online, environment or "")
    if environment is None:
        deployment.write_text(deployment.read_text().replace("environment:\n", "environment: azureml:my-env:3\n"))
    code, out, err = run(capsys, "check", "--deployment", deployment)
    assert line.format(file=deployment) in out and code == (1 if environment is None else 0), out + err


@pytest.mark.parametrize("command", ["attach", "check"])
def test_a_deployment_given_as_the_source_folder_names_deployment(capsys, online, command):
    """check said '.../blue-deployment.yml/amldebug.json: cannot be read (Not a directory)'."""
    deployment = blue(online)
    code, _, err = run(capsys, command, deployment, "--image", IMAGE)
    assert code == 2 and f"'{deployment}' is an Azure ML v2 deployment file, not the folder of your scoring " \
                         f"script; pass it with --deployment {deployment}" in err, err
    score = online / "model-1" / "onlinescoring" / "score.py"
    code, _, err = run(capsys, command, score, "--image", IMAGE)
    assert code == 2 and f"SOURCE_DIR '{score}' is a file, not a folder; pass the folder that holds your scoring " \
                         "script (and --entry-script score.py if that is the script)" in err, err


@pytest.mark.parametrize("command", ["attach", "check"])
def test_a_deployment_given_as_env_without_a_source_folder_names_deployment(capsys, online, command):
    """Without SOURCE_DIR, attach looked for ./score.py first and said it does not exist."""
    deployment = blue(online).relative_to(Path.cwd())
    code, _, err = run(capsys, command, "--env", deployment, "--image", IMAGE)
    assert code == 2 and f"'{deployment}' is an Azure ML v2 online deployment (what 'az ml online-deployment " \
                         "create -f' reads), not an environment; pass it with --deployment" in err, err


@pytest.mark.parametrize("name, text, message", [
    ("conda.yaml", "name: model-env\ndependencies:\n  - python=3.12\n  - pip:\n    - joblib\n",
     "is a conda environment file (it lists 'dependencies:'), not a v2 online deployment; pass it with --env-file "
     "{given}, or pass the deployment YAML that names it (environment.conda_file) with --deployment"),
    ("requirements.txt", "azureml-inference-server-http\nscikit-learn==1.5.1\n",
     "is a pip requirements file, not a v2 online deployment; pass it with --env-file {given}, or pass the "
     "deployment YAML (its packages go in the '- pip:' list of its environment.conda_file) with --deployment"),
    ("deps.in", "-r base.txt\nnumpy>=1.2,<2 ; python_version < '3.12'\nscikit-learn[alldeps]==1.2.2\n",
     "is a pip requirements file, not a v2 online deployment; pass it with --env-file {given},"),
    ("env.yml", "image: score:1\nconda_file: conda.yaml\n",  # a v2 environment without its $schema
     "is an Azure ML v2 environment, not a deployment; pass it with --env"),
])
def test_an_environment_file_given_to_deployment_is_named(capsys, online, name, text, message):
    """A conda file was called 'a no-code deployment (an MLflow or Triton model ...)'."""
    file = write(online / name, text)
    code, _, err = run(capsys, "attach", "--deployment", file.relative_to(Path.cwd()))
    assert code == 2 and f"'{file}' {message.format(given=file.relative_to(Path.cwd()))}" in err and "no-code" not in err and "Traceback" not in err, err




def test_the_python_api_takes_a_deployment(online):
    import amldebug
    from amldebug.errors import UsageError

    with pytest.raises(UsageError, match="model 'azureml:m:2' is registered in Azure ML"):
        deployment = blue(online)
        deployment.write_text(deployment.read_text().replace("model:\n  path: ../../model-1/model/\n",
                                                             "model: azureml:m:2\n"))
        amldebug.attach(deployment=str(deployment))


def test_an_environment_named_by_path_and_env_replacing_a_registered_one(online):
    write(online / "managed" / "sample" / "env.yml", """\
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        image: base:2
        conda_file: ../../model-1/environment/conda.yaml
        """)
    deployment = blue(online)
    deployment.write_text(deployment.read_text().replace("environment:\n  image: score:1\n", "environment: env.yml\n"))
    setup = read_deployment(deployment)
    assert setup.base_image == "base:2" and setup.environment.source == online / "model-1" / "environment" / \
        "conda.yaml"
    # A registered environment exported with 'az ml environment show -o yaml' (an inline conda_file), given to --env.
    exported = write(online / "exported.yml", """\
        conda_file:
          dependencies:
            - python=3.10
            - pip:
              - joblib
        creation_context:
          created_by: someone
        id: azureml:/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/z/environments/my-env/versions/1
        image: mcr.microsoft.com/azureml/minimal-py312-inference:latest
        name: my-env
        version: '1'
        """)
    deployment.write_text(deployment.read_text().replace("environment: env.yml\n", "environment: azureml:my-env:1\n"))
    spec = spec_for(AttachOptions(deployment=str(deployment), env_file=str(exported), runtime="process"),
                    progress=lambda _: None)
    assert spec.env_file == str(exported) and spec.deployment == str(deployment)
    assert read_setup(exported).environment.pip == ("joblib",)


def test_a_deployment_file_is_yaml_whatever_its_name(online):
    """azureml-examples' custom-container scripts fill a template into 'deployment.yml_' and
    deploy that; az ml reads it as YAML, and so must --deployment (it was read as JSON)."""
    file = blue(online)
    odd = file.with_name("blue-deployment.yml_")
    odd.write_text(file.read_text())
    setup = read_deployment(odd)
    assert (setup.name, setup.base_image) == ("blue", "score:1")
    assert setup.source_dir == online / "model-1" / "onlinescoring"
