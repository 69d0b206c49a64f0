"""Reading Azure ML inference configurations (inferenceconfig.json / .yml): pure, no Docker."""

import json
import textwrap
from pathlib import Path

import pytest

from amldebug import build
from amldebug.errors import UsageError
from amldebug.inference import read_inference_config
from tests.integration.helpers import amldebug

# The shape of the example in Azure ML's documentation of `az ml model deploy --ic`.
DOC_EXAMPLE = {
    "entryScript": "score.py",
    "sourceDirectory": "sample",
    "environment": {
        "docker": {"arguments": [], "baseDockerfile": None, "baseImage": "mcr.microsoft.com/azureml/base:x",
                   "enabled": False, "sharedVolumes": True, "shmSize": None},
        "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
        "name": "my-deploy-env",
        "python": {
            "baseCondaEnvironment": None,
            "condaDependencies": {
                "channels": ["conda-forge"],
                "dependencies": ["python=3.6.2", {"pip": ["azureml-defaults", "scikit-learn",
                                                          "inference-schema[numpy-support]"]}],
                "name": "project_environment",
            },
            "condaDependenciesFile": None,
            "interpreterPath": "python",
            "userManagedDependencies": False,
        },
        "version": "1",
    },
}


def _write(folder: Path, data, name="inferenceconfig.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data, indent=4) if name.endswith(".json") else data)
    return path


def test_the_documented_example_gives_code_variables_packages_and_base_image(workspace):
    setup = read_inference_config(_write(workspace, DOC_EXAMPLE))

    assert (setup.source_dir, setup.entry_script) == (workspace / "sample", "score.py")
    assert dict(setup.env) == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert setup.base_image == "mcr.microsoft.com/azureml/base:x"
    env = setup.environment
    assert env.pip == ("azureml-defaults", "scikit-learn", "inference-schema[numpy-support]")
    assert (env.conda, env.channels, env.base_image) == (("python=3.6.2",), ("conda-forge",), setup.base_image)
    assert env.strict_python is False and env.conda_only == []
    assert setup.notes == ()


def test_yaml_reads_like_json(workspace):
    yaml_text = textwrap.dedent("""\
        # the same configuration, as YAML
        entryScript: score.py
        sourceDirectory: sample
        environment:
          environmentVariables: {EXAMPLE_ENV_VAR: EXAMPLE_VALUE}
          docker: {baseImage: "mcr.microsoft.com/azureml/base:x"}
          python:
            condaDependencies:
              channels: [conda-forge]
              dependencies:
                - python=3.6.2
                - pip:
                    - azureml-defaults
                    - scikit-learn
                    - inference-schema[numpy-support]
        """)
    from_json = read_inference_config(_write(workspace, DOC_EXAMPLE))
    from_yaml = read_inference_config(_write(workspace, yaml_text, "inferenceconfig.yml"))

    assert (from_yaml.source_dir, from_yaml.entry_script, dict(from_yaml.env), from_yaml.base_image) == \
        (from_json.source_dir, from_json.entry_script, dict(from_json.env), from_json.base_image)
    assert (from_yaml.environment.pip, from_yaml.environment.conda) == (from_json.environment.pip,
                                                                         from_json.environment.conda)


def test_legacy_keys_condafile_relative_to_the_source_directory(workspace):
    (workspace / "sample" / "env.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - six==1.16.0\n")
    path = _write(workspace, {"entryScript": "score.py", "sourceDirectory": "sample", "runtime": "python",
                              "condaFile": "env.yml", "baseImage": "scoring:1", "enableGpu": True,
                              "baseImageRegistry": {"address": "myacr.azurecr.io"}})

    setup = read_inference_config(path)

    assert setup.environment.pip == ("six==1.16.0",)
    assert setup.base_image == "myacr.azurecr.io/scoring:1"
    assert setup.notes == (f"{path}: enableGpu/cudaVersion ignored (the debug service runs on the CPU)",)


def test_without_source_directory_the_script_is_relative_to_the_file_and_its_folder_is_served(workspace):
    setup = read_inference_config(_write(workspace, {"entryScript": "sample/score.py"}))

    assert (setup.source_dir, setup.entry_script) == (workspace / "sample", "score.py")
    # No environment: the scoring server only, on the default base image.
    assert (setup.environment.pip, setup.base_image) == ((), None)


def test_user_managed_dependencies_use_the_base_image_as_it_is(workspace):
    data = {"entryScript": "score.py", "sourceDirectory": "sample",
            "environment": {"docker": {"baseImage": "scoring:2"}, "python": {"userManagedDependencies": True}}}
    path = _write(workspace, data)

    setup = read_inference_config(path)

    assert (setup.environment, setup.base_image) == (None, "scoring:2")
    with pytest.raises(UsageError, match=r"userManagedDependencies: its image \(scoring:2\) is used as it is"):
        build.read_environment(path)


def test_build_reads_the_environment_of_an_inference_configuration(workspace):
    env = build.read_environment(_write(workspace, DOC_EXAMPLE))

    assert env.pip[0] == "azureml-defaults" and env.base_image == "mcr.microsoft.com/azureml/base:x"


def test_a_python_pin_other_than_the_images_is_reported_not_refused(workspace):
    env = read_inference_config(_write(workspace, DOC_EXAMPLE)).environment
    probe = {"version": "3.11", "conda": None}
    messages = []

    build.check_conda(env, probe, "base:1", messages.append)

    assert messages == ["amldebug: the environment pins python=3.6.2; Azure ML would create that Python with "
                        "conda, the offline build installs into the base image's Python 3.11 instead"]
    with pytest.raises(UsageError, match="asks for python=3.6.2 but base image 'base:1' has Python 3.11"):
        build.check_conda(build.Environment(Path("env.yml"), conda=("python=3.6.2",)), probe, "base:1")


def _error(workspace, data, name="inferenceconfig.json") -> str:
    with pytest.raises(UsageError) as caught:
        read_inference_config(_write(workspace, data, name))
    return str(caught.value)


@pytest.mark.parametrize("data, expected", [
    ({"sourceDirectory": "sample"}, "'entryScript' is missing; name the scoring script"),
    ({"entry_script": "score.py"}, "'entry_script' is spelled 'entryScript' in an inference configuration file"),
    ({"entryScript": "score.py", "sourceDirectory": "nowhere"},
     "source directory 'nowhere' does not exist (looked at '{ws}/nowhere'); it is relative to the configuration's"),
    ({"entryScript": "scor.py", "sourceDirectory": "sample"}, "entry script 'scor.py' does not exist"),
    ({"entryScript": "../score.py", "sourceDirectory": "sample"}, "must be a path inside the source directory"),
    ({"entryScript": "model", "sourceDirectory": "sample"}, "does not exist"),
    ({"entryScript": "score.py", "sourceDirectory": "sample", "runtime": "spark-py"},
     "runtime 'spark-py' is not supported"),
    ({"entryScript": "score.py", "sourceDirectory": "sample", "extraDockerfileSteps": "steps.txt"},
     "cannot run extra Dockerfile steps"),
    ({"entryScript": "score.py", "sourceDirectory": "sample", "condaFile": "env.yml", "environment": {}},
     "'condaFile' cannot be given with 'environment'"),
    ({"entryScript": "score.py", "sourceDirectory": "sample",
      "environment": {"docker": {"baseDockerfile": "FROM python:3.11"}}},
     "amldebug builds on an image, not a Dockerfile; build it first"),
    ({"entryScript": "score.py", "sourceDirectory": "sample",
      "environment": {"python": {"userManagedDependencies": True}}},
     "userManagedDependencies is true but 'environment.docker.baseImage' is empty"),
    ({"entryScript": "score.py", "sourceDirectory": "sample", "environment": {"environmentVariables": ["A=1"]}},
     "'environmentVariables' must be a mapping of NAME: value"),
    ({"entryScript": "score.py", "sourceDirectory": "sample",
      "environment": {"python": {"condaDependencies": {"dependencies": [{"pip": ["numpy", "-e ."]}]}}}},
     "editable installs ('-e .') cannot go into an image"),
    (["score.py"], "an inference configuration is a mapping with 'entryScript'"),
])
def test_bad_configurations_name_the_problem_and_the_fix(workspace, data, expected):
    assert expected.format(ws=workspace) in _error(workspace, data)


def test_a_bad_requirement_is_named_with_its_line(workspace):
    data = json.loads(json.dumps(DOC_EXAMPLE))
    data["environment"]["python"]["condaDependencies"]["dependencies"][1]["pip"][1] = "scikit learn"
    path = _write(workspace, data)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "scikit learn" in text)

    message = _error(workspace, data)

    assert message.startswith(f"{path}:{line}: 'scikit learn' is not a valid requirement")


def test_malformed_json_and_yaml_name_the_line(workspace):
    bad_json = workspace / "broken.json"
    bad_json.write_text('{\n  "entryScript": "score.py",\n  "sourceDirectory": "sample"\n  "environment": {}\n}\n')
    with pytest.raises(UsageError, match=rf"^{bad_json}:4: not valid JSON \(Expecting ',' delimiter"):
        read_inference_config(bad_json)

    bad_yaml = workspace / "broken.yml"
    bad_yaml.write_text("entryScript: score.py\nenvironment:\n  python: [a\n  docker: {}\n")
    with pytest.raises(UsageError, match=rf"^{bad_yaml}:4: not valid YAML"):
        read_inference_config(bad_yaml)
    with pytest.raises(UsageError, match="inference configuration 'missing.json' does not exist"):
        read_inference_config("missing.json")


def test_cli_refuses_conflicting_flags_before_anything_starts(capsys, workspace):
    path = _write(workspace, DOC_EXAMPLE)

    code, out, err = amldebug(capsys, "attach", "--inference-config", path, "--entry-script", "other.py")
    assert (code, out) == (2, "")
    assert f"--entry-script comes from the inference configuration '{path}'; drop --entry-script" in err

    code, _, err = amldebug(capsys, "attach", "--inference-config", path, "--service", "svc")
    assert code == 2 and "--service and --inference-config both say where the code comes from" in err

    code, _, err = amldebug(capsys, "attach", "--inference-config", workspace / "nope.json")
    assert code == 2 and "inference configuration" in err and "nope.json' does not exist" in err
    assert not (workspace / ".vscode").exists()


def test_file_kinds(workspace):
    kinds = {
        "inferenceconfig.json": '{"entryScript": "score.py"}',
        "ic.yml": "entryScript: score.py\n",
        "azureml_environment.json": '{"python": {}}',
        "env.yaml": "python:\n  userManagedDependencies: false\n",
        "conda.yml": "dependencies:\n  - pip\n",
        "requirements.txt": "six\n",
    }
    for name, text in kinds.items():
        (workspace / name).write_text(text)

    from amldebug.inference import file_kind

    assert {name: file_kind(workspace / name) for name in kinds} == {
        "inferenceconfig.json": "inference", "ic.yml": "inference", "azureml_environment.json": "environment",
        "env.yaml": "environment", "conda.yml": None, "requirements.txt": None}
