"""Put debugpy and the launcher in front of the image's own scoring server.

The payload is a folder on the host (cached under ~/.cache/amldebug) mounted read-only
into the container at /opt/amldebug: ``launch.py`` with its packages (``master/``, ``worker/``,
``common/``; payload/__init__.py), ``probe.py`` and
``lib/cpXY/debugpy`` for the container's Python. Nothing in the user's image or
environment is rebuilt, and score.py is not edited.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..core.paths import cache_root
from ..core.version import __version__
from ..errors import AmlDebugError, ImageError
from ..payload.common import protocol

PAYLOAD_SOURCE = Path(__file__).resolve().parents[1] / "payload"
OLDEST_PYTHON = "3.8"  # the launcher's floor (tests/unit/test_payload_compat.py)
# pip's words for an index it could not reach (urllib3's retries, pip's own fetch errors).
NETWORK_SIGNS = (r"NewConnectionError|ConnectTimeout|ReadTimeout|ProxyError|SSLError|Connection refused|"
                 r"Name or service not known|Temporary failure in name resolution|Network is unreachable|"
                 r"Could not fetch URL|connection error|HTTP error \d+|Max retries exceeded")


def _debugpy_version() -> str:
    from importlib import metadata

    return metadata.version("debugpy")


def payload_dir() -> Path:
    """The payload folder for this amldebug version, with the launcher files in it.

    Everything in it is world-readable (dirs 0755, files 0644): it is bind-mounted into
    images that run as a non-root user (Azure ML's ``dockeruser``), and the mount source is
    this folder itself, so its parents' modes do not matter to the container.
    """
    files = payload_files()
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.as_posix().encode() + (PAYLOAD_SOURCE / rel).read_bytes())
    root = cache_root() / f"payload-{__version__}-{digest.hexdigest()[:12]}"
    if not (root / ".complete").is_file():  # an interrupted copy is redone
        root.mkdir(parents=True, exist_ok=True)
        for rel in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PAYLOAD_SOURCE / rel, root / rel)
        (root / ".complete").touch()
        make_readable(root)
    elif not _is_readable_dir(root):  # made by an older amldebug, or under a umask of 077
        make_readable(root)
    return root


def payload_files() -> list[Path]:
    """The payload's Python files, relative to its folder (its packages' too)."""
    return sorted(f.relative_to(PAYLOAD_SOURCE) for f in PAYLOAD_SOURCE.rglob("*.py") if "__pycache__" not in f.parts)


def make_readable(top: Path) -> None:
    """chmod ``top`` and everything under it: dirs 0755, files 0644 (0755 if executable)."""
    paths = [top]
    for dirpath, dirnames, filenames in os.walk(top):
        paths += [Path(dirpath, name) for name in dirnames + filenames]
    for path in paths:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        os.chmod(path, 0o755 if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0o644)


def _is_readable_dir(path: Path) -> bool:
    return path.stat().st_mode & 0o755 == 0o755


def _debugpy_dir(root: Path, python_version: str) -> Path:
    major, minor = python_version.split(".")[:2]
    return root / protocol.DEBUGPY_LIB / protocol.debugpy_tag(int(major), int(minor))


def debugpy_cached(root: Path, python_version: str) -> bool:
    """True when ``ensure_debugpy`` has nothing to fetch for that Python."""
    return (_debugpy_dir(root, python_version) / "debugpy" / "__init__.py").is_file()


def ensure_debugpy(root: Path, python_version: str, machine: str) -> Path:
    """Make ``root/lib/cpXY/debugpy`` exist for the container's Python (cached per Python).

    The host's own debugpy is copied when the container's Python and machine are the
    host's; otherwise pip downloads the newest debugpy, up to the host's version, that has
    a wheel for that Python (1.8.21 for 3.8 and 3.9, 1.7.0 for 3.7).
    """
    target = _debugpy_dir(root, python_version)
    lib, tag = target.parent, target.name
    if debugpy_cached(root, python_version):
        # An older amldebug left lib/cpXY 0700 (mkdtemp): unreadable to a non-root image user.
        if not (_is_readable_dir(root) and _is_readable_dir(lib) and _is_readable_dir(target)):
            make_readable(root)
        return target
    host_version = "%d.%d" % sys.version_info[:2]
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}-", dir=root))
    try:
        if python_version == host_version and machine == platform.machine():
            spec = importlib.util.find_spec("debugpy")
            shutil.copytree(Path(spec.origin).parent, tmp / "debugpy", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            _download_debugpy(tmp, python_version, machine)
        make_readable(tmp)
        lib.mkdir(parents=True, exist_ok=True)
        if not _is_readable_dir(lib):
            make_readable(lib)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent run got there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def pip_download_command(dest: Path, python_version: str, machine: str) -> list[str]:
    """pip, asked for the newest debugpy up to the host's that has a wheel for the container's
    Python (pip skips releases whose Requires-Python or wheel tags do not fit)."""
    return [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
        "--dest", str(dest), "--platform", f"manylinux_2_34_{machine}", "--platform", f"manylinux2014_{machine}",
        "--platform", "any", f"debugpy<={_debugpy_version()}",
    ]


def _download_debugpy(dest: Path, python_version: str, machine: str) -> None:
    wheels = dest / "wheels"
    result = subprocess.run(pip_download_command(wheels, python_version, machine), capture_output=True, text=True)
    found = sorted(wheels.glob("debugpy-*.whl")) if result.returncode == 0 else []
    if not found:
        raise download_error(result.stderr, python_version, machine)
    with zipfile.ZipFile(found[0]) as whl:
        whl.extractall(dest)
    shutil.rmtree(wheels)


def download_error(stderr: str, python_version: str, machine: str) -> AmlDebugError:
    """What pip's failure means: no debugpy for that Python (the index answered), or no index."""
    ceiling = _debugpy_version()
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "WARNING: Location" not in line]
    listed = re.search(r"\(from versions: (?!none\))", stderr)
    if listed or "require a different python version" in stderr:
        host = tuple(sys.version_info[:2])
        wanted = tuple(int(part) for part in python_version.split(".")[:2])
        if wanted > host:
            fix = (f"upgrade debugpy on this host ('pip install -U debugpy'; this one is {ceiling}) "
                   f"to a release that supports Python {python_version}")
        else:
            fix = (f"use an image with Python {OLDEST_PYTHON} or newer (the oldest Python any debugpy supports "
                   f"is 2.7/3.5, with debugpy 1.5.1; amldebug's launcher needs {OLDEST_PYTHON})")
        return ImageError(
            f"no debugpy release up to {ceiling} supports the container's Python {python_version} ({machine}): "
            f"{fix}"
        )
    network = [line for line in lines if re.search(NETWORK_SIGNS, line)]
    reason = (network or lines or ["pip gave no reason"])[-1]
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", reason)
    reason = errno.group(0).strip() if errno else reason[:300]
    if network or "from versions: none" in stderr:
        return AmlDebugError(
            f"could not download debugpy for the container's Python {python_version} ({machine}): the package "
            f"index did not answer ({reason}); check pip's index and proxy settings on this machine "
            "('pip config list', HTTPS_PROXY), or make a debugpy wheel for that Python reachable in pip's find-links"
        )
    return AmlDebugError(f"could not download debugpy for the container's Python {python_version} ({machine}): "
                         f"{reason}")

