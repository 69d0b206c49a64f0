"""amldebug: debug an Azure ML scoring script inside its local image, from VS Code.

Python API (the CLI is a thin layer over it)::

    service = amldebug.attach("score_dir", image="score:3", model_dir="models/clf")
    service.run({"data": [[1, 2]]}); service.reload(); service.delete()
    amldebug.get_service("score_dir")
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["attach", "get_service", "list_services", "Service", "__version__"]


def attach(source_dir=".", *, write_vscode: bool = True, **options):
    """Start (or replace) a debug service and return it (a LocalWebservice-shaped object).

    ``options`` are those of ``amldebug attach`` in Python form: image, entry_script,
    model_dir, model_name, model_version, port, debug_port, name, wait, just_my_code, env
    (a dict), debug_bind, runtime, python, workspace.
    """
    from .session import attach as _attach
    from .spec import resolve_spec

    return _attach(resolve_spec(source_dir, **options), write_vscode=write_vscode).service


def get_service(name: str):
    from .service import get_service as _get

    return _get(name)


def list_services():
    from .service import list_services as _list

    return _list()


def __getattr__(name):
    if name == "Service":
        from .service import Service

        return Service
    raise AttributeError(name)
