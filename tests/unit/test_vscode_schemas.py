"""What amldebug writes into launch.json and tasks.json, checked against VS Code's own schemas
(trimmed copies in tests/fixtures/vscode-schemas, their sources named in each file), and the
task's patterns read the way VS Code's background problem matcher reads a task's output."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from amldebug import cli
from amldebug.core.options import Runtime
from amldebug.core.paths import resource_dir
from amldebug.scaffold import init_project
from amldebug.vscode import parse_jsonc
from amldebug.vscode.entries import (
    BEGINS_PATTERN,
    ENDS_PATTERN,
    INTERPRETER,
    PROBLEM_REGEXP,
    attach_command,
    build_task,
    vscode_files,
)
from amldebug.vscode.files import write_vscode

SCHEMAS = Path(__file__).parents[1] / "fixtures" / "vscode-schemas"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


ATTACH = _validator("debugpy-attach.schema.json")
TASKS = _validator("tasks.schema.json")


def problems(validator: Draft202012Validator, document: object) -> list[str]:
    """Every schema error, the innermost reason of each (a oneOf names its branches' reasons)."""
    found = []
    for error in validator.iter_errors(document):
        leaves = [e for e in error.context if not e.context] if error.context else [error]
        found += [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in leaves]
    return found


def task_problems(tasks: list[dict]) -> list[str]:
    return problems(TASKS, {"version": "2.0.0", "tasks": tasks})


def read_jsonc(path: Path):
    return parse_jsonc(path.read_text(encoding="utf-8"), str(path))


# --- the schemas catch what VS Code flags ----------------------------------------------


# The background task amldebug wrote before: VS Code flagged "activatesOnStart" and ignored it.
OLD_TASK = {
    "label": "amldebug: score", "type": "shell", "command": "/home/me/.venv/bin/python3",
    "args": ["-m", "amldebug", "attach", "."], "isBackground": True, "options": {"cwd": "${workspaceFolder}"},
    "problemMatcher": {
        "owner": "amldebug", "fileLocation": ["autoDetect", "${workspaceFolder}"],
        "pattern": {"regexp": "^(.*):(\\d+):\\s+(error|warning):\\s+(.*)$", "file": 1, "line": 2, "severity": 3,
                    "message": 4},
        "background": {"activatesOnStart": True, "beginsPattern": "^amldebug: starting service",
                       "endsPattern": "^amldebug: service '.*' is ready for a debugger"},
    },
}


def test_the_tasks_schema_refuses_the_misspelt_background_key():
    found = task_problems([OLD_TASK])

    assert any("'activatesOnStart' was unexpected" in p for p in found), found


@pytest.mark.parametrize(("change", "reason"), [
    ({"subprocess": True}, "'subprocess' was unexpected"),
    ({"connect": {"host": "localhost"}}, "'port' is a required property"),
    ({"pathMappings": [{"localRoot": "${workspaceFolder}"}]}, "'remoteRoot' is a required property"),
    ({"request": "launch"}, "is not one of ['attach']"),
])
def test_the_attach_schema_refuses_what_vscode_flags(change, reason):
    config = {"name": "amldebug: s", "type": "debugpy", "request": "attach", "connect": {"port": 5678}, **change}

    assert any(reason in p for p in problems(ATTACH, config)), problems(ATTACH, config)


# --- every entry amldebug writes is valid ----------------------------------------------------


def _variants(tmp_path: Path) -> dict[str, dict]:
    workspace, below = tmp_path / "ws", tmp_path / "ws" / "src"
    below.mkdir(parents=True)
    command = attach_command(below, service="svc", debug_port=6001, workspace=workspace)
    return {
        "project is the workspace": vscode_files(workspace, service="a", debug_port=5678,
                                                 command=attach_command(workspace, service="a")),
        "project below the workspace, down task, all code": vscode_files(
            below, service="svc", debug_port=6001, command=command, workspace=workspace, just_my_code=False,
            post_debug_task=True),
        "process runtime": vscode_files(workspace, service="p", debug_port=1, command=command,
                                        runtime=Runtime.PROCESS),
        "a command of the user's": vscode_files(workspace, service="s", debug_port=1, command=["./start.sh"],
                                                post_debug_task=True, down_command=["./stop.sh", "s"]),
    }


def test_every_entry_amldebug_builds_is_valid_for_vscode(tmp_path):
    for what, entries in _variants(tmp_path).items():
        for config in entries["launch"]:
            assert problems(ATTACH, config) == [], what
        assert task_problems(entries["tasks"]) == [], what


def test_the_files_init_writes_are_valid_for_vscode(tmp_path):
    init_project(tmp_path / "proj", post_debug_task=True)

    [config] = read_jsonc(tmp_path / "proj" / ".vscode" / "launch.json")["configurations"]
    assert problems(ATTACH, config) == []
    assert problems(TASKS, read_jsonc(tmp_path / "proj" / ".vscode" / "tasks.json")) == []


def test_the_files_attach_writes_into_a_users_tasks_json_are_valid(workspace, capsys):
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "tasks.json").write_text(
        '// mine\n{"version": "2.0.0", "tasks": [{"label": "build", "type": "shell", "command": "make", '
        '"group": "build", "problemMatcher": "$gcc"}]}\n')

    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc", "--post-debug-task"]) == 0

    tasks = read_jsonc(workspace / ".vscode" / "tasks.json")
    assert [t["label"] for t in tasks["tasks"]] == ["build", "amldebug: svc", "amldebug: down svc"]
    assert problems(TASKS, tasks) == []
    [config] = read_jsonc(workspace / ".vscode" / "launch.json")["configurations"]
    assert problems(ATTACH, config) == []


def test_the_vscode_config_examples_are_valid_for_vscode():
    folder = resource_dir("vscode-config")

    assert problems(TASKS, read_jsonc(folder / "tasks.json")) == []
    for config in read_jsonc(folder / "launch.json")["configurations"]:
        if config["type"] == "python":
            # The older Python extension's debugger: checked with the debugpy attributes (only the
            # type differs in the example); that extension's own package.json is not vendored.
            config = {**config, "type": "debugpy"}
        assert problems(ATTACH, config) == [], config["name"]


# --- an old file is repaired, the user's keys and paths stay ------------------------------------


def test_writing_again_replaces_the_misspelt_key_and_keeps_the_users_keys(workspace, capsys):
    (workspace / ".vscode").mkdir()
    old = copy.deepcopy(OLD_TASK)
    old["label"] = "amldebug: svc"
    old["options"]["env"] = {"AZURE_TENANT": "t"}
    old["presentation"] = {"reveal": "silent"}
    text = json.dumps({"version": "2.0.0", "tasks": [old]}, indent=4)
    text = text.replace('"activatesOnStart": true,', '"activatesOnStart": true, // F5 at once')
    (workspace / ".vscode" / "tasks.json").write_text("// my tasks\n" + text + "\n")
    assert task_problems([old]) != []

    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc"]) == 0

    text = (workspace / ".vscode" / "tasks.json").read_text()
    [task] = parse_jsonc(text)["tasks"]
    assert task_problems([task]) == []
    assert "activatesOnStart" not in text
    assert "// F5 at once" in text  # the user's comment stays, as every comment does
    assert task["problemMatcher"]["background"] == {"activeOnStart": True, "beginsPattern": BEGINS_PATTERN,
                                                    "endsPattern": ENDS_PATTERN}
    assert task["options"] == {"cwd": "${workspaceFolder}", "env": {"AZURE_TENANT": "t", "AMLDEBUG_PROGRESS": "plain"}}
    assert task["presentation"] == {"reveal": "silent"}
    assert text.startswith("// my tasks\n")
    assert [task["command"], *task["args"][:3]] == [INTERPRETER, "-m", "amldebug", "attach"]


def test_a_rewrite_sets_activeonstart_back_without_a_second_key(tmp_path):
    # amldebug owns the background block: a rewrite sets activeOnStart back, it never adds a second key.
    task = build_task(label="amldebug: s", command="c", args=[])
    broken = copy.deepcopy(task)
    broken["problemMatcher"]["background"]["activeOnStart"] = False
    entries = {"tasks": [broken]}
    write_vscode(tmp_path, entries)

    write_vscode(tmp_path, {"tasks": [task]})

    text = (tmp_path / ".vscode" / "tasks.json").read_text()
    assert text.count("activeOnStart") == 1
    assert read_jsonc(tmp_path / ".vscode" / "tasks.json")["tasks"][0] == task


def test_written_paths_keep_workspacefolder_and_no_path_of_this_machine(workspace, capsys):
    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc", "--model-dir", "sample/model",
                    "--post-debug-task"]) == 0

    launch = (workspace / ".vscode" / "launch.json").read_text()
    tasks = (workspace / ".vscode" / "tasks.json").read_text()
    [config] = parse_jsonc(launch)["configurations"]
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}/sample", "remoteRoot": "/var/azureml-app/sample"}]
    for task in parse_jsonc(tasks)["tasks"]:
        assert task["command"] == INTERPRETER
        assert task["options"]["cwd"] == "${workspaceFolder}"
    # Portable: a clone of the folder on another machine runs the same tasks.
    for local in (str(workspace), str(workspace.resolve()), sys.executable, str(Path(sys.executable).resolve())):
        assert local not in tasks and local not in launch, local


# --- the patterns, read as VS Code reads a task's output -------------------------------------


def classify(line: str) -> str | None:
    """What VS Code's background collector does with a line, in its order (problemCollectors.ts
    processLineInternal: tryBegin, then tryFinish, then the problem pattern)."""
    if re.search(BEGINS_PATTERN, line):
        return "begin"
    if re.search(ENDS_PATTERN, line):
        return "end"
    return "problem" if re.search(PROBLEM_REGEXP, line) else None


SCORE = "/home/me/proj/score.py"
LINES = {
    # attach and demo (cli, contract C1)
    "amldebug: starting service 'proj' from image 'scoring:1'": "begin",
    "amldebug: starting": "begin",
    "amldebug: service 'proj' is ready for a debugger on localhost:5678 (before init(); 3.2 s)": "end",
    # the reload loop (watch.py, contract C1)
    "amldebug: reloading score.py": "begin",
    "amldebug: reloaded score.py in 461 ms (worker 42); the debugger stays attached": "end",
    "amldebug: patched run() in score.py": "end",
    "amldebug: reload failed: the service 'proj' stopped": "end",
    "amldebug: still serving the last good code": "end",
    f"{SCORE}:4: error: invalid syntax": "problem",
    f"{SCORE}:4: error: invalid syntax (still serving the last good code)": "problem",
    # a start-up error, after the CLI's prefix
    f"amldebug: error: {SCORE}:4: error: invalid syntax; fix the entry script and run again": "problem",
    # the service's own log
    '  File "/var/azureml-app/proj/score.py", line 4': None,
    "2026-12-02 01:00:00,000 I [12] gunicorn.error - Booting worker with pid: 12": None,
    "amldebug: watching /home/me/proj - save to reload, Ctrl-C to stop": None,
}


@pytest.mark.parametrize(("line", "kind"), LINES.items())
def test_each_line_amldebug_prints_is_read_as_vscode_should(line, kind):
    assert classify(line) == kind


def test_the_patterns_have_no_capture_group_vscode_would_take_for_a_file():
    # VS Code takes group 1 of a begins pattern as the one file whose problems a run replaces.
    assert re.compile(BEGINS_PATTERN).groups == 0
    assert re.compile(ENDS_PATTERN).groups == 0


@pytest.mark.parametrize(("line", "path"), [
    (f"amldebug: error: {SCORE}:4: error: invalid syntax; fix the entry script and run again", SCORE),
    (f"{SCORE}:12: warning: something", SCORE),
    (r"C:\Users\me\proj\score.py:7: error: invalid syntax", r"C:\Users\me\proj\score.py"),
    ("amldebug: error: /srv/a: b/score.py:3: error: expected ':'", "/srv/a: b/score.py"),
])
def test_the_problem_pattern_captures_the_path_only(line, path):
    match = re.match(PROBLEM_REGEXP, line)

    assert match is not None
    assert match.group(1) == path
    assert not match.group(1).startswith("amldebug")


def test_a_bad_save_then_a_good_one_report_then_clear_the_problem():
    bad = ["amldebug: reloading score.py", f"{SCORE}:4: error: invalid syntax",
           "amldebug: still serving the last good code"]
    good = ["amldebug: reloading score.py", "amldebug: reloaded score.py in 400 ms (worker 43)"]

    assert [classify(line) for line in bad] == ["begin", "problem", "end"]
    assert [classify(line) for line in good] == ["begin", "end"]


# CI machines have Node.js (a machine of this kind ships it): there the test must run, not skip.
@pytest.mark.skipif(shutil.which("node") is None and not os.environ.get("CI"),
                    reason="needs node to run the patterns as VS Code (JavaScript) does")
def test_javascript_reads_the_patterns_as_python_does():
    script = """
        const [begins, ends, problem, lines] = JSON.parse(require('fs').readFileSync(0, 'utf8'));
        const out = lines.map(l => new RegExp(begins).exec(l) ? 'begin' : new RegExp(ends).exec(l) ? 'end'
            : new RegExp(problem).exec(l) ? 'problem:' + new RegExp(problem).exec(l)[1] : null);
        process.stdout.write(JSON.stringify(out));
    """
    lines = list(LINES)
    result = subprocess.run(["node", "-e", script], input=json.dumps([BEGINS_PATTERN, ENDS_PATTERN, PROBLEM_REGEXP,
                                                                      lines]),
                            capture_output=True, text=True, check=True, timeout=30)

    expected = [kind if kind != "problem" else "problem:" + re.match(PROBLEM_REGEXP, line).group(1)
                for line, kind in LINES.items()]
    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize("launcher", [["amldebug"], ["uv", "run", "amldebug"], ["python", "-m", "amldebug"]])
def test_a_launcher_of_the_users_stays_when_amldebug_writes_the_task_again(workspace, capsys, launcher):
    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc", "--post-debug-task"]) == 0
    path = workspace / ".vscode" / "tasks.json"
    tasks = read_jsonc(path)["tasks"]
    for task in tasks:  # what a pipx or uv user does by hand
        verb = task["args"].index("attach" if "attach" in task["args"] else "down")
        task["command"], task["args"] = launcher[0], [*launcher[1:], *task["args"][verb:]]
    path.write_text(json.dumps({"version": "2.0.0", "tasks": tasks}, indent=4))

    assert cli.run(["vscode", "sample", "--image", "scoring:2", "--name", "svc", "--debug-port", "6001"]) == 0

    attach, down = read_jsonc(path)["tasks"]
    assert [attach["command"], *attach["args"]][: len(launcher) + 1] == [*launcher, "attach"]
    assert attach["args"][attach["args"].index("--image") + 1] == "scoring:2"
    assert attach["args"][attach["args"].index("--debug-port") + 1] == "6001"
    assert [down["command"], *down["args"]] == [*launcher, "down", "--name", "svc"]
    assert task_problems([attach, down]) == []


@pytest.mark.parametrize("old", ["/home/me/.venv/bin/python3", r"C:\Users\me\.venv\Scripts\python.exe"])
def test_an_older_amldebugs_absolute_python_is_replaced_by_the_selected_interpreter(workspace, capsys, old):
    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc"]) == 0
    path = workspace / ".vscode" / "tasks.json"
    path.write_text(path.read_text().replace(json.dumps(INTERPRETER), json.dumps(old)))

    assert cli.run(["vscode", "sample", "--image", "scoring:1", "--name", "svc"]) == 0

    [task] = read_jsonc(path)["tasks"]
    assert [task["command"], *task["args"][:3]] == [INTERPRETER, "-m", "amldebug", "attach"]


@pytest.mark.parametrize("result", [
    dict(kind="patched", functions=["run"], patch_ms=3.0, attached=True, restarted=False),
    dict(kind="declined", reason="init() changed", restarted=False),
    dict(kind="restarted", seconds=2.5, restarted=True),
    dict(kind="reloaded", init_seconds=0.4, reason=None, attached=False, restarted=False),
    dict(restarted=False),  # a LocalWebservice's reload result
])
def test_every_line_that_ends_a_reload_ends_the_tasks_run(result):
    from types import SimpleNamespace

    from amldebug.watch import describe

    line = describe(SimpleNamespace(**result))

    assert classify(line) == "end", line
