"""What azureml-core's LocalWebservice left on the engine: its container (found by the label
``containerName``), and the code, model and variables it was deployed with, read back from
its labels (unpickled with azureml-core, when it is installed) and environment. Both
``amldebug attach --service NAME`` and the azureml-core bridge start from here.
"""

from __future__ import annotations

import io
import os
import pickle
from base64 import b64decode
from pathlib import Path
from typing import Optional

from .core.spec import APP_ROOT, ServiceSpec, resolve_spec
from .engine.docker import containers_labelled, image_of
from .errors import AzureMLNotInstalledError, ImageError, ServiceNotFoundError, UsageError

INSTALL_HINT = "azureml-core is not installed; pip install 'amldebug[azureml]'"


# What LocalWebservice writes on its container (azureml/core/webservice/local.py and
# azureml/_model_management/_util.py create_docker_container).
LABEL_CONTAINER_NAME = "containerName"


LABEL_INFERENCE_CONFIG = "amlInferenceConfig"


LABEL_MODELS_LOCAL = "amlModelsLocal"


LABEL_MODELS_REMOTE = "amlModelsRemote"


LABEL_MODEL_PATH_DIR = "amlModelPathDir"


MODELS_DIR = "azureml-models"


def _import_azureml():
    try:
        from azureml.core.webservice import LocalWebservice  # noqa: F401
        from azureml.exceptions import WebserviceException  # noqa: F401
    except ImportError:
        raise AzureMLNotInstalledError(INSTALL_HINT) from None
    import azureml.core.webservice.local as local
    import azureml.exceptions as exceptions

    return local, exceptions


def find_local_webservice_container(client, name: str):
    """The one container LocalWebservice made for ``name`` (label containerName=<name>)."""
    found = containers_labelled(client, f"{LABEL_CONTAINER_NAME}={name}")
    if not found:
        raise ServiceNotFoundError(f"no LocalWebservice container labelled {LABEL_CONTAINER_NAME}={name}; "
                                   "list them with 'docker ps -a --filter label=containerName'")
    if len(found) > 1:
        raise UsageError(f"{len(found)} containers are labelled {LABEL_CONTAINER_NAME}={name}; remove the stale ones")
    return found[0]


def spec_from_local_webservice_container(client, name: str, *, source_dir: str | os.PathLike | None = None,
                                         model_dir: str | os.PathLike | None = None, **options) -> ServiceSpec:
    """A ServiceSpec for a debuggable amldebug service from the image of LocalWebservice
    ``name``'s container, with the same code, model and environment variables.

    The host source folder and local model path come from LocalWebservice's labels (read
    with azureml-core when it is installed); otherwise pass ``source_dir`` (and
    ``model_dir``). The entry script is what the container's AZUREML_ENTRY_SCRIPT names.
    """
    box = find_local_webservice_container(client, name)
    labels = box.labels or {}
    container_env = _env_dict(box.attrs.get("Config", {}).get("Env"))
    box_image = image_of(box)  # None: removed under a stopped container, no image env to subtract
    image_env = _env_dict((box_image.attrs if box_image is not None else {}).get("Config", {}).get("Env"))

    config = _read_label(labels, LABEL_INFERENCE_CONFIG)
    entry_script = None
    if source_dir is None and config is not None and getattr(config, "source_directory", None):
        source_dir = config.source_directory
        entry_script = config.entry_script
    if source_dir is None:
        where = f"{container_env.get('AML_APP_ROOT', APP_ROOT)}/{_code_folder(container_env) or '<folder>'}"
        raise UsageError(f"cannot tell which host folder LocalWebservice '{name}' copied to {where}"
                         + ("" if _azureml_available() else f" ({INSTALL_HINT} to read it from the container)")
                         + "; pass the source directory")
    if entry_script is None:
        entry_script = _entry_from_env(container_env, Path(source_dir).name, name)

    if model_dir is None:
        model_dir = _local_model_from_labels(labels, name)
    env = {k: v for k, v in container_env.items()
           if image_env.get(k) != v and k not in ("AZUREML_MODEL_DIR", "PATH", "HOSTNAME")}
    env.update(options.pop("env", None) or {})
    options.setdefault("name", name)
    image = options.pop("image", None) or _image_ref(box_image, name)
    return resolve_spec(source_dir, entry_script=entry_script, model_dir=model_dir, env=env, image=image, **options)


def _image_ref(image, name: str) -> str:
    if image is None:
        raise ImageError(f"the image of LocalWebservice '{name}' has been removed since its container was made; "
                         "deploy the service again so that its image exists")
    return image.tags[0] if image.tags else image.id


def _env_dict(pairs) -> dict:
    return dict(pair.split("=", 1) if "=" in pair else (pair, "") for pair in pairs or ())


def _code_folder(env: dict) -> Optional[str]:
    entry = env.get("AZUREML_ENTRY_SCRIPT", "")
    return entry.split("/", 1)[0] if "/" in entry else None


def _entry_from_env(env: dict, basename: str, name: str) -> str:
    entry = env.get("AZUREML_ENTRY_SCRIPT")
    if not entry:
        raise UsageError(f"LocalWebservice '{name}' names no AZUREML_ENTRY_SCRIPT in its environment; "
                         "pass the entry script")
    head, _, rest = entry.partition("/")
    if not rest:
        return entry  # the script was copied alone to the app root
    if head != basename:
        raise UsageError(f"LocalWebservice '{name}' runs {entry}, which is not in a folder named '{basename}'; "
                         f"pass the source directory whose name is '{head}'")
    return rest


def _local_model_from_labels(labels: dict, name: str) -> Optional[str]:
    remote = _read_label(labels, LABEL_MODELS_REMOTE)
    if remote:
        raise UsageError(f"LocalWebservice '{name}' serves registered model(s) {', '.join(map(str, remote))}; "
                         "download one (Model.download) and pass it as the model path")
    local = _read_label(labels, LABEL_MODELS_LOCAL) or []
    if len(local) > 1:
        raise UsageError(f"LocalWebservice '{name}' serves {len(local)} local models; pass the one to place")
    return local[0]["local_path"] if local else None


def _azureml_available() -> bool:
    try:
        _import_azureml()
    except AzureMLNotInstalledError:
        return False
    return True


class _AzureMLOnlyUnpickler(pickle.Unpickler):
    """LocalWebservice stores its settings as base64 pickles in labels. Load azureml-core's
    own classes and plain data only: a label is not a place to run arbitrary code from."""

    def find_class(self, module: str, name: str):
        if module == "azureml" or module.startswith("azureml."):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"label refers to {module}.{name}, which is not an azureml-core class")


def _read_label(labels: dict, key: str):
    """The decoded label, or None when it is missing, unreadable, or needs azureml-core."""
    raw = labels.get(key)
    if not raw or not _azureml_available():
        return None
    try:
        return _AzureMLOnlyUnpickler(io.BytesIO(b64decode(raw))).load()
    except Exception:
        return None
