"""The contract every registered runtime keeps (docs/runtimes.md), run against each one in
``engine.backend.RUNTIMES``: the container runtime on the real engine, the process runtime
as a real local Python. A new runtime is added to the map and passes this file unchanged
(give it a ``_where`` entry: what it runs from)."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
import requests

from amldebug.core.spec import ServiceSpec
from amldebug.engine import channel, inject
from amldebug.engine.backend import RUNTIMES, runner_for, runtime_of
from amldebug.engine.statefile import StateFile, state_folder
from amldebug.payload.common import protocol
from amldebug.service import registry

pytestmark = pytest.mark.docker

SCORE = '''
import json

def init():
    print("contract: init ran", flush=True)

def run(raw_data):
    data = json.loads(raw_data)["data"]
    print("contract: run %s" % data, flush=True)
    return {"echo": data}
'''


def _where(name, request) -> dict:
    """What each runtime runs from, as ServiceSpec fields."""
    if name == "container":
        return {"image": request.getfixturevalue("server_image")}
    return {}  # process: this Python (the test extra installs azmlinfsrv)


@pytest.fixture(params=[str(name) for name in RUNTIMES])
def started(request, tmp_path, service_name):
    """A tiny score.py started in the runtime (its ready wait is the registry's), with the
    runner that started it; whatever is left is removed after the test."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text(SCORE)
    spec = ServiceSpec(name=service_name, source_dir=str(source), entry_script="score.py", runtime=request.param,
                       wait=False, port=18000 + uuid.uuid4().int % 2000, debug_port=20000 + uuid.uuid4().int % 2000,
                       workspace=str(tmp_path), **_where(request.param, request))
    service = registry.start(spec, progress=lambda _: None)
    runner = runner_for(service.spec, service._client)
    yield runner, service.spec, service._backend
    for _, backend in runner.find(service_name):
        backend.remove()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_started_service_is_found_by_name_and_listed(started):
    runner, spec, backend = started
    [(found_spec, found)] = runner.find(spec.name)
    assert found.id == backend.id and found_spec.name == spec.name and found_spec.runtime == spec.runtime
    assert backend.id in [b.id for _, b in runner.find()]
    assert found.status() == "running"
    assert found.session  # the start that made it: what a replacement's takeover is told from


def test_it_scores_and_debugs_on_the_ports_it_was_given_on_127_0_0_1(started):
    _, spec, _ = started
    answer = requests.post(f"http://127.0.0.1:{spec.port}/score", data=json.dumps({"data": [1, 2]}),
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200 and answer.json() == {"echo": [1, 2]}
    assert _listening(spec.debug_port)  # debugpy, on spec.debug_bind (127.0.0.1 by default)


def test_its_log_is_read_whole_from_a_mark_and_as_it_comes(started):
    _, spec, backend = started
    assert "contract: init ran" in backend.logs()
    assert "contract: init ran" in backend.logs(tail=200)
    mark = backend.position()
    requests.post(f"http://127.0.0.1:{spec.port}/score", data=json.dumps({"data": 7}), timeout=30)
    deadline = time.monotonic() + 5  # the server's output reaches the log a moment later
    while "contract: run 7" not in backend.logs(since=mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "contract: run 7" in backend.logs(since=mark)  # what came after the mark
    assert next(line for line in backend.follow() if "contract: init ran" in line)


def test_a_control_line_goes_by_its_transport_and_the_answer_comes_back(started):
    _, spec, backend = started
    folder = StateFile(state_folder(spec.name)).channel
    assert backend.transport.reach(folder) in ("pipe", "engine")
    seq = uuid.uuid4().hex
    sent = backend.transport.tell(folder, channel.CONTROL, protocol.status_line(seq))
    assert sent is not None and sent[0] in ("pipe", "engine")
    answer = channel.wait_answer(folder / channel.MASTER_ANSWER, lambda a: a.seq == seq, 10,
                                 record=protocol.MasterAnswer, posted=sent[1])
    assert answer is not None and answer.attached is False  # no debugger attached


def test_its_python_runs_where_it_runs_and_sees_the_code_where_the_runtime_says(started):
    runner, spec, backend = started
    info = runner.probe(spec, inject.payload_dir())
    served = runtime_of(spec).served_source_dir(spec)
    code, out = backend.run_python(info["python"], ["-c", f"import os; print(os.path.isfile({served!r} + '/score.py'))"])
    assert code == 0 and out.strip() == "True", out
    code, out = backend.run_python(info["python"], [runner.payload_path(inject.payload_dir(), "probe.py")])
    assert code == 0, out


def test_what_needs_no_engine_is_answered_by_the_class(started):
    runner, spec, _ = started
    cls = runtime_of(spec)
    assert isinstance(cls.uses_image, bool) and cls.describe(spec)
    assert cls.complete(spec, lambda _: None).runtime == spec.runtime  # named already: nothing to find
    for served, local in cls.local_paths(spec):
        assert served and local
    from amldebug.core.options import AttachOptions

    assert isinstance(cls.task_options(spec, AttachOptions()), AttachOptions)


def test_stopped_it_is_gone_and_its_ports_are_free(started):
    runner, spec, backend = started
    backend.remove()
    assert backend.status() in ("Deleted", "exited", "removing")
    assert runner.find(spec.name) == []
    deadline = time.monotonic() + 5
    while (_listening(spec.port) or _listening(spec.debug_port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(spec.port) and not _listening(spec.debug_port)
