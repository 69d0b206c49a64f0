"""The optional bridge to azureml-core (``pip install 'amldebug[azureml]'``).

Three ways in for users who already have Azure ML code:

- ``LocalWebserviceTarget``: let ``amldebug watch`` drive an azureml-core
  ``LocalWebservice`` with its own ``reload()``. That is the literal Azure ML flow: the
  container is recreated, so a debugger attached to it is dropped on every reload.
- ``spec_from_inference_config``: an ``InferenceConfig`` (plus a local model path or a
  ``Model``) becomes the ServiceSpec ``amldebug attach --inference-config`` would give,
  its environment built into an image.
- ``spec_from_local_webservice_container`` (from ``amldebug.localwebservice``): a container
  made by LocalWebservice becomes a ServiceSpec for a debuggable amldebug service from the
  same image.

azureml-core is imported lazily: nothing here needs it at import time, and the parts that
only read a container's labels and environment work without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from .core.spec import ServiceSpec, _model_name_from
from .errors import AmlDebugError, DockerUnavailableError, ReloadError, ServiceNotFoundError, UsageError
from .localwebservice import (  # noqa: F401 (part of the bridge's API)
    INSTALL_HINT,
    LABEL_CONTAINER_NAME,
    LABEL_INFERENCE_CONFIG,
    LABEL_MODEL_PATH_DIR,
    LABEL_MODELS_LOCAL,
    LABEL_MODELS_REMOTE,
    MODELS_DIR,
    AzureMLNotInstalledError,
    _import_azureml,
    _read_label,
    find_local_webservice_container,
    spec_from_local_webservice_container,
)

# -- 1. drive a LocalWebservice from amldebug watch ----------------------------------------

class _NoWorkspace:
    """Stands in for azureml.core.Workspace. LocalWebservice only hands its workspace to
    ``Model(workspace, id=...)`` for registered models and to update()/deploy(); a service
    with local models only never touches it. Anything that does gets a clear error."""

    def __repr__(self) -> str:
        return "NoWorkspace()"

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise UsageError(f"this LocalWebservice operation needs an Azure ML workspace (it asked for "
                         f"'workspace.{attribute}'); amldebug only drives reload(), run() and get_logs() "
                         "without one")


@dataclasses.dataclass(frozen=True)
class LocalWebserviceWatchSpec:
    """What ReloadLoop reads from its target: the folder to watch and nothing to rebuild on."""

    name: str
    source_dir: str
    entry_script: Optional[str] = None
    env_file: Optional[str] = None
    model_dir: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class LocalWebserviceReloadResult:
    seconds: float
    restarted: bool = True  # LocalWebservice.reload() always recreates the container
    worker_pid: Optional[int] = None


def find_local_webservice(name: str, *, workspace: Any = None):
    """The azureml-core LocalWebservice object for the existing container labelled
    ``containerName=<name>``; no Azure credentials needed unless it serves registered models
    (then pass a real ``workspace``)."""
    local, exceptions = _import_azureml()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            service = local.LocalWebservice(workspace if workspace is not None else _NoWorkspace(), name,
                                            must_exist=True)
    except exceptions.WebserviceException as exc:
        text = _azureml_message(exc)
        if "WebserviceNotFound" in text:
            raise ServiceNotFoundError(f"no LocalWebservice container labelled {LABEL_CONTAINER_NAME}={name}; "
                                       "deploy it with Model.deploy(..., LocalWebservice.deploy_configuration()) "
                                       "or check the name with 'docker ps --filter label=containerName'") from None
        if "Docker" in text and ("running" in text or "communicate" in text):
            raise DockerUnavailableError(f"azureml-core cannot reach Docker: {text.splitlines()[0]}") from None
        raise AmlDebugError(f"cannot load LocalWebservice '{name}': {text}") from None
    if not getattr(service, "_deployable", False):
        raise UsageError(f"the container labelled {LABEL_CONTAINER_NAME}={name} lacks LocalWebservice's labels "
                         f"({LABEL_INFERENCE_CONFIG}, ...): it was not made by LocalWebservice, so "
                         "LocalWebservice.reload() cannot recreate it")
    return service


class LocalWebserviceTarget:
    """Adapter so ``amldebug.watch.ReloadLoop`` can drive an azureml-core LocalWebservice
    (a ``watch.Reloadable``).

    ``reload()`` calls the webservice's own ``reload(wait=True)``: the container is killed,
    recreated from the image tagged with the service name, the source directory is copied
    in again and it starts. Any debug session in it is dropped (``restarted=True``).
    """

    def __init__(self, webservice, source_dir: str | os.PathLike | None = None) -> None:
        self.webservice = webservice
        config = getattr(webservice, "_inference_config", None)
        configured = getattr(config, "source_directory", None)
        folder = source_dir or configured
        if not folder:
            raise UsageError(f"LocalWebservice '{webservice.name}' has no source directory on record; "
                             "pass the folder that holds its entry script")
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise UsageError(f"source directory '{folder}' does not exist; pass the folder that holds the entry script")
        if configured and Path(configured).resolve() != folder:
            # reload() copies what the InferenceConfig names, not what we watch.
            raise UsageError(f"LocalWebservice '{webservice.name}' copies '{configured}' on reload, not '{folder}'; "
                             f"watch '{configured}'")
        self.spec = LocalWebserviceWatchSpec(name=webservice.name, source_dir=str(folder),
                                             entry_script=getattr(config, "entry_script", None))

    @property
    def name(self) -> str:
        return self.webservice.name

    @property
    def scoring_uri(self) -> Optional[str]:
        return self.webservice.scoring_uri

    def reload(self, *, mode=None, changed: Sequence[str] = (), checked: bool = False) -> LocalWebserviceReloadResult:
        """LocalWebservice.reload(wait=True), its one kind of reload (a new container, whatever
        ``mode`` asks and whichever files ``changed``); raises ReloadError with its logs on failure."""
        _, exceptions = _import_azureml()
        started = time.monotonic()
        try:
            # azureml-core prints progress to stdout; amldebug keeps stdout for results.
            with contextlib.redirect_stdout(sys.stderr):
                self.webservice.reload(wait=True)
        except exceptions.WebserviceException as exc:
            raise ReloadError(f"LocalWebservice '{self.name}' did not come back after reload(): "
                              f"{_azureml_message(exc)}\n{self._log_tail()}") from None
        return LocalWebserviceReloadResult(seconds=time.monotonic() - started)

    def update(self) -> LocalWebserviceReloadResult:
        """ReloadLoop calls this for environment/model changes; this target watches neither,
        and LocalWebservice.update() needs a workspace, so it is a reload."""
        return self.reload()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return self.webservice.get_logs(num_lines=lines)
        except Exception:  # the container may be gone; the reload error is what matters
            return ""


def _azureml_message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc).strip()


# -- 2. InferenceConfig -> ServiceSpec -----------------------------------------------------

def spec_from_inference_config(inference_config, *, models: Iterable[Any] = (), base_image: Optional[str] = None,
                               progress=None, **options) -> ServiceSpec:
    """The ServiceSpec that ``amldebug attach --inference-config`` gives for an azureml-core
    ``InferenceConfig``: its source directory and entry script, its environment's variables
    (``options['env']`` wins on a clash), and its environment's packages, built into an
    image (or found built) unless ``options['image']`` names one. ``models``: one local
    path or azureml-core ``Model`` (downloaded with its workspace, placed under its own
    name and version).

    ``options`` are resolve_spec's keyword arguments (image, name, port, ...).
    """
    from .core.options import AttachOptions
    from .session import spec_for
    from .sources.azureml import from_inference_config

    for forbidden in ("source_dir", "entry_script", "model_dir"):
        if forbidden in options:
            raise UsageError(f"'{forbidden}' comes from the InferenceConfig/models; do not pass it as well")
    setup = from_inference_config(inference_config)
    options.update(place_model(models))
    env = options.pop("env", None) or {}
    opts = AttachOptions.from_params({**options, "base_image": base_image, "env": tuple(env.items())})
    return spec_for(opts, setup=setup, project=False, **({"progress": progress} if progress else {}))


def place_model(models) -> dict:
    """resolve_spec's model options for ``models``: local paths (named after the path,
    version 1) or azureml-core Models (downloaded into amldebug's cache with their
    workspace's credentials, named and numbered as registered). Several models are placed
    side by side, as Model.deploy(models=[...]) places them."""
    if isinstance(models, (str, os.PathLike)) or _is_registered_model(models):
        models = [models]
    models = list(models or ())
    if not models:
        return {}
    for model in models:
        if not isinstance(model, (str, os.PathLike)) and not _is_registered_model(model):
            raise UsageError(f"model {model!r} is neither a local path nor an azureml-core Model; pass the model's "
                             "folder or file, or Model(workspace, name=...)")
    if len(models) == 1:
        model = models[0]
        if isinstance(model, (str, os.PathLike)):
            return {"model_dir": str(model)}
        return {"model_dir": _download(model), "model_name": model.name, "model_version": str(model.version)}
    items = []
    for model in models:
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            items.append(f"{_model_name_from(path)}:1={path}")
        else:
            items.append(f"{model.name}:{model.version}={_download(model)}")
    return {"model_dir": tuple(items)}


def _is_registered_model(model) -> bool:
    return all(hasattr(model, attribute) for attribute in ("name", "version", "download")) \
        and not isinstance(model, (str, os.PathLike))


def _download(model) -> str:
    from .core.paths import cache_root

    folder = cache_root() / "models" / model.name / str(model.version)
    if folder.is_dir() and len(list(folder.iterdir())) == 1:  # a registered version does not change
        return str(next(folder.iterdir()).resolve())
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            path = Path(model.download(target_dir=str(partial), exist_ok=True))
    except Exception as exc:  # azureml-core raises its own errors, and requests' for the network
        shutil.rmtree(partial, ignore_errors=True)
        raise AmlDebugError(f"cannot download model {model.name}:{model.version} from its workspace: "
                            f"{_azureml_message(exc).splitlines()[0]}; download it yourself (Model.download) and "
                            "pass the folder") from None
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return str((folder / path.resolve().relative_to(partial.resolve())).resolve())


# -- 3. a LocalWebservice container -> ServiceSpec -----------------------------------------


__all__ = [
    "AzureMLNotInstalledError",
    "LocalWebserviceTarget",
    "find_local_webservice",
    "find_local_webservice_container",
    "spec_from_inference_config",
    "spec_from_local_webservice_container",
]
