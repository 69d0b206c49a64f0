"""What a debug service is: options resolved once into a frozen value, and the pure
layout derived from it (paths, environment, command) the way Azure ML places things.

Nothing here touches Docker or the file system beyond reading paths the user named.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Mapping, Optional

from ..errors import UsageError
from .options import DEFAULT_DEBUG_PORT, DEFAULT_PORT, AttachOptions, Runtime

APP_ROOT = "/var/azureml-app"
PAYLOAD_ROOT = "/opt/amldebug"
SCORING_PORT_IN_CONTAINER = 5001
DEBUG_PORT_IN_CONTAINER = 5678
# A paused breakpoint must not be cut short: a week is "never" for a debug session, and
# some server versions treat 0 as "no time at all" rather than "no limit".
DEBUG_SCORING_TIMEOUT_MS = 7 * 24 * 3600 * 1000

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def service_name_from(folder: Path) -> str:
    """Default service name: the folder's name, lower-cased, made a valid container name."""
    raw = re.sub(r"[^a-z0-9_.-]+", "-", folder.resolve().name.lower()).strip("-._")
    return raw[:63] or "score"


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """Everything needed to (re)create a debug service; stored on the container as a label."""

    name: str
    source_dir: str  # absolute host path
    entry_script: str  # relative to source_dir, POSIX separators
    image: Optional[str] = None
    model_dir: Optional[str] = None  # absolute host path of a file or folder
    model_name: Optional[str] = None
    model_version: str = "1"
    port: int = DEFAULT_PORT
    debug_port: int = DEFAULT_DEBUG_PORT
    debug_bind: str = "127.0.0.1"
    wait: bool = True
    just_my_code: bool = True
    workspace: str = ""  # the VS Code workspace folder that holds .vscode/
    env: tuple[tuple[str, str], ...] = ()
    env_file: Optional[str] = None
    runtime: Runtime = Runtime.CONTAINER
    python: Optional[str] = None  # process runtime: the Python that runs azmlinfsrv
    base_image: Optional[str] = None  # set when the image is built from env_file ('amldebug build')
    inference_config: Optional[str] = None  # the Azure ML inference configuration file the code came from
    file_env: tuple[str, ...] = ()  # keys of env whose values an Azure ML file gave (not -e)

    def to_label(self) -> str:
        """The spec as stored on the container (or in the process registry): variable
        values stay out, since a label and a file are read by anyone who can list them;
        the running service itself holds them (see from_label)."""
        data = dataclasses.asdict(self)
        data["env"] = [key for key, _ in self.env]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_label(cls, text: str, values: Optional[Mapping[str, str]] = None) -> "ServiceSpec":
        """Read a stored spec; ``values``: the service's environment, for the variable
        values (labels written before values were left out carry them as pairs)."""
        data = json.loads(text)
        values = values or {}
        data["env"] = tuple((item[0], item[1]) if isinstance(item, (list, tuple)) else (item, values.get(item, ""))
                            for item in data.get("env", ()))
        data["file_env"] = tuple(data.get("file_env", ()))
        data["runtime"] = Runtime(data.get("runtime", Runtime.CONTAINER))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "ServiceSpec":
        return dataclasses.replace(self, **changes)

    @property
    def code_basename(self) -> str:
        return Path(self.source_dir).name

    @property
    def entry_path(self) -> Path:
        return Path(self.source_dir, self.entry_script)


def resolve_spec(source_dir: str | os.PathLike = ".", *, env: Mapping[str, str] | None = None,
                 **options) -> ServiceSpec:
    """resolve_spec("dir", image=..., model_dir=..., env={...}): keyword arguments are
    AttachOptions fields (the Python form of ``amldebug attach``'s options)."""
    pairs = tuple((env or {}).items())
    return spec_from_options(AttachOptions.from_params({**options, "source_dir": source_dir, "env": pairs}))


def spec_from_options(options: AttachOptions, environ: Mapping[str, str] = os.environ) -> ServiceSpec:
    """Check the user's values and turn them into a ServiceSpec (raises UsageError). The
    sources of code and environment (files, images) are the session's business; this only
    validates and makes paths absolute. ``-e KEY`` takes its value from ``environ``."""
    source_dir = "." if options.source_dir is None else options.source_dir
    entry_script = options.entry_script or "score.py"
    model_dir, model_name, model_version = options.model_dir, options.model_name, options.model_version
    src = Path(source_dir).expanduser()
    if not src.is_dir():
        raise UsageError(f"source directory '{source_dir}' does not exist; pass the folder that holds your entry script")
    src = src.resolve()
    entry = PurePosixPath(Path(entry_script).as_posix())
    if entry.is_absolute() or ".." in entry.parts:
        raise UsageError(f"--entry-script '{entry_script}' must be a path inside '{src}', relative to it")
    if not (src / entry).is_file():
        raise UsageError(f"entry script '{src / entry}' does not exist; pass --entry-script relative to '{src}'")
    name = options.name if options.name is not None else service_name_from(src)
    if not _NAME_RE.match(name):
        raise UsageError(f"service name '{name}' is not valid; use lower-case letters, digits, '-', '_' or '.' (at most 63)")
    model_abs = None
    if model_dir is not None:
        model_path = Path(model_dir).expanduser()
        if not model_path.exists():
            raise UsageError(f"model path '{model_dir}' does not exist; pass --model-dir with a model file or folder")
        model_abs = str(model_path.resolve())
        model_name = model_name or _model_name_from(model_path)
        if not _NAME_RE.match(model_name.lower()) or "/" in model_name:
            raise UsageError(f"model name '{model_name}' is not valid; pass --model-name with letters, digits, '-', '_'")
    elif model_name or model_version:
        raise UsageError("--model-name/--model-version need --model-dir (the model file or folder to place)")
    version = str(model_version or "1")
    if not version.isdigit():
        raise UsageError(f"model version '{version}' must be a whole number, as Azure ML numbers versions")
    for flag, value in (("--port", options.port), ("--debug-port", options.debug_port)):
        if not 1 <= int(value) <= 65535:
            raise UsageError(f"{flag} {value} is not a TCP port; pick one between 1024 and 65535")
    env = parse_env_pairs([key if value is None else f"{key}={value}" for key, value in options.env], environ)
    try:
        runtime = Runtime(str(options.runtime))
    except ValueError:
        raise UsageError(f"--runtime '{options.runtime}' is not known; use 'container' or 'process'") from None
    env_abs = None
    if options.env_file is not None:
        env_path = Path(options.env_file).expanduser()
        if not env_path.is_file():
            raise UsageError(f"environment file '{options.env_file}' does not exist")
        env_abs = str(env_path.resolve())
    return ServiceSpec(
        name=name,
        source_dir=str(src),
        entry_script=str(entry),
        image=options.image,
        model_dir=model_abs,
        model_name=model_name,
        model_version=version,
        port=int(options.port),
        debug_port=int(options.debug_port),
        debug_bind=options.debug_bind,
        wait=options.wait,
        just_my_code=options.just_my_code,
        workspace=str(Path(options.workspace or os.getcwd()).resolve()),
        env=tuple(sorted(env.items())),
        env_file=env_abs,
        runtime=runtime,
        python=options.python,
    )


_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env_pairs(items, environ: Mapping[str, str] = os.environ) -> dict:
    """``-e`` values: ``KEY=VALUE``, or ``KEY`` alone for the value this process has (as
    docker run -e does; the F5 task passes keys only, so values never land in tasks.json)."""
    env = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not _ENV_KEY_RE.match(key):
            raise UsageError(f"-e/--env-var '{item}': '{key}' is not a variable name; write KEY=VALUE with a name "
                             "of letters, digits and '_' that does not start with a digit, e.g. -e LOG_LEVEL=DEBUG")
        if not sep:
            if key not in environ:
                raise UsageError(f"-e/--env-var '{key}' takes its value from the environment, and {key} is not set "
                                 f"there; export {key}=... first (for F5: before starting VS Code, or in the task's "
                                 f"\"options\": {{\"env\"}}), or pass -e {key}=VALUE")
            value = environ[key]
        env[key] = value
    return env


def _model_name_from(path: Path) -> str:
    stem = path.name if path.is_dir() else path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "model"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where things go inside the app root, and how the server is started there."""

    app_root: str
    code_dir: str
    entry_rel: str  # AZUREML_ENTRY_SCRIPT, relative to the app root
    model_target: Optional[str]  # where the model file/folder is placed
    model_dir_rel: Optional[str]  # AZUREML_MODEL_DIR, relative to the app root
    env: dict
    args: list  # azmlinfsrv arguments


def layout(spec: ServiceSpec, *, app_root: str = APP_ROOT, debug_port: int = DEBUG_PORT_IN_CONTAINER,
           scoring_port: int = SCORING_PORT_IN_CONTAINER, server: str = "azmlinfsrv",
           payload_root: str = PAYLOAD_ROOT, state_dir: str = "/var/run/amldebug") -> Layout:
    """Place code and model as LocalWebservice does and switch off what breaks a paused debugger."""
    root = PurePosixPath(app_root)
    base = spec.code_basename
    entry_rel = f"{base}/{spec.entry_script}"
    model_target = model_rel = None
    if spec.model_dir:
        model_rel = f"azureml-models/{spec.model_name}/{spec.model_version}"
        model_target = str(root / model_rel / Path(spec.model_dir).name)
    env = {
        "AML_APP_ROOT": str(root),
        "AZUREML_ENTRY_SCRIPT": entry_rel,
        "AZUREML_SOURCE_DIRECTORY": base,
        "WORKER_COUNT": "1",
        "WORKER_TIMEOUT": "0",
        "SCORING_TIMEOUT_MS": str(DEBUG_SCORING_TIMEOUT_MS),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "AMLDEBUG_DEBUG_PORT": str(debug_port),
        "AMLDEBUG_WAIT": "1" if spec.wait else "0",
        "AMLDEBUG_SERVER": server,
        "AMLDEBUG_STATE": state_dir,
        "AMLDEBUG_SERVICE": spec.name,
    }
    if model_rel:
        env["AZUREML_MODEL_DIR"] = model_rel
    env.update(dict(spec.env))
    args = ["--entry_script", str(root / entry_rel), "--port", str(scoring_port)]
    return Layout(str(root), str(root / base), entry_rel, model_target, model_rel, env, args)


def served_source_dir(spec: ServiceSpec) -> str:
    """Where the server sees the source folder: its mount in a container; in the process
    runtime, the folder's real path (the server resolves real paths)."""
    if spec.runtime == Runtime.PROCESS:
        return str(Path(spec.source_dir).resolve())
    return layout(spec).code_dir


def launcher_command(python: str, lay: Layout, payload_root: str = PAYLOAD_ROOT) -> list:
    # -Xfrozen_modules=off: debugpy warns that frozen stdlib modules can hide breakpoints.
    return [python, "-Xfrozen_modules=off", f"{payload_root}/launch.py", *lay.args]
