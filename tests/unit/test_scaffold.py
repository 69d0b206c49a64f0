"""``amldebug init``: the project on disk, its score.py run for real, and the VS Code files F5 uses."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
import typer

from amldebug import scaffold
from amldebug.check import check_entry_script, check_environment, check_model
from amldebug.cli import app
from amldebug.core.paths import resource_dir
from amldebug.core.scriptcheck import syntax_error
from amldebug.core.spec import layout, resolve_spec
from amldebug.errors import ConfigFileError, ExitStatus, UsageError
from amldebug.scaffold import init_project
from amldebug.sources.project import load_project
from amldebug.vscode import build_task, parse_jsonc
from amldebug.vscode.entries import (
    BEGINS_PATTERN,
    ENDS_PATTERN,
    INTERPRETER,
    attach_command,
    task_label,
    vscode_files,
)
from amldebug.vscode.files import task_labels, write_vscode

PROJECT_FILES = {
    "score.py", "model/model.json", "requirements.txt", "environment.yml", "sample-request.json", "README.md",
    "amldebug.json", ".vscode/launch.json", ".vscode/tasks.json",
}
TEMPLATE = resource_dir("templates") / "project"
# What `amldebug attach` prints (cli.py) when it starts and once a debugger can attach.
STARTING_LINE = "amldebug: starting service 'my-proj' from image 'scoring:1'"
READY_LINE = "amldebug: service 'my-proj' is ready for a debugger on localhost:5678 (before init(); 3.2 s)"

USER_TASKS = """\
// my build tasks
{
    "version": "2.0.0",
    "tasks": [
        {
            "label": "build", /* the user's own task */
            "type": "shell",
            "command": "make",
        },
    ],
}
"""
USER_TASK = USER_TASKS[USER_TASKS.index("        {") : USER_TASKS.index("        },") + len("        },")]


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def read_jsonc(path: Path):
    return parse_jsonc(path.read_text(encoding="utf-8"), str(path))


def load_score(path: Path):
    """Import a scaffolded score.py as the server does: a fresh module from its file."""
    spec = importlib.util.spec_from_file_location(f"scaffolded_score_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_predictions(project: Path) -> list[float]:
    weights = json.loads((project / "model" / "model.json").read_text())
    rows = json.loads((project / "sample-request.json").read_text())["data"]
    return [weights["intercept"] + sum(w * x for w, x in zip(weights["coefficients"], row)) for row in rows]


def command_parses(argv: list[str]) -> None:
    """The CLI accepts argv (after the executable, '-m' and 'amldebug') without running it."""
    assert argv[1:3] == ["-m", "amldebug"], argv
    command = typer.main.get_command(app).commands[argv[3]]
    command.make_context(argv[3], list(argv[4:]))  # raises click.UsageError on an unknown option


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "my-proj"
    init_project(target)
    return target


# --- the project on disk ---------------------------------------------------------------


def test_init_into_a_new_folder_writes_every_file_and_returns_them(tmp_path):
    target = tmp_path / "new" / "my-proj"

    written = init_project(target)

    assert {p.relative_to(target).as_posix() for p in written} == PROJECT_FILES
    assert len(written) == len(PROJECT_FILES)
    assert files_under(target) == PROJECT_FILES
    for name in (n for n in files_under(TEMPLATE) if "__pycache__" not in n):
        assert (target / name).read_bytes() == (TEMPLATE / name).read_bytes(), name


def test_init_into_an_existing_empty_folder(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()

    init_project(target)

    assert files_under(target) == PROJECT_FILES


def test_scaffolded_project_passes_amldebug_check(project):
    results = [
        check_entry_script(project / "score.py"),
        check_environment(project / "requirements.txt"),
        check_environment(project / "environment.yml"),
        check_model(resolve_spec(project, model_dir=project / "model", model_name="model")),
    ]

    assert [r.detail for r in results if not r.ok] == []
    assert "azureml-inference-server-http" in results[1].detail
    assert "azureml-inference-server-http" in results[2].detail
    assert results[3].detail.startswith("placed at /var/azureml-app/azureml-models/model/1/model; "
                                        "AZUREML_MODEL_DIR=azureml-models/model/1;")


def test_environment_yml_is_the_conda_variant(project):
    text = (project / "environment.yml").read_text()

    assert re.search(r"^\s*- python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*- pip\s*$", text, re.M)
    assert re.search(r"^\s*- pip:\s*\n\s+- azureml-inference-server-http\s*$", text, re.M)


def test_scaffolded_score_py_predicts_the_sample_request_with_an_absolute_model_dir(project, tmp_path, monkeypatch):
    version_dir = tmp_path / "azureml-models" / "model" / "1"
    shutil.copytree(project / "model", version_dir / "model")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(version_dir))
    score = load_score(project / "score.py")

    score.init()
    result = score.run((project / "sample-request.json").read_text())

    expected = expected_predictions(project)
    assert len(expected) >= 2
    assert result == {"predictions": pytest.approx(expected)}


def test_scaffolded_score_py_finds_the_model_where_amldebug_places_it(project, tmp_path, monkeypatch):
    # As in the container: AZUREML_MODEL_DIR relative to the app root, the working directory.
    settings = load_project(project)
    spec = resolve_spec(project, entry_script=settings["entry_script"], model_dir=settings["model_dir"],
                        model_name=settings["model_name"], env_file=settings["env_file"])
    lay = layout(spec)
    app_root = tmp_path / "app"
    shutil.copytree(project / "model", app_root / Path(lay.model_target).relative_to(lay.app_root))
    monkeypatch.chdir(app_root)
    monkeypatch.setenv("AZUREML_MODEL_DIR", lay.env["AZUREML_MODEL_DIR"])
    score = load_score(project / "score.py")

    score.init()

    assert score.run((project / "sample-request.json").read_text()) == {
        "predictions": pytest.approx(expected_predictions(project))
    }


def test_scaffolded_run_names_a_row_of_the_wrong_width(project, tmp_path, monkeypatch):
    shutil.copytree(project / "model", tmp_path / "v1" / "model")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "v1"))
    score = load_score(project / "score.py")
    score.init()

    with pytest.raises(ValueError, match=r"row 1 has 2 features; the model expects 3"):
        score.run(json.dumps({"data": [[1, 2, 3], [1, 2]]}))


def test_scaffolded_init_says_how_to_start_it_without_a_model_dir(project, monkeypatch):
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    score = load_score(project / "score.py")

    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR is not set; start the service with 'amldebug attach'"):
        score.init()


def test_readme_breakpoint_line_and_commands_are_real(project):
    readme, score = (project / "README.md").read_text(), (project / "score.py").read_text()

    line = re.search(r"on `([^`]+)`", readme).group(1)
    assert re.search(rf"^\s+{re.escape(line)}$", score, re.M), line
    for command in ("amldebug score --file sample-request.json", "amldebug down", "F5"):
        assert command in readme


def test_non_empty_folder_is_refused_naming_entries_and_force(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    names = [f"file{i}.txt" for i in range(7)]
    for name in names:
        (target / name).write_text("mine")

    with pytest.raises(UsageError) as caught:
        init_project(target)

    message = str(caught.value)
    assert "--force" in message
    assert str(target) in message
    assert all(name in message for name in names[:5])
    assert "file5.txt" not in message
    assert "and 2 more" in message
    assert files_under(target) == set(names)


def test_a_file_as_target_is_refused(tmp_path):
    target = tmp_path / "score.py"
    target.write_text("print('mine')\n")

    with pytest.raises(UsageError, match=re.escape(f"'{target}' is a file; pass a folder")):
        init_project(target)

    assert target.read_text() == "print('mine')\n"
    assert files_under(tmp_path) == {"score.py"}


def test_force_overwrites_only_the_files_it_writes(tmp_path):
    target = tmp_path / "proj"
    target.mkdir()
    (target / "score.py").write_text("my edited script\n")
    (target / "notes.txt").write_text("keep me\n")

    written = init_project(target, force=True)

    assert (target / "score.py").read_bytes() == (TEMPLATE / "score.py").read_bytes()
    assert (target / "notes.txt").read_text() == "keep me\n"
    assert target / "notes.txt" not in written
    assert files_under(target) == PROJECT_FILES | {"notes.txt"}


def test_force_refuses_a_folder_where_a_file_goes_and_writes_nothing(tmp_path):
    target = tmp_path / "proj"
    (target / "score.py").mkdir(parents=True)

    with pytest.raises(UsageError, match=re.escape(f"'{target / 'score.py'}' is a folder")):
        init_project(target, force=True)

    assert files_under(target) == set()


def test_a_broken_launch_json_stops_init_before_anything_is_written(tmp_path):
    target = tmp_path / "proj"
    (target / ".vscode").mkdir(parents=True)
    (target / ".vscode" / "launch.json").write_text('{"configurations": [,]}')

    with pytest.raises(ConfigFileError, match=r"launch\.json:1:21: expected a value"):
        init_project(target, force=True)

    assert files_under(target) == {".vscode/launch.json"}


def test_template_files_leave_out_bytecode(tmp_path, monkeypatch):
    (tmp_path / "project" / "__pycache__").mkdir(parents=True)
    (tmp_path / "project" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "project" / "score.py").write_text("x = 1\n")
    monkeypatch.setattr(scaffold, "resource_dir", lambda name: tmp_path)

    assert scaffold.template_files() == {"score.py": b"x = 1\n"}


# --- VS Code files ---------------------------------------------------------------------


def test_f5_runs_the_attach_task_then_attaches_to_the_scaffolded_service(project):
    launch, tasks = read_jsonc(project / ".vscode/launch.json"), read_jsonc(project / ".vscode/tasks.json")
    service = "my-proj"

    [config] = launch["configurations"]
    [task] = tasks["tasks"]
    assert config["name"] == "amldebug: my-proj"
    assert config["preLaunchTask"] == task["label"] == task_label(service)
    assert "postDebugTask" not in config
    assert task["isBackground"] is True
    assert task["problemMatcher"]["background"]["beginsPattern"] == BEGINS_PATTERN
    assert task["problemMatcher"]["background"]["endsPattern"] == ENDS_PATTERN
    argv = [task["command"], *task["args"]]
    assert argv == [INTERPRETER, "-m", "amldebug", "attach", ".", "--name", service, "--debug-port",
                    str(config["connect"]["port"]), "--exact-ports"]
    assert task["options"] == {"cwd": "${workspaceFolder}", "env": {"AMLDEBUG_PROGRESS": "plain"}}
    command_parses(argv)
    # The mapping names the folder where attach mounts this project.
    spec = resolve_spec(project, name=service)
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}", "remoteRoot": layout(spec).code_dir}]


def test_background_patterns_match_what_attach_prints():
    assert re.search(BEGINS_PATTERN, STARTING_LINE)
    assert re.search(ENDS_PATTERN, READY_LINE)
    assert not re.search(ENDS_PATTERN, STARTING_LINE)
    assert not re.search(BEGINS_PATTERN, READY_LINE)


def test_problem_pattern_of_the_task_matches_a_syntax_error_amldebug_prints(project):
    (project / "score.py").write_text("def init():\n    pass\n\ndef run(raw_data:\n    return 1\n")
    [task] = read_jsonc(project / ".vscode/tasks.json")["tasks"]
    pattern = task["problemMatcher"]["pattern"]

    match = re.match(pattern["regexp"], syntax_error(project / "score.py"))

    assert match is not None
    assert match.group(pattern["file"]) == str(project / "score.py")
    assert match.group(pattern["line"]) == "4"
    assert match.group(pattern["severity"]) == "error"


def test_post_debug_task_runs_amldebug_down_for_the_service(tmp_path):
    target = tmp_path / "my-proj"

    init_project(target, post_debug_task=True)

    [config] = read_jsonc(target / ".vscode/launch.json")["configurations"]
    tasks = {t["label"]: t for t in read_jsonc(target / ".vscode/tasks.json")["tasks"]}
    assert config["postDebugTask"] == "amldebug: down my-proj"
    down = tasks[config["postDebugTask"]]
    argv = [down["command"], *down["args"]]
    assert argv == [INTERPRETER, "-m", "amldebug", "down", "--name", "my-proj"]
    assert down["options"]["env"] == {"AMLDEBUG_PROGRESS": "plain"}
    assert down.get("isBackground", False) is False
    command_parses(argv)
    assert set(tasks) == {"amldebug: my-proj", "amldebug: down my-proj"}


def test_merging_into_existing_tasks_json_keeps_the_users_task_and_comments(tmp_path):
    target = tmp_path / "my-proj"
    (target / ".vscode").mkdir(parents=True)
    (target / ".vscode" / "tasks.json").write_text(USER_TASKS)

    init_project(target, force=True)
    init_project(target, force=True)  # again: the entry is replaced, not added twice

    text = (target / ".vscode" / "tasks.json").read_text()
    assert text.startswith("// my build tasks\n{\n")
    assert USER_TASK in text
    assert [t["label"] for t in parse_jsonc(text)["tasks"]] == ["build", "amldebug: my-proj"]
    assert task_labels(target) == {"build", "amldebug: my-proj"}


def test_vscode_files_for_a_project_below_the_workspace(tmp_path):
    workspace, project = tmp_path / "ws", tmp_path / "ws" / "src"
    project.mkdir(parents=True)
    command = attach_command(project, service="svc", debug_port=6001, workspace=workspace, python="py")

    entries = vscode_files(project, service="svc", debug_port=6001, command=command, workspace=workspace,
                           just_my_code=False, post_debug_task=True)

    assert command == ["py", "-m", "amldebug", "attach", "src", "--name", "svc", "--debug-port", "6001",
                       "--exact-ports"]
    [config] = entries["launch"]
    assert config["connect"]["port"] == 6001
    assert config["justMyCode"] is False
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}/src", "remoteRoot": "/var/azureml-app/src"}]
    assert [t["label"] for t in entries["tasks"]] == ["amldebug: svc", "amldebug: down svc"]
    assert [entries["tasks"][1]["command"], *entries["tasks"][1]["args"]] == ["py", "-m", "amldebug", "down",
                                                                              "--name", "svc"]
    written = write_vscode(workspace, entries)
    assert written == [workspace / ".vscode/tasks.json", workspace / ".vscode/launch.json"]
    assert read_jsonc(written[1])["configurations"] == entries["launch"]


def test_vscode_files_for_the_process_runtime_map_the_code_to_itself(tmp_path):
    entries = vscode_files(tmp_path, service="s", debug_port=1, command=["amldebug", "attach"], runtime="process")

    [config] = entries["launch"]
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}", "remoteRoot": str(tmp_path.resolve())}]


def test_vscode_files_need_a_down_command_when_attach_is_not_in_the_command(tmp_path):
    with pytest.raises(ValueError, match="pass down_command"):
        vscode_files(tmp_path, service="s", debug_port=1, command=["./start.sh"], post_debug_task=True)

    entries = vscode_files(tmp_path, service="s", debug_port=1, command=["./start.sh"], post_debug_task=True,
                           down_command=["./stop.sh", "s"])
    assert entries["tasks"][1]["command"] == "./stop.sh"
    assert entries["tasks"][1]["args"] == ["s"]


# --- amldebug.json -----------------------------------------------------------------------


def test_load_project_round_trip(tmp_path):
    target = tmp_path / "proj"
    init_project(target, image="scoring:1")

    settings = load_project(target)

    assert settings == {
        "entry_script": "score.py",
        "model_dir": target / "model",
        "model_name": "model",
        "env_file": target / "requirements.txt",
        "image": "scoring:1",
    }
    assert json.loads((target / "amldebug.json").read_text())["image"] == "scoring:1"


def test_load_project_without_image_gives_none(project):
    assert load_project(project)["image"] is None


def test_load_project_without_the_file_is_none(tmp_path):
    assert load_project(tmp_path) is None


def test_load_project_resolves_paths_against_the_folder_not_the_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "proj"
    folder.mkdir(parents=True)
    (folder / "amldebug.json").write_text(
        '// shared model\n{"model_dir": "../shared/model", "env_file": "env/conda.yml"}\n')
    monkeypatch.chdir(tmp_path)

    settings = load_project(folder)

    assert settings == {"entry_script": "score.py", "model_dir": tmp_path / "a" / "shared" / "model",
                        "model_name": None, "env_file": folder / "env" / "conda.yml", "image": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"entry_script": "score.py", "modeldir": "model"}', "unknown key 'modeldir'"),
        ('{"image": 3}', '"image" must be a non-empty string or null, found the number 3'),
        ('{"model_dir": ["model"]}', '"model_dir" must be a non-empty string or null, found an array'),
        ('{"entry_script": null}', '"entry_script" must be a non-empty string, found null'),
        ('{"env_file": ""}', "\"env_file\" must be a non-empty string or null, found ''"),
        ('{"entry_script": "../score.py"}', "\"entry_script\" '../score.py' must be a path inside"),
        ('["score.py"]', "expected a JSON object at the top level, found an array"),
    ],
)
def test_load_project_errors_name_the_key_and_the_file(tmp_path, text, expected):
    (tmp_path / "amldebug.json").write_text(text)

    with pytest.raises(UsageError) as caught:
        load_project(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'amldebug.json'}: ")
    assert expected in message


def test_load_project_that_is_not_json_names_the_file_line_and_column(tmp_path):
    (tmp_path / "amldebug.json").write_text('{\n    "image": nope\n}\n')

    with pytest.raises(ConfigFileError, match=re.escape(f"{tmp_path / 'amldebug.json'}:2:14:")):
        load_project(tmp_path)


# --- vscode-config/ examples -------------------------------------------------------------


def test_vscode_config_examples_parse_and_agree_with_what_amldebug_writes():
    folder = resource_dir("vscode-config")
    launch, tasks = read_jsonc(folder / "launch.json"), read_jsonc(folder / "tasks.json")
    labels = {t["label"] for t in tasks["tasks"]}
    written = build_task(label="x", command="x", args=[])

    assert sorted(c["type"] for c in launch["configurations"]) == ["debugpy", "python"]
    for config in launch["configurations"]:
        assert config["request"] == "attach"
        assert config["preLaunchTask"] in labels
        [mapping] = config["pathMappings"]
        assert mapping["remoteRoot"] == "/var/azureml-app/" + mapping["localRoot"].rsplit("/", 1)[1]
    background = [t for t in tasks["tasks"] if t.get("isBackground")]
    assert len(background) == 1
    assert background[0]["problemMatcher"] == {**written["problemMatcher"]}
    assert background[0]["args"][:5] == ["-m", "amldebug", "attach", "src", "--name"]
    assert background[0]["command"] == INTERPRETER
    assert background[0]["options"]["env"] == written["options"]["env"]


def test_vscode_config_readme_covers_both_extension_types_and_the_bind_address():
    readme = (resource_dir("vscode-config") / "README.md").read_text()

    for needle in ('"debugpy"', '"python"', "pathMappings", "justMyCode", "preLaunchTask", "127.0.0.1",
                   BEGINS_PATTERN, ENDS_PATTERN, '"activeOnStart": true', "AMLDEBUG_PROGRESS", INTERPRETER):
        assert needle in readme, needle
    for name in ("README.md", "tasks.json", "launch.json"):  # VS Code's key is activeOnStart
        assert "activatesOnStart" not in (resource_dir("vscode-config") / name).read_text(), name


def test_the_f5_task_rebuilds_an_amldebug_built_image_from_its_environment(workspace):
    from amldebug.core.spec import resolve_spec
    from amldebug.vscode.entries import task_command

    (workspace / "sample" / "requirements.txt").write_text("six\n")
    spec = resolve_spec("sample", env_file="sample/requirements.txt", workspace=workspace).replace(
        image="amldebug-env:0123456789abcdef", base_image="base:1")

    command = task_command(spec)

    assert command[command.index("--env-file") + 1] == "sample/requirements.txt"
    assert command[command.index("--base-image") + 1] == "base:1" and "--image" not in command
    assert "--image" in task_command(spec.replace(image="scoring:1"))  # an image the user named stays named


def test_the_f5_task_of_a_new_project_does_not_move_ports(project):
    tasks = read_jsonc(project / ".vscode" / "tasks.json")
    args = next(t for t in tasks["tasks"] if "attach" in t["args"])["args"]

    assert args.count("--exact-ports") == 1
    command_parses(["python", *args])


# --- amldebug vscode on a workspace the user has changed --------------------------------


def amldebug(capsys, *args) -> tuple[int, str]:
    from amldebug import cli

    capsys.readouterr()
    code = cli.run([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["launch.json", "tasks.json"])
def test_vscode_refuses_a_dangling_symlink_and_writes_nothing(workspace, capsys, name):
    (workspace / ".vscode").mkdir()
    link = workspace / ".vscode" / name
    link.symlink_to("../../shared/" + name)

    code, err = amldebug(capsys, "vscode", "sample", "--image", "scoring:1", "--name", "svc")

    assert code == ExitStatus.ERROR
    assert f"'{link}' is a symbolic link to '../../shared/{name}'" in err
    assert "does not exist" in err and "Remove the link, or make it point at an existing file" in err
    assert not (workspace.parent / "shared").exists()
    assert [p.name for p in (workspace / ".vscode").iterdir()] == [name]


def test_attach_refuses_a_dangling_symlink_before_it_starts_anything(workspace, capsys, monkeypatch):
    # No engine: had attach got as far as starting a container, it would exit DOCKER instead.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{workspace}/no-docker.sock")
    (workspace / ".vscode").symlink_to("gone")

    code, err = amldebug(capsys, "attach", "sample", "--image", "scoring:1", "--name", "svc")

    assert code == ExitStatus.ERROR
    assert f"'{workspace / '.vscode'}' is a symbolic link to 'gone', which does not exist" in err
    assert "make it point at an existing folder" in err
    assert not (workspace / "gone").exists()


def test_vscode_writes_through_a_symlink_to_an_existing_file(workspace, capsys):
    shared = workspace.parent / "dotfiles" / "launch.json"
    shared.parent.mkdir()
    shared.write_text('// shared between my projects\n{"version": "0.2.0", "configurations": []}\n')
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "launch.json").symlink_to(shared)

    code, err = amldebug(capsys, "vscode", "sample", "--image", "scoring:1", "--name", "svc")

    assert code == 0, err
    assert (workspace / ".vscode" / "launch.json").is_symlink()
    text = shared.read_text()
    assert text.startswith("// shared between my projects\n")
    assert [c["name"] for c in parse_jsonc(text)["configurations"]] == ["amldebug: svc"]
    assert [p.name for p in shared.parent.iterdir()] == ["launch.json"]


def test_vscode_again_keeps_keys_the_user_added_to_amldebugs_entries(workspace, capsys):
    assert amldebug(capsys, "vscode", "sample", "--image", "scoring:1", "--name", "svc")[0] == 0
    launch, tasks = workspace / ".vscode" / "launch.json", workspace / ".vscode" / "tasks.json"
    launch.write_text(launch.read_text().replace('"request": "attach",', '"request": "attach",\n'
                                                 '            "redirectOutput": true, // I want prints\n'
                                                 '            "env": {"LOG_LEVEL": "debug"},'))
    tasks.write_text(tasks.read_text().replace('"AMLDEBUG_PROGRESS": "plain"', '"AZURE_TENANT": "t"'))

    code, err = amldebug(capsys, "vscode", "sample", "--image", "scoring:1", "--name", "svc", "--debug-port", "6001")

    assert code == 0, err
    [config] = read_jsonc(launch)["configurations"]
    assert config["connect"]["port"] == 6001
    assert config["redirectOutput"] is True and config["env"] == {"LOG_LEVEL": "debug"}
    assert '"redirectOutput": true, // I want prints\n' in launch.read_text()
    [task] = read_jsonc(tasks)["tasks"]
    assert task["args"][task["args"].index("--debug-port") + 1] == "6001"
    assert task["options"] == {"cwd": "${workspaceFolder}", "env": {"AZURE_TENANT": "t", "AMLDEBUG_PROGRESS": "plain"}}


def test_vscode_waiting_too_long_for_another_run_is_an_error(workspace, capsys, monkeypatch):
    from amldebug.engine import inject
    from amldebug.vscode import jsonc as vscode

    monkeypatch.setattr(vscode, "LOCK_TIMEOUT", 0.2)
    with vscode.folder_lock(workspace / ".vscode", inject.cache_root() / "locks"):
        code, err = amldebug(capsys, "vscode", "sample", "--image", "scoring:1", "--name", "svc")

    assert code == ExitStatus.ERROR
    assert f"{workspace / '.vscode'}: another amldebug run (process " in err
    assert "for more than 0.2 s" in err
    assert not (workspace / ".vscode" / "launch.json").exists()


def test_a_launch_json_that_cannot_be_merged_leaves_tasks_json_unwritten_too(workspace):
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "launch.json").write_text('{"configurations": {}}\n')
    entries = vscode_files(workspace / "sample", service="svc", debug_port=5678, command=["amldebug", "attach"])

    with pytest.raises(ConfigFileError, match='"configurations" must be an array'):
        write_vscode(workspace, entries)

    assert not (workspace / ".vscode" / "tasks.json").exists()


def test_init_force_keeps_a_launcher_of_the_users(project):
    path = project / ".vscode" / "tasks.json"
    path.write_text(path.read_text().replace(json.dumps(INTERPRETER) + ",", '"amldebug",').replace(
        '"-m",\n                "amldebug",\n                "attach"', '"attach"'))
    assert [read_jsonc(path)["tasks"][0]["command"], *read_jsonc(path)["tasks"][0]["args"][:1]] == ["amldebug", "attach"]

    init_project(project, force=True)

    [task] = read_jsonc(path)["tasks"]
    assert [task["command"], *task["args"]] == ["amldebug", "attach", ".", "--name", "my-proj", "--debug-port", "5678",
                                                "--exact-ports"]
