"""The watcher's filter and debounce, with watchdog on a real temp folder."""

import threading
import time
from types import SimpleNamespace

import pytest

from amldebug.watch import ReloadLoop, is_relevant


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
])
def test_filter(path, relevant):
    assert is_relevant(path) is relevant


class FakeService:
    """Records what the loop asks for; the loop's decisions are what is under test."""

    def __init__(self, root, env_file=None, model_dir=None):
        self.spec = SimpleNamespace(source_dir=str(root), env_file=env_file, model_dir=model_dir)
        self.calls = []

    def reload(self):
        self.calls.append("reload")
        return SimpleNamespace(restarted=False, worker_pid=42, seconds=0.01)

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


def test_burst_of_saves_is_one_reload(tmp_path, running):
    score = tmp_path / "score.py"
    score.write_text("def init(): pass\ndef run(d): return 1\n")
    service = FakeService(tmp_path)
    loop, reports = running(service, debounce=0.1)
    for i in range(10):
        score.write_text(f"def init(): pass\ndef run(d): return {i}\n")
        time.sleep(0.02)
    _settle()
    assert service.calls == ["reload"]
    assert reports and reports[0].startswith("amldebug: reloaded score.py in")


def test_cache_and_editor_files_do_not_reload(tmp_path, running):
    (tmp_path / "__pycache__").mkdir()
    service = FakeService(tmp_path)
    running(service, debounce=0.05)
    (tmp_path / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / ".score.py.swp").write_text("x")
    (tmp_path / "score.py~").write_text("x")
    _settle()
    assert service.calls == []


def test_syntax_error_is_reported_and_not_reloaded(tmp_path, running):
    service = FakeService(tmp_path)
    loop, reports = running(service, debounce=0.05)
    (tmp_path / "score.py").write_text("def run(:\n")
    _settle()
    assert service.calls == []
    assert len(reports) == 1
    assert reports[0].startswith(f"{tmp_path / 'score.py'}:1: error: ")
    assert reports[0].endswith("(still serving the last good code)")


def test_environment_file_change_recreates(tmp_path, running):
    env = tmp_path / "requirements.txt"
    env.write_text("azureml-inference-server-http\n")
    service = FakeService(tmp_path, env_file=str(env))
    loop, reports = running(service, debounce=0.05)
    env.write_text("azureml-inference-server-http\nsix\n")
    _settle()
    assert service.calls == ["update"]
    assert "requirements.txt changed: recreating the service" in reports[0]


def test_model_outside_the_source_dir_is_watched(tmp_path, running):
    src, model = tmp_path / "src", tmp_path / "model"
    src.mkdir(), model.mkdir()
    service = FakeService(src, model_dir=str(model))
    running(service, debounce=0.05)
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
