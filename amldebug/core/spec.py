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
from ..payload.common import protocol
from .options import DEFAULT_DEBUG_PORT, DEFAULT_PORT, DEFAULT_RUNTIME, AttachOptions, Runtime

APP_ROOT = "/var/azureml-app"
PAYLOAD_ROOT = "/opt/amldebug"
SCORING_PORT_IN_CONTAINER = 5001
DEBUG_PORT_IN_CONTAINER = protocol.DEFAULT_DEBUG_PORT
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
    runtime: Runtime = DEFAULT_RUNTIME
    python: Optional[str] = None  # process runtime: the Python that runs azmlinfsrv
    base_image: Optional[str] = None  # set when the image is built from env_file ('amldebug build')
    inference_config: Optional[str] = None  # the Azure ML inference configuration file the code came from
    file_env: tuple[str, ...] = ()  # keys of env whose values an Azure ML file gave (not -e)
    image_found: bool = False  # the image (or the process runtime) came from discovery: F5 looks again
    # Models after the first (model_dir/model_name/model_version): (host path, name, version) each.
    extra_models: tuple[tuple[str, str, str], ...] = ()
    # An Azure ML v2 online deployment the service came from: placed as the v2 local endpoint does.
    deployment: Optional[str] = None
    file_fields: tuple[str, ...] = ()  # what the deployment file gave ('image', 'model'): F5 reads it again

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
        data["file_fields"] = tuple(data.get("file_fields", ()))
        data["extra_models"] = tuple(tuple(item) for item in data.get("extra_models", ()))
        data["runtime"] = Runtime(data.get("runtime", DEFAULT_RUNTIME))  # labels before the process runtime
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "ServiceSpec":
        return dataclasses.replace(self, **changes)

    @property
    def models(self) -> tuple[tuple[str, str, str], ...]:
        """Every model placed: (absolute host path, name, version), the first one first."""
        first = ((self.model_dir, self.model_name, self.model_version),) if self.model_dir else ()
        return first + self.extra_models

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
    models = parse_models(model_dir, model_name, model_version)
    model_abs, model_name, version = models[0] if models else (None, None, "1")
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
        extra_models=tuple(models[1:]),
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


_MODEL_ITEM_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?::(?P<version>[^=/:]*))?=(?P<path>.+)$")


def parse_models(model_dir, model_name: Optional[str] = None,
                 model_version: Optional[str] = None) -> list[tuple[str, str, str]]:
    """``--model-dir`` values as (absolute path, name, version): one PATH (named by
    --model-name or after the path), or NAME[:VERSION]=PATH items, one per model."""
    items = [] if model_dir is None else [model_dir] if isinstance(model_dir, (str, os.PathLike)) else list(model_dir)
    if not items:
        if model_name or model_version:
            raise UsageError("--model-name/--model-version need --model-dir (the model file or folder to place)")
        return []
    if len(items) > 1 and (model_name or model_version):
        raise UsageError("--model-name/--model-version name one model; with several --model-dir give each its name "
                         "and version: --model-dir NAME[:VERSION]=PATH (e.g. --model-dir first=models/a "
                         "--model-dir second:3=models/b)")
    models, seen = [], {}
    for item in map(str, items):
        found = _MODEL_ITEM_RE.match(item)
        if found and not Path(item).expanduser().exists():
            name, version, path = found.group("name"), found.group("version"), found.group("path")
        elif len(items) > 1:
            raise UsageError(f"--model-dir '{item}': with several models give each its name: NAME[:VERSION]=PATH "
                             "(e.g. --model-dir first=models/a --model-dir second:3=models/b)")
        else:
            name, version, path = None, None, item
        model_path = Path(path).expanduser()
        if not model_path.exists():
            what = f"model path '{path}'" + (f" (--model-dir {item})" if path != item else "")
            raise UsageError(f"{what} does not exist; pass --model-dir with a model file or folder")
        name = name or model_name or _model_name_from(model_path)
        if not _NAME_RE.match(name.lower()) or "/" in name:
            raise UsageError(f"model name '{name}' is not valid; pass --model-name with letters, digits, '-', '_'")
        version = str(version or model_version or "1")
        if not version.isdigit():
            raise UsageError(f"model version '{version}' must be a whole number, as Azure ML numbers versions")
        if (name, version) in seen:
            raise UsageError(f"--model-dir '{item}' and '{seen[name, version]}' are both model {name}:{version}; "
                             "give each its own NAME[:VERSION]=PATH")
        seen[name, version] = item
        models.append((str(model_path.resolve()), name, version))
    return models


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
    model_mounts: tuple[tuple[str, str], ...] = ()  # (host path, path inside) for every model
    workdir: str = ""  # the server's working directory (default: the app root)


def layout(spec: ServiceSpec, *, app_root: str = APP_ROOT, debug_port: int = DEBUG_PORT_IN_CONTAINER,
           scoring_port: int = SCORING_PORT_IN_CONTAINER, server: str = protocol.DEFAULT_SERVER,
           payload_root: str = PAYLOAD_ROOT, state_dir: str = "/var/run/amldebug") -> Layout:
    """Place code and models as LocalWebservice does (or, for a v2 deployment, as the v2
    local endpoint does) and switch off what breaks a paused debugger."""
    root = PurePosixPath(app_root)
    base = spec.code_basename
    entry_rel = f"{base}/{spec.entry_script}"
    model_target = model_rel = None
    mounts = []
    for path, name, version in spec.models:  # each at azureml-models/<name>/<version>/<file or folder>
        target = str(root / "azureml-models" / name / version / Path(path).name)
        mounts.append((path, target))
    if spec.model_dir:
        model_rel = f"azureml-models/{spec.model_name}/{spec.model_version}"
        model_target = mounts[0][1]
        if spec.extra_models:  # LocalWebservice with several models: the folder that holds them all
            model_rel = "azureml-models/"
    code = {"AML_APP_ROOT": str(root), "AZUREML_ENTRY_SCRIPT": entry_rel, "AZUREML_SOURCE_DIRECTORY": base}
    workdir = str(root)
    if spec.deployment:
        code, workdir, mounts, model_rel, model_target = _v2_placement(spec, root)
    env = {
        **code,
        "WORKER_COUNT": "1",
        "WORKER_TIMEOUT": "0",
        "SCORING_TIMEOUT_MS": str(DEBUG_SCORING_TIMEOUT_MS),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        protocol.ENV_DEBUG_PORT: str(debug_port),
        protocol.ENV_WAIT: protocol.ON if spec.wait else protocol.OFF,
        protocol.ENV_SERVER: server,
        protocol.ENV_STATE: state_dir,
        protocol.ENV_SERVICE: spec.name,
    }
    if model_rel:
        env["AZUREML_MODEL_DIR"] = model_rel
    env.update(dict(spec.env))
    args = ["--entry_script", str(root / entry_rel), "--port", str(scoring_port)]
    return Layout(str(root), str(root / base), entry_rel, model_target, model_rel, env, args, tuple(mounts), workdir)


def _v2_placement(spec: ServiceSpec, root: PurePosixPath):
    """azure-ai-ml's local endpoint (AzureMlImageContext): the code folder at
    <root>/<folder>/, AML_APP_ROOT the scoring script's folder in it (also the working
    directory, where the image's runit script starts the server), AZUREML_ENTRY_SCRIPT the
    script's name; the model path's PARENT folder at azureml-models/<name>/<version>, with
    AZUREML_MODEL_DIR its absolute path (azure-ai-ml writes it with a doubled '/')."""
    code_dir = f"{root}/{spec.code_basename}/"
    app_root = os.path.join(code_dir, os.path.dirname(spec.entry_script))
    code = {"AML_APP_ROOT": app_root, "AZUREML_ENTRY_SCRIPT": os.path.basename(spec.entry_script)}
    mounts, model_rel = [], None
    if spec.model_dir:
        model_rel = str(root / "azureml-models" / spec.model_name / spec.model_version)
        mounts.append((str(Path(spec.model_dir).parent), model_rel))
    return code, app_root.rstrip("/") or "/", mounts, model_rel, model_rel


def launcher_command(python: str, lay: Layout, payload_root: str = PAYLOAD_ROOT) -> list:
    # -Xfrozen_modules=off: debugpy warns that frozen stdlib modules can hide breakpoints.
    return [python, "-Xfrozen_modules=off", f"{payload_root}/{protocol.LAUNCHER}", *lay.args]
