"""``amldebug demo``: the bundled example, in the runtime this machine can run (a local
scoring image in Docker, else this machine's Python), refused when one already runs in the
same folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .core.options import AttachOptions, Runtime
from .core.progress import Progress, notice
from .core.spec import ServiceSpec
from .engine.discover import choose_runtime
from .engine.statefile import StateFile, state_folder
from .errors import DockerUnavailableError, UsageError
from .scaffold import init_project
from .session import list_services, spec_for
from .sources.project import PROJECT_FILE


def refuse_running(name: str, folder: Path, holder: Optional[int]) -> None:
    """A second demo in the same folder: say which service runs and how to stop it.
    ``holder``: the pid of the demo that holds the folder's demo lock (it may still be
    starting: no service to list yet)."""
    try:
        running = [s for s in list_services() if s.name == name and s.state == "Running"]
    except DockerUnavailableError:
        running = []
    if not running and holder is None:
        return
    files = StateFile(state_folder(name))
    pid = holder or (files.owner_pid() if not files.orphaned() else None)
    where = f"in another terminal (pid {pid}: Ctrl-C there stops it)" if pid else ""
    at = f"at {running[0].scoring_uri}" if running else "(still starting)"
    raise UsageError(f"service '{name}' of {folder}/ is already running {where}{' ' if where else ''}{at}; "
                     f"stop it with 'amldebug down --name {name}' and run 'amldebug demo' again, or pass --folder "
                     "for a second demo")


def demo_spec(folder: Path, image: Optional[str], runtime: Optional[Runtime], port: int, debug_port: int,
              wait: bool, progress: Progress) -> ServiceSpec:
    """The demo's service: the runtime chosen (and said why), the example project written
    to ``folder`` when it is not there yet."""
    chosen, image, why = choose_runtime(runtime, image, progress)
    notice(progress, f"amldebug demo: using the {chosen} runtime: {why}")
    if not (folder / PROJECT_FILE).is_file():
        init_project(folder, image=image)
        progress(f"amldebug demo: example project written to {folder}/")
    return spec_for(AttachOptions(source_dir=str(folder), image=image, port=port, debug_port=debug_port, wait=wait,
                                  runtime=chosen), progress=progress)
