"""A workspace's .vscode folder: check that its launch.json and tasks.json can be merged into
before anything starts, and merge amldebug's entries in under one lock (jsonc does the
merging and the atomic writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..core.paths import cache_root
from ..core.spec import ServiceSpec
from . import entries, jsonc


def _vscode_path(workspace: Path, kind: str) -> Path:
    return Path(workspace) / ".vscode" / f"{kind}.json"


def check_vscode(workspace: Path) -> None:
    """Raise ``ConfigFileError`` if the launch.json or tasks.json of ``workspace`` cannot be merged into:
    it does not parse, cannot be read, or is a symlink to nothing (writing would create a file elsewhere)."""
    for kind in jsonc.KINDS:
        path = _vscode_path(workspace, kind)
        text = jsonc.read_config_file(path)
        if text is not None:
            jsonc.parse_jsonc(text, str(path))


def _lock_dir() -> Path:
    # Under amldebug's cache, not in .vscode: nothing for the user to see, commit or clean up.
    return cache_root() / "locks"


def write_vscode(workspace: Path, written: Mapping[str, Sequence[dict]]) -> list[Path]:
    """Merge :func:`entries.vscode_files` entries into ``workspace/.vscode``; returns the files written.

    One lock per workspace is held over both files, so concurrent runs keep each other's entries.
    """
    return jsonc.write_config_files(Path(workspace) / ".vscode", written, lock_dir=_lock_dir())


def task_labels(workspace: Path) -> set[str]:
    """Labels of the tasks in ``workspace/.vscode/tasks.json`` (empty when there is none)."""
    path = _vscode_path(workspace, "tasks")
    text = jsonc.read_config_file(path)
    if text is None:
        return set()
    parsed = jsonc.parse_jsonc(text, str(path))
    tasks = parsed.get("tasks") if isinstance(parsed, dict) else None
    if not isinstance(tasks, list):
        return set()
    return {t["label"] for t in tasks if isinstance(t, dict) and isinstance(t.get("label"), str)}


def launch_json_path(spec: ServiceSpec) -> Path:
    return _vscode_path(Path(spec.workspace), "launch")


def check_vscode_files(spec: ServiceSpec) -> None:
    """Refuse early (before anything starts) when launch.json or tasks.json cannot be parsed."""
    check_vscode(Path(spec.workspace))


def write_vscode_files(spec: ServiceSpec, *, post_debug_task: bool | None = None) -> Path:
    """Write the attach configuration and the F5 task (merged into the user's files)."""
    workspace = Path(spec.workspace)
    if post_debug_task is None:  # keep what an earlier 'amldebug vscode --post-debug-task' set up
        post_debug_task = entries.down_task_label(spec.name) in task_labels(workspace)
    written = entries.vscode_files(Path(spec.source_dir), service=spec.name, debug_port=spec.debug_port,
                                   command=entries.task_command(spec), workspace=workspace,
                                   just_my_code=spec.just_my_code, runtime=spec.runtime,
                                   post_debug_task=post_debug_task)
    write_vscode(workspace, written)
    return launch_json_path(spec)
