"""Azure ML inference configurations: what ``az ml model deploy --ic FILE`` reads, and
azureml-core's ``InferenceConfig``, turned into what ``amldebug attach`` needs.

Both ways in share one reading: an ``InferenceConfig`` object is turned into the same
dictionary a file holds (its ``Environment`` serialised by azureml-core itself), so a file
and the object that wrote it give the same service. Pure: no Docker, no azureml-core import.

Paths follow Azure ML's rules with one choice of ours: ``entryScript`` and ``condaFile`` are
relative to ``sourceDirectory`` (as in azureml-core); ``sourceDirectory`` itself, a
``condaDependenciesFile`` and the entry script of a config without a source directory are
relative to the file's folder (azureml-core takes them from the current directory, which
differs between a terminal and a VS Code task).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Optional

from ..errors import UsageError
from .envfile import Environment, Reader, decode_file, read_conda_environment
from .kinds import V1_ENVIRONMENT_KEYS, Kind, kind_of
from .v2files import wrong_option_message

# Keys of the file, as azureml-core's InferenceConfig names them in JSON.
_ENVIRONMENT_KEYS = ("entryScript", "sourceDirectory", "environment", "description")
_LEGACY_KEYS = ("runtime", "condaFile", "extraDockerfileSteps", "enableGpu", "baseImage", "baseImageRegistry",
                "cudaVersion", "schemaFile", "dependencies")
CONDA_FILE_BESIDE = "conda_dependencies.yml"
BASE_DOCKERFILE_BESIDE = "BaseDockerfile"
# azureml-core's DEFAULT_CPU_IMAGE/DEFAULT_GPU_IMAGE families, and the older intelmpi base.
_AZUREML_DEFAULT_IMAGE = re.compile(r"^mcr\.microsoft\.com/azureml/(?:openmpi|intelmpi|base:intelmpi|base-gpu:)")
# What else Environment._serialize_to_dict writes; none of it matters to a local service.
_ENVIRONMENT_OTHER_KEYS = {"name", "version", "spark", "databricks", "r", "inferencingStackVersion", "assetId"}
_SNAKE = {"entry_script": "entryScript", "source_directory": "sourceDirectory", "conda_file": "condaFile",
          "base_image": "baseImage", "extra_docker_file_steps": "extraDockerfileSteps"}


@dataclasses.dataclass(frozen=True)
class InferenceSetup:
    """What an inference configuration asks for, with paths resolved."""

    origin: str  # the file, or "InferenceConfig" for an object: named in messages
    source_dir: Path
    entry_script: str  # relative to source_dir, POSIX separators
    env: Mapping[str, str]
    # Packages to build an image with; None: the base image is used as it is
    # (userManagedDependencies), so it must already hold the scoring server.
    environment: Optional[Environment]
    base_image: Optional[str]
    notes: tuple[str, ...] = ()  # where amldebug does other than Azure ML would, to print


@dataclasses.dataclass(frozen=True)
class EnvironmentSetup:
    """What an Azure ML environment definition asks for (azureml_environment.json, or an
    ``Environment`` object): the same fields as an InferenceSetup, without the code."""

    origin: str
    env: Mapping[str, str]
    environment: Optional[Environment]
    base_image: Optional[str]
    notes: tuple[str, ...] = ()
    build: Any = None  # a v2 environment's Docker build context (sources.deployment.BuildContext)
    base_dockerfile: Optional[Path] = None  # the BaseDockerfile Environment.save_to_directory wrote beside it


def read_inference_config(path: str | Path) -> InferenceSetup:
    """Read an inference configuration file (JSON, or YAML by its suffix).
    Raises UsageError naming the file, the line or key, and the fix."""
    file, text, notes = _read(path, "inference configuration", "--inference-config")
    _refuse_v2(file, "--inference-config")
    data = _load(file, text)
    base = file.parent
    if not _paths_found(data, base) and _paths_found(data, Path.cwd()):
        base = Path.cwd()
        notes = (*notes, f"{file}: its paths are not beside it but in the current folder '{base}': read from there, "
                         "as 'az ml model deploy --ic' (the v1 CLI) reads them where it runs")
    return from_dict(data, origin=str(file), base_dir=base, text=text, notes=notes)


def _paths_found(data: Any, folder: Path) -> bool:
    """Whether the code the configuration names (sourceDirectory, else entryScript) is there
    relative to ``folder``."""
    if not isinstance(data, dict):
        return True
    for key in ("sourceDirectory", "entryScript"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return (folder / Path(value.replace("\\", "/")).expanduser()).exists()
    return True


def read_environment_definition(path: str | Path) -> EnvironmentSetup:
    """Read an Azure ML environment definition file (what Environment.save_to_directory and
    'az ml environment scaffold' write)."""
    file, text, notes = _read(path, "environment definition", "--env")
    _refuse_v2(file, "--env")
    data = _load(file, text)
    if not isinstance(data, dict) or not set(data) & set(V1_ENVIRONMENT_KEYS):
        raise UsageError(f"'{file}' is neither an Azure ML environment definition (it has none of "
                         f"{', '.join(V1_ENVIRONMENT_KEYS)}) nor an inference configuration (no entryScript); "
                         "pass --env with a requirements.txt, a conda YAML or azureml_environment.json")
    reader = _ConfigReader(str(file), file.parent, text, notes)
    unknown = sorted(set(data) - set(V1_ENVIRONMENT_KEYS) - _ENVIRONMENT_OTHER_KEYS)
    if unknown:
        reader.notes.append(f"{file}: ignored key(s) {', '.join(unknown)}")
    # Environment.save_to_directory writes the packages beside the definition, and
    # load_from_directory takes them from there.
    beside = file.parent / CONDA_FILE_BESIDE
    env, environment, base_image = reader.environment(data, beside if beside.is_file() else None)
    # ... and the base Dockerfile (docker.base_dockerfile), which azureml-core builds the environment on
    dockerfile = file.parent / BASE_DOCKERFILE_BESIDE
    docker = data.get("docker") if isinstance(data.get("docker"), dict) else {}
    return EnvironmentSetup(str(file), env, environment, base_image, tuple(reader.notes),
                            base_dockerfile=dockerfile if dockerfile.is_file() and not docker.get("baseImage") else None)


def read_setup(path: str | Path) -> EnvironmentSetup | InferenceSetup:
    """The environment of an Azure ML file given as --env: an environment definition, or
    the environment of an inference configuration (its code is not used). A v2 file:
    sources.read_setup."""
    if kind_of(Path(path).expanduser()) is Kind.V1_INFERENCE:
        return read_inference_config(path)
    return read_environment_definition(path)


def _refuse_v2(file: Path, flag: str) -> None:
    """A v2 file given to an option that takes another kind: say which option takes it."""
    message = wrong_option_message(file, flag)
    if message:
        raise UsageError(message)


def _read(path: str | Path, what: str, flag: str) -> tuple[Path, str, tuple[str, ...]]:
    """(the file, its text, the note naming its encoding when that is not UTF-8)."""
    file = Path(path).expanduser().absolute()
    if not file.is_file():
        state = ("is a folder, not a file" if file.is_dir() else "is not a regular file" if file.exists()
                 else "does not exist")
        raise UsageError(f"{what} '{path}' {state}; pass {flag} with the JSON or YAML file Azure ML reads")
    decoded = decode_file(file)
    note = decoded.note(str(file))
    return file, decoded.text, (note,) if note else ()


def _load(file: Path, text: str, *, yaml_always: bool = False) -> Any:
    """The file's mapping: YAML for a .yml/.yaml name (or always, for v2 files: az ml reads
    them as YAML whatever the name, e.g. a sample script's 'deployment.yml_'), else JSON."""
    if yaml_always or file.suffix.lower() in (".yml", ".yaml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise UsageError(f"{where}: not valid YAML ({problem}); fix that line") from None
        if data is None:
            raise UsageError(f"'{file}' is empty; write the configuration in it")
        return data
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); fix that line "
                         "(a YAML file needs a .yml or .yaml name)") from None


def from_dict(data: Any, *, origin: str, base_dir: Path, text: str = "",
              notes: tuple[str, ...] = ()) -> InferenceSetup:
    """An inference configuration as a dictionary (a file's content, or an InferenceConfig
    serialised the same way). ``base_dir``: what relative paths start from; ``notes``: the
    file's own (its encoding)."""
    reader = _ConfigReader(origin, base_dir, text, notes)
    return reader.read(data)


class _ConfigReader:
    def __init__(self, origin: str, base_dir: Path, text: str, notes: tuple[str, ...] = ()) -> None:
        self.origin = origin
        self.base_dir = base_dir
        self.text = text
        self.notes: list[str] = list(notes)
        self.from_object = origin in ("InferenceConfig", "Environment")
        self.prefix = ""  # 'environment.' while reading that key of an inference configuration

    def where(self, key: str, value: Any = None) -> str:
        """'file:line' for the line that holds ``value`` under ``key`` (``key: value`` in
        JSON or YAML, else a YAML list item ``- value``, else a JSON string "value"), or
        'file: key' when no such line is found."""
        if value is not None and self.text:
            leaf, text = re.escape(key.rsplit(".", 1)[-1]), re.escape(str(value))
            for pattern in (rf"""["']?{leaf}["']?\s*:\s*["']?{text}["']?\s*(?:[,#}}]|$)""",
                            rf"""^\s*-\s+["']?{text}["']?\s*(?:#.*)?$""",
                            rf'"{re.escape(json.dumps(str(value))[1:-1])}"'):
                found = re.search(pattern, self.text, re.M)
                if found:
                    return f"{self.origin}:{self.text.count(chr(10), 0, found.start()) + 1}"
        return f"{self.origin}: {self.prefix}{key}"

    def fail(self, key: str, message: str, value: Any = None) -> UsageError:
        return UsageError(f"{self.where(key, value)}: {message}")

    @property
    def source(self) -> Path:
        """What build's messages call the environment: the file, or the object's kind."""
        return Path(self.origin) if not self.from_object else Path(f"the {self.origin} object")

    def path(self, value: str) -> Path:
        """A path as the file spells it; configurations written on Windows use backslashes."""
        return Path(value.replace("\\", "/")).expanduser()

    def conda_file(self, key: str, value: Any, folder: Path, relative_to: str) -> Environment:
        if not isinstance(value, str):
            raise self.fail(key, f"'{key}' must be a file path, not {value!r}")
        file = (folder / self.path(value)).absolute()
        if not file.is_file():
            raise self.fail(key, f"conda file '{value}' does not exist (looked at '{file}'); it is relative to "
                            f"{relative_to}", value)
        return read_conda_environment(file)

    def read(self, data: Any) -> InferenceSetup:
        if not isinstance(data, dict):
            raise UsageError(f"{self.origin}: an inference configuration is a mapping with 'entryScript' (and "
                             f"'sourceDirectory', 'environment'), not {type(data).__name__}")
        for snake, camel in _SNAKE.items():
            if snake in data and camel not in data:
                raise self.fail(snake, f"'{snake}' is spelled '{camel}' in an inference configuration file")
        unknown = sorted(set(data) - set(_ENVIRONMENT_KEYS) - set(_LEGACY_KEYS))
        if unknown:
            self.notes.append(f"{self.origin}: ignored key(s) {', '.join(unknown)} (amldebug reads "
                              f"{', '.join(_ENVIRONMENT_KEYS + _LEGACY_KEYS)})")
        source_dir, entry_script = self.code(data)
        environment_data = data.get("environment")
        legacy = {k: data[k] for k in _LEGACY_KEYS if data.get(k) not in (None, "", [], {}, False)}
        if environment_data is not None and legacy:
            raise self.fail(next(iter(legacy)), f"'{', '.join(legacy)}' cannot be given with 'environment' "
                            "(Azure ML refuses that too); move them into the environment or drop 'environment'")
        if environment_data is not None:
            self.prefix = "environment."
            env, environment, base_image = self.environment(environment_data)
        else:
            # azureml-core joins condaFile to sourceDirectory when there is one.
            folder = source_dir if data.get("sourceDirectory") else self.base_dir
            env, environment, base_image = self.legacy(legacy, folder)
        return InferenceSetup(self.origin, source_dir, entry_script, env, environment, base_image, tuple(self.notes))

    # -- the code ----------------------------------------------------------------------

    def code(self, data: dict) -> tuple[Path, str]:
        entry = data.get("entryScript")
        if not isinstance(entry, str) or not entry.strip():
            raise self.fail("entryScript", "'entryScript' is missing; name the scoring script, e.g. "
                            '"entryScript": "score.py"', entry if isinstance(entry, str) else None)
        source = data.get("sourceDirectory")
        if source is not None and not isinstance(source, str):
            raise self.fail("sourceDirectory", f"'sourceDirectory' must be a folder path, not {source!r}")
        if source:
            folder = (self.base_dir / self.path(source)).resolve()
            if not folder.is_dir():
                raise self.fail("sourceDirectory", f"source directory '{source}' does not exist (looked at "
                                f"'{folder}'); it is relative to the configuration's folder", source)
            relative = PurePosixPath(self.path(entry).as_posix())
            if relative.is_absolute() or ".." in relative.parts:
                raise self.fail("entryScript", f"entry script '{entry}' must be a path inside the source "
                                f"directory '{folder}', relative to it", entry)
            script = folder / relative
            entry_script = str(relative)
        else:
            script = (self.base_dir / self.path(entry)).resolve()
            folder, entry_script = script.parent, script.name
        if not script.is_file():
            raise self.fail("entryScript", f"entry script '{entry}' does not exist (looked at '{script}')", entry)
        if script.suffix != ".py":
            raise self.fail("entryScript", f"entry script '{entry}' is not a .py file; Azure ML runs Python "
                            "entry scripts only", entry)
        return folder, entry_script

    # -- an Azure ML environment (the 'environment' key) --------------------------------

    def environment(self, data: Any, conda_file: Optional[Path] = None) -> tuple[dict, Optional[Environment],
                                                                               Optional[str]]:
        if not isinstance(data, dict):
            raise self.fail("environment", "an Azure ML environment is a mapping with 'python', 'docker', "
                            f"'environmentVariables', not {type(data).__name__}")
        env = self.variables(data.get("environmentVariables"))
        docker = data.get("docker") or {}
        if not isinstance(docker, dict):
            raise self.fail("docker", f"'{self.prefix}docker' must be a mapping")
        if docker.get("baseDockerfile"):
            raise self.fail("docker.baseDockerfile",
                            "amldebug builds on an image, not a Dockerfile; build it first ('docker build -t my-base "
                            "-f Dockerfile .') and pass --base-image my-base")
        if docker.get("buildContext"):
            raise self.fail("docker.buildContext",
                            "amldebug builds on an image, not a build context; build it first ('docker build -t "
                            "my-base CONTEXT') and pass --base-image my-base")
        base_image = self.image(docker.get("baseImage"), docker.get("baseImageRegistry"), "docker.baseImage")
        python = data.get("python") or {}
        if not isinstance(python, dict):
            raise self.fail("python", f"'{self.prefix}python' must be a mapping")
        if python.get("userManagedDependencies"):
            if not base_image:
                raise self.fail("python.userManagedDependencies",
                                f"userManagedDependencies is true but '{self.prefix}docker.baseImage' is empty; name "
                                "the image that already has the packages (and azureml-inference-server-http)")
            return env, None, base_image
        base_image = self.serving_image(base_image)
        inline, named = python.get("condaDependencies"), python.get("condaDependenciesFile")
        if conda_file is not None:
            environment = read_conda_environment(conda_file)
        elif inline:
            if named:
                self.notes.append(f"{self.origin}: condaDependenciesFile ignored; condaDependencies are given too, "
                                  "and Azure ML builds from those")
            environment = self.conda(inline, "python.condaDependencies")
        elif named:
            environment = self.conda_file("python.condaDependenciesFile", named, self.base_dir,
                                          "the configuration's folder")
        else:
            # Azure ML would install its default packages (azureml-defaults); amldebug
            # adds the scoring server, which is what serving needs.
            environment = Environment(self.source)
        return env, self.advisory(environment, base_image), base_image

    def serving_image(self, base_image: Optional[str]) -> Optional[str]:
        """azureml-core gives every Environment its default TRAINING image (several GB, no
        scoring server). Unless a user chose it, build on amldebug's default instead."""
        if base_image and _AZUREML_DEFAULT_IMAGE.match(base_image):
            self.notes.append(f"{self.origin}: the base image {base_image} is azureml-core's default training "
                              "image; amldebug builds on Azure ML's minimal inference image instead (pass "
                              f"--base-image {base_image} to use it)")
            return None
        return base_image

    def variables(self, values: Any) -> dict:
        if values in (None, {}):
            return {}
        if not isinstance(values, dict):
            raise self.fail("environmentVariables",
                            "'environmentVariables' must be a mapping of NAME: value")
        env = {}
        for key, value in values.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)):
                raise self.fail("environmentVariables",
                                f"'{key}' is not a valid environment variable name", key)
            env[str(key)] = "" if value is None else str(value)
        return env

    def image(self, name: Any, registry: Any, key: str) -> Optional[str]:
        if not name:
            return None
        if not isinstance(name, str):
            raise self.fail(key, f"'{key}' must be an image name, not {name!r}")
        address = registry.get("address") if isinstance(registry, dict) else None
        first = name.split("/", 1)[0] if "/" in name else ""
        if address and not ("." in first or ":" in first or first == "localhost"):  # no registry named yet
            name = f"{address.rstrip('/')}/{name}"
        return name

    def conda(self, data: Any, key: str) -> Environment:
        """An inline conda specification (what azureml-core's CondaDependencies writes)."""
        if not isinstance(data, dict):
            raise self.fail(key, f"'{self.prefix}{key}' must be a mapping with 'dependencies'")
        dependencies = data.get("dependencies") or []
        channels = data.get("channels") or []
        if not isinstance(dependencies, list) or not isinstance(channels, list):
            raise self.fail(key, f"'{self.prefix}{key}.dependencies' and '.channels' must be lists")
        origin = self.base_dir / self.origin if self.from_object else Path(self.origin)
        reader = Reader()
        conda: list[str] = []
        for item in dependencies:
            if isinstance(item, str):
                conda.append(item.strip())
            elif isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
                for line in item["pip"]:
                    if not isinstance(line, str):
                        raise self.fail(f"{key}.dependencies.pip", f"pip entry {line!r} is not a requirement line")
                    where = self.where(f"{key}.dependencies.pip", line)
                    line = line.strip()
                    if line.startswith("-"):
                        reader.options(origin, where, line, (origin,))
                    elif line:
                        reader.requirement(origin, where, line)
            else:
                raise self.fail(f"{key}.dependencies", f"dependency {item!r} is neither a conda package nor "
                                "{'pip': [...]}")
        return Environment(self.source, tuple(reader.lines), tuple(conda), tuple(str(c) for c in channels),
                           tuple(reader.inputs))

    def advisory(self, environment: Environment, base_image: Optional[str]) -> Environment:
        # azureml-core pins a Python in every environment it writes (python=3.8.13 in its
        # template, 3.10.18 by default), and Azure ML creates that Python with conda. The
        # offline build installs into the base image's Python instead: say so, do not refuse.
        return dataclasses.replace(environment, strict_python=False, base_image=base_image)

    # -- the keys before environments (runtime, condaFile, baseImage) -------------------

    def legacy(self, legacy: dict, folder: Path) -> tuple[dict, Optional[Environment], Optional[str]]:
        runtime = legacy.get("runtime")
        if runtime and str(runtime).lower() != "python":
            raise self.fail("runtime", f"runtime '{runtime}' is not supported; amldebug runs the 'python' runtime",
                            runtime)
        if legacy.get("extraDockerfileSteps"):
            raise self.fail("extraDockerfileSteps", "amldebug cannot run extra Dockerfile steps (it builds with no "
                            "network and copies packages only); build an image with them and pass --base-image",
                            legacy["extraDockerfileSteps"])
        if legacy.get("enableGpu") or legacy.get("cudaVersion"):
            self.notes.append(f"{self.origin}: enableGpu/cudaVersion ignored (the debug service runs on the CPU)")
        base_image = self.image(legacy.get("baseImage"), legacy.get("baseImageRegistry"), "baseImage")
        if legacy.get("condaFile"):
            environment = self.conda_file("condaFile", legacy["condaFile"], folder,
                                          "sourceDirectory" if folder != self.base_dir else "the configuration's folder")
        else:
            environment = Environment(self.source)
        return {}, self.advisory(environment, base_image), base_image


def config_dict(inference_config) -> tuple[dict, Path]:
    """An azureml-core InferenceConfig as the dictionary its file would hold, and the folder
    its relative paths start from (the current directory, as in azureml-core)."""
    data: dict = {"entryScript": inference_config.entry_script,
                  "sourceDirectory": getattr(inference_config, "source_directory", None)}
    environment = getattr(inference_config, "environment", None)
    if environment is not None:
        serialise = getattr(type(environment), "_serialize_to_dict", None)
        if serialise is None:
            raise UsageError(f"{type(environment).__name__} is not an azureml-core Environment this amldebug can "
                             "read; pass an azureml.core.Environment")
        data["environment"] = serialise(environment)
    for attribute, key in (("runtime", "runtime"), ("conda_file", "condaFile"),
                           ("extra_docker_file_steps", "extraDockerfileSteps"), ("enable_gpu", "enableGpu"),
                           ("cuda_version", "cudaVersion"), ("base_image", "baseImage")):
        value = getattr(inference_config, attribute, None)
        if value:
            data[key] = value
    registry = getattr(inference_config, "base_image_registry", None)
    if data.get("baseImage") and getattr(registry, "address", None):
        data["baseImageRegistry"] = {"address": registry.address}
    return data, Path.cwd()


def from_inference_config(inference_config) -> InferenceSetup:
    """An azureml-core InferenceConfig (or anything with its attributes)."""
    if not getattr(inference_config, "entry_script", None):
        raise UsageError("the InferenceConfig has no entry_script; build it with InferenceConfig(entry_script=...)")
    data, base_dir = config_dict(inference_config)
    return from_dict(data, origin="InferenceConfig", base_dir=base_dir)


def from_environment(environment) -> EnvironmentSetup:
    """An azureml-core Environment object, serialised by azureml-core itself."""
    serialise = getattr(type(environment), "_serialize_to_dict", None)
    if serialise is None:
        raise UsageError(f"{type(environment).__name__} is not an azureml-core Environment this amldebug can read; "
                         "pass an azureml.core.Environment")
    reader = _ConfigReader("Environment", Path.cwd(), "")
    env, setup_environment, base_image = reader.environment(serialise(environment))
    return EnvironmentSetup("Environment", env, setup_environment, base_image, tuple(reader.notes))
