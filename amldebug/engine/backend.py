"""The two things a runtime provides, as Protocols (in the way skaffold's debug transformers
plug in): a :class:`Runner` that probes and starts a service, and the :class:`Backend` it
returns, which the Service object talks to. The container runtime (``container.py``) and
the process runtime (``process.py``) implement both; nothing above them asks which
runtime it has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional, Protocol

from ..core.options import Runtime
from ..core.spec import ServiceSpec
from .container import ContainerRunner
from .docker import connect
from .process import ProcessRunner
from .statefile import StateFile

# A point in a service's log, for ``logs(since=...)``: each backend's own kind of value
# (Docker filters by time, a log file by offset). Only ever passed back to the backend.
LogMark = Any


class Backend(Protocol):
    """A running (or stopped) service, as its runtime sees it."""

    runtime: Runtime
    session: Optional[str]  # the start that made it (None for services of earlier versions)

    @property
    def id(self) -> str: ...

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
    """How one runtime probes, starts and cleans up after a service."""

    runtime: Runtime

    def probe(self, spec: ServiceSpec, payload: Path) -> dict:
        """What runs the server: ``python``, ``version``, ``machine``, ``server`` (and the
        ``uid``/``gid`` it runs as, where that is not us)."""

    def start(self, spec: ServiceSpec, state: StateFile, payload: Path, info: dict, session: str) -> Backend:
        """Start the service (the caller waits for it to be ready)."""

    def undo(self, spec: ServiceSpec, state: StateFile, session: str, unreturned: bool) -> None:
        """Remove what an unfinished start made (``unreturned``: start() did not return a
        Backend, as when a signal came inside it)."""

    def payload_path(self, payload: Path, script: str) -> str:
        """Where the service sees one of amldebug's payload files."""


def runner_for(spec: ServiceSpec, client=None) -> Runner:
    """The runtime that runs ``spec`` (the one place that asks which)."""
    if spec.runtime == Runtime.PROCESS:
        return ProcessRunner()
    return ContainerRunner(client or connect())
