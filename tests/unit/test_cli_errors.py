"""Bad input that needs no Docker engine: message names the value and the fix, exit code."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import amldebug as run


@pytest.fixture(autouse=True)
def no_engine(monkeypatch, tmp_path):
    # A socket that does not exist: the real docker SDK fails to connect, as with no engine.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))  # no process services either


def test_missing_source_dir(capsys, workspace):
    code, _, err = run(capsys, "attach", "nowhere", "--image", "x")
    assert code == 2
    assert "source directory 'nowhere' does not exist" in err


def test_missing_entry_script(capsys, workspace):
    code, _, err = run(capsys, "attach", "sample", "--entry-script", "main.py", "--image", "x")
    assert code == 2
    assert "entry script '" in err and "main.py' does not exist; pass --entry-script" in err


def test_syntax_error_is_named_with_file_and_line(capsys, workspace):
    score = workspace / "sample" / "score.py"
    lines = score.read_text().splitlines()
    lines[9] = "def init(:"
    score.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--detach")
    assert code == 2
    assert f"{score}:10: error:" in err
    assert "fix the entry script" in err


def test_entry_script_without_run(capsys, workspace):
    score = workspace / "sample" / "score.py"
    score.write_text(score.read_text().replace("def run(raw_data):", "def predict(raw_data):"))
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--detach")
    assert code == 2
    assert "does not define run()" in err


def test_missing_model(capsys, workspace):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--model-dir", "models/none")
    assert code == 2
    assert "model path 'models/none' does not exist; pass --model-dir" in err


def test_no_docker_engine(capsys, workspace, tmp_path):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--detach")
    assert code == 3
    assert f"no Docker engine answers at unix://{tmp_path}/no-docker.sock" in err
    assert "--runtime process" in err
    assert not (workspace / ".vscode").exists()


def test_status_without_engine(capsys):
    code, _, err = run(capsys, "status")
    assert code == 3 and "start Docker" in err


def test_bad_env_var(capsys, workspace, monkeypatch):
    monkeypatch.delenv("NOVALUE", raising=False)
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "-e", "NOVALUE")
    assert code == 2 and "-e/--env-var 'NOVALUE' takes its value from the environment, and NOVALUE is not set" in err


def test_env_var_without_a_name_is_refused_before_the_engine_is_asked(capsys, workspace):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "-e", "=x")
    assert code == 2 and "-e/--env-var '=x': '' is not a variable name" in err


def test_debug_bind_other_than_localhost_warns(capsys, workspace):
    code, _, err = run(capsys, "attach", "sample", "--image", "x", "--debug-bind", "0.0.0.0", "--detach")
    assert "warning: the debug port will listen on 0.0.0.0: anyone who can reach it can run any code" in err
    assert code == 3  # and then stops at the missing engine


def test_score_needs_data_or_file(capsys):
    code, _, err = run(capsys, "score", "--name", "x")
    assert code == 2 and "pass exactly one of -d/--data JSON (or @FILE) or --file PATH" in err


def test_unknown_option_is_a_usage_error(capsys):
    code, _, err = run(capsys, "attach", "--frobnicate")
    assert code == 2 and "No such option" in err


def test_replicas_rejects_utilization_above_one(capsys):
    code, _, err = run(capsys, "replicas", "--target-rps", "10", "--request-time", "1",
                       "--target-utilization", "70")
    assert code == 2 and "target_utilization" in err


def test_diagnose_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "diagnose", str(tmp_path / "nope.log"))
    assert code == 2 and "nope.log" in err


def test_diagnose_file(capsys, tmp_path):
    log = Path(__file__).parent / "logs"
    sample = log / "server_init_exception.log"
    code, out, _ = run(capsys, "diagnose", str(sample))
    assert code == 0 and "cause:" in out and "fix:" in out


def test_version(capsys):
    from amldebug import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == __version__


def test_check_env_file_is_read(capsys, workspace):
    (workspace / "sample" / "requirements.txt").write_text("azureml-inference-server-http\n")
    code, out, err = run(capsys, "check", "sample", "--env", "sample/requirements.txt")
    assert "internal error" not in err
    assert "requirements.txt" in out and code in (0, 1)


def test_vscode_says_how_f5_gets_the_values_it_does_not_write(capsys, workspace, monkeypatch):
    monkeypatch.setenv("TOKEN", "s3cret")
    code, _, err = run(capsys, "vscode", "sample", "--image", "x", "-e", "TOKEN", "-e", "MODE=fast")
    assert code == 0, err
    assert "the F5 task passes -e MODE, -e TOKEN without values" in err
    tasks = (workspace / ".vscode" / "tasks.json").read_text()
    assert "s3cret" not in tasks and "fast" not in tasks


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_while_a_command_waits_exits_128_plus_n_with_a_message(tmp_path, signame):
    """An engine that accepts and never answers: the command is waiting inside the docker SDK
    (typer itself turns an interrupt into a bare 130; the exit status says which signal)."""
    signum = getattr(signal, signame)
    engine = socket.socket(socket.AF_UNIX)
    engine.bind(str(tmp_path / "silent.sock"))
    engine.listen(4)
    engine.settimeout(30)
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/silent.sock",
           "AMLDEBUG_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "amldebug", "status"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        conn, _ = engine.accept()  # the handlers are set before the command runs: it is waiting now
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.close()
    assert proc.returncode == 128 + signum, (proc.returncode, err)
    assert err.rstrip().endswith("interrupted") and "Traceback" not in err, err


def test_the_demo_lock_is_held_by_one_process_and_names_it(tmp_path, monkeypatch):
    """A second process learns who holds it; the lock goes with the process that held it."""
    from amldebug.engine.statefile import held

    code = ("import sys, time; from amldebug.engine.statefile import held\n"
            "with held('svc', 'demo') as other:\n    print(other, flush=True); time.sleep(30)\n")
    env = {**os.environ, "AMLDEBUG_CACHE": str(tmp_path / "cache")}
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "None"
        with held("svc", "demo") as other:
            assert other == holder.pid
    finally:
        holder.kill()
        holder.wait(5)
    with held("svc", "demo") as other:
        assert other is None
