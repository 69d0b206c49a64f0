"""Azure ML v2 online deployments (what ``az ml online-deployment create --local -f FILE``
reads, managed and Kubernetes alike) and v2 environment YAML, turned into what ``amldebug
attach`` needs. Pure: no Docker; reads only the files the deployment names.

The rules are azure-ai-ml's (``_local_endpoints``, 1.35): paths are relative to the
deployment file's folder; the code folder is ``code_configuration.code`` and the scoring
script is relative to it; the model's ``path`` names a file or folder whose PARENT folder
is what the container sees at ``azureml-models/<name>/<version>``; an inline model with no
name is registered anonymously as the sha256 of its content, version 1.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from ..errors import UsageError
from .azureml import EnvironmentSetup, _ConfigReader, _load, _read
from .envfile import Environment
from .kinds import v2_name
from .v2files import _wrong_kind

# What azure-ai-ml's OnlineDeploymentSchema (and its managed and Kubernetes kinds) accepts.
DEPLOYMENT_KEYS = {
    "$schema", "name", "endpoint_name", "description", "id", "tags", "properties", "model", "code_configuration",
    "environment", "environment_variables", "app_insights_enabled", "scale_settings", "request_settings",
    "liveness_probe", "readiness_probe", "startup_probe", "provisioning_state", "instance_count", "type",
    "model_mount_path", "instance_type", "egress_public_network_access", "private_network_connection",
    "data_collector", "resources", "instance_segment",
}
ENVIRONMENT_KEYS = {"$schema", "name", "version", "description", "tags", "properties", "image", "conda_file", "build",
                    "inference_config", "os_type", "datastore", "intellectual_property", "id", "creation_context",
                    "latest_version", "stage", "auto_rebuild"}
# The samples' conda files and images name Azure's registries: nothing to say about them here.
_REFERENCE = re.compile(r"^azureml:")
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}|<[A-Z][A-Z_ ]*>")


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A deployment's model: the path the file names (file or folder; its parent folder is
    what Azure ML places), or the registered model it refers to."""

    path: Optional[Path]  # None: a registered model (reference), to be downloaded
    name: Optional[str]
    version: Optional[str]
    reference: Optional[str] = None  # 'azureml:...' as written


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """``environment.build``: a Docker build context and the Dockerfile in it."""

    path: Path
    dockerfile: Path


@dataclasses.dataclass(frozen=True)
class DeploymentSetup:
    """What a v2 online deployment asks for, with paths resolved. ``environment``,
    ``base_image``, ``env`` and ``notes`` have EnvironmentSetup's meaning (session.apply_setup
    takes it as one)."""

    origin: str  # the deployment file
    kind: str  # 'managed' or 'kubernetes'
    name: str
    source_dir: Path
    entry_script: str  # relative to source_dir, POSIX separators
    env: dict
    environment: Optional[Environment]  # packages to build; None: the image is used as it is
    base_image: Optional[str]
    model: Optional[ModelSource]
    build: Optional[BuildContext] = None
    request_timeout_ms: Optional[int] = None
    environment_reference: Optional[str] = None  # 'azureml:...' the file names, when --env/--image replace it
    notes: tuple[str, ...] = ()


_KIND_NAMES = {"managedonlinedeployment": "managed", "kubernetesonlinedeployment": "kubernetes"}


def read_deployment(path: str | Path) -> DeploymentSetup:
    """Read a v2 online deployment YAML. Raises UsageError naming the file, the key or
    line, and the fix (a cloud reference: the az command that fetches it)."""
    file, text, notes = _read(path, "deployment", "--deployment")
    kind = v2_name(file, text)
    if kind not in ("deployment", None):
        raise UsageError(_wrong_kind(file, kind))
    if kind is None:
        _refuse_environment_file(file, text, str(path))
    template = re.search(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}", text)
    if template:  # the samples' templates ('{{ENDPOINT_NAME}}'), filled in by their scripts, are not YAML yet
        line = text.count("\n", 0, template.start()) + 1
        raise UsageError(f"{file}:{line}: holds the placeholder {template.group(0)} (a template its sample's script "
                         "fills in); write the real value there")
    data = _load(file, text, yaml_always=True)
    if isinstance(data, dict) and "entryScript" in data:
        raise UsageError(f"'{file}' is an Azure ML v1 inference configuration (entryScript), not a v2 deployment; "
                         "pass it with --inference-config")
    if isinstance(data, dict) and ("python" in data or "docker" in data) and "code_configuration" not in data:
        raise UsageError(f"'{file}' is an Azure ML v1 environment definition, not a v2 deployment; pass it with --env")
    if not isinstance(data, dict):
        raise UsageError(f"{file}: an online deployment is a mapping with 'model', 'code_configuration' and "
                         f"'environment', not {type(data).__name__}")
    reader = _Reader(str(file), file.parent, text, notes)
    schema = str(data.get("$schema", "")).rsplit("/", 1)[-1].lower().split(".schema", 1)[0]
    kind_name = _KIND_NAMES.get(schema) or ("kubernetes" if str(data.get("type", "")).lower() == "kubernetes"
                                            else "managed")
    unknown = sorted(set(data) - DEPLOYMENT_KEYS)
    if unknown:
        hints = [f"{key} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, DEPLOYMENT_KEYS, 1))
                 else key for key in unknown]
        reader.notes.append(f"{file}: ignored key(s) {', '.join(hints)}")
    source_dir, entry_script = reader.code(data.get("code_configuration"))
    env = reader.variables(data.get("environment_variables"))
    model = reader.model(data.get("model"))
    environment, base_image, build, reference = None, None, None, None
    raw = data.get("environment")
    if isinstance(raw, str) and not _REFERENCE.match(raw.strip()) and raw.strip().lower().endswith((".yml", ".yaml")):
        env_file = (file.parent / reader.path(raw.strip().removeprefix("file:"))).absolute()
        if not env_file.is_file():
            raise reader.fail("environment", f"environment file '{raw}' does not exist (looked at '{env_file}'); "
                              "it is relative to the deployment's folder", raw)
        setup = read_environment_yaml(env_file)
        reader.notes.extend(setup.notes)
        environment, base_image, build = setup.environment, setup.base_image, setup.build
    elif isinstance(raw, str) and _REFERENCE.match(raw.strip()):
        reference = raw.strip()  # session decides: --image or --env replace it, else the message
    elif isinstance(raw, str):
        raise reader.fail("environment", f"environment '{raw}' is neither a registered environment "
                          "('azureml:name:version'), the path of an environment YAML, nor a mapping with 'image' "
                          "and/or 'conda_file'", raw)
    elif raw is None:
        reference = ""
    else:
        environment, base_image, build = reader.environment_v2(raw, "environment")
    timeout = reader.timeout(data.get("request_settings"))
    return DeploymentSetup(str(file), kind_name, str(data.get("name") or file.stem), source_dir, entry_script, env,
                           environment, base_image, model, build, timeout, reference, tuple(reader.notes))


_DEPLOYMENT_KEY = re.compile(r"^(code_configuration|model|environment|endpoint_name)\s*:", re.M)
_REQUIREMENT = re.compile(r"^(--?[A-Za-z][\w-]*|[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*([<>=!~;@(#]|$))")


def _refuse_environment_file(file: Path, text: str, given: str) -> None:
    """A conda YAML or a pip requirements file given to --deployment: say what it is and
    which option takes it (it was read as a deployment with no code_configuration)."""
    if re.search(r"^dependencies\s*:", text, re.M) and not _DEPLOYMENT_KEY.search(text):
        raise UsageError(f"'{file}' is a conda environment file (it lists 'dependencies:'), not a v2 online "
                         f"deployment; pass it with --env-file {given}, or pass the deployment YAML that names "
                         "it (environment.conda_file) with --deployment")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if lines and (file.suffix.lower() == ".txt" or all(_REQUIREMENT.match(line) and not re.search(r":(\s|$)", line)
                                                         for line in lines)):
        raise UsageError(f"'{file}' is a pip requirements file, not a v2 online deployment; pass it with --env-file "
                         f"{given}, or pass the deployment YAML (its packages go in the '- pip:' list of its "
                         "environment.conda_file) with --deployment")


def read_environment_yaml(path: str | Path) -> EnvironmentSetup:
    """A v2 environment YAML (``$schema: ...environment.schema.json``: ``image``,
    ``conda_file``, ``build``, ``inference_config``), as ``--env`` takes it."""
    file, text, notes = _read(path, "environment", "--env")
    data = _load(file, text, yaml_always=True)
    if not isinstance(data, dict):
        raise UsageError(f"{file}: a v2 environment is a mapping with 'image' and/or 'conda_file' (or 'build'), "
                         f"not {type(data).__name__}")
    reader = _Reader(str(file), file.parent, text, notes)
    unknown = sorted(set(data) - ENVIRONMENT_KEYS)
    if unknown:
        reader.notes.append(f"{file}: ignored key(s) {', '.join(unknown)}")
    environment, base_image, build = reader.environment_v2(data, "")
    return EnvironmentSetup(str(file), {}, environment, base_image, tuple(reader.notes), build)


def model_folder_hash(path: Path) -> str:
    """The name azure-ai-ml gives an inline model with no name: the sha256 of its content
    hash (``get_object_hash``: names and bytes, in case-insensitive name order)."""
    digest = hashlib.sha256(b"Initialize for october 2021 AML CLI version")

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir(), key=lambda p: str(p).lower()):
            digest.update(entry.name.encode())
            target = entry.resolve() if entry.is_symlink() else entry
            if target.is_file():
                add_file(target)
            elif target.is_dir():
                walk(target)

    def add_file(file: Path) -> None:
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)

    if path.is_dir():
        walk(path)
    else:
        add_file(path.resolve())
    return hashlib.sha256(digest.hexdigest().encode("utf-8")).hexdigest()


def parse_reference(value: str) -> tuple[str, Optional[str], Optional[str], Optional[str]]:
    """'azureml:name:version', 'azureml:name@label', 'azureml://registries/R/models/N/versions/V'
    (or '/labels/L'), or an ARM id: (name, version, label, registry)."""
    rest = value.strip()[len("azureml:"):]
    registry = None
    found = re.match(r"^//registries/([^/]+)/(?:models|environments|codes)/([^/]+)(?:/versions/([^/]+)|/labels/([^/]+))?",
                     rest)
    if found:
        return found.group(2), found.group(3), found.group(4), found.group(1)
    found = re.search(r"/(?:models|environments|codes)/([^/]+)/versions/([^/]+)$", rest)
    if found:
        return found.group(1), found.group(2), None, registry
    if "@" in rest:
        name, label = rest.split("@", 1)
        return name, None, label, registry
    name, _, version = rest.partition(":")
    return name, version or None, None if version else "latest", registry


def model_reference_message(origin: str, reference: str) -> str:
    name, version, label, registry = parse_reference(reference)
    where = f" --registry-name {registry}" if registry else ""
    which = f"--version {version}" if version else (
        f"--version N (the newest: az ml model list --name {name}{where} --query [0].version -o tsv)")
    return (f"{origin}: model '{reference}' is registered in Azure ML and amldebug does not fetch it; download it with "
            f"'az ml model download --name {name} {which}{where} --download-path models', then pass "
            f"--model-dir models/{name}/<the file or folder it holds> (placed as {name}/{version or 'N'}: with "
            f"--model-version N)")


def no_environment_message(origin: str) -> str:
    return (f"{origin}: no 'environment'; add environment: {{image: ..., conda_file: ...}} or pass --image (a local "
            "image with azmlinfsrv) or --env")


def environment_reference_message(origin: str, reference: str) -> str:
    name, version, label, registry = parse_reference(reference)
    where = f" --registry-name {registry}" if registry else ""
    which = f"--version {version}" if version else f"--label {label or 'latest'}"
    return (f"{origin}: environment '{reference}' is registered in Azure ML and amldebug does not fetch it; export it "
            f"with 'az ml environment show --name {name} {which}{where} -o yaml > environment.yml' and pass "
            "--env environment.yml, or pass --image with a local image that has azureml-inference-server-http")


class _Reader(_ConfigReader):
    """The v2 keys, with _ConfigReader's line finding, variables and conda reading."""

    def code(self, data: Any) -> tuple[Path, str]:
        if data is None:
            raise self.fail("code_configuration", "no 'code_configuration': this is a no-code deployment (an MLflow "
                            "or Triton model served without a scoring script), and amldebug debugs a scoring script; "
                            "add code_configuration: {code: <folder>, scoring_script: score.py}")
        if not isinstance(data, dict):
            raise self.fail("code_configuration", "'code_configuration' must be a mapping with 'code' and "
                            f"'scoring_script', not {data!r}")
        code, script = data.get("code"), data.get("scoring_script")
        if code is not None and not isinstance(code, str):
            raise self.fail("code_configuration.code", "'code_configuration.code' must be the path of the folder that "
                            f"holds the scoring script, not {code!r}", code)
        if not isinstance(code, str) or not code.strip():
            raise self.fail("code_configuration.code", "'code_configuration.code' is missing; name the folder that "
                            "holds the scoring script")
        if _REFERENCE.match(code.strip()) or re.match(r"^(https?|wasbs?|abfss?)://", code.strip()):
            raise self.fail("code_configuration.code", f"code '{code}' is stored in Azure ML; download the code "
                            "folder and point code_configuration.code at it", code)
        if script is not None and not isinstance(script, str):
            raise self.fail("code_configuration.scoring_script", "'code_configuration.scoring_script' must be the "
                            f"scoring script's file name, relative to the code folder (e.g. scoring_script: score.py), "
                            f"not {script!r}", script)
        if not isinstance(script, str) or not script.strip():
            raise self.fail("code_configuration.scoring_script", "'code_configuration.scoring_script' is missing; "
                            "name the scoring script, relative to the code folder (e.g. scoring_script: score.py)")
        self.placeholder("code_configuration.code", code)
        folder = (self.base_dir / self.path(code)).resolve()
        if folder.is_file():
            written = PurePosixPath(code.strip().replace("\\", "/"))
            raise self.fail("code_configuration.code", f"code '{code}' is a file ('{folder}'); "
                            "code_configuration.code must be a folder, the one that holds the scoring script: write "
                            f"code: {written.parent} and scoring_script: {written.name}", code)
        if not folder.is_dir():
            raise self.fail("code_configuration.code", f"code folder '{code}' does not exist (looked at '{folder}'); "
                            "it is relative to the deployment's folder", code)
        self.placeholder("code_configuration.scoring_script", script)
        relative = PurePosixPath(self.path(script).as_posix())
        if relative.is_absolute() or ".." in relative.parts:
            raise self.fail("code_configuration.scoring_script", f"scoring script '{script}' must be a path inside "
                            f"the code folder '{folder}', relative to it", script)
        if not (folder / relative).is_file():
            raise self.fail("code_configuration.scoring_script", f"scoring script '{script}' does not exist (looked "
                            f"at '{folder / relative}'); it is relative to code_configuration.code", script)
        if relative.suffix != ".py":
            raise self.fail("code_configuration.scoring_script", f"scoring script '{script}' is not a .py file; "
                            "amldebug debugs Python scoring scripts", script)
        return folder, str(relative)

    def conda_file(self, key: str, value: Any, folder: Path, relative_to: str) -> Environment:
        if isinstance(value, str):  # v2 paths climb out of the file's folder ('../../model-1/...'): name them plainly
            value = str((folder / self.path(value)).resolve()) if (folder / self.path(value)).exists() else value
        return super().conda_file(key, value, folder, relative_to)

    def placeholder(self, key: str, value: str) -> None:
        found = _PLACEHOLDER.search(value)
        if found:
            raise self.fail(key, f"'{value}' holds the placeholder {found.group(0)} (the sample fills it in with its "
                            "script); write the real value there", value)

    def model(self, data: Any) -> Optional[ModelSource]:
        if data is None:
            return None
        if isinstance(data, str):
            value = data.strip()
            if _REFERENCE.match(value):
                name, version, _, _ = parse_reference(value)
                return ModelSource(None, name, version, value)
            raise self.fail("model", f"model '{data}' is neither a registered model ('azureml:name:version') nor a "
                            "mapping with a local 'path'; write model: {path: <file or folder>}", data)
        if not isinstance(data, dict):
            raise self.fail("model", f"'model' must be a mapping with 'path' (or 'azureml:name:version'), not {data!r}")
        path, name, version = data.get("path"), data.get("name"), data.get("version")
        if path is not None and not isinstance(path, str):
            raise self.fail("model.path", f"'model.path' must be the path of the model file or folder, relative to the "
                            f"deployment's folder, not {path!r}", path)
        if not isinstance(path, str) or not path.strip():
            raise self.fail("model.path", "the inline model has no 'path'; name the model file or folder, relative "
                            "to the deployment's folder (or pass --model-dir)")
        if _REFERENCE.match(path.strip()) or re.match(r"^(https?|wasbs?|abfss?)://", path.strip()):
            raise self.fail("model.path", f"model path '{path}' is in Azure storage; download it and point "
                            "model.path at the local copy (or pass --model-dir)", path)
        self.placeholder("model.path", path)
        local = (self.base_dir / self.path(path)).resolve()
        if not local.exists():
            raise self.fail("model.path", f"model path '{path}' does not exist (looked at '{local}'); it is relative "
                            "to the deployment's folder", path)
        if data.get("type") not in (None, "custom_model"):
            self.notes.append(f"{self.where('model.type', data.get('type'))}: model type '{data['type']}' is served "
                              "without a script in Azure; amldebug runs the scoring script with the model placed")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int, float))):
            raise self.fail("model.version", f"model version {version!r} must be a version such as 1 or '1.0' (a "
                            "string or a number)", version)
        if name is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$", str(name)):
            raise self.fail("model.name", f"model name '{name}' is not valid; use letters, digits, '-', '_', '.'", name)
        return ModelSource(local, str(name) if name is not None else None,
                           str(version) if version is not None else None)

    def environment_v2(self, data: Any, key: str) -> tuple[Optional[Environment], Optional[str], Optional[BuildContext]]:
        prefix = f"{key}." if key else ""
        if not isinstance(data, dict):
            raise self.fail(key or "environment", f"'{key or 'environment'}' must be a mapping with 'image' and/or "
                            f"'conda_file' (or 'build'), or 'azureml:name:version', not {data!r}")
        image, conda, build = data.get("image"), data.get("conda_file"), data.get("build")
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise self.fail(f"{prefix}image", f"'{prefix}image' must be an image name, not {image!r}")
        if isinstance(image, str):
            image = image.strip()
            self.placeholder(f"{prefix}image", image)
        context = None
        if build is not None:
            if not isinstance(build, dict) or not isinstance(build.get("path"), str):
                raise self.fail(f"{prefix}build", f"'{prefix}build' must be a mapping with 'path' (the Docker build "
                                "context) and optionally 'dockerfile_path'")
            if image:
                self.notes.append(f"{self.origin}: {prefix}build ignored: {prefix}image is given, and the local "
                                  "endpoint uses the image")
            else:
                folder = (self.base_dir / self.path(build["path"])).resolve()
                if _REFERENCE.match(build["path"]) or re.match(r"^(https?|wasbs?|abfss?)://", build["path"]):
                    raise self.fail(f"{prefix}build.path", f"build context '{build['path']}' is in Azure storage; "
                                    "download it and point build.path at the folder", build["path"])
                if not folder.is_dir():
                    raise self.fail(f"{prefix}build.path", f"build context '{build['path']}' does not exist (looked "
                                    f"at '{folder}'); it is relative to the file's folder", build["path"])
                dockerfile = folder / self.path(str(build.get("dockerfile_path") or "Dockerfile"))
                if not dockerfile.is_file():
                    raise self.fail(f"{prefix}build.dockerfile_path", f"Dockerfile '{dockerfile}' does not exist; "
                                    "set build.dockerfile_path relative to build.path")
                context = BuildContext(folder, dockerfile)
        if not image and context is None:
            raise self.fail(key or "image", f"the environment has neither '{prefix}image' nor '{prefix}build'; the "
                            "local endpoint needs one of them (an image to run, or a Docker build context)")
        if data.get("inference_config"):
            self.notes.append(f"{self.origin}: {prefix}inference_config (a custom container's routes) ignored: "
                              "amldebug starts the image's azmlinfsrv itself")
        if context is not None:
            if conda is not None:
                self.notes.append(f"{self.origin}: {prefix}conda_file ignored with a build context (the local "
                                  "endpoint builds the Dockerfile only)")
            return None, None, context
        if conda is None:
            return None, image, None  # the image as it is (the local endpoint runs it unchanged)
        if isinstance(conda, dict):
            environment = self.conda(conda, f"{prefix}conda_file")
        else:
            environment = self.conda_file(f"{prefix}conda_file", conda, self.base_dir, "the file's folder")
        return self.advisory(environment, image), image, None

    def variables(self, values: Any) -> dict:
        if values in (None, {}):
            return {}
        if not isinstance(values, dict):
            raise self.fail("environment_variables", "'environment_variables' must be a mapping of NAME: value")
        env = {}
        for key, value in values.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)):
                raise self.fail("environment_variables", f"'{key}' is not a valid environment variable name", key)
            env[str(key)] = "" if value is None else str(value)
        return env

    def timeout(self, data: Any) -> Optional[int]:
        if data is not None and not isinstance(data, dict):
            raise self.fail("request_settings", "'request_settings' must be a mapping of settings (e.g. "
                            f"request_settings: {{request_timeout_ms: 5000}}), not {data!r}", data)
        if data is None or data.get("request_timeout_ms") is None:
            return None
        value = data["request_timeout_ms"]
        try:
            return int(value)
        except (TypeError, ValueError):
            raise self.fail("request_settings.request_timeout_ms", f"request_timeout_ms '{value}' is not a number of "
                            "milliseconds", value) from None
