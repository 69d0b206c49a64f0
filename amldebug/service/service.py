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
import os
import sys
import time
from pathlib import Path
from typing import Optional, Protocol, Sequence

import requests

from ..core.options import ReloadMode
from ..core.progress import Progress
from ..core.scriptcheck import syntax_error
from ..core.spec import ServiceSpec
from ..diagnose.log import logged_exception
from ..engine import channel
from ..engine.backend import Backend, runner_for
from ..engine.statefile import SETTLED, StateFile, Status, state_folder
from ..payload.common import protocol
from ..errors import (
    ContainerError,
    ReloadError,
    ScoringError,
    UsageError,
)
from ..engine import inject


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    seconds: float
    restarted: bool  # True when the container had to be recreated (debugger must re-attach)
    worker_pid: Optional[int] = None
    kind: str = "reloaded"  # "patched" (code swapped in the live worker), "reloaded" (a fresh worker),
    #                         "restarted" (a new container) or "declined" (--reload patch: not patchable)
    functions: tuple[str, ...] = ()  # patched: the functions whose bodies changed
    patch_ms: Optional[float] = None  # patched: the time in the worker (diff + swap)
    init_seconds: Optional[float] = None  # reloaded: init()'s time in the new worker
    attached: Optional[bool] = None  # whether a debugger was attached to the worker (None: not known)
    reason: Optional[str] = None  # why no patch (declined, or auto fell back to a full reload)
    via: Optional[str] = None  # how the server was told: "pipe" (state folder) or "engine" (Docker API)


def _names(paths: Sequence[str]) -> str:
    return ", ".join(sorted({os.path.basename(p) for p in paths}))


class Recreate(Protocol):
    """How ``update()`` has a service made again with ``changes`` (the use case's: it rebuilds
    an image whose environment changed and keeps VS Code's files pointed at the new ports)."""

    def __call__(self, spec: ServiceSpec, changes: dict, *, client=None) -> "Service": ...


class Service:
    """A running (or stopped) amldebug service. Get one from ``attach()`` or ``get_service()``."""

    def __init__(self, spec: ServiceSpec, backend: Backend, client=None, *,
                 recreate: Optional[Recreate] = None) -> None:
        self.spec = spec
        self._backend = backend
        self._client = client
        self._recreate = recreate  # for update() (a Service does not import its registry or use case)

    @property
    def session(self) -> Optional[str]:
        """The start that made the service (a replacement under the same name has another)."""
        return getattr(self._backend, "session", None)

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
        return "Running (init failed)" if self._backend.transport.status(files).status == Status.FAILED else state

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

    def reload(self, *, timeout: float = 60, progress: Progress = _stderr, mode: ReloadMode = ReloadMode.FULL,
               changed: Sequence[str] = (), checked: bool = False) -> ReloadResult:
        """Serve the current files. ``mode`` auto or patch: when only the entry script
        changed (``changed``: the files saved) and only in bodies of functions other than
        init(), swap those functions' code in the live worker (globals and the model stay);
        otherwise (and always with ``full``) a new worker, a fresh init(), the same debugged
        master. ``checked``: the caller has compiled the files already."""
        if not checked:
            problem = syntax_error(self.spec.entry_path)
            if problem:
                raise ReloadError(f"{problem} (the service keeps serving the last good code)")
        preload = dict(self.spec.env).get("WORKER_PRELOAD", "").lower() == "true"
        if mode != ReloadMode.FULL and not preload:
            entry = os.path.realpath(self.spec.entry_path)
            others = [p for p in changed if os.path.realpath(p) != entry]
            if others:
                reason = f"{_names(others)} changed (only the entry script is patched)"
            else:
                patched = self._patch(timeout=min(timeout, 10))
                if patched.kind == "patched" or mode == ReloadMode.PATCH:
                    return patched
                reason = patched.reason
            if mode == ReloadMode.PATCH:
                return ReloadResult(0.0, restarted=False, kind="declined", reason=reason)
        else:
            reason = None
        if preload:
            started = time.monotonic()
            progress("WORKER_PRELOAD=true loads score.py in the gunicorn master, so a reload must "
                     "restart the container; re-attach the debugger afterwards")
            self.update()
            return ReloadResult(time.monotonic() - started, restarted=True, kind="restarted")
        state = StateFile(state_folder(self.name))
        before = self._backend.transport.status(state).generation
        started = time.monotonic()
        mark = self._backend.position()
        via = "pipe"
        if not channel.send(state.channel / channel.CONTROL, protocol.reload_line()):
            via = "engine"  # SIGHUP is gunicorn's own reload signal: no relay needed
            self._backend.signal(protocol.RELOAD_SIGNAL)
        try:
            done = self._backend.transport.wait(state, lambda st: st.generation > before and st.status in SETTLED,
                                                timeout, alive=self._running, poll=0.002)
        except TimeoutError:
            raise ReloadError(f"the new worker of '{self.name}' was not ready after {timeout:.0f} s "
                              "(paused at a breakpoint in init()?)") from None
        elapsed = time.monotonic() - started
        if done is None:
            raise ContainerError(f"service '{self.name}' stopped during the reload", self.get_logs(40))
        if done.status == Status.FAILED:
            log = self._backend.logs(since=mark)
            error = logged_exception(log) or "\n".join(log.splitlines()[-20:])
            raise ReloadError(f"the new code failed in import or init(); the service waits for the next "
                              f"save:\n{error}")
        init_ms = done.init_ms
        return ReloadResult(elapsed, restarted=False, worker_pid=done.pid, kind="reloaded",
                            init_seconds=None if init_ms is None else init_ms / 1000, attached=self.debugger_attached(),
                            reason=reason, via=via)

    def _patch(self, timeout: float) -> ReloadResult:
        """Ask the serving worker to patch the changed functions of the entry script."""
        state = StateFile(state_folder(self.name))
        current = self._backend.transport.status(state)
        pid = current.pid
        if current.status != Status.READY or not pid:
            return ReloadResult(0.0, restarted=False, kind="declined", reason="no worker is serving")
        seq = f"{os.getpid()}-{time.monotonic_ns()}"
        started = time.monotonic()
        sent = self._tell(state, channel.patch_pipe(pid), protocol.PatchRequest.new(seq=seq).encode())
        if sent is None:
            return ReloadResult(0.0, restarted=False, kind="declined",
                                reason=f"no way to reach worker {pid}'s patch pipe (started by an older amldebug?)")
        via, posted = sent
        try:
            answer = channel.wait_answer(state.channel / channel.PATCH_ANSWER, lambda a: a.seq == seq,
                                         timeout, record=protocol.PatchAnswer, posted=posted)
        except channel.Undelivered:
            answer = protocol.PatchAnswer.new(ok=False, reason=f"worker {pid} no longer reads its patch pipe")
        elapsed = time.monotonic() - started
        if answer is None:
            return ReloadResult(elapsed, restarted=False, kind="declined",
                                reason=f"the worker did not answer within {timeout:.0f} s")
        if not answer.ok:
            return ReloadResult(elapsed, restarted=False, kind="declined", reason=answer.reason, via=via)
        return ReloadResult(elapsed, restarted=False, worker_pid=answer.pid, kind="patched",
                            functions=tuple(answer.functions), patch_ms=answer.ms,
                            attached=self.debugger_attached(), via=via)

    def _tell(self, state: StateFile, pipe: str, line: str) -> Optional[tuple[str, Optional[str]]]:
        """Write ``line`` to one of the service's pipes by its runtime's transport: ("pipe",
        None) through the state folder, ("engine", seq) by the inbox and a signal through the
        engine (Docker Desktop), None when neither can reach it."""
        return self._backend.transport.tell(state.channel, pipe, line)

    def channel(self) -> Optional[str]:
        """How amldebug tells the server of a save: "pipe" (named pipes in the state folder),
        "engine" (signals through the Docker API: this host cannot open the container's
        pipes, as with Docker Desktop), None (neither: no inbox either, an older launcher;
        a reload is still gunicorn's SIGHUP)."""
        return self._backend.transport.reach(StateFile(state_folder(self.name)).channel)

    def debugger_attached(self, timeout: float = 0.5) -> Optional[bool]:
        """Whether a debugger client is attached to the service now (None: it cannot say)."""
        state = StateFile(state_folder(self.name))
        seq = f"{os.getpid()}-{time.monotonic_ns()}"
        sent = self._tell(state, channel.CONTROL, protocol.status_line(seq))
        if sent is None:
            return None
        try:
            answer = channel.wait_answer(state.channel / channel.MASTER_ANSWER, lambda a: a.seq == seq,
                                         timeout, record=protocol.MasterAnswer, posted=sent[1])
        except channel.Undelivered:
            return None
        return None if answer is None else bool(answer.attached)

    def _running(self) -> bool:
        return self._backend.status() == "running"

    def update(self, **changes) -> "Service":
        """Recreate the container with changed settings (image, model, env, ports), by the use
        case that made it (the launch.json entry follows the new ports). The debugger must
        re-attach."""
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
        if self._recreate is None:
            raise UsageError(f"service '{self.name}' was not made by amldebug's registry; get it with "
                             "amldebug.get_service() to update it")
        files = StateFile(state_folder(self.name))
        owned = files.owner_pid() == os.getpid()  # a foreground session keeps owning the recreated service
        new = self._recreate(self.spec, changes, client=self._client)
        self.spec, self._backend = new.spec, new._backend
        if owned:
            files.claim()
        return self

    def delete(self) -> None:
        self._backend.remove()
        # A replacement started under the same name (F5 while a terminal attach runs) keeps its folder.
        StateFile(state_folder(self.name)).remove(session=getattr(self._backend, "session", None))

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
        code, output = self.run_payload_script(protocol.MODEL_PATH_SCRIPT, model)
        try:
            return json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ContainerError(f"could not resolve model '{model}' in service '{self.name}'", output) from None


