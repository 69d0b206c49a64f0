"""The entries amldebug writes into a workspace's launch.json and tasks.json, as pure values:
the debugpy attach configuration of a service, the background task that runs
``amldebug attach`` for F5 (its argv made from the service's options by the one mapping,
``options.task_argv``), and the task that stops it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..core.options import DEFAULT_DEBUG_PORT, DEFAULT_RUNTIME, AttachOptions, Runtime, task_argv
from ..core.spec import ServiceSpec
from ..engine.backend import runtime_of

# The command of the F5 task: the interpreter selected in VS Code's Python extension (which the
# debugpy extension depends on), resolved when the task runs. Not an absolute path of the machine
# that wrote tasks.json, and not `amldebug` on PATH: VS Code does not reliably activate the
# selected environment in a task's terminal (microsoft/vscode-python#22880, microsoft/vscode#205177).
INTERPRETER = "${command:python.interpreterPath}"

# What VS Code's background problem matcher reads (contract C1 with the CLI and the reload loop).
# A line that begins a run: attach starting, or a reload starting. No capture groups: VS Code
# takes group 1 of a begins pattern as the one file whose problems the run replaces.
BEGINS_PATTERN = r"^amldebug: (?:starting|reloading)"
# A line that ends it: the service can take a debugger, or a reload is over (done, failed, or
# refused with the last good code still serving). VS Code clears the problems a run did not
# report again only here, so a fixed error leaves the Problems panel on the next good save.
ENDS_PATTERN = (r"^amldebug: (?:service '.*' is ready for a debugger|patched |reloaded|reload failed"
                r"|still serving the last good code)")
# `<path>:<line>: error: <message>` at the start of a line, or after the CLI's error prefix; the
# path never starts with "amldebug: ", so the prefix is never taken for part of it.
PROBLEM_REGEXP = r"^(?:amldebug: error: )?(?!amldebug: )(\S.*?):(\d+):\s+(error|warning):\s+(.*)$"
# A VS Code task runs in a pseudo-terminal: without this the CLI would draw live progress there.
TASK_ENV = {"AMLDEBUG_PROGRESS": "plain"}


def config_name(service: str) -> str:
    """Return the launch configuration name by which amldebug finds its entry for ``service`` again."""
    return f"amldebug: {service}"


def build_attach_config(
    *, name: str, port: int, local_root: str, remote_root: str, host: str = "localhost", just_my_code: bool = True,
    pre_launch_task: str | None = None, post_debug_task: str | None = None,
) -> dict:
    """Return a debugpy attach configuration for the service ``name`` listening on ``host:port``."""
    tasks = {"preLaunchTask": pre_launch_task, "postDebugTask": post_debug_task}
    return {
        "name": config_name(name),
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": host, "port": port},
        "pathMappings": [{"localRoot": local_root, "remoteRoot": remote_root}],
        "justMyCode": just_my_code,
        **{key: task for key, task in tasks.items() if task is not None},
    }


def build_task(
    *, label: str, command: str, args: list[str], begins_pattern: str = BEGINS_PATTERN,
    ends_pattern: str = ENDS_PATTERN, cwd: str = "${workspaceFolder}", env: dict[str, str] | None = None,
) -> dict:
    """Return a VS Code background shell task; the two patterns tell VS Code when the task is ready.

    ``activeOnStart``: VS Code counts the task as busy from its first moment, so a start that
    builds an image first is tracked at once rather than after its first line.
    """
    return {
        "label": label,
        "type": "shell",
        "command": command,
        "args": list(args),
        "isBackground": True,
        "options": {"cwd": cwd, "env": dict(TASK_ENV if env is None else env)},
        "problemMatcher": {
            "owner": "amldebug",
            # amldebug prints absolute paths; autoDetect also takes workspace-relative ones.
            "fileLocation": ["autoDetect", "${workspaceFolder}"],
            "pattern": {"regexp": PROBLEM_REGEXP, "file": 1, "line": 2, "severity": 3, "message": 4},
            "background": {"activeOnStart": True, "beginsPattern": begins_pattern, "endsPattern": ends_pattern},
        },
    }


def task_label(service: str) -> str:
    """The label of the background task that runs ``amldebug attach`` for ``service``."""
    return f"amldebug: {service}"


def down_task_label(service: str) -> str:
    """The label of the task that runs ``amldebug down`` for ``service``."""
    return f"amldebug: down {service}"


def attach_prefix(python: str = INTERPRETER) -> list[str]:
    """The argv that runs ``amldebug attach`` (before its arguments); by default the Python VS Code has selected."""
    return [python, "-m", "amldebug", "attach"]


def attach_command(project: Path, *, service: str, debug_port: int = DEFAULT_DEBUG_PORT,
                   workspace: Path | None = None, python: str = INTERPRETER) -> list[str]:
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
    just_my_code: bool = True, runtime: Runtime = DEFAULT_RUNTIME, post_debug_task: bool = False,
    down_command: Sequence[str] | None = None,
) -> dict[str, list[dict]]:
    """The entries that make F5 start ``service`` and attach to it: ``{"launch": [...], "tasks": [...]}``.

    ``command`` is the argv of ``amldebug attach`` (first element the executable), run from
    ``workspace`` (default: ``project``) as a background task labelled :func:`task_label`;
    the launch configuration names it as its ``preLaunchTask``. With ``post_debug_task`` a
    second task runs ``down_command`` (default: ``command`` up to ``attach``, then
    ``down --name SERVICE``) when the debug session ends. ``runtime`` decides where the service sees the code, as in ``service.launch_config``.
    """
    if not command:
        raise ValueError("command is empty; pass the argv of 'amldebug attach'")
    label = task_label(service)
    tasks = [build_task(label=label, command=command[0], args=list(command[1:]))]
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
            "options": {"cwd": "${workspaceFolder}", "env": dict(TASK_ENV)},
            "problemMatcher": [],  # without it VS Code asks which matcher to scan the output with
        })
        launch["postDebugTask"] = down_task_label(service)
    return {"launch": [launch], "tasks": tasks}


def launch_config(spec: ServiceSpec, *, pre_launch_task: str | None = None) -> dict:
    """The VS Code attach configuration for a service (pure)."""
    local = Path(spec.source_dir)
    workspace = Path(spec.workspace)
    try:
        local_root = "${workspaceFolder}/" + local.relative_to(workspace).as_posix()
    except ValueError:
        local_root = local.as_posix()
    local_root = local_root.rstrip("/").replace("${workspaceFolder}/.", "${workspaceFolder}")
    # The process runtime gives the server the real paths of the files, so they map to themselves.
    remote_root = runtime_of(spec).served_source_dir(spec)
    return build_attach_config(
        name=spec.name, port=spec.debug_port, local_root=local_root, remote_root=remote_root,
        host="localhost", just_my_code=spec.just_my_code, pre_launch_task=pre_launch_task,
    )


def task_options(spec: ServiceSpec) -> AttachOptions:
    """What the F5 task asks for to start this service again: paths relative to the
    workspace, the ports launch.json names (exactly), the environment's file rather than
    the image built from it, and ``-e`` keys without their values (F5 takes them from
    VS Code's environment; nothing a user passed is written into tasks.json)."""
    workspace = Path(spec.workspace)

    def rel(path: str) -> str:
        try:
            return Path(os.path.relpath(path, workspace)).as_posix()
        except ValueError:  # another drive on Windows
            return path

    options = AttachOptions(
        source_dir=rel(spec.source_dir), name=spec.name, debug_port=spec.debug_port, exact_ports=True,
        entry_script=spec.entry_script if spec.entry_script != "score.py" else None, port=spec.port,
        wait=spec.wait, just_my_code=spec.just_my_code, runtime=spec.runtime,
        env=tuple((key, None) for key, _ in spec.env if key not in spec.file_env),
    )
    if spec.model_dir:
        options = options.replace(model_dir=rel(spec.model_dir), model_name=spec.model_name,
                                  model_version=spec.model_version)
    if spec.extra_models:  # several models: each as NAME:VERSION=PATH
        options = options.replace(model_dir=tuple(f"{n}:{v}={rel(p)}" for p, n, v in spec.models), model_name=None,
                                  model_version=None)
    if spec.deployment:  # F5 reads the v2 deployment again: what it gives is not repeated
        options = options.replace(deployment=rel(spec.deployment), source_dir=None, entry_script=None)
        if "model" in spec.file_fields:
            options = options.replace(model_dir=None, model_name=None, model_version=None)
        if spec.env_file == spec.deployment or "image" in spec.file_fields:
            spec = spec.replace(env_file=None, image=None if "image" in spec.file_fields else spec.image)
    if spec.image_found:  # discovered, not chosen: F5 discovers again (an image built since, or removed)
        return options.replace(runtime=DEFAULT_RUNTIME)
    return runtime_of(spec).task_options(spec, options)  # what starts it again: an image, a Python


def task_command(spec: ServiceSpec) -> list[str]:
    """argv of the long-running ``amldebug attach`` that the VS Code task runs (F5)."""
    return attach_prefix() + task_argv(task_options(spec))


def task_env_note(spec: ServiceSpec) -> str | None:
    """What to tell the user when the F5 task passes ``-e`` keys without their values."""
    keys = [key for key, _ in task_options(spec).env]
    if not keys:
        return None
    return (f"amldebug: the F5 task passes {', '.join('-e ' + k for k in keys)} without values (amldebug writes no "
            "values to disk): F5 takes them from VS Code's environment, so set them before starting VS Code, or "
            "add them to the task's \"options\": {\"env\"} in tasks.json yourself")
