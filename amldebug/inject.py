"""Put debugpy and the launcher in front of the image's own scoring server.

The payload is a folder on the host (cached under ~/.cache/amldebug) mounted read-only
into the container at /opt/amldebug: ``launch.py``, ``probe.py`` and
``lib/cpXY/debugpy`` for the container's Python. Nothing in the user's image or
environment is rebuilt, and score.py is not edited.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import __version__
from .errors import AmlDebugError

PAYLOAD_SOURCE = Path(__file__).resolve().parent / "payload"


def cache_root() -> Path:
    return Path(os.environ.get("AMLDEBUG_CACHE", Path.home() / ".cache" / "amldebug"))


def _debugpy_version() -> str:
    from importlib import metadata

    return metadata.version("debugpy")


def payload_dir() -> Path:
    """The payload folder for this amldebug version, with the launcher files in it."""
    digest = hashlib.sha256()
    for f in sorted(PAYLOAD_SOURCE.glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    root = cache_root() / f"payload-{__version__}-{digest.hexdigest()[:12]}"
    if not (root / ".complete").is_file():  # an interrupted copy is redone
        root.mkdir(parents=True, exist_ok=True)
        for f in PAYLOAD_SOURCE.glob("*.py"):
            shutil.copy2(f, root / f.name)
        (root / ".complete").touch()
    return root


def ensure_debugpy(root: Path, python_version: str, machine: str) -> Path:
    """Make ``root/lib/cpXY/debugpy`` exist for the container's Python (cached)."""
    tag = "cp" + python_version.replace(".", "")
    target = root / "lib" / tag
    if (target / "debugpy" / "__init__.py").is_file():
        return target
    host_version = "%d.%d" % sys.version_info[:2]
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}-", dir=root))
    try:
        if python_version == host_version and machine == platform.machine():
            spec = importlib.util.find_spec("debugpy")
            shutil.copytree(Path(spec.origin).parent, tmp / "debugpy", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            _download_debugpy(tmp, python_version, machine)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent run got there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download_debugpy(dest: Path, python_version: str, machine: str) -> None:
    wheels = dest / "wheels"
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--python-version", python_version, "--dest", str(wheels),
        "--platform", f"manylinux_2_34_{machine}", "--platform", f"manylinux2014_{machine}",
        "--platform", "any", f"debugpy=={_debugpy_version()}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = list(wheels.glob("debugpy-*.whl")) if result.returncode == 0 else []
    if not found:
        raise AmlDebugError(
            f"could not fetch debugpy for the container's Python {python_version} ({machine}): "
            f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no wheel found'}; "
            "check pip's index/proxy settings on this machine"
        )
    with zipfile.ZipFile(found[0]) as whl:
        whl.extractall(dest)
