"""The edit loop against a real engine: save score.py, the watcher reloads, the SAME debug
session stops in the new code; broken saves keep the last good code serving."""

import time

import pytest
import requests

from amldebug.session import get_service
from tests.conftest import marker_line
from tests.integration.helpers import Request, amldebug, client_from_launch_json

pytestmark = pytest.mark.docker


def _attach(capsys, target, name, *extra):
    target = ["--image", target] if isinstance(target, str) else target
    code, _, err = amldebug(capsys, "attach", "sample", *target, "--model-dir", "sample/model",
                            "--name", name, "--detach", *extra)
    assert code == 0, err
    return get_service(name)


def _score(service, body='{"data": [1, 2, 3]}'):
    return requests.post(service.scoring_uri, data=body, timeout=30, headers={"Content-Type": "application/json"})


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_save_reloads_and_the_same_session_stops_in_the_new_code(capsys, target, workspace, service_name,
                                                                 watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, target, service_name)
    with client_from_launch_json(workspace, service_name, {score: [marker_line(score, "run-scaled")]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()  # with --wait, gunicorn binds its port after the attach
        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), marker_line(score, "run-scaled"))
        client.continue_(stop)
        assert request.result().json()["version"] == "v1"
        root = client.sessions[0]

        watch = watching(service, mode="full")
        _edit(score, '    return {"result": result, "version": "v1"}',
              '    bonus = len(result)  # marker: run-new\n    return {"result": result, "version": "v2", "n": bonus}')
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])  # as VS Code re-sends them on save
        report = watch.wait_report("amldebug: reloaded: fresh worker, init() re-run in ")
        assert report.endswith("; the debugger stays attached")

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), new_line, "run")
        assert client.evaluate(stop, "result") == "[3, 6, 9]"
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}
        assert client.sessions[0] is root and not root.ended  # no re-attach


def test_syntax_error_keeps_old_code_serving_and_next_save_recovers(capsys, server_image, workspace,
                                                                   service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    _edit(score, '"version": "v1"}', '"version": "v2"')  # unbalanced brace
    report = watch.wait_report("error:")
    assert report.startswith(f"{score}:")
    assert watch.reports == ["amldebug: reloading score.py", report, "amldebug: still serving the last good code"]
    assert _score(service).json()["version"] == "v1"
    _edit(score, '"version": "v2"', '"version": "v2"}')
    report = watch.wait_report("amldebug: patched run() in ")
    assert "debugger" not in report  # none is attached
    assert _score(service).json()["version"] == "v2"
    assert watch.loop.reloads == 1


def test_exception_in_new_init_is_reported_and_a_fix_recovers(capsys, server_image, workspace, service_name,
                                                              watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    _edit(score, "    model = loaded  # marker: init-loaded",
          '    raise RuntimeError("weights are stale")  # marker: init-raise')
    report = watch.wait_report("reload failed")
    assert "RuntimeError: weights are stale" in report
    assert f'File "/var/azureml-app/sample/score.py", line {marker_line(score, "init-raise")}, in init' in report
    assert service.state == "Running"  # the master (and a debugger on it) survived
    _edit(score, '    raise RuntimeError("weights are stale")  # marker: init-raise',
          "    model = loaded  # marker: init-loaded")
    _edit(score, '"version": "v1"', '"version": "v3"')
    watch.wait_report("reloaded")
    assert _score(service).json() == {"result": [3, 6, 9], "version": "v3"}


def test_a_burst_of_saves_serves_the_last_text(capsys, server_image, workspace, service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    original = score.read_text()
    for i in range(10):
        score.write_text(original.replace('"version": "v1"', f'"version": "b{i}"'))
        time.sleep(0.002)
    watch.wait_report("patched run()")
    time.sleep(1.5)
    assert watch.loop.reloads < 10, watch.reports
    assert _score(service).json()["version"] == "b9"


def _state(service):
    from amldebug.engine.statefile import StateFile, state_folder

    return StateFile(state_folder(service.name)).read()


def test_a_run_only_edit_is_patched_and_the_same_session_stops_in_the_new_run(capsys, target, workspace,
                                                                            service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, target, service_name)
    with client_from_launch_json(workspace, service_name, {}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()
        assert _score(service).json()["version"] == "v1"
        worker = _state(service)["pid"]
        root = client.sessions[0]
        watch = watching(service)
        _edit(score, '    return {"result": result, "version": "v1"}',
              '    bonus = len(result)  # marker: run-new\n    return {"result": result, "version": "v2", "n": bonus}')
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])
        report = watch.wait_report("amldebug: patched run() in ")
        assert report.endswith("ms (init() not re-run; model kept); the debugger stays attached")
        assert watch.reports[0] == "amldebug: reloading score.py"

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), new_line, "run")
        assert client.evaluate(stop, "result") == "[3, 6, 9]"
        assert client.evaluate(stop, "model['scale']") == "3"  # the model init() loaded is still there
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}
        assert _state(service)["pid"] == worker  # the same worker: no import, no init()
        assert client.sessions[0] is root and not root.ended


def test_an_edit_while_paused_finishes_the_paused_request_with_the_old_code(capsys, server_image, workspace,
                                                                          service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name)
    old_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [old_line]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()
        paused = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert stop.frames[0].line == old_line
        # The patch runs in a thread the debugger neither shows, traces (the AST diff takes
        # 80 ms traced, 3 ms not) nor pauses with the others.
        threads = [t["name"] for t in stop.session.connection.request("threads")["threads"]]
        assert not any("amldebug" in name for name in threads), threads
        watch = watching(service)
        # The new line goes above the paused one: breakpoints are by line, and the paused
        # (old) frame must not run into the new breakpoint on its way out.
        _edit(score, '    data = json.loads(raw_data)["data"]  # marker: run-data',
              '    extra = "new"  # marker: run-new\n    data = json.loads(raw_data)["data"]  # marker: run-data')
        _edit(score, '"version": "v1"', '"version": extra')
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])
        watch.wait_report("amldebug: patched run() in ")  # the patch does not wait for the paused thread
        assert _answer(service, "patch.json")["traced"] is False  # while the debugger traces the others
        client.continue_(stop)
        assert paused.result().json() == {"result": [3, 6, 9], "version": "v1"}

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), new_line)
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "new"}


def test_an_edit_that_needs_a_fresh_worker_while_paused_finishes_the_paused_request(capsys, server_image,
                                                                                  workspace, service_name,
                                                                                  watching):
    """init() changed while run() is paused: the standby takes over with the new code; the
    paused worker, told to stop, still answers its request with the old code once continued."""
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name)
    old_line = marker_line(score, "run-scaled")
    with client_from_launch_json(workspace, service_name, {score: [old_line]}) as client:
        client.attach(timeout=15)
        service.wait_for_deployment()
        paused_worker = _state(service)["pid"]
        standby = _standby(service)
        paused = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert stop.frames[0].line == old_line and stop.session.pid == paused_worker
        watch = watching(service)
        # As in the patch case, the new breakpoint goes above the paused line, which the
        # paused (old) frame has passed: breakpoints are by line.
        text = score.read_text().replace("    model = loaded  # marker: init-loaded",
                                         '    model = dict(loaded, tag="new")  # marker: init-loaded')
        text = text.replace('    data = json.loads(raw_data)["data"]  # marker: run-data',
                            '    tag = model["tag"]  # marker: run-new\n    data = json.loads(raw_data)["data"]')
        score.write_text(text.replace('"version": "v1"', '"version": tag'))
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])
        report = watch.wait_report("amldebug: reloaded: fresh worker, init() re-run in ")
        assert report.endswith("(init() changed); the debugger stays attached"), report
        assert _state(service)["pid"] == standby

        time.sleep(2)  # the paused worker was told to stop: it waits for its request all the same
        client.continue_(stop)
        assert paused.result().json() == {"result": [3, 6, 9], "version": "v1"}

        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.session.pid) == (str(score), new_line, standby)
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "new"}


def test_a_decorated_run_is_patched_through_wrapped(capsys, server_image, workspace, service_name, watching):
    score = workspace / "sample" / "score.py"
    _edit(score, "def run(raw_data):", "def logged(f):\n    @functools.wraps(f)\n    def wrapper(*a, **k):\n"
          "        return f(*a, **k)\n    return wrapper\n\n\n@logged\ndef run(raw_data):")
    _edit(score, "import json\n", "import functools\nimport json\n")
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    _edit(score, '"version": "v1"', '"version": "v2"')
    watch.wait_report("amldebug: patched run() in ")
    answer = _score(service)
    assert answer.json().get("version") == "v2", answer.text


@pytest.mark.parametrize("edit, why", [
    (("    model = loaded  # marker: init-loaded", "    model = dict(loaded)  # marker: init-loaded"), "init() changed"),
    (("model = None", "model = None\nLIMIT = 3"), "statements were added or removed"),
])
def test_what_cannot_be_patched_gets_a_fresh_worker_and_says_why(capsys, server_image, workspace, service_name,
                                                                  watching, edit, why):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    worker = _state(service)["pid"]
    watch = watching(service)
    _edit(score, *edit)
    _edit(score, '"version": "v1"', '"version": "v2"')
    report = watch.wait_report("amldebug: reloaded: fresh worker, init() re-run in ")
    assert report.endswith(f" s ({why})")
    assert _score(service).json()["version"] == "v2"
    assert _state(service)["pid"] != worker


def test_patch_mode_keeps_the_last_good_code_when_it_cannot_patch(capsys, server_image, workspace, service_name,
                                                                  watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service, mode="patch")
    _edit(score, "    model = loaded  # marker: init-loaded", "    model = dict(loaded)  # marker: init-loaded")
    report = watch.wait_report("amldebug: still serving the last good code: cannot patch (init() changed)")
    assert watch.reports == ["amldebug: reloading score.py", report]


def test_a_helper_module_edit_is_a_full_reload(capsys, server_image, workspace, service_name, watching):
    helper = workspace / "sample" / "mypkg" / "features.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service)
    text = helper.read_text()
    helper.write_text(text + "\n\ndef unused():\n    return 0\n")
    report = watch.wait_report("amldebug: reloaded: fresh worker")
    assert "features.py changed (only the entry script is patched)" in report
    assert watch.reports[0] == "amldebug: reloading features.py"


def test_the_server_warning_about_extra_keys_is_explained_once_not_repeated(capsys, server_image, workspace,
                                                                            service_name, watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service, mode="full")
    _edit(score, '"version": "v1"', '"version": "v2"')
    watch.wait_report("amldebug: reloaded")
    log = service.get_logs()
    assert "Found extra keys in the config file that are not supported" not in log
    assert log.count("hiding the server's 'Found extra keys in the config file' warning") == 1
    assert log.count("Booting worker") >= 2  # workers did boot (the first, the reload's, a standby)


def _standby(service, other_than=None, timeout=30):
    """The parked standby worker's pid (standby.json, written at its gate)."""
    import json

    from amldebug.engine.statefile import StateFile, state_folder

    path = StateFile(state_folder(service.name)).channel / "standby.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = json.loads(path.read_text())["pid"]
            if pid != other_than and pid != _state(service).get("pid"):
                return pid
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError("no standby worker was parked")


def test_a_full_reload_runs_init_in_the_standby_where_its_breakpoint_hits(capsys, target, workspace, service_name,
                                                                         watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, target, service_name)
    init_line = marker_line(score, "init-loaded")
    with client_from_launch_json(workspace, service_name, {score: [init_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=30)  # the first worker's init()
        assert stop.frames[0].line == init_line
        client.continue_(stop)
        service.wait_for_deployment()
        first = _state(service)["pid"]
        standby = _standby(service)
        # Parked: its own session, its main thread named for what it is, and gunicorn has
        # not killed the serving worker to keep its count.
        deadline = time.monotonic() + 10
        while not any(s.pid == standby for s in client.sessions) and time.monotonic() < deadline:
            time.sleep(0.05)
        session = next((s for s in client.sessions if s.pid == standby), None)
        assert session is not None, [(s.name, s.pid) for s in client.sessions]
        threads = session.connection.request("threads")["threads"]
        assert "standby worker (waits for a save)" in [t["name"] for t in threads]
        time.sleep(1)
        assert _state(service)["pid"] == first and _score(service).status_code == 200

        watch = watching(service)
        _edit(score, "    model = loaded  # marker: init-loaded", "    model = dict(loaded)  # marker: init-loaded")
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), init_line, "init")
        assert stop.session.pid == standby  # init() of the new code runs in the standby
        client.continue_(stop)
        report = watch.wait_report("amldebug: reloaded: fresh worker, init() re-run in ")
        assert report.endswith("(init() changed); the debugger stays attached")
        assert _state(service)["pid"] == standby
        assert _score(service).json()["version"] == "v1"


def test_a_save_before_the_next_standby_is_parked_still_reloads(capsys, server_image, workspace, service_name,
                                                                watching):
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    watch = watching(service, mode="full")
    unparked = 0
    for i in range(3):  # each save right after the last reload finished: no standby parked yet
        unparked += not _parked(service)
        _edit(score, f'"version": "v{i + 1}"', f'"version": "v{i + 2}"')
        deadline = time.monotonic() + 30
        while watch.loop.reloads < i + 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _score(service).json()["version"] == f"v{i + 2}", watch.reports
    assert unparked >= 2  # (parking takes about 260 ms; the first save may come after it)
    assert all(not line.startswith("amldebug: reload failed") for line in watch.reports)


def _answer(service, name: str) -> dict:
    import json

    from amldebug.engine.statefile import StateFile, state_folder

    return json.loads((StateFile(state_folder(service.name)).channel / name).read_text())


def _parked(service) -> bool:
    """Whether the standby for the serving worker's generation waits at its gate now."""
    import json

    from amldebug.engine.statefile import StateFile, state_folder

    state = _state(service)
    try:
        standby = json.loads((StateFile(state_folder(service.name)).channel / "standby.json").read_text())
    except (OSError, ValueError):
        return False
    return standby["generation"] == state["generation"] and standby["pid"] != state["pid"]


def test_the_standby_is_forked_only_once_the_serving_worker_is_ready(capsys, server_image, workspace,
                                                                     service_name):
    """Not while the new worker imports the script and runs init(): they would compete
    for the CPU (the log says when each happened, in order)."""
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    for i in range(3):
        _standby(service)
        _edit(score, f'"version": "v{i + 1}"', f'"version": "v{i + 2}"')
        service.reload(mode="full")
    _standby(service)
    booting, forks = True, 0
    for line in service.get_logs().splitlines():
        if line.startswith(("amldebug: fresh worker ", "amldebug: new worker: ")):
            booting = True
        elif line.startswith("amldebug: worker ") and line.endswith(" ready"):
            booting = False
        elif line.startswith("amldebug: standby worker "):
            assert not booting, f"a standby was forked while a worker booted:\n{service.get_logs()}"
            forks += 1
    assert forks == 4


def test_where_the_host_cannot_open_the_pipes_saves_go_through_the_engine(capsys, server_image, workspace,
                                                                          service_name, watching):
    """As on Docker Desktop, whose VM shares no named pipes with the host: the pipes live
    where only the container reaches them (AMLDEBUG_PIPES=local), so the host leaves each
    line in the inbox and signals through the engine; the patch, the full reload and the
    question "is a debugger attached" all still work, and the watcher says which path it uses."""
    from amldebug.engine.statefile import StateFile, state_folder

    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait", "-e", "AMLDEBUG_PIPES=local")
    run = StateFile(state_folder(service.name)).channel
    assert not (run / "control").exists() and service.channel() == "engine"
    model_pid = _state(service)["pid"]
    _edit(score, '"version": "v1"', '"version": "v2"')
    result = service.reload(mode="auto", changed=[str(score)])
    assert (result.kind, result.via, result.functions) == ("patched", "engine", ("run",)), result
    assert result.attached is False  # asked through the inbox too: no client is attached
    assert _score(service).json()["version"] == "v2" and _state(service)["pid"] == model_pid
    _edit(score, "def init():\n", "def init():\n    print('init v3')\n")
    result = service.reload(mode="auto", changed=[str(score)])
    assert (result.kind, result.via) == ("reloaded", "engine"), result
    assert result.reason == "init() changed"
    assert _state(service)["pid"] != model_pid
    assert not list((run / "inbox").iterdir())  # every line was taken


def test_with_two_workers_a_run_edit_is_a_full_reload_that_both_serve(capsys, server_image, workspace,
                                                                      service_name):
    """A patch reaches the one worker amldebug follows: with WORKER_COUNT=2 the other would
    serve the old run() while the watcher said "patched"."""
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait", "-e", "WORKER_COUNT=2")
    _edit(score, '"version": "v1"', '"version": "v2"')
    result = service.reload(mode="auto", changed=[str(score)])
    assert (result.kind, result.reason) == ("reloaded", "WORKER_COUNT=2: only one worker could be patched")
    assert {_score(service).json()["version"] for _ in range(12)} == {"v2"}


def test_a_line_for_a_pipe_nobody_reads_is_answered_at_once(capsys, server_image, workspace, service_name):
    """The worker's patch pipe is gone: the master says so instead of the host waiting 10 s."""
    from amldebug.engine.statefile import StateFile, state_folder

    score = workspace / "sample" / "score.py"
    service = _attach(capsys, server_image, service_name, "--no-wait")
    run = StateFile(state_folder(service.name)).channel
    (run / "control").unlink()  # the host no longer opens them: the inbox relays
    (run / f"patch-{_state(service)['pid']}").unlink()
    _edit(score, '"version": "v1"', '"version": "v2"')
    started = time.monotonic()
    result = service.reload(mode="auto", changed=[str(score)])
    assert time.monotonic() - started < 8, result
    assert (result.kind, result.via) == ("reloaded", "engine")
    assert result.reason.endswith("no longer reads its patch pipe"), result
    assert result.attached is None  # its question found no reader either
    assert _score(service).json()["version"] == "v2"


@pytest.mark.parametrize("kind", ["py39", "py313"])
def test_the_patch_and_its_breakpoint_work_in_other_image_pythons(capsys, other_images, kind, workspace,
                                                                  service_name, watching):
    """3.9 (pydevd's settrace tracer) and 3.13 (its sys.monitoring one)."""
    score = workspace / "sample" / "score.py"
    service = _attach(capsys, other_images[kind], service_name)
    with client_from_launch_json(workspace, service_name, {}) as client:
        client.attach(timeout=30)
        service.wait_for_deployment()
        assert _score(service).json()["version"] == "v1"
        watch = watching(service)
        _edit(score, '    return {"result": result, "version": "v1"}',
              '    bonus = len(result)  # marker: run-new\n    return {"result": result, "version": "v2", "n": bonus}')
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])
        watch.wait_report("amldebug: patched run() in ")
        request = Request(service.scoring_uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line) == (str(score), new_line)
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}


def test_a_run_under_inference_schema_is_patched_in_the_server(capsys, server_image, workspace, service_name,
                                                               watching):
    """Re-executing the module would fail ("schema already defined"); the patch does not."""
    score = workspace / "sample" / "score.py"
    _edit(score, "import json\n", "import json\n\nfrom inference_schema.parameter_types.standard_py_parameter_type "
          "import StandardPythonParameterType\nfrom inference_schema.schema_decorators import input_schema, "
          "output_schema\n")
    _edit(score, "def run(raw_data):\n    data = json.loads(raw_data)[\"data\"]  # marker: run-data",
          "@input_schema(\"data\", StandardPythonParameterType([1, 2, 3]))\n"
          "@output_schema(StandardPythonParameterType({\"result\": [3], \"version\": \"v1\"}))\n"
          "def run(data):\n    data = data  # marker: run-data")
    service = _attach(capsys, server_image, service_name, "--no-wait")
    assert _score(service).json() == {"result": [3, 6, 9], "version": "v1"}
    watch = watching(service)
    _edit(score, '"version": "v1"}\n', '"version": "v2"}\n')
    watch.wait_report("amldebug: patched run() in ")
    assert _score(service).json() == {"result": [3, 6, 9], "version": "v2"}
    assert "already defined" not in service.get_logs()
