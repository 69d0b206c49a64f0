"""The debug service: the object ``amldebug attach`` manages, shaped like azureml-core's
LocalWebservice (reload/update/delete/get_logs/run/wait_for_deployment; name, state,
port, scoring_uri) so code written for one works with the other.

The difference that matters: ``reload()`` sends SIGHUP to the gunicorn master inside the
running container. gunicorn forks a fresh worker that imports the entry script again and
runs init(); the container, the master and the debugger attached to it stay, so the
debug session survives the reload. LocalWebservice.reload() recreates the container.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import requests

from .. import vscode
from ..core.options import Runtime
from ..core.scriptcheck import check_entry_script, syntax_error
from ..core.spec import ServiceSpec, served_source_dir
from ..engine import docker as engine
from ..engine import ports, process
from ..engine.backend import Backend, Runner
from ..engine.statefile import StateFile, state_folder
from ..errors import (
    ContainerError,
    DockerUnavailableError,
    ReloadError,
    ScoringError,
    ServiceNotFoundError,
    UsageError,
)
from . import inject

Progress = Callable[[str], None]

LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z] \[\d+\]")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    seconds: float
    restarted: bool  # True when the container had to be recreated (debugger must re-attach)
    worker_pid: Optional[int] = None


def logged_exception(log: str) -> str:
    """The last exception traceback the scoring server logged, or ''."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return ""
    first = starts[-1]
    # A chained exception ("The above exception was the direct cause...") is one log
    # record with several tracebacks: go back to the record's first one (the user's).
    for i in range(first, -1, -1):
        if LOG_LINE_START.match(lines[i]) or lines[i].startswith("amldebug:"):
            first = min(j for j in starts if j >= i)
            break
    last = first
    for j in range(first + 1, len(lines)):
        if LOG_LINE_START.match(lines[j]) or lines[j].startswith("amldebug:"):
            break
        last = j
    return "\n".join(lines[first:last + 1])


class Service:
    """A running (or stopped) amldebug service. Get one from ``attach()`` or ``get_service()``."""

    def __init__(self, spec: ServiceSpec, backend, client=None) -> None:
        self.spec = spec
        self._backend: Backend = backend
        self._client = client

    # -- LocalWebservice-shaped attributes -------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def debug_port(self) -> int:
        return self.spec.debug_port

    @property
    def scoring_uri(self) -> str:
        return f"http://localhost:{self.spec.port}/score"

    @property
    def container_id(self) -> str:
        return self._backend.id

    @property
    def state(self) -> str:
        status = self._backend.status()
        return {"running": "Running", "exited": "Failed", "created": "Transitioning",
                "restarting": "Transitioning", "dead": "Failed"}.get(status, status.capitalize())

    @property
    def health(self) -> str:
        """``state`` as ``amldebug status`` shows it: also whether the worker failed (the
        server answers 503 until the next good save) and whether the foreground session
        that owns it is gone (an orphan, left by a killed ``attach``)."""
        state = self.state
        if state != "Running":
            return state
        files = StateFile(state_folder(self.name))
        if files.orphaned():
            return "Orphaned"
        return "Running (init failed)" if files.read().get("status") == "failed" else state

    def __repr__(self) -> str:
        return f"Service(name={self.name!r}, state={self.state!r}, scoring_uri={self.scoring_uri!r})"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "state": self.health,
            "scoring_uri": self.scoring_uri,
            "port": self.port,
            "debug_port": self.debug_port,
            "container_id": self.container_id,
            "image": self.spec.image,
            "source_dir": self.spec.source_dir,
            "entry_script": self.spec.entry_script,
            "runtime": self.spec.runtime,
        }

    # -- behaviour ------------------------------------------------------------------------
    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        return self._backend.logs(tail=num_lines)

    def follow_logs(self, tail: int | str = "all"):
        """Yield log lines as they come, until the service stops."""
        return self._backend.follow(tail=tail)

    def wait_for_deployment(self, show_output: bool = False, timeout: float = 120) -> None:
        """Wait until the scoring server answers its health route (not /score: that runs user code)."""
        deadline = time.monotonic() + timeout
        health = self.scoring_uri[: -len("/score")] + "/"
        while time.monotonic() < deadline:
            if self._backend.status() in ("exited", "dead", "Deleted"):
                raise ContainerError(f"service '{self.name}' stopped while starting", self.get_logs(40))
            try:
                if requests.get(health, timeout=2).status_code == 200:
                    if show_output:
                        _stderr(f"service '{self.name}' is healthy at {self.scoring_uri}")
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise ContainerError(f"service '{self.name}' did not answer within {timeout:.0f} s", self.get_logs(40))

    def run(self, input_data, *, timeout: float | None = None):
        """POST input_data once (no retries: each retry would run the user's run() again
        under the debugger) and return the decoded answer; raise ScoringError on failure."""
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        mark = self._backend.position()
        try:
            response = requests.post(self.scoring_uri, data=body, timeout=timeout,
                                     headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise ScoringError(f"no answer from {self.scoring_uri}: {exc}; is the service running? "
                               f"('amldebug status {self.name}')") from None
        if response.status_code != 200:
            logged = logged_exception(self._backend.logs(since=mark))
            raise ScoringError(
                f"scoring failed with HTTP {response.status_code}",
                status=response.status_code, body=response.text, logged_exception=logged,
            )
        try:
            return response.json()
        except ValueError:
            return response.text

    def reload(self, *, timeout: float = 60, progress: Progress = _stderr) -> ReloadResult:
        """Serve the current files: a new worker, a fresh init(), the same debugged master."""
        problem = syntax_error(self.spec.entry_path)
        if problem:
            raise ReloadError(f"{problem} (the service keeps serving the last good code)")
        if dict(self.spec.env).get("WORKER_PRELOAD", "").lower() == "true":
            started = time.monotonic()
            progress("WORKER_PRELOAD=true loads score.py in the gunicorn master, so a reload must "
                     "restart the container; re-attach the debugger afterwards")
            self.update()
            return ReloadResult(time.monotonic() - started, restarted=True)
        state = StateFile(state_folder(self.name))
        before = state.read().get("generation", 0)
        started = time.monotonic()
        mark = self._backend.position()
        self._backend.signal("SIGHUP")
        try:
            done = state.wait(lambda st: st.get("generation", 0) > before and st.get("status") in ("ready", "failed"),
                              timeout, alive=self._running)
        except TimeoutError:
            raise ReloadError(f"the new worker of '{self.name}' was not ready after {timeout:.0f} s "
                              "(paused at a breakpoint in init()?)") from None
        elapsed = time.monotonic() - started
        if done is None:
            raise ContainerError(f"service '{self.name}' stopped during the reload", self.get_logs(40))
        if done["status"] == "failed":
            log = self._backend.logs(since=mark)
            error = logged_exception(log) or "\n".join(log.splitlines()[-20:])
            raise ReloadError(f"the new code failed in import or init(); the service waits for the next "
                              f"save:\n{error}")
        return ReloadResult(elapsed, restarted=False, worker_pid=done.get("pid"))

    def _running(self) -> bool:
        return self._backend.status() == "running"

    def update(self, **changes) -> "Service":
        """Recreate the container with changed settings (image, model, env, ports); the
        launch.json entry follows the new ports. The debugger must re-attach."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(ServiceSpec)}
        if unknown:
            raise UsageError(f"update() does not know {', '.join(sorted(unknown))}")
        if "env" in changes:  # as resolve_spec stores it
            changes["env"] = tuple(sorted(dict(changes["env"]).items()))
        for key in ("model_dir", "env_file"):  # paths are kept absolute, as resolve_spec makes them
            if changes.get(key):
                if not Path(changes[key]).exists():
                    raise UsageError(f"{key} '{changes[key]}' does not exist")
                changes[key] = str(Path(changes[key]).resolve())
        spec = self.spec.replace(**changes)
        if spec.env_file and spec.runtime == Runtime.CONTAINER and spec.image and spec.image.startswith("amldebug-env:") \
                and "image" not in changes:
            from .imagebuild import build_image  # the environment file changed: the image follows it

            spec = spec.replace(image=build_image(Path(spec.env_file), base_image=spec.base_image,
                                                  client=self._client).tag)
        new = start(spec, client=self._client, keep_ports=True)
        self.spec, self._backend = new.spec, new._backend
        from ..session import launch_json_path, write_vscode_files

        if launch_json_path(self.spec).is_file():  # keep VS Code pointed at the (new) debug port
            write_vscode_files(self.spec)
        return self

    def delete(self) -> None:
        self._backend.remove()
        StateFile(state_folder(self.name)).remove()

    def run_payload_script(self, script: str, *args: str) -> tuple[int, str]:
        """Run one of amldebug's payload scripts where the service runs, in its Python."""
        runner = runner_for(self.spec, self._client)
        payload = inject.payload_dir()
        info = runner.probe(self.spec, payload)
        return self._backend.run_python(info["python"], [runner.payload_path(payload, script), *args])

    def model_path(self, model: str) -> dict:
        """Resolve ``model`` inside the container as Model.get_model_path does."""
        if self.state != "Running":
            raise ContainerError(f"service '{self.name}' is not running ({self.state}); start it with 'amldebug attach'")
        code, output = self.run_payload_script("modelpath.py", model)
        try:
            return json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ContainerError(f"could not resolve model '{model}' in service '{self.name}'", output) from None


def start(spec: ServiceSpec, *, client=None, keep_ports: bool = False, exact_ports: bool = False,
          progress: Progress = _stderr, ready_timeout: float = 120) -> Service:
    """Start (or replace) the service described by ``spec`` and wait until it is attachable
    (with spec.wait) or serving (without). Raises, leaving nothing running, on failure."""
    check_entry_script(spec.entry_path)
    payload = inject.payload_dir()
    runner = runner_for(spec, client)
    client = getattr(runner, "client", client)
    info = runner.probe(spec, payload)
    inject.ensure_debugpy(payload, info["version"], info["machine"])

    released = set()
    for old in _existing(spec.name, client):
        released |= {old.spec.port, old.spec.debug_port}
        old.delete()
    # A replaced service's ports are let go of a moment later (Docker's port forwarder).
    ports.wait_free(released & {spec.port, spec.debug_port}, timeout=3)
    port = ports.pick(spec.port)
    debug_port = ports.pick(spec.debug_port, avoid={port}, host="127.0.0.1")
    if exact_ports:  # VS Code attaches to the port launch.json named before the task ran
        for flag, wanted, got in (("--port", spec.port, port), ("--debug-port", spec.debug_port, debug_port)):
            if got == wanted:
                continue
            if wanted in released:
                raise UsageError(f"{flag} {wanted} is still held by the service '{spec.name}' this one replaces; "
                                 "start it again in a moment (press F5 again)")
            raise UsageError(f"{flag} {wanted} is in use{_holder(wanted, client)}; stop what holds it, or run this "
                             f"'amldebug attach' once with another {flag} (it rewrites launch.json and tasks.json)")
    if not keep_ports:
        if port != spec.port:
            progress(f"port {spec.port} is in use; serving on {port} instead")
        if debug_port != spec.debug_port:
            progress(f"debug port {spec.debug_port} is in use; using {debug_port} instead")
    spec = spec.replace(port=port, debug_port=debug_port)
    state = StateFile(state_folder(spec.name))
    session = uuid.uuid4().hex
    backend = None
    try:  # from here on, anything (a Ctrl-C, SIGTERM, a failure) removes what this start made
        backend = runner.start(spec, state, payload, info, session)
        _wait_started(backend, spec, state, ready_timeout)
    except BaseException:
        _undo_start(runner, spec, backend, session, state)
        raise
    return Service(spec, backend, client)


def runner_for(spec: ServiceSpec, client=None) -> Runner:
    """The runtime that runs ``spec`` (the one place that asks which)."""
    if spec.runtime == Runtime.PROCESS:
        return process.ProcessRunner()
    return engine.ContainerRunner(client or engine.connect())


def _undo_start(runner: Runner, spec: ServiceSpec, backend, session: str, state: StateFile) -> None:
    """Remove what an unfinished start made; a failure here must not hide the first one."""
    try:
        if backend is not None:
            backend.remove()
        runner.undo(spec, state, session, unreturned=backend is None)
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        _stderr(f"amldebug: could not remove everything service '{spec.name}' started: {exc}")
    state.remove()


def _holder(port: int, client) -> str:
    """' by amldebug service NAME (...)' when one of ours holds ``port``."""
    try:
        holders = [s.name for s in list_services(client=client)
                   if port in (s.spec.port, s.spec.debug_port) and s.state == "Running"]
    except Exception:  # only a better message is at stake: never let it replace the real one
        return ""
    return f" by amldebug service '{holders[0]}' ('amldebug down --name {holders[0]}' stops it)" if holders else ""


def _existing(name: str, client) -> list[Service]:
    """Services of that name in either runtime (Docker is asked only when it answers)."""
    found = [s for s in _process_services() if s.name == name]
    if client is None:
        try:
            client = engine.connect()
        except DockerUnavailableError:
            return found
    return found + [_container_service(client, b) for b in engine.find_services(client, name)]


def _container_service(client, box) -> "Service":
    return Service(engine.spec_of(box), engine.ContainerBackend(client, box), client)


def _process_services() -> list[Service]:
    return [Service(spec, backend) for spec, backend, _ in process.registered(inject.cache_root() / "state")]


def _wait_started(backend, spec: ServiceSpec, state: StateFile, timeout: float) -> None:
    wanted = ("waiting", "listening", "attached", "ready", "failed") if spec.wait else ("ready", "failed")
    where = "process" if spec.runtime == Runtime.PROCESS else "container"
    try:
        done = state.wait(lambda st: st.get("status") in wanted, timeout,
                          alive=lambda: backend.status() == "running")
    except TimeoutError:
        raise ContainerError(f"service '{spec.name}' was not ready after {timeout:.0f} s",
                             backend.logs(tail=40)) from None
    if done is None:
        raise ContainerError(f"the {where} of service '{spec.name}' exited while starting",
                             _failure_excerpt(backend.logs()))
    if done["status"] == "failed":
        raise ContainerError(f"service '{spec.name}' failed to start: the worker could not import the "
                             f"entry script or run init()", _failure_excerpt(backend.logs()))


def _failure_excerpt(log: str) -> str:
    exc = logged_exception(log)
    tail = "\n".join(log.splitlines()[-15:])
    return f"{exc}\n\nlast log lines:\n{tail}" if exc else tail


def get_service(name: str, *, client=None) -> Service:
    """The service called ``name``, in whichever runtime it runs."""
    for service in _process_services():
        if service.name == name:
            return service
    client = client or engine.connect()
    found = engine.find_services(client, name)
    if not found:
        raise ServiceNotFoundError(f"no amldebug service named '{name}'; 'amldebug status' lists them, "
                                   f"'amldebug attach' starts one")
    return _container_service(client, found[0])


def list_services(*, client=None) -> list[Service]:
    """Every service: the process ones always, the container ones when Docker answers
    (or, with an explicit client, always)."""
    services = _process_services()
    if client is None:
        try:
            client = engine.connect()
        except DockerUnavailableError:
            if services:
                return services
            raise
    return services + [_container_service(client, b) for b in engine.find_services(client)]


def launch_config(spec: ServiceSpec, *, pre_launch_task: str | None = None) -> dict:
    """The VS Code attach configuration for a service (pure)."""
    local = Path(spec.source_dir)
    workspace = Path(spec.workspace)
    try:
        local_root = "${workspaceFolder}/" + local.relative_to(workspace).as_posix()
    except ValueError:
        local_root = local.as_posix()
    local_root = local_root.rstrip("/").replace("${workspaceFolder}/.", "${workspaceFolder}")
    # The process runtime gives the server the real paths of the files, so they map to themselves.
    remote_root = served_source_dir(spec)
    return vscode.build_attach_config(
        name=spec.name, port=spec.debug_port, local_root=local_root, remote_root=remote_root,
        host="localhost", just_my_code=spec.just_my_code, pre_launch_task=pre_launch_task,
    )
