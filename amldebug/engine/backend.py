"""What a runtime is, and which runtimes there are.

A runtime is one module under ``engine/`` with a class that implements :class:`Runner`
(probe, start, find and list its services, undo an unfinished start, and what it decides
for the rest of amldebug: where the server sees the code, what the F5 task passes to start
it again, whether an environment is built into an image for it), and the :class:`Backend`
its start returns (status, logs, signals, stop, and the :class:`~.transport.Transport`
that carries control lines and answers to the server). :data:`RUNTIMES` maps each
``--runtime`` name to its class: the one place that knows which runtimes exist. Nothing
outside ``engine/`` asks which runtime a service uses; it asks :func:`runtime_of` or
:func:`runner_for` and calls the interface.

Today: ``container.py`` (Docker: the image's own Python, the payload and the state folder
mounted, ports published by the engine) and ``process.py`` (a local Python, ports bound on
this host). ``docs/runtimes.md`` says what a new one must provide, and
``tests/integration/test_runtime_contract.py`` holds every registered runtime to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional, Protocol, Sequence

from ..core.options import Runtime
from ..core.progress import Progress
from ..core.spec import ServiceSpec
from .container import ContainerRunner
from .process import ProcessRunner
from .statefile import StateFile
from .transport import Transport

# A point in a service's log, for ``logs(since=...)``: each backend's own kind of value
# (Docker filters by time, a log file by offset). Only ever passed back to the backend.
LogMark = Any


class Backend(Protocol):
    """A running (or stopped) service, as its runtime sees it."""

    runtime: Runtime
    session: Optional[str]  # the start that made it (None for services of earlier versions)

    @property
    def id(self) -> str: ...

    @property
    def transport(self) -> Transport:
        """How control lines and their answers reach the server (pipes in the shared state
        folder, the inbox relayed by a signal through the engine, ...)."""

    def status(self) -> str:
        """'running', 'exited', ... as Docker names states, or 'Deleted'."""

    def position(self) -> LogMark:
        """A mark of the log's end now, to read what comes after it."""

    def logs(self, *, tail: int | str = "all", since: Optional[LogMark] = None) -> str: ...

    def follow(self, *, tail: int | str = "all") -> Iterator[str]: ...

    def signal(self, sig: str) -> None: ...

    def remove(self) -> None: ...

    def run_python(self, python: str, args: list) -> tuple[int, str]:
        """Run the service's Python with ``args`` where the service runs."""


class Runner(Protocol):
    """How one runtime probes, starts, finds and cleans up after a service. Constructed as
    ``Runner(client)`` (``client``: an engine client to reuse, or None); a runtime whose
    engine does not answer raises :class:`~amldebug.errors.DockerUnavailableError` there or
    in :meth:`find`."""

    runtime: Runtime
    uses_image: bool  # an environment is built into an image for it (and --image names what runs)

    def probe(self, spec: ServiceSpec, payload: Path) -> dict:
        """What runs the server: ``python``, ``version``, ``machine``, ``server`` (and the
        ``uid``/``gid`` it runs as, where that is not us)."""

    def start(self, spec: ServiceSpec, state: StateFile, payload: Path, info: dict, session: str) -> Backend:
        """Start the service (the caller waits for it to be ready). Port exposure: the scoring
        server answers on 127.0.0.1:``spec.port``, debugpy on ``spec.debug_bind``:``spec.debug_port``
        (the caller picked both free)."""

    def find(self, name: Optional[str] = None) -> list[tuple[ServiceSpec, Backend]]:
        """The services of this runtime (the one called ``name``), with the specs they were
        started with; written by this or an earlier version."""

    def undo(self, spec: ServiceSpec, state: StateFile, session: str, unreturned: bool) -> None:
        """Remove what an unfinished start made (``unreturned``: start() did not return a
        Backend, as when a signal came inside it)."""

    def payload_path(self, payload: Path, script: str) -> str:
        """Where the service sees one of amldebug's payload files."""

    # -- what the runtime decides for the rest of amldebug (no engine needed) ----------------
    @classmethod
    def describe(cls, spec: ServiceSpec) -> str:
        """What runs the service, for a progress line: "image 'x'", "Python /usr/bin/python3"."""

    @classmethod
    def complete(cls, spec: ServiceSpec, progress: Progress) -> ServiceSpec:
        """``spec`` with what the user did not name found (the container runtime looks for a
        local scoring image, and falls back to another runtime when there is none)."""

    @classmethod
    def served_source_dir(cls, spec: ServiceSpec) -> str:
        """Where the server sees the source folder (what launch.json maps it to)."""

    @classmethod
    def local_paths(cls, spec: ServiceSpec) -> Sequence[tuple[str, str]]:
        """(path the server sees, local path) for what it sees elsewhere than here, longest
        first: printed tracebacks are mapped back to local files."""

    @classmethod
    def task_options(cls, spec: ServiceSpec, options) -> Any:
        """The F5 task's AttachOptions with what starts this runtime again (an image, a Python)."""


# Asked in this order when a service is looked for by name: one that needs no engine first.
RUNTIMES: dict[Runtime, type] = {
    Runtime.PROCESS: ProcessRunner,
    Runtime.CONTAINER: ContainerRunner,
}


def runtime_of(spec_or_name: ServiceSpec | Runtime | str) -> type:
    """The runtime class of a spec (or a ``--runtime`` name), for what needs no engine."""
    name = getattr(spec_or_name, "runtime", spec_or_name)
    return RUNTIMES[Runtime(name)]


def runner_for(spec: ServiceSpec, client=None) -> Runner:
    """The runtime that runs ``spec``, connected (its engine asked once)."""
    return runtime_of(spec)(client)


def runners(client=None, names: Sequence[Runtime] = tuple(RUNTIMES)) -> Iterator[tuple[type, Any]]:
    """(class, runner or the error its engine answered with) for every registered runtime."""
    from ..errors import DockerUnavailableError

    for name in names:
        cls = RUNTIMES[name]
        try:
            yield cls, cls(client)
        except DockerUnavailableError as exc:
            yield cls, exc
