"""The order in which local images are looked at for a scoring server or a Python: a pure
ordering of what the engine listed (engine/discover.py for ``attach`` without ``--image``,
envbuild/python.py for a base image with the pinned Python)."""

from __future__ import annotations

from typing import Callable, Iterable

# Signs that an image may serve a scoring script: Azure ML's inference images (runsvdir,
# AML_APP_ROOT), images whose command is the server, amldebug's own builds, and images whose
# build history installed it (pip install azureml-inference-server-http / azureml-defaults).
_HINTS = ("azmlinfsrv", "azureml", "aml_app_root", "runsvdir", "inference", "amldebug-env")


def created_key(image) -> str:
    """Docker's creation time as a string that sorts by time (it trims the nanoseconds'
    trailing zeros, so '...14.5Z' must sort after '...14.123Z')."""
    created = str(image.attrs.get("Created") or "").rstrip("Z")
    head, _, fraction = created.partition(".")
    return f"{head}.{fraction[:9].ljust(9, '0')}"


def _hinted(image, history: Callable[[object], Iterable[str]]) -> bool:
    config = image.attrs.get("Config") or {}
    words = [*image.tags, *(config.get("Cmd") or []), *(config.get("Entrypoint") or []), *(config.get("Env") or []),
             *(f"{k}={v}" for k, v in (config.get("Labels") or {}).items())]
    if any(hint in " ".join(str(w) for w in words).lower() for hint in _HINTS):
        return True
    return any(hint in " ".join(history(image)).lower() for hint in _HINTS)


def candidates(images: list, history: Callable[[object], Iterable[str]] = lambda image: ()) -> list:
    """The tagged images in the order they are probed (a pure ordering of what the engine
    listed): those with a sign of the server (``history(image)``: the commands that built
    it) newest first, then every other tagged image newest first, since an image may have
    the server with no sign of it."""
    tagged = [i for i in images if i.tags]
    hinted = [i for i in tagged if _hinted(i, history)]
    others = [i for i in tagged if i not in hinted]
    return sorted(hinted, key=created_key, reverse=True) + sorted(others, key=created_key, reverse=True)
