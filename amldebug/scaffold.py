"""``amldebug init``: a working project to debug, and the VS Code entries that start it on F5.

The project's files come from ``templates/project/``; ``amldebug.json`` (sources.project)
records its layout so that ``amldebug check`` and ``amldebug attach`` need no arguments in
that folder. The VS Code entries (vscode.entries) are merged into the user's launch.json and
tasks.json (vscode.files), keeping their own entries and comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .core.options import DEFAULT_DEBUG_PORT
from .core.paths import resource_dir
from .core.spec import service_name_from
from .errors import AmlDebugError, UsageError
from .sources.project import PROJECT_FILE, project_file, render_project_file
from .vscode.entries import INTERPRETER, attach_command, task_label, vscode_files
from .vscode.files import check_vscode, users_launcher, write_vscode

_SKIPPED = {"__pycache__", ".DS_Store"}
_SHOWN = 5  # existing entries named when refusing a folder that is not empty


def template_files() -> dict[str, bytes]:
    """The project template: POSIX path relative to the project -> content."""
    root = resource_dir("templates") / "project"
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not _SKIPPED & set(rel.parts):
            files[rel.as_posix()] = path.read_bytes()
    return files


def _refuse_clashes(target: Path, names: Sequence[str]) -> None:
    """With --force, a path we write must not be a folder, nor sit below something that is a file."""
    for name in names:
        path = target / name
        if path.exists() and not path.is_file():
            raise UsageError(f"'{path}' is a folder, but amldebug init writes a file there; move it aside")
        for parent in path.relative_to(target).parents:
            if (target / parent).is_file():
                raise UsageError(f"'{target / parent}' is a file, but amldebug init writes '{path}' below it; "
                                 f"move it aside")


def init_project(target: Path, *, force: bool = False, image: str | None = None,
                 post_debug_task: bool = False, python: str = INTERPRETER) -> list[Path]:
    """Create a working project in ``target`` (made if missing) and its VS Code entries.

    Refuses a folder that is not empty unless ``force``; then overwrites only the files it
    writes and merges into ``.vscode/launch.json`` and ``tasks.json``. Returns the files written.
    """
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"'{target}' is a file; pass a folder for the new project (it is created if missing)")
    try:
        existing = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    except OSError as exc:
        raise UsageError(f"cannot list '{target}' ({exc.strerror or exc}); check its permissions") from exc
    if existing and not force:
        more = len(existing) - _SHOWN
        shown = ", ".join(existing[:_SHOWN]) + (f" and {more} more" if more > 0 else "")
        raise UsageError(f"folder '{target}' is not empty ({shown}); pass a new or empty folder, or --force to "
                         f"overwrite amldebug's files in it (other files are kept)")
    files = {**template_files(), PROJECT_FILE: render_project_file(project_file(image))}
    _refuse_clashes(target, [*files, ".vscode/tasks.json", ".vscode/launch.json"])
    service = service_name_from(target)
    command = attach_command(target, service=service, debug_port=DEFAULT_DEBUG_PORT, python=python)
    launcher = users_launcher(target, task_label(service)) if target.is_dir() else None
    if launcher:  # --force into a project whose task runs amldebug the user's way: keep it
        command = [*launcher, *command[command.index("attach"):]]
    entries = vscode_files(target, service=service, debug_port=DEFAULT_DEBUG_PORT, command=command,
                           post_debug_task=post_debug_task)
    check_vscode(target)  # a launch.json we cannot merge into stops us before anything is written
    written = write_vscode(target, entries)
    for name, data in files.items():
        path = target / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise AmlDebugError(f"cannot write '{path}' ({exc.strerror or exc}); check the folder's "
                                f"permissions and free space") from exc
        written.append(path)
    return written
