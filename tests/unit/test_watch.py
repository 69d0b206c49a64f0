"""The watcher's filter, coalescing and messages, with watchdog on a real temp folder."""

import os
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from amldebug.watch import ReloadLoop, describe, is_relevant


@pytest.mark.parametrize("path, relevant", [
    ("/p/score.py", True),
    ("/p/mypkg/features.py", True),
    ("/p/config.json", True),
    ("/p/__pycache__/score.cpython-311.pyc", False),
    ("/p/.git/index", False),
    ("/p/.score.py.swp", False),
    ("/p/score.py~", False),
    ("/p/.#score.py", False),
    ("/p/#score.py#", False),
    ("/p/4913", False),
    ("/p/score.py.tmp", False),
    ("/p/.vscode/launch.json", False),
    ("/p/score.py.vsctmp", False),
    ("/p/sedexwLqP", False),
    ("/p/score.py___jb_tmp___", False),
    ("/p/.goutputstream-ABC123", False),
    ("/p/sediment.py", True),
])
def test_filter(path, relevant):
    assert is_relevant(path) is relevant


class FakeService:
    """Records what the loop asks for (and the entry script's text at that moment); the
    loop's decisions are what is under test."""

    def __init__(self, root, env_file=None, model_dir=None, result=None):
        self.spec = SimpleNamespace(source_dir=str(root), env_file=env_file, model_dir=model_dir)
        self.calls = []
        self.texts = []
        self.result = result or SimpleNamespace(restarted=False, worker_pid=42, seconds=0.01, kind="reloaded",
                                                init_seconds=3.0, attached=False, reason=None)

    def reload(self, mode=None, changed=(), checked=False):
        self.calls.append(("reload", str(mode), sorted(os.path.basename(p) for p in changed), checked))
        score = Path(self.spec.source_dir) / "score.py"
        self.texts.append(score.read_text() if score.exists() else None)
        return self.result

    def update(self):
        self.calls.append("update")


@pytest.fixture
def running():
    loops = []

    def start(service, **kwargs):
        reports = []
        loop = ReloadLoop(service, report=reports.append, **kwargs)
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        time.sleep(0.3)
        loops.append((loop, thread))
        return loop, reports

    yield start
    for loop, thread in loops:
        loop.stop.set()
        thread.join(5)


def _settle(seconds=1.0):
    time.sleep(seconds)


V1 = "def init(): pass\ndef run(d): return 1\n"
V2 = "def init(): pass\ndef run(d): return 2\n"


def test_a_save_is_one_reload_with_begin_and_end_lines(tmp_path, running):
    score = tmp_path / "score.py"
    score.write_text(V1)
    service = FakeService(tmp_path)
    loop, reports = running(service)
    score.write_text(V2)
    _settle()
    assert service.calls == [("reload", "auto", ["score.py"], True)]  # compiled once, here
    assert service.texts == [V2]
    assert reports == ["amldebug: reloading score.py", "amldebug: reloaded: fresh worker, init() re-run in 3.0 s"]


def test_a_burst_of_saves_ends_with_the_last_text(tmp_path, running):
    score = tmp_path / "score.py"
    score.write_text(V1)
    service = FakeService(tmp_path)
    loop, reports = running(service, window=0.05)
    for i in range(10):
        score.write_text(f"def init(): pass\ndef run(d): return {i}\n")
        time.sleep(0.01)
    _settle()
    assert service.texts[-1].endswith("return 9\n") and len(service.calls) < 10


def _vscode_in_place(path, text):
    # VS Code's default save on Linux: truncate, write in chunks, close.
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
        f.flush()
        time.sleep(0.03)  # longer than the window: only the close ends the save
        f.write(text[len(text) // 2:])


def _vscode_atomic(path, text):
    # files.saveAtomically: a sibling temp file renamed over the original.
    tmp = path.with_name(path.name + ".vsctmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _vim(path, text):
    # vim's backupcopy=no (the default where it can rename): probe file 4913, rename the
    # original to the backup, write a new file, delete the backup.
    probe = path.with_name("4913")
    probe.write_text("")
    probe.unlink()
    backup = path.with_name(path.name + "~")
    os.replace(path, backup)
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    backup.unlink()


def _sed(path, text):
    # sed -i: a temp file with a random name in the same folder, renamed over the original.
    tmp = path.with_name("sedexwLqP")
    tmp.write_text(text)
    os.replace(tmp, path)


def _slow_temp_rename(path, text):
    # A temp file of a name no filter knows, renamed over the original only after the
    # window has passed: the temp file must still not be named, nor served.
    tmp = path.with_name("tmpXq81")
    tmp.write_text(text)
    time.sleep(0.05)
    os.replace(tmp, path)


@pytest.mark.parametrize("save", [_vscode_in_place, _vscode_atomic, _vim, _sed],
                         ids=["vscode", "vscode-atomic", "vim", "sed"])
def test_an_editor_save_is_one_reload_with_the_final_text_naming_only_real_files(tmp_path, running, save):
    score = tmp_path / "score.py"
    score.write_text(V1)
    service = FakeService(tmp_path)
    loop, reports = running(service)
    save(score, V2)
    _settle()
    assert service.texts == [V2], reports
    assert service.calls == [("reload", "auto", ["score.py"], True)]
    assert reports[0] == "amldebug: reloading score.py"


def test_a_temp_file_alone_does_not_reload(tmp_path, running):
    service = FakeService(tmp_path)
    running(service)
    tmp = tmp_path / "sedAbc123"
    tmp.write_text("x")
    tmp.unlink()
    _settle()
    assert service.calls == []


def test_cache_and_editor_files_do_not_reload(tmp_path, running):
    (tmp_path / "__pycache__").mkdir()
    service = FakeService(tmp_path)
    running(service)
    (tmp_path / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / ".score.py.swp").write_text("x")
    (tmp_path / "score.py~").write_text("x")
    (tmp_path / "score.py.vsctmp").write_text("x")
    _settle()
    assert service.calls == []


def test_syntax_error_is_reported_and_not_reloaded(tmp_path, running):
    service = FakeService(tmp_path)
    loop, reports = running(service)
    (tmp_path / "score.py").write_text("def run(:\n")
    _settle()
    assert service.calls == []
    assert reports[0] == "amldebug: reloading score.py"
    assert reports[1].startswith(f"{tmp_path / 'score.py'}:1: error: ")
    assert reports[2:] == ["amldebug: still serving the last good code"]


def test_the_mode_reaches_the_service_and_a_declined_patch_says_why(tmp_path, running):
    result = SimpleNamespace(restarted=False, seconds=0.0, kind="declined", reason="init() changed", attached=None)
    service = FakeService(tmp_path, result=result)
    loop, reports = running(service, mode="patch")
    (tmp_path / "score.py").write_text(V2)
    _settle()
    assert service.calls == [("reload", "patch", ["score.py"], True)]
    assert reports[1] == ("amldebug: still serving the last good code: cannot patch (init() changed); save with "
                          "--reload auto, or run 'amldebug reload'")


@pytest.mark.parametrize("result, line", [
    (SimpleNamespace(kind="patched", functions=("run", "helper"), patch_ms=3.2, attached=True, restarted=False),
     "amldebug: patched run(), helper() in 3 ms (init() not re-run; model kept); the debugger stays attached"),
    (SimpleNamespace(kind="patched", functions=("run",), patch_ms=2.6, attached=False, restarted=False),
     "amldebug: patched run() in 3 ms (init() not re-run; model kept)"),
    (SimpleNamespace(kind="reloaded", init_seconds=3.04, attached=True, reason=None, restarted=False),
     "amldebug: reloaded: fresh worker, init() re-run in 3.0 s; the debugger stays attached"),
    (SimpleNamespace(kind="reloaded", init_seconds=0.001, attached=None, reason="init() changed", restarted=False),
     "amldebug: reloaded: fresh worker, init() re-run in 0.0 s (init() changed)"),
])
def test_the_end_line_says_which_reload_happened_and_names_the_debugger_only_when_attached(result, line):
    assert describe(result) == line


def test_environment_file_change_recreates(tmp_path, running):
    env = tmp_path / "requirements.txt"
    env.write_text("azureml-inference-server-http\n")
    service = FakeService(tmp_path, env_file=str(env))
    loop, reports = running(service)
    env.write_text("azureml-inference-server-http\nsix\n")
    _settle()
    assert service.calls == ["update"]
    assert "requirements.txt: changed: recreating the service" in reports[0]
    # VS Code's task sees a begin and an end line, as for a reload (problem markers clear at the end)
    from amldebug.vscode.entries import BEGINS_PATTERN, ENDS_PATTERN

    assert re.match(BEGINS_PATTERN, reports[0])
    assert re.match(ENDS_PATTERN, reports[-1]) and "service recreated" in reports[-1]


def test_model_outside_the_source_dir_is_watched(tmp_path, running):
    src, model = tmp_path / "src", tmp_path / "model"
    src.mkdir(), model.mkdir()
    service = FakeService(src, model_dir=str(model))
    running(service)
    (model / "weights.json").write_text("{}")
    _settle()
    assert service.calls == ["update"]


def test_stop_event_ends_the_loop(tmp_path):
    loop = ReloadLoop(FakeService(tmp_path), report=lambda m: None)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    loop.stop.set()
    thread.join(3)
    assert not thread.is_alive()


def test_an_unknown_temp_file_renamed_late_is_not_named(tmp_path, running):
    score = tmp_path / "score.py"
    score.write_text(V1)
    service = FakeService(tmp_path)
    loop, reports = running(service)
    _slow_temp_rename(score, V2)
    _settle()
    assert service.texts[-1] == V2
    assert all("tmpXq81" not in line for line in reports if line.startswith("amldebug: reload")), reports
