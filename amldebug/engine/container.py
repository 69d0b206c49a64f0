"""The container runtime: the image's own Python and scoring server, amldebug's payload and the
service's state folder mounted, on a Docker network of its own. Every engine call it makes
goes through :mod:`.docker`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator, Optional

import docker

from ..core.options import Runtime
from ..core.paths import cache_root
from ..core.progress import Progress
from ..core.spec import PAYLOAD_ROOT, ServiceSpec, launcher_command, layout
from ..errors import UsageError
from . import discover
from .docker import (
    LABEL_SESSION,
    connect,
    find_services,
    exec_run,
    follow_lines,
    get_image,
    log_text,
    probe_image,
    remove,
    remove_session,
    signal,
    spec_of,
    start_service,
    state,
)
from .transport import PipesOrInbox


class ContainerRunner:
    """The container runtime (backend.Runner): the image's own Python and server, the
    payload and state folder mounted, a network of its own."""

    runtime = Runtime.CONTAINER
    uses_image = True

    def __init__(self, client: Optional[docker.DockerClient] = None) -> None:
        self.client = client or connect()

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

    def find(self, name: Optional[str] = None) -> list:
        return [(spec_of(box), ContainerBackend(self.client, box)) for box in find_services(self.client, name)]

    @classmethod
    def describe(cls, spec: ServiceSpec) -> str:
        return f"image '{spec.image}'"

    @classmethod
    def complete(cls, spec: ServiceSpec, progress: Progress) -> ServiceSpec:
        # C2: F5 from 'amldebug init' (amldebug.json names its requirements.txt to watch, not to build)
        return spec if spec.image else discover.with_local_image(spec, progress)

    @classmethod
    def served_source_dir(cls, spec: ServiceSpec) -> str:
        return layout(spec).code_dir

    @classmethod
    def local_paths(cls, spec: ServiceSpec) -> list:
        """The code folder and every model, as mounted."""
        lay = layout(spec)
        pairs = [(lay.code_dir, spec.source_dir)] + [(inside, host) for host, inside in lay.model_mounts]
        return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    @classmethod
    def task_options(cls, spec: ServiceSpec, options):
        built = bool(spec.image and spec.image.startswith("amldebug-env:"))
        # An image amldebug built is built again from its environment by F5 (found at once
        # when nothing changed); the file's variables are read from it again too.
        if spec.inference_config:
            options = options.replace(inference_config=_rel(spec.inference_config, spec.workspace))
        elif built and spec.env_file:
            options = options.replace(env_file=_rel(spec.env_file, spec.workspace))
        if built and spec.base_image:
            return options.replace(base_image=spec.base_image)
        return options.replace(image=spec.image) if spec.image and not built else options


def _rel(path: str, workspace: str) -> str:
    """``path`` relative to the workspace, as the F5 task runs there."""
    try:
        return Path(os.path.relpath(path, workspace)).as_posix()
    except ValueError:  # another drive on Windows
        return path


class ContainerBackend:
    """A debug service that runs in a container (backend.Backend)."""

    runtime = Runtime.CONTAINER

    def __init__(self, client: docker.DockerClient, box) -> None:
        self.client = client
        self.box = box

    @property
    def transport(self) -> PipesOrInbox:
        """The pipes in the mounted state folder, else its inbox and a signal through the
        engine (Docker Desktop: this host cannot open the container's pipes)."""
        return PipesOrInbox(self.signal)

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
