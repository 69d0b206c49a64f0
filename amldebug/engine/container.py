"""The container runtime: the image's own Python and scoring server, amldebug's payload and the
service's state folder mounted, on a Docker network of its own. Every engine call it makes
goes through :mod:`.docker`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Optional

import docker

from ..core.options import Runtime
from ..core.paths import cache_root
from ..core.spec import PAYLOAD_ROOT, ServiceSpec, launcher_command, layout
from ..errors import UsageError
from .docker import (
    LABEL_SESSION,
    exec_run,
    follow_lines,
    get_image,
    log_text,
    probe_image,
    remove,
    remove_session,
    signal,
    start_service,
    state,
)


class ContainerRunner:
    """The container runtime (backend.Runner): the image's own Python and server, the
    payload and state folder mounted, a network of its own."""

    runtime = Runtime.CONTAINER

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def probe(self, spec: ServiceSpec, payload: Path) -> dict:
        if not spec.image:
            raise UsageError("no image given; pass --image with a local scoring image, or --runtime process")
        return probe_image(self.client, get_image(self.client, spec.image), payload, cache_root())

    def start(self, spec: ServiceSpec, state, payload: Path, info: dict, session: str) -> "ContainerBackend":
        state.reset(owner=(info["uid"], info["gid"]) if "uid" in info else None, session=session)
        lay = layout(spec, server=info["server"])
        box = start_service(self.client, spec, lay, launcher_command(info["python"], lay), payload, state.channel,
                            spec.port, spec.debug_port, session=session)
        return ContainerBackend(self.client, box)

    def undo(self, spec: ServiceSpec, state, session: str, unreturned: bool) -> None:
        # A create that was sent when the signal came may still be carried out: look again a while.
        remove_session(self.client, session, settle=1.0 if unreturned else 0)

    def payload_path(self, payload: Path, script: str) -> str:
        return f"{PAYLOAD_ROOT}/{script}"


class ContainerBackend:
    """A debug service that runs in a container (backend.Backend)."""

    runtime = Runtime.CONTAINER

    def __init__(self, client: docker.DockerClient, box) -> None:
        self.client = client
        self.box = box

    @property
    def session(self) -> Optional[str]:
        return (self.box.labels or {}).get(LABEL_SESSION)

    @property
    def id(self) -> str:
        return self.box.id

    def status(self) -> str:
        return state(self.box)

    def position(self) -> float:
        """A point in the log, for logs(since=...): the time now (Docker filters by time)."""
        return time.time() - 0.5

    def logs(self, *, tail: int | str = "all", since: float | None = None) -> str:
        return log_text(self.box, tail=tail, since=since)

    def follow(self, *, tail: int | str = "all") -> Iterator[str]:
        return follow_lines(self.box, tail=tail)

    def signal(self, sig: str) -> None:
        signal(self.box, sig)

    def remove(self) -> None:
        remove(self.box)

    def run_python(self, python: str, args: list) -> tuple[int, str]:
        return exec_run(self.box, [python, *args])
