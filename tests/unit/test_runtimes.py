"""The runtime plug-ins without an engine: the registration map, what each class answers
without starting anything, the transports over a real pipe and inbox, and the rule that no
module outside engine/ asks which runtime a service uses."""

from __future__ import annotations

import ast
import os
import threading
import time
from pathlib import Path

import pytest

from amldebug.core.options import DEFAULT_RUNTIME, AttachOptions, Runtime
from amldebug.core.spec import ServiceSpec
from amldebug.engine import channel
from amldebug.engine.backend import RUNTIMES, Runner, runtime_of
from amldebug.engine.transport import Pipes, PipesOrInbox

PACKAGE = Path(__file__).resolve().parents[2] / "amldebug"


def test_every_runtime_name_has_one_registered_class():
    assert set(RUNTIMES) == set(Runtime) and DEFAULT_RUNTIME in RUNTIMES
    assert runtime_of("process") is RUNTIMES[Runtime.PROCESS] and runtime_of(Runtime.CONTAINER) is RUNTIMES[Runtime.CONTAINER]


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_a_registered_class_has_every_member_of_the_interface(name):
    cls = RUNTIMES[name]
    wanted = {n for n in vars(Runner) if not n.startswith("_")} | set(Runner.__annotations__)
    assert not sorted(n for n in wanted if not hasattr(cls, n)), f"{cls.__name__} lacks part of Runner"
    assert cls.runtime == name


def _spec(tmp_path, runtime: Runtime, **more) -> ServiceSpec:
    return ServiceSpec(name="s", source_dir=str(tmp_path), entry_script="score.py", runtime=runtime,
                       workspace=str(tmp_path), **more)


def test_the_container_runtime_maps_its_mounts_and_restarts_from_its_image(tmp_path):
    cls = RUNTIMES[Runtime.CONTAINER]
    spec = _spec(tmp_path, Runtime.CONTAINER, image="score:1")
    assert cls.uses_image and cls.describe(spec) == "image 'score:1'"
    assert cls.served_source_dir(spec).startswith("/var/azureml-app/")
    assert dict(cls.local_paths(spec))[cls.served_source_dir(spec)] == str(tmp_path)
    assert cls.task_options(spec, AttachOptions()).image == "score:1"
    assert cls.complete(spec, print) is spec  # an image named: nothing to discover


def test_the_process_runtime_serves_local_paths_and_restarts_from_its_python(tmp_path):
    cls = RUNTIMES[Runtime.PROCESS]
    spec = _spec(tmp_path, Runtime.PROCESS, python="/opt/py/bin/python")
    assert not cls.uses_image and cls.describe(spec) == "Python /opt/py/bin/python"
    assert cls.served_source_dir(spec) == str(tmp_path.resolve()) and list(cls.local_paths(spec)) == []
    assert cls.task_options(spec, AttachOptions()).python == "/opt/py/bin/python"
    assert cls.complete(spec, print) is spec


def _reader(pipe: Path, lines: list) -> threading.Thread:
    os.mkfifo(pipe)

    def read() -> None:
        with open(pipe) as f:
            lines.append(f.readline().strip())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_pipes_reach_a_server_that_reads_the_control_pipe(tmp_path):
    lines: list = []
    thread = _reader(tmp_path / channel.CONTROL, lines)
    deadline = time.monotonic() + 5
    while Pipes().tell(tmp_path, channel.CONTROL, "status 1") is None:  # the reader opens it a moment later
        assert time.monotonic() < deadline, "the reader never opened the pipe"
        time.sleep(0.01)
    thread.join(5)
    assert lines == ["status 1"]


def test_pipes_alone_cannot_reach_a_server_whose_pipes_this_host_cannot_open(tmp_path):
    (tmp_path / channel.INBOX).mkdir()
    assert Pipes().tell(tmp_path, channel.CONTROL, "reload") is None and Pipes().reach(tmp_path) is None


def test_the_inbox_carries_the_line_and_the_engine_signals_the_server(tmp_path):
    signals: list = []
    transport = PipesOrInbox(signals.append)
    assert transport.tell(tmp_path, channel.CONTROL, "reload") is None and signals == []  # no inbox: an older launcher
    (tmp_path / channel.INBOX).mkdir()
    how, seq = transport.tell(tmp_path, channel.CONTROL, "status 9")
    assert how == "engine" and signals == [channel.INBOX_SIGNAL] and transport.reach(tmp_path) == "engine"
    assert (tmp_path / channel.INBOX / f"{seq}.{channel.CONTROL}").read_text() == "status 9\n"


def _compares_runtimes(path: Path) -> list[str]:
    """Lines that name a runtime (Runtime.X) or compare a ``runtime`` with something."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Runtime":
            found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Compare):
            names = [getattr(n, "attr", getattr(n, "id", None)) for n in [node.left, *node.comparators]]
            if "runtime" in names:
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_nothing_outside_engine_asks_which_runtime_a_service_uses():
    """Only the registration (engine/) and the option's own declaration (its default) name one."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if not {"engine", "payload"} & set(path.parts)
             for hit in _compares_runtimes(path)]
    options = (PACKAGE / "core" / "options.py").read_text().splitlines()
    declared = [f"options.py:{n}" for n, line in enumerate(options, 1) if line.startswith("DEFAULT_RUNTIME = ")]
    assert len(declared) == 1 and found == declared, f"ask engine.backend.runtime_of(spec) instead: {found}"


def test_the_demo_runs_where_it_can_and_says_why(monkeypatch):
    from amldebug.engine import discover
    from amldebug.errors import DockerUnavailableError, UsageError

    def no_engine():
        raise DockerUnavailableError("no Docker engine answers at unix:///nowhere; start Docker")

    monkeypatch.setattr(discover.engine, "connect", no_engine)
    assert discover.choose_runtime(None, None, print) == (Runtime.PROCESS, None, "no Docker engine answers at "
                                                                                  "unix:///nowhere")
    assert discover.choose_runtime(Runtime.PROCESS, "img:1", print) == (Runtime.PROCESS, None, "asked for with --runtime")
    assert discover.choose_runtime(Runtime.CONTAINER, "img:1", print)[:2] == (Runtime.CONTAINER, "img:1")
    with pytest.raises(UsageError, match="--runtime container: no Docker engine answers"):
        discover.choose_runtime(Runtime.CONTAINER, None, print)


def test_the_status_the_server_writes_is_read_through_the_transport(tmp_path):
    from amldebug.engine.statefile import StateFile

    state = StateFile(tmp_path / "svc")
    state.reset(session="s")
    transport = PipesOrInbox(lambda sig: None)
    assert transport.status(state) == {}
    state.path.write_text('{"status": "ready", "generation": 2}')
    assert transport.status(state)["generation"] == 2
    assert transport.wait(state, lambda st: st.get("status") == "ready", 1, alive=lambda: True)["generation"] == 2
    assert transport.wait(state, lambda st: st.get("generation") == 3, 1, alive=lambda: False) is None
