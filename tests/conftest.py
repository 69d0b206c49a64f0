import os
import shutil
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep amldebug's cache (payload, probes, state files) out of the user's home."""
    cache = tmp_path_factory.getbasetemp() / "amldebug-cache"
    monkeypatch.setenv("AMLDEBUG_CACHE", str(cache))


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A VS Code workspace folder holding a copy of the sample project (as ./sample)."""
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "sample", ws / "sample")
    monkeypatch.chdir(ws)
    return ws


# Service names of this test session start with this, so that a session's safety net removes
# its own left-overs only (not those of another test run on the same engine).
SESSION_PREFIX = "t-" + uuid.uuid4().hex[:4]


@pytest.fixture
def service_name():
    """A unique service name; whatever runs under it is removed after the test."""
    name = f"{SESSION_PREFIX}-{uuid.uuid4().hex[:6]}"
    yield name
    from amldebug.errors import AmlDebugError
    from amldebug.service.registry import _existing

    try:
        for service in _existing(name, None):
            service.delete()
    except AmlDebugError:
        pass


def require_azureml():
    """azureml-core for the bridge tests: required in CI (the azureml extra is installed
    there), a skip with the reason elsewhere."""
    try:
        import azureml.core
    except ImportError:
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("AMLDEBUG_REQUIRE_DOCKER") == "1":
            raise
        pytest.skip("azureml-core is not installed (pip install 'amldebug[azureml]')", allow_module_level=True)
    return azureml.core


def marker_line(path: Path, marker: str) -> int:
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if f"marker: {marker}" in line:
            return number
    raise AssertionError(f"no marker {marker!r} in {path}")
