"""Find the files that ship with amldebug (templates/, vscode-config/, the in-container launcher)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # amldebug/


def resource_dir(name: str) -> Path:
    """Return the folder ``name`` from an installed wheel or, in a checkout, from the repo root."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"amldebug is installed without its '{name}' folder; reinstall it with pip")
