"""Where amldebug's files are: its cache (payload, probes, state, locks) and the folders that ship
with it (templates/, vscode-config/)."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # amldebug/


def resource_dir(name: str) -> Path:
    """Return the folder ``name`` from an installed wheel or, in a checkout, from the repo root."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"amldebug is installed without its '{name}' folder; reinstall it with pip")


def cache_root() -> Path:
    """amldebug's cache: ``$AMLDEBUG_CACHE``, else ``~/.cache/amldebug``."""
    return Path(os.environ.get("AMLDEBUG_CACHE", Path.home() / ".cache" / "amldebug"))
