"""Reading Azure ML inference configurations (inferenceconfig.json / .yml): pure, no Docker."""

import json
import textwrap
from pathlib import Path

import pytest

from amldebug.errors import UsageError
from amldebug.envbuild import image as build
from amldebug.sources.azureml import read_inference_config
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


def test_the_python_an_inference_configuration_pins_is_what_the_build_is_for(workspace):
    from amldebug.envbuild import python

    env = read_inference_config(_write(workspace, DOC_EXAMPLE)).environment

    assert python.pinned_minor(env) == "3.6"


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

    from amldebug.sources.kinds import Kind, kind_of

    assert {name: kind_of(workspace / name) for name in kinds} == {
        "inferenceconfig.json": Kind.V1_INFERENCE, "ic.yml": Kind.V1_INFERENCE,
        "azureml_environment.json": Kind.V1_ENVIRONMENT, "env.yaml": Kind.V1_ENVIRONMENT, "conda.yml": Kind.CONDA,
        "requirements.txt": Kind.REQUIREMENTS}


def test_lines_are_found_by_key_not_by_the_first_mention(workspace):
    path = workspace / "ic.yml"
    path.write_text("description: runs scor.py\nentryScript: scor.py\nsourceDirectory: sample\n")

    with pytest.raises(UsageError) as caught:
        read_inference_config(path)

    assert str(caught.value).startswith(f"{path}:2: entry script 'scor.py' does not exist")


def test_conda_files_missing_or_placed_are_looked_for_where_azure_ml_looks(workspace):
    (workspace / "env.yml").write_text("dependencies:\n  - pip:\n    - six\n")
    setup = read_inference_config(_write(workspace, {"entryScript": "sample/score.py", "condaFile": "env.yml"}))
    assert setup.environment.pip == ("six",)  # no sourceDirectory: next to the configuration

    message = _error(workspace, {"entryScript": "score.py", "sourceDirectory": "sample", "condaFile": "env.yml"})
    assert message.endswith(f": conda file 'env.yml' does not exist (looked at '{workspace}/sample/env.yml'); "
                            "it is relative to sourceDirectory")
    message = _error(workspace, {"entryScript": "score.py", "sourceDirectory": "sample",
                                 "environment": {"python": {"condaDependenciesFile": "nope.yml"}}})
    assert ":6: conda file 'nope.yml' does not exist" in message and "relative to the configuration's folder" in message


def test_inline_conda_dependencies_win_over_a_named_file_as_in_azure_ml(workspace):
    data = {"entryScript": "score.py", "sourceDirectory": "sample",
            "environment": {"python": {"condaDependencies": {"dependencies": [{"pip": ["six"]}]},
                                       "condaDependenciesFile": "elsewhere.yml"}}}
    setup = read_inference_config(_write(workspace, data))

    assert setup.environment.pip == ("six",)
    assert "condaDependenciesFile ignored; condaDependencies are given too" in setup.notes[0]


def test_windows_paths_and_odd_files(workspace):
    setup = read_inference_config(_write(workspace, {"entryScript": "score.py", "sourceDirectory": ".\\sample"}))
    assert setup.source_dir == workspace / "sample"

    (workspace / "empty.yml").write_text("# nothing yet\n")
    with pytest.raises(UsageError, match="empty.yml' is empty; write the configuration in it"):
        read_inference_config(workspace / "empty.yml")
    with pytest.raises(UsageError, match="inference configuration '/dev/null' is not a regular file"):
        read_inference_config("/dev/null")


def test_json_that_is_no_azure_ml_file_is_refused_as_an_environment(workspace):
    from amldebug.sources.azureml import read_environment_definition

    path = workspace / "sample" / "sample-request.json"
    with pytest.raises(UsageError, match="is neither an Azure ML environment definition .* nor an inference "
                                         "configuration"):
        build.read_environment(path)
    definition = workspace / "env.json"
    definition.write_text('{"name": "x", "python": {}, "extra": 1}')
    assert read_environment_definition(definition).notes == (f"{definition}: ignored key(s) extra",)


def test_the_f5_task_of_an_inference_configuration_reads_it_again(workspace):
    from amldebug.core.spec import resolve_spec
    from amldebug.session import apply_setup
    from amldebug.vscode.entries import task_command

    path = _write(workspace, {"entryScript": "score.py", "sourceDirectory": "sample",
                              "environment": {"environmentVariables": {"SECRET": "s3cr3t", "MODE": "file"},
                                              "python": {"userManagedDependencies": True},
                                              "docker": {"baseImage": "scoring:2"}}})
    setup = read_inference_config(path)
    spec = apply_setup(resolve_spec(setup.source_dir, entry_script=setup.entry_script, env={"MODE": "flag"}),
                       setup, progress=lambda _: None)

    command = task_command(spec)

    assert dict(spec.env) == {"SECRET": "s3cr3t", "MODE": "flag"} and spec.image == "scoring:2"
    assert command[command.index("--inference-config") + 1] == "inferenceconfig.json"
    # -e MODE goes in as a key (F5 takes its value from the environment); the file's own stay in the file
    assert command[command.index("-e") + 1] == "MODE" and not any("SECRET" in a or "flag" in a for a in command)
    assert command[command.index("attach") + 1] == "sample" and command.count("--exact-ports") == 1


def test_check_reads_the_packages_of_azure_ml_files(workspace):
    from amldebug.check import check_environment

    result = check_environment(_write(workspace, DOC_EXAMPLE))
    assert result.ok and result.detail.endswith("lists azureml-defaults")
    bad = check_environment(_write(workspace, {"entryScript": "nope.py", "sourceDirectory": "sample"}))
    assert not bad.ok and "entry script 'nope.py' does not exist" in bad.detail


def test_paths_of_a_v1_cli_configuration_are_read_from_the_current_folder_when_not_beside_it(workspace, monkeypatch):
    """nfmoore/azureml-v1-real-time-deployment-template: configuration/inference_config.yml names
    src/score.py and environments/score_dependencies.yml relative to the repository root, where
    'az ml model deploy --ic configuration/inference_config.yml' runs."""
    (workspace / "src").mkdir()
    (workspace / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    (workspace / "environments").mkdir()
    (workspace / "environments" / "env.yml").write_text("dependencies:\n  - python=3.7\n  - pip:\n    - six\n")
    (workspace / "configuration").mkdir()
    config = _write(workspace / "configuration", "entryScript: src/score.py\nruntime: python\n"
                                                 "condaFile: environments/env.yml\nsourceDirectory:\n", "ic.yml")
    monkeypatch.chdir(workspace)
    setup = read_inference_config(config)
    assert setup.entry_script == "score.py" and setup.source_dir == workspace / "src"
    assert setup.environment.pip == ("six",)
    assert any("read from there, as 'az ml model deploy --ic' (the v1 CLI) reads them" in n for n in setup.notes)
    monkeypatch.chdir(workspace / "configuration")  # found nowhere: the message says where it looked, beside the file
    with pytest.raises(UsageError, match=r"entry script 'src/score.py' does not exist \(looked at '.*configuration/src"):
        read_inference_config(config)
