"""A workspace's .vscode folder: check that its launch.json and tasks.json can be merged into
before anything starts, and merge amldebug's entries in under one lock (jsonc does the
merging and the atomic writes)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
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


def _tasks(workspace: Path) -> list[dict]:
    path = _vscode_path(workspace, "tasks")
    text = jsonc.read_config_file(path)
    if text is None:
        return []
    parsed = jsonc.parse_jsonc(text, str(path))
    tasks = parsed.get("tasks") if isinstance(parsed, dict) else None
    return [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []


def task_labels(workspace: Path) -> set[str]:
    """Labels of the tasks in ``workspace/.vscode/tasks.json`` (empty when there is none)."""
    return {t["label"] for t in _tasks(workspace) if isinstance(t.get("label"), str)}


def users_launcher(workspace: Path, label: str) -> list[str] | None:
    """What runs amldebug in the task ``label`` as tasks.json has it (its command and the
    arguments before ``attach``), when the user put their own there, such as ``amldebug``
    from pipx; None for amldebug's own default or an older amldebug's absolute path of its
    Python (``<path>/python -m amldebug``), which are not portable choices of the user's."""
    task = next((t for t in _tasks(workspace) if t.get("label") == label), None)
    if task is None or not isinstance(task.get("command"), str) or not isinstance(task.get("args"), list):
        return None
    args = task["args"]
    if "attach" not in args or not all(isinstance(a, str) for a in args):
        return None
    launcher = [task["command"], *args[: args.index("attach")]]
    absolute = PurePosixPath(launcher[0]).is_absolute() or PureWindowsPath(launcher[0]).is_absolute()
    if launcher == entries.attach_prefix()[:-1] or (launcher[1:] == ["-m", "amldebug"] and absolute):
        return None
    return launcher


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
    command = entries.task_command(spec)
    launcher = users_launcher(workspace, entries.task_label(spec.name))
    if launcher:  # the user's way to run amldebug stays; amldebug's part of the command line is updated
        command = [*launcher, *command[command.index("attach"):]]
    written = entries.vscode_files(Path(spec.source_dir), service=spec.name, debug_port=spec.debug_port,
                                   command=command, workspace=workspace,
                                   just_my_code=spec.just_my_code, runtime=spec.runtime,
                                   post_debug_task=post_debug_task)
    write_vscode(workspace, written)
    return launch_json_path(spec)
