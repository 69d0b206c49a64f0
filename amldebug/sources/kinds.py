"""Which kind of input file a path is: a pip requirements file, a conda YAML, an Azure ML v1
inference configuration or environment definition, or an Azure ML v2 deployment,
environment or other asset. Decided here only, by the name's suffix and the text's keys,
so that ``--env``, ``--deployment``, ``check`` and the readers agree on every file. Pure:
reads the file, never fails (a file that cannot be read is judged by its name, and its
reader then says what is wrong with it).
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Optional

from .encoding import DecodeError, decode

_YAML = (".yml", ".yaml")
_SCHEMA = re.compile(r"^\s*['\"]?\$schema['\"]?\s*:\s*['\"]?(\S+?)['\"]?\s*$", re.M)
# The top-level keys of an Azure ML environment definition (azureml_environment.json).
V1_ENVIRONMENT_KEYS = ("python", "docker", "environmentVariables")


class Kind(enum.Enum):
    """An input file's kind; the value is how messages name it."""

    REQUIREMENTS = "pip requirements file"
    CONDA = "conda environment file"
    V1_INFERENCE = "Azure ML inference configuration"
    V1_ENVIRONMENT = "Azure ML environment definition"
    V2_DEPLOYMENT = "Azure ML v2 online deployment"
    V2_ENVIRONMENT = "Azure ML v2 environment"
    V2_OTHER = "Azure ML v2 file"  # an endpoint, a model, a batch deployment...: v2_name says which

    @property
    def is_azureml(self) -> bool:
        """An Azure ML file (v1 or v2): read into a setup, not straight into an Environment."""
        return self not in (Kind.REQUIREMENTS, Kind.CONDA)

    @property
    def is_v2(self) -> bool:
        return self in (Kind.V2_DEPLOYMENT, Kind.V2_ENVIRONMENT, Kind.V2_OTHER)


def kind_of(path: Path, text: Optional[str] = None) -> Kind:
    """The kind of the file at ``path`` (``text``: its content, when read already).

    YAML (by its suffix): a v2 file by its ``$schema`` or keys, else a v1 file by its keys
    (``entryScript``; ``python``/``docker``/``environmentVariables``), else a conda file.
    JSON: an inference configuration with ``entryScript``, else an environment definition
    (whose reader names what it lacks). ``.txt``: requirements. Any other name: conda by a
    top-level ``dependencies:``, else requirements."""
    suffix = path.suffix.lower()
    if text is None:
        text = _text(path)
    if suffix in _YAML and text is not None:
        name = _v2(text)
        if name is not None:
            return {"deployment": Kind.V2_DEPLOYMENT, "environment": Kind.V2_ENVIRONMENT}.get(name, Kind.V2_OTHER)
    if suffix == ".json":
        return Kind.V1_ENVIRONMENT if text is not None and '"entryScript"' not in text else Kind.V1_INFERENCE
    if suffix in _YAML:
        if text is not None and re.search(r"^entryScript\s*:", text, re.M):
            return Kind.V1_INFERENCE
        if text is not None and re.search(rf"^({'|'.join(V1_ENVIRONMENT_KEYS)})\s*:", text, re.M):
            return Kind.V1_ENVIRONMENT
        return Kind.CONDA
    if suffix != ".txt" and text is not None and re.search(r"^dependencies\s*:", text, re.M):
        return Kind.CONDA
    return Kind.REQUIREMENTS


def v2_name(path: Path, text: Optional[str] = None) -> Optional[str]:
    """Which v2 file a YAML path is, as messages name it: 'deployment', 'environment', or
    another kind ('managed online endpoint', 'model', 'batch deployment', ...) by the file's
    ``$schema`` or, without one, its top-level keys; None for anything that is not v2."""
    if path.suffix.lower() not in _YAML:
        return None
    if text is None:
        text = _text(path)
    return None if text is None else _v2(text)


def _v2(text: str) -> Optional[str]:
    found = _SCHEMA.search(text)
    if found:
        schema = found.group(1).rsplit("/", 1)[-1].lower()
        if schema.endswith("onlinedeployment.schema.json"):
            return "deployment"
        if schema == "environment.schema.json":
            return "environment"
        if "azuremlschemas" in found.group(1) or "azureml" in found.group(1):
            stem = found.group(1).rsplit("/", 1)[-1].split(".schema", 1)[0]
            return re.sub(r"(?<!^)(?=[A-Z])", " ", stem).lower() or "azure ml asset"
        return None
    keys = set(re.findall(r"^([A-Za-z_$][A-Za-z0-9_]*)\s*:", text, re.M))
    if "code_configuration" in keys or ("endpoint_name" in keys and ("model" in keys or "environment" in keys)):
        return "deployment"
    if keys & {"image", "build", "conda_file"} and "dependencies" not in keys:
        return "environment"
    return None


def _text(path: Path) -> Optional[str]:
    """The file's text as the readers decode it, or None when it cannot be read."""
    try:
        return decode(path.read_bytes()).text
    except (OSError, DecodeError):
        return None
