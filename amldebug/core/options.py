"""What a user says to ``amldebug attach``, in one frozen value.

The command line, the Python API, ``demo``, the azureml-core bridge and the F5 task all
describe a service with an :class:`AttachOptions`. Each field carries its command-line
flag, so the CLI declares every option from here and :func:`task_argv` turns options back
into the argv of ``amldebug attach`` (what VS Code's task runs) with no second, hand-kept
mapping. Values the user did not give stay ``None``: :meth:`AttachOptions.with_project`
fills them from the project's ``amldebug.json`` (command line > file > default).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any, Mapping, Optional

DEFAULT_PORT = 5001
DEFAULT_DEBUG_PORT = 5678
LOOPBACK = "127.0.0.1"


class Runtime(str, enum.Enum):
    """Where a service runs. A str, so labels and JSON written as "container" still load."""

    CONTAINER = "container"
    PROCESS = "process"

    def __str__(self) -> str:
        return self.value


# The runtime a service gets when none is asked for (it finds a local scoring image, or falls
# back to the process runtime: engine/discover.py). What each one does is in engine/.
DEFAULT_RUNTIME = Runtime.CONTAINER


class ReloadMode(str, enum.Enum):
    """What a save does: ``auto`` patches a save that changes only bodies of functions other
    than init() in the live worker and reloads anything else fully; ``patch`` only patches;
    ``full`` always starts a fresh worker (init() runs again)."""

    AUTO = "auto"
    PATCH = "patch"
    FULL = "full"

    def __str__(self) -> str:
        return self.value


def _opt(default: Any, flag: str, help: str, *, short: str | None = None, always: bool = False,
         aliases: tuple[str, ...] = (), metavar: str | None = None):
    """A field with its flag (``--a/--no-a`` for a switch) and its help text; ``always``:
    task_argv passes it even at its default. ``aliases``: other flags that still work (not
    shown in help); ``metavar``: the value's name in help (``--image IMAGE``)."""
    return dataclasses.field(default=default, metadata={"flag": flag, "help": help, "short": short, "always": always,
                                                        "aliases": aliases, "metavar": metavar})


@dataclasses.dataclass(frozen=True)
class AttachOptions:
    """One debug service, as asked for (before files are read or images built)."""
    # In the order the F5 task's command line gives them.
    source_dir: Optional[str] = _opt(None, "SOURCE_DIR", "Folder with the entry script (mounted "
                                     "under /var/azureml-app).")
    name: Optional[str] = _opt(None, "--name", "Service name (default: the folder's name).", metavar="NAME")
    # always: the F5 task must start the debugger on the port launch.json names, whatever the default.
    debug_port: int = _opt(DEFAULT_DEBUG_PORT, "--debug-port", "Debugger port on 127.0.0.1 (next free one if taken).",
                           always=True, metavar="PORT")
    exact_ports: bool = _opt(False, "--exact-ports", "Fail when a port is taken instead of moving on (the F5 task "
                             "uses it).")
    entry_script: Optional[str] = _opt(None, "--entry-script", "Entry script, relative to SOURCE_DIR "
                                       "(default: score.py).", metavar="FILE")
    runtime: Runtime = _opt(DEFAULT_RUNTIME, "--runtime", "Where the service runs: container (Docker) or process "
                            "(this machine's Python, no Docker).")
    python: Optional[str] = _opt(None, "--python", "Process runtime: the Python that has azmlinfsrv.",
                             metavar="PATH")
    inference_config: Optional[str] = _opt(None, "--inference-config", "An Azure ML inference configuration "
                                           "(inferenceconfig.json/.yml): its entry script, source directory and "
                                           "environment (built into an image).", metavar="FILE")
    deployment: Optional[str] = _opt(None, "--deployment", "An Azure ML v2 online deployment YAML (what 'az ml "
                                     "online-deployment create --local -f' reads): its code, model, environment and "
                                     "variables.", metavar="FILE")
    # --env is the older name (kept working); -e/--env-var sets a variable.
    env_file: Optional[str] = _opt(None, "--env-file", "Environment file (requirements.txt, conda YAML, Azure ML "
                                   "environment JSON/YAML): build (or reuse) an image from it.", aliases=("--env",),
                                   metavar="FILE")
    base_image: Optional[str] = _opt(None, "--base-image", "With --env-file: the image to build on.", metavar="IMAGE")
    image: Optional[str] = _opt(None, "--image", "Local image with azureml-inference-server-http (azmlinfsrv); "
                                 "default: the newest local one.", metavar="IMAGE")
    # One path (str), or several NAME[:VERSION]=PATH items (a tuple): Model.deploy(models=[...]).
    model_dir: Optional[str | tuple[str, ...]] = _opt(
        None, "--model-dir", "Model file or folder, placed like a registered model; repeat as NAME[:VERSION]=PATH "
        "for several models (Model.get_model_path(NAME)).", metavar="[NAME[:VERSION]=]PATH")
    model_name: Optional[str] = _opt(None, "--model-name", "Registered model name (default: from --model-dir).",
                                   metavar="NAME")
    model_version: Optional[str] = _opt(None, "--model-version", "Model version (default: 1).", metavar="VERSION")
    port: int = _opt(DEFAULT_PORT, "--port", "Scoring port on 127.0.0.1 (next free one if taken).", metavar="PORT")
    # Pairs (key, value); a value of None means "the key only": its value comes from the
    # environment of whoever runs the command (the F5 task: VS Code's), so it is never written.
    env: tuple[tuple[str, Optional[str]], ...] = _opt(
        (), "--env-var", "Extra environment variable KEY=VALUE, or KEY to take its value from this "
        "environment (repeatable; values are never written to disk).", short="-e", metavar="KEY[=VALUE]")
    just_my_code: bool = _opt(True, "--just-my-code/--no-just-my-code", "Step only through your own code.")
    wait: bool = _opt(True, "--wait/--no-wait", "Hold before init() until a debugger attaches.")
    debug_bind: str = _opt(LOOPBACK, "--debug-bind", "Interface for the debug port. Anything but 127.0.0.1 lets "
                           "others on the network run code in it.", metavar="ADDRESS")
    reload: ReloadMode = _opt(ReloadMode.AUTO, "--reload", "On save: 'auto' patches changed function bodies "
                              "other than init() in the live worker (model kept) and reloads anything else; "
                              "'patch' only patches; 'full' always starts a fresh worker.")
    service: Optional[str] = _opt(None, "--service", "Debug an azureml-core LocalWebservice: same image, code and "
                                  "model (needs amldebug[azureml]).", metavar="NAME")
    workspace: Optional[str] = None  # the VS Code workspace folder (default: the current folder); not a flag

    def replace(self, **changes) -> "AttachOptions":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "AttachOptions":
        """Options from the CLI's parsed parameters (or any mapping of field names):
        unknown names are ignored, paths become strings, ``env`` pairs a tuple."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in params.items() if k in known}
        for key in ("source_dir", "env_file", "inference_config", "deployment"):
            if values.get(key) is not None:
                values[key] = str(values[key])
        if values.get("model_dir") is not None:  # one path, or a repeated --model-dir: several models
            items = [values["model_dir"]] if isinstance(values["model_dir"], (str, os.PathLike)) else \
                list(values["model_dir"])
            values["model_dir"] = None if not items else str(items[0]) if len(items) == 1 else \
                tuple(str(item) for item in items)
        if "env" in values:
            values["env"] = tuple(tuple(pair) for pair in (values["env"].items() if isinstance(values["env"], Mapping)
                                                            else values["env"] or ()))
        if isinstance(values.get("reload"), str):
            values["reload"] = next((m for m in ReloadMode if m.value == values["reload"]), values["reload"])
        if isinstance(values.get("runtime"), str):  # a name that is not a Runtime is refused by spec_from_options
            values["runtime"] = next((r for r in Runtime if r.value == values["runtime"]), values["runtime"])
        return cls(**values)

    def with_project(self, project: Mapping[str, Any]) -> "AttachOptions":
        """Fill what was not given from the project's amldebug.json (command line > file >
        default). A model name in the file belongs to the file's model only."""
        changes = {}
        for key in ("entry_script", "image", "model_dir", "env_file"):
            if getattr(self, key) is None and project.get(key) is not None:
                changes[key] = str(project[key])
        if self.model_name is None and self.model_dir is None and project.get("model_name"):
            changes["model_name"] = project["model_name"]
        return self.replace(**changes)


def option_fields() -> list[dataclasses.Field]:
    """The fields that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(AttachOptions) if f.metadata.get("flag")]


def task_argv(options: AttachOptions) -> list[str]:
    """The ``attach`` arguments that give ``options`` back: what differs from the default,
    each with the flag its field declares (the one mapping from options to a command line).
    ``-e`` keys go without values unless a value was asked for explicitly."""
    argv: list[str] = []
    if options.source_dir is not None:
        argv.append(options.source_dir)
    for field in option_fields():
        flag = field.metadata["flag"]
        value = getattr(options, field.name)
        if not flag.startswith("-") or (value == field.default and not field.metadata["always"]):
            continue
        if "/" in flag:  # a switch: --a/--no-a
            on, off = flag.split("/")
            argv.append(on if value else off)
        elif isinstance(field.default, bool):
            argv.append(flag)
        elif field.name == "env":
            for key, val in value:
                argv += [field.metadata["short"] or flag, key if val is None else f"{key}={val}"]
        elif isinstance(value, tuple):  # a repeatable option (several models)
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv
