"""inject: which debugpy goes into which image Python, what a failure says, and that the
payload tree is readable by an image's non-root user. The version choice asks the real
package index (as amldebug does); only the unreachable index is made up, and even that
runs the real pip against a closed port."""

from __future__ import annotations

import os
import socket
import stat
import sys
from importlib import metadata
from pathlib import Path

import pytest

from amldebug.errors import AmlDebugError, ImageError
from amldebug.engine import inject

HOST_DEBUGPY = metadata.version("debugpy")
HOST_PYTHON = "%d.%d" % sys.version_info[:2]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))
    return inject.payload_dir()


def _modes(top: Path) -> dict[str, int]:
    return {str(p.relative_to(top)): stat.S_IMODE(p.stat().st_mode) for p in [top, *top.rglob("*")]
            if not p.is_symlink()}


def _assert_world_readable(top: Path) -> None:
    modes = _modes(top)
    bad = {name: oct(mode) for name, mode in modes.items()
           if mode not in ((0o755,) if (top / name).is_dir() else (0o644, 0o755))}
    assert bad == {}, bad
    assert len(modes) > 1


def _debugpy_release(target: Path) -> str:
    (info,) = target.glob("debugpy-*.dist-info")
    return info.name[len("debugpy-"):-len(".dist-info")]


@pytest.mark.parametrize("python, expected", [
    ("3.9", "1.8.21"),  # 1.8.22 dropped 3.8 and 3.9
    ("3.8", "1.8.21"),
    ("3.7", "1.7.0"),
])
def test_an_older_python_gets_the_newest_debugpy_that_supports_it(root, python, expected):
    target = inject.ensure_debugpy(root, python, "x86_64")
    assert target == root / "lib" / ("cp" + python.replace(".", ""))
    assert (target / "debugpy" / "__init__.py").is_file()
    assert _debugpy_release(target) == expected
    assert list(target.glob("*.whl")) == [] and not (target / "wheels").exists()


def test_a_newer_python_than_the_host_gets_the_hosts_debugpy_release(root):
    target = inject.ensure_debugpy(root, "3.13", "x86_64")
    assert _debugpy_release(target) == HOST_DEBUGPY
    assert list(target.glob("debugpy/_vendored/pydevd/_pydevd_bundle/*cpython-313*.so"))


def test_each_python_is_cached_in_its_own_folder(root, monkeypatch):
    first = inject.ensure_debugpy(root, "3.9", "x86_64")

    def no_download(*args, **kwargs):
        raise AssertionError("debugpy was fetched again for a cached Python")

    monkeypatch.setattr(inject, "_download_debugpy", no_download)
    assert inject.ensure_debugpy(root, "3.9", "x86_64") == first
    host = inject.ensure_debugpy(root, HOST_PYTHON, os.uname().machine)  # the host's copy: no pip
    assert host != first and (host / "debugpy" / "__init__.py").is_file()


def test_the_request_is_capped_at_the_hosts_debugpy(tmp_path):
    command = inject.pip_download_command(tmp_path, "3.9", "x86_64")
    assert command[-1] == f"debugpy<={HOST_DEBUGPY}"
    assert command[command.index("--python-version") + 1] == "3.9"
    assert "--only-binary=:all:" in command and "manylinux2014_x86_64" in command


def test_no_release_for_that_python_names_it_and_the_fix(root):
    with pytest.raises(ImageError) as caught:
        inject.ensure_debugpy(root, "2.6", "x86_64")  # the real index answers: every release needs more
    message = str(caught.value)
    assert message.startswith(f"no debugpy release up to {HOST_DEBUGPY} supports the container's Python 2.6 (x86_64)")
    assert "use an image with Python 3.8 or newer" in message
    assert "proxy" not in message
    assert not (root / "lib" / "cp26").exists() and not list(root.glob(".cp26-*"))


def test_a_python_newer_than_any_release_says_to_upgrade_the_hosts_debugpy():
    # pip's words when the index answered but every release's Requires-Python excludes it.
    stderr = ("ERROR: Ignored the following versions that require a different python version: "
              "1.8.22 Requires-Python >=3.10,<3.15\n"
              "ERROR: Could not find a version that satisfies the requirement debugpy<=1.8.22 (from versions: none)\n"
              "ERROR: No matching distribution found for debugpy<=1.8.22\n")
    error = inject.download_error(stderr, "3.99", "x86_64")
    assert isinstance(error, ImageError)
    assert "supports the container's Python 3.99 (x86_64)" in str(error)
    assert "upgrade debugpy on this host ('pip install -U debugpy'" in str(error)


@pytest.fixture
def unreachable_index(monkeypatch):
    """The real pip with no configuration and an index on a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)


def test_an_unreachable_index_points_at_the_proxy_settings(root, unreachable_index):
    with pytest.raises(AmlDebugError) as caught:
        inject.ensure_debugpy(root, "3.9", "x86_64")
    message = str(caught.value)
    assert not isinstance(caught.value, ImageError)
    assert message.startswith("could not download debugpy for the container's Python 3.9 (x86_64): "
                              "the package index did not answer")
    assert "Connection refused" in message
    assert "check pip's index and proxy settings" in message
    assert "supports" not in message


def test_a_proxy_error_is_a_network_failure():
    stderr = ("WARNING: Retrying (Retry(total=0)) after connection broken by 'ProxyError('Cannot connect to proxy.', "
              "NewConnectionError('...: Failed to establish a new connection: [Errno 111] Connection refused'))': "
              "/simple/debugpy/\n"
              "ERROR: Could not find a version that satisfies the requirement debugpy<=1.8.22 (from versions: none)\n")
    error = inject.download_error(stderr, "3.9", "x86_64")
    assert not isinstance(error, ImageError)
    assert "[Errno 111] Connection refused" in str(error) and "proxy settings" in str(error)


def test_the_payload_tree_is_world_readable_under_a_strict_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))
    old = os.umask(0o077)
    try:
        root = inject.payload_dir()
        inject.ensure_debugpy(root, HOST_PYTHON, os.uname().machine)  # copied from the host
        inject.ensure_debugpy(root, "3.9", "x86_64")  # extracted from a downloaded wheel
    finally:
        os.umask(old)
    _assert_world_readable(root)
    assert stat.S_IMODE((root / "launch.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "lib" / "cp39" / "debugpy" / "__init__.py").stat().st_mode) == 0o644


def test_a_cache_entry_left_0700_by_an_older_version_is_repaired(root):
    target = inject.ensure_debugpy(root, HOST_PYTHON, os.uname().machine)
    # What amldebug before this change left: lib/cpXY from mkdtemp (0700), private files.
    (target / "debugpy" / "__init__.py").chmod(0o600)
    target.chmod(0o700)
    (root / "lib").chmod(0o700)
    assert inject.ensure_debugpy(root, HOST_PYTHON, os.uname().machine) == target
    _assert_world_readable(root)


def test_a_payload_folder_left_private_is_repaired(root):
    root.chmod(0o700)
    (root / "launch.py").chmod(0o600)
    assert inject.payload_dir() == root
    _assert_world_readable(root)
