"""The command line's conventions, as a user sees them (no Docker engine needed): -h, shell
completion, the exit-code table, help at 80 columns, --runtime's choices, --env-file and the
hint for a variable given to it, score's -d/@file and its local JSON check."""

import re

import pytest

from amldebug.cli.app import app
from amldebug.errors import EXIT_MEANINGS, ExitStatus
from tests.support.cli import amldebug as run


@pytest.fixture(autouse=True)
def no_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("COLUMNS", "80")


COMMANDS = sorted(c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands)


def test_h_is_help(capsys):
    code, short, _ = run(capsys, "-h")
    assert code == 0 and short == run(capsys, "--help")[1]
    code, out, _ = run(capsys, "attach", "-h")
    assert code == 0 and out.startswith("Usage: amldebug attach [OPTIONS] [SOURCE_DIR]")


def test_shell_completion_is_typers(capsys):
    code, out, _ = run(capsys, "--help")
    assert "--install-completion" in out and "--show-completion" in out
    code, out, _ = run(capsys, "--show-completion", "bash")
    assert code == 0 and "complete -o default -F _amldebug_completion amldebug" in out


def test_help_ends_with_the_exit_code_table(capsys):
    _, out, _ = run(capsys, "--help")
    table = out[out.index("Exit codes:"):]
    for status, meaning in EXIT_MEANINGS.items():
        assert re.search(rf"^\s+{int(status)}\s+{re.escape(meaning)}$", table, re.M), (status, table)
    assert {int(s) for s in ExitStatus} == {int(s) for s in EXIT_MEANINGS}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_clean_at_80_columns(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long
    assert not re.search(r"<(bool|str|int|float|path)>", out) and "…" not in out


def test_the_command_list_is_not_cut_off(capsys):
    _, out, _ = run(capsys, "--help")
    listed = out[out.index("Commands:"):out.index("Exit codes:")].strip().splitlines()[1:]
    assert len(listed) == len(COMMANDS) and not [line for line in listed if line.endswith("...")]


def test_brackets_in_help_are_kept(capsys):
    _, out, _ = run(capsys, "attach", "--help")
    assert "(needs amldebug[azureml])" in " ".join(out.split())


def test_runtime_is_a_choice_shown_in_help(capsys):
    _, out, _ = run(capsys, "attach", "--help")
    assert "--runtime <container|process>" in out
    code, _, err = run(capsys, "attach", "--runtime", "docker")
    assert code == ExitStatus.USAGE and "'docker' is not one of 'container', 'process'" in err


def test_env_file_is_the_documented_name_and_env_still_works(capsys, workspace):
    (workspace / "sample" / "requirements.txt").write_text("azureml-inference-server-http\n")
    _, helped, _ = run(capsys, "attach", "--help")
    assert "--env-file FILE" in helped and "--env " not in helped
    for flag in ("--env-file", "--env"):
        code, out, err = run(capsys, "check", "sample", flag, "sample/requirements.txt")
        assert "PASS  environment: " in out and "requirements.txt" in out, (flag, out, err)
    code, out, _ = run(capsys, "check", "sample", "--env=sample/requirements.txt")
    assert "PASS  environment: " in out


@pytest.mark.parametrize("args", [["--env", "MODE=fast"], ["--env=MODE=fast"], ["--env-file", "MODE=fast"]])
def test_a_variable_given_to_env_is_refused_with_the_flag_it_meant(capsys, workspace, args):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", *args)
    assert code == ExitStatus.USAGE
    assert "'MODE=fast' looks like a variable" in err and "set a variable with -e MODE=fast (--env-var)" in err
    assert not (workspace / ".vscode").exists()


def test_score_refuses_invalid_json_locally_with_its_position(capsys):
    code, _, err = run(capsys, "score", "--name", "nowhere", "-d", '{"data": [1, 2}')
    assert code == ExitStatus.USAGE
    assert "amldebug: error: --data is not valid JSON: Expecting ',' delimiter at line 1 column 15 (character 15)" \
        in err
    assert "no Docker engine" not in err  # refused before any service is looked for


def test_score_data_at_file(capsys, tmp_path):
    body = tmp_path / "req.json"
    body.write_text('{"data":\n  [1, 2,]}\n')
    code, _, err = run(capsys, "score", "--name", "nowhere", "--data", f"@{body}")
    assert code == ExitStatus.USAGE
    assert f"--data @{body} is not valid JSON: Expecting value at line 2 column 9" in err
    code, _, err = run(capsys, "score", "-d", f"@{tmp_path / 'none.json'}")
    assert code == ExitStatus.USAGE and f"request file '{tmp_path / 'none.json'}' does not exist" in err
    body.write_text('{"data": [1, 2]}')
    code, _, err = run(capsys, "score", "--name", "nowhere", "-d", f"@{body}")
    assert code == ExitStatus.DOCKER and "no Docker engine answers" in err  # valid: it goes on to the service


def test_json_needs_detach_on_attach(capsys, workspace):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--json")
    assert code == ExitStatus.USAGE and "--json describes a started service: pass it with --detach" in err


def test_replicas_json_is_one_document(capsys):
    import json

    code, out, _ = run(capsys, "replicas", "--target-rps", "20", "--request-time", "10", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["target_rps"] == 20 and isinstance(plan, dict)


def test_check_json_is_one_array(capsys, workspace):
    import json

    code, out, _ = run(capsys, "check", "sample", "--json")
    results = json.loads(out)
    assert [r["name"] for r in results][0] == "entry script" and results[0]["ok"] is True


def test_the_readme_has_the_same_exit_code_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, re.M))
    assert {int(k): v.replace("`", "") for k, v in rows.items()} == {int(k): v for k, v in EXIT_MEANINGS.items()}


def test_init_and_vscode_json(capsys, tmp_path, monkeypatch):
    import json

    code, out, _ = run(capsys, "init", tmp_path / "proj", "--image", "score:1", "--json")
    written = json.loads(out)
    assert code == 0 and str(tmp_path / "proj" / "score.py") in written["files"]
    monkeypatch.chdir(tmp_path / "proj")
    code, out, err = run(capsys, "vscode", "--image", "score:1", "--json")
    assert code == 0, err
    assert json.loads(out)["tasks_json"] == str(tmp_path / "proj" / ".vscode" / "tasks.json")
