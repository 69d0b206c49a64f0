"""amldebug: debug an Azure ML scoring script inside its local image, from VS Code.

Python API (the CLI is a thin layer over it)::

    service = amldebug.attach("score_dir", image="score:3", model_dir="models/clf")
    service.run({"data": [[1, 2]]}); service.reload(); service.delete()
    amldebug.get_service("score_dir")
"""

from __future__ import annotations

import os

from .core.version import __version__
from .errors import UsageError

__all__ = ["attach", "get_service", "list_services", "Service", "__version__"]


def attach(source_dir=None, *, write_vscode: bool = True, inference_config=None, environment=None, models=(),
           env_file=None, base_image=None, **options):
    """Start (or replace) a debug service and return it (a LocalWebservice-shaped object).

    ``options`` are those of ``amldebug attach`` in Python form: image, entry_script,
    model_dir, model_name, model_version, port, debug_port, name, wait, just_my_code, env
    (a dict), debug_bind, runtime, python, workspace.

    The image can come from an environment, built (or found built) on ``base_image``:
    ``env_file`` (a requirements file, conda YAML, or Azure ML environment definition, as
    ``--env``) or ``environment`` (an azureml-core ``Environment``). ``inference_config``
    (an azureml-core ``InferenceConfig``, or the path of its file, as ``--inference-config``)
    gives the code and the environment. ``models``: local paths or azureml-core
    ``Model`` objects to place (several: each at azureml-models/<name>/<version>/, as
    Model.deploy(models=[...])). ``deployment``: an Azure ML v2 online deployment YAML, as
    ``--deployment``.
    """
    from .azureml_bridge import place_model
    from .core.options import AttachOptions
    from .session import attach as _attach
    from .session import spec_for
    from .sources import azureml as inference

    if inference_config is not None and (source_dir is not None or "entry_script" in options
                                         or env_file is not None or environment is not None):
        raise UsageError("source_dir, entry_script and the environment come from the inference configuration; "
                         "do not pass them as well")
    if environment is not None and env_file is not None:
        raise UsageError("pass env_file or environment, not both")
    if models and ("model_dir" in options or "model_name" in options):
        raise UsageError("pass models or model_dir/model_name, not both")
    unknown = set(options) - {f for f in AttachOptions.__dataclass_fields__} - {"env"}
    if unknown:
        raise UsageError(f"attach() does not know {', '.join(sorted(unknown))}")
    if models:  # last: a registered model is downloaded
        options.update(place_model(models))
    setup = None
    if inference_config is not None and not isinstance(inference_config, (str, os.PathLike)):
        setup, inference_config = inference.from_inference_config(inference_config), None
    elif environment is not None:
        setup = inference.from_environment(environment)
    env = options.pop("env", None) or {}
    opts = AttachOptions.from_params({**options, "source_dir": source_dir, "env_file": env_file,
                                      "base_image": base_image, "inference_config": inference_config,
                                      "env": tuple(env.items())})
    return _attach(spec_for(opts, setup=setup, project=False), write_vscode=write_vscode).service


def get_service(name: str):
    from .session import get_service as _get

    return _get(name)


def list_services():
    from .session import list_services as _list

    return _list()


def __getattr__(name):
    if name == "Service":
        from .service.service import Service

        return Service
    raise AttributeError(name)
