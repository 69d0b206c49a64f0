"""Where services come from: start (or replace) one, find one by name, list them all, in
either runtime. Like docker-py's collections over its models: the functions here make
:class:`~amldebug.service.service.Service` objects, and hand each the way to start itself
again (for ``update()``)."""

from __future__ import annotations

import uuid
from typing import Optional

from ..core.progress import Progress, notice, stage
from ..core.scriptcheck import check_entry_script
from ..core.spec import ServiceSpec
from ..diagnose.log import logged_exception
from ..engine import inject, ports
from ..engine.backend import Runner, runner_for, runners
from ..engine.statefile import ATTACHABLE, SETTLED, StateFile, Status, state_folder
from ..errors import ContainerError, DockerUnavailableError, ServiceNotFoundError, UsageError
from .service import Recreate, Service, _stderr


def _restart(spec: ServiceSpec, changes: dict, *, client=None) -> Service:
    """update() of a service made here without a use case's Recreate: started again as it is."""
    return start(spec.replace(**changes), client=client, keep_ports=True)


def start(spec: ServiceSpec, *, client=None, keep_ports: bool = False, exact_ports: bool = False,
          progress: Progress = _stderr, ready_timeout: float = 120, recreate: Optional[Recreate] = None) -> Service:
    """Start (or replace) the service described by ``spec`` and wait until it is attachable
    (with spec.wait) or serving (without). Raises, leaving nothing running, on failure.
    ``recreate``: how its update() makes it again (the use case's)."""
    check_entry_script(spec.entry_path)
    payload = inject.payload_dir()
    runner = runner_for(spec, client)
    client = getattr(runner, "client", client)
    stage(progress, f"probing {runner.describe(spec)}")
    info = runner.probe(spec, payload)
    cached = inject.debugpy_cached(payload, info["version"])
    stage(progress, f"{'debugpy' if cached else 'fetching debugpy'} for Python {info['version']}")
    inject.ensure_debugpy(payload, info["version"], info["machine"])

    released = set()
    for old in _existing(spec.name, client):
        released |= {old.spec.port, old.spec.debug_port}
        owner = StateFile(state_folder(spec.name)).owner_pid()
        if owner and not StateFile(state_folder(spec.name)).orphaned():  # its terminal says so too (cli)
            progress(f"amldebug: taking over service '{spec.name}' from the 'amldebug attach' that runs it "
                     f"(pid {owner}); that session ends")
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
            notice(progress, f"port {spec.port} is in use; serving on {port} instead")
        if debug_port != spec.debug_port:
            notice(progress, f"debug port {spec.debug_port} is in use; using {debug_port} instead")
    spec = spec.replace(port=port, debug_port=debug_port)
    state = StateFile(state_folder(spec.name))
    session = uuid.uuid4().hex
    backend = None
    try:  # from here on, anything (a Ctrl-C, SIGTERM, a failure) removes what this start made
        # not "amldebug: starting ...": that is the F5 task's begin pattern (contract C1), printed once, first
        stage(progress, f"launching the {spec.runtime}")
        backend = runner.start(spec, state, payload, info, session)
        _wait_started(backend, spec, state, ready_timeout, progress)
    except BaseException:
        _undo_start(runner, spec, backend, session, state)
        raise
    return Service(spec, backend, client, recreate=recreate or _restart)


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
    """Services of that name in every runtime (one whose engine does not answer is skipped)."""
    return [s for found in _found(client, name, strict=False) for s in found]


def _found(client, name=None, *, strict: bool, recreate: Optional[Recreate] = None):
    """Each runtime's services (named ``name``), as a list per runtime; a runtime whose
    engine does not answer is skipped, or with ``strict`` yields its error to raise."""
    for _, runner in runners(client):
        if isinstance(runner, DockerUnavailableError):
            if strict:
                yield runner
            continue
        try:
            yield [Service(spec, backend, getattr(runner, "client", None), recreate=recreate or _restart)
                   for spec, backend in runner.find(name)]
        except DockerUnavailableError as exc:
            if strict:
                yield exc


def _wait_started(backend, spec: ServiceSpec, state: StateFile, timeout: float, progress: Progress = _stderr) -> None:
    wanted = ATTACHABLE if spec.wait else SETTLED
    where = str(spec.runtime)  # "the container" / "the process" of the service
    # With wait, the service is ready once debugpy listens (init() runs after VS Code attaches).
    stage(progress, "waiting for the debugger to listen" if spec.wait else "waiting for init()")
    try:
        done = backend.transport.wait(state, lambda st: st.status in wanted, timeout,
                                      alive=lambda: backend.status() == "running")
    except TimeoutError:
        raise ContainerError(f"service '{spec.name}' was not ready after {timeout:.0f} s",
                             backend.logs(tail=40)) from None
    if done is None:
        raise ContainerError(f"the {where} of service '{spec.name}' exited while starting",
                             _failure_excerpt(backend.logs()))
    if done.status == Status.FAILED:
        raise ContainerError(f"service '{spec.name}' failed to start: the worker could not import the "
                             f"entry script or run init()", _failure_excerpt(backend.logs()))


def _failure_excerpt(log: str) -> str:
    exc = logged_exception(log)
    tail = "\n".join(log.splitlines()[-15:])
    return f"{exc}\n\nlast log lines:\n{tail}" if exc else tail


def get_service(name: str, *, client=None, recreate: Optional[Recreate] = None) -> Service:
    """The service called ``name``, in whichever runtime it runs."""
    unanswered = None
    for found in _found(client, name, strict=True, recreate=recreate):
        if isinstance(found, DockerUnavailableError):
            unanswered = unanswered or found
        elif found:
            return found[0]
    if unanswered is not None:
        raise unanswered
    raise ServiceNotFoundError(f"no amldebug service named '{name}'; 'amldebug status' lists them, "
                               f"'amldebug attach' starts one")


def list_services(*, client=None, recreate: Optional[Recreate] = None) -> list[Service]:
    """Every service, in every runtime whose engine answers (with an explicit client, or when
    none is found anywhere, an engine that does not answer is an error)."""
    services, unanswered = [], None
    for found in _found(client, strict=True, recreate=recreate):
        if isinstance(found, DockerUnavailableError):
            if client is not None:
                raise found
            unanswered = unanswered or found
        else:
            services += found
    if unanswered is not None and not services:
        raise unanswered
    return services
