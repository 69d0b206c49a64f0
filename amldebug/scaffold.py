"""``amldebug init``: a working project to debug, and the VS Code entries that start it on F5.

The project's files come from ``templates/project/``; ``amldebug.json`` records its layout so
that ``amldebug check`` and ``amldebug attach`` need no arguments in that folder. The VS Code
entries are pure values (:func:`vscode_files`) that :mod:`amldebug.vscode` merges into the
user's launch.json and tasks.json, keeping their own entries and comments.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from . import vscode
from .core.options import DEFAULT_DEBUG_PORT, AttachOptions, task_argv
from .core.paths import resource_dir
from .core.spec import ServiceSpec, service_name_from
from .errors import AmlDebugError, UsageError
from .runtime import inject
from .runtime.service import launch_config

PROJECT_FILE = "amldebug.json"
# What `amldebug attach` prints first and once the debugger can attach; VS Code waits for the
# second before it attaches (the task is a preLaunchTask of the launch configuration).
BEGINS_PATTERN = r"^amldebug: starting service"
ENDS_PATTERN = r"^amldebug: service '.*' is ready for a debugger"

# Key -> (default, may be null). Paths in the file are relative to the folder that holds it.
_PROJECT_KEYS = {
    "entry_script": ("score.py", False),
    "model_dir": (None, True),
    "model_name": (None, True),
    "env_file": (None, True),
    "image": (None, True),
}
_PATH_KEYS = ("model_dir", "env_file")
_SKIPPED = {"__pycache__", ".DS_Store"}
_SHOWN = 5  # existing entries named when refusing a folder that is not empty


def task_label(service: str) -> str:
    """The label of the background task that runs ``amldebug attach`` for ``service``."""
    return f"amldebug: {service}"


def down_task_label(service: str) -> str:
    """The label of the task that runs ``amldebug down`` for ``service``."""
    return f"amldebug: down {service}"


# --- the project file ----------------------------------------------------------------------


def project_file(image: str | None = None) -> dict:
    """The ``amldebug.json`` of a scaffolded project (pure)."""
    return {"entry_script": "score.py", "model_dir": "model", "model_name": "model",
            "env_file": "requirements.txt", "image": image}


def render_project_file(project: Mapping) -> bytes:
    return (json.dumps(dict(project), indent=4) + "\n").encode("utf-8")


def _describe(value: object) -> str:
    words = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null", str: "a string"}
    return words.get(type(value), f"the number {value}")


def parse_project(data: object, folder: Path, source: str) -> dict:
    """Validate the parsed ``amldebug.json`` of ``folder`` and resolve its paths (pure).

    ``entry_script`` stays relative to ``folder`` (as ``--entry-script`` is to SOURCE_DIR);
    ``model_dir`` and ``env_file`` become absolute ``Path`` values; missing keys get defaults.
    """
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a JSON object at the top level, found {_describe(data)}; "
                         f"write it as {json.dumps(project_file())}")
    unknown = sorted(set(data) - set(_PROJECT_KEYS))
    if unknown:
        raise UsageError(f"{source}: unknown key '{unknown[0]}'; the keys amldebug reads are "
                         f"{', '.join(_PROJECT_KEYS)}; remove it or fix its spelling")
    result = {}
    for key, (default, nullable) in _PROJECT_KEYS.items():
        value = data.get(key, default)
        if value is None and nullable:
            result[key] = None
            continue
        if not isinstance(value, str) or not value.strip():
            wanted = "a non-empty string or null" if nullable else "a non-empty string"
            found = repr(value) if isinstance(value, str) else _describe(value)
            raise UsageError(f"{source}: \"{key}\" must be {wanted}, found {found}; fix it in the file")
        result[key] = value
    entry = PurePosixPath(Path(result["entry_script"]).as_posix())
    if entry.is_absolute() or ".." in entry.parts:
        raise UsageError(f"{source}: \"entry_script\" '{result['entry_script']}' must be a path inside "
                         f"'{folder}', relative to it, such as \"score.py\"")
    result["entry_script"] = str(entry)
    for key in _PATH_KEYS:
        if result[key] is not None:
            result[key] = Path(os.path.abspath(folder / Path(result[key]).expanduser()))
    return result


def load_project(folder: Path) -> dict | None:
    """Read and validate ``folder/amldebug.json``; None when there is none.

    Returns ``entry_script`` (str, relative to ``folder``), ``model_dir`` and ``env_file``
    (absolute ``Path`` or None), ``model_name`` and ``image`` (str or None). A wrong key or
    type raises ``UsageError``, text that is not JSON ``ConfigFileError``, both naming the file.
    """
    path = Path(folder) / PROJECT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the file is not UTF-8 text; save it as UTF-8") from exc
    # JSON with comments, as in VS Code's files: a user may annotate the layout.
    return parse_project(vscode.parse_jsonc(text, str(path)), Path(folder), str(path))


# --- VS Code entries -------------------------------------------------------------------------


def attach_prefix(python: str = sys.executable) -> list[str]:
    """The argv that runs ``amldebug attach`` (before its arguments)."""
    return [python, "-m", "amldebug", "attach"]


def attach_command(project: Path, *, service: str, debug_port: int = DEFAULT_DEBUG_PORT,
                   workspace: Path | None = None, python: str = sys.executable) -> list[str]:
    """argv of the long-running ``amldebug attach`` for ``project``, run from ``workspace``.

    The other options (image, model, environment) come from the project's amldebug.json.
    """
    project, workspace = Path(project).resolve(), Path(workspace or project).resolve()
    try:
        source = Path(os.path.relpath(project, workspace)).as_posix()
    except ValueError:  # another drive on Windows
        source = str(project)
    # exact_ports: VS Code attaches to the port launch.json names, so the task must not move.
    options = AttachOptions(source_dir=source, name=service, debug_port=debug_port, exact_ports=True)
    return attach_prefix(python) + task_argv(options)


def _down_command(command: Sequence[str], service: str) -> list[str]:
    if "attach" not in command:
        raise ValueError(f"cannot tell how to run 'amldebug down' from {list(command)!r}; pass down_command")
    return [*command[: list(command).index("attach")], "down", "--name", service]


def vscode_files(
    project: Path, *, service: str, debug_port: int, command: Sequence[str], workspace: Path | None = None,
    just_my_code: bool = True, runtime: str = "container", post_debug_task: bool = False,
    down_command: Sequence[str] | None = None,
) -> dict[str, list[dict]]:
    """The entries that make F5 start ``service`` and attach to it: ``{"launch": [...], "tasks": [...]}``.

    ``command`` is the argv of ``amldebug attach`` (first element the executable), run from
    ``workspace`` (default: ``project``) as a background task labelled :func:`task_label`;
    the launch configuration names it as its ``preLaunchTask``. With ``post_debug_task`` a
    second task runs ``down_command`` (default: ``command`` up to ``attach``, then
    ``down --name SERVICE``) when the debug session ends. ``runtime`` ("container" or
    "process") decides where the service sees the code, as in ``service.launch_config``.
    """
    if not command:
        raise ValueError("command is empty; pass the argv of 'amldebug attach'")
    label = task_label(service)
    tasks = [vscode.build_task(label=label, command=command[0], args=list(command[1:]),
                               begins_pattern=BEGINS_PATTERN, ends_pattern=ENDS_PATTERN)]
    # Resolved as resolve_spec resolves them, so the mapping names the folder the service mounts.
    spec = ServiceSpec(name=service, source_dir=str(Path(project).resolve()), entry_script="score.py",
                       debug_port=debug_port, just_my_code=just_my_code, runtime=runtime,
                       workspace=str(Path(workspace or project).resolve()))
    launch = launch_config(spec, pre_launch_task=label)
    if post_debug_task:
        down = list(down_command) if down_command else _down_command(command, service)
        tasks.append({
            "label": down_task_label(service),
            "type": "shell",
            "command": down[0],
            "args": down[1:],
            "options": {"cwd": "${workspaceFolder}"},
            "problemMatcher": [],  # without it VS Code asks which matcher to scan the output with
        })
        launch["postDebugTask"] = down_task_label(service)
    return {"launch": [launch], "tasks": tasks}


def _vscode_path(workspace: Path, kind: str) -> Path:
    return Path(workspace) / ".vscode" / f"{kind}.json"


def check_vscode(workspace: Path) -> None:
    """Raise ``ConfigFileError`` if the launch.json or tasks.json of ``workspace`` cannot be merged into:
    it does not parse, cannot be read, or is a symlink to nothing (writing would create a file elsewhere)."""
    for kind in vscode.KINDS:
        path = _vscode_path(workspace, kind)
        text = vscode.read_config_file(path)
        if text is not None:
            vscode.parse_jsonc(text, str(path))


def _lock_dir() -> Path:
    # Under amldebug's cache, not in .vscode: nothing for the user to see, commit or clean up.
    return inject.cache_root() / "locks"


def write_vscode(workspace: Path, entries: Mapping[str, Sequence[dict]]) -> list[Path]:
    """Merge :func:`vscode_files` entries into ``workspace/.vscode``; returns the files written.

    One lock per workspace is held over both files, so concurrent runs keep each other's entries.
    """
    return vscode.write_config_files(Path(workspace) / ".vscode", entries, lock_dir=_lock_dir())


def task_labels(workspace: Path) -> set[str]:
    """Labels of the tasks in ``workspace/.vscode/tasks.json`` (empty when there is none)."""
    path = _vscode_path(workspace, "tasks")
    text = vscode.read_config_file(path)
    if text is None:
        return set()
    parsed = vscode.parse_jsonc(text, str(path))
    tasks = parsed.get("tasks") if isinstance(parsed, dict) else None
    if not isinstance(tasks, list):
        return set()
    return {t["label"] for t in tasks if isinstance(t, dict) and isinstance(t.get("label"), str)}


# --- the project -------------------------------------------------------------------------------


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
                 post_debug_task: bool = False, python: str = sys.executable) -> list[Path]:
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
