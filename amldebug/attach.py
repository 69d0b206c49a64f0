"""``amldebug attach``: start the debug service and write the VS Code configuration,
all or nothing (a launch.json that cannot be parsed stops us before any container starts;
a failure after the start removes the container)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import vscode
from .service import Progress, Service, _stderr, launch_config, start
from .spec import ServiceSpec


@dataclasses.dataclass(frozen=True)
class Attached:
    service: Service
    launch_json: Path | None


def launch_json_path(spec: ServiceSpec) -> Path:
    return Path(spec.workspace) / ".vscode" / "launch.json"


def check_vscode_files(spec: ServiceSpec) -> None:
    """Refuse early (before anything starts) when an existing launch.json cannot be parsed."""
    path = launch_json_path(spec)
    if path.is_file():
        vscode.parse_jsonc(path.read_text(encoding="utf-8"), str(path))


def write_vscode_files(spec: ServiceSpec, *, pre_launch_task: str | None = None) -> Path:
    return vscode.write_config_file(launch_json_path(spec), launch_config(spec, pre_launch_task=pre_launch_task),
                                    kind="launch")


def attach(spec: ServiceSpec, *, write_vscode: bool = True, client=None, progress: Progress = _stderr) -> Attached:
    """Start (or replace) the service and point VS Code at it."""
    if write_vscode:
        check_vscode_files(spec)
    service = start(spec, client=client, progress=progress)
    written = None
    if write_vscode:
        try:
            written = write_vscode_files(service.spec)
        except BaseException:
            service.delete()
            raise
    return Attached(service, written)
