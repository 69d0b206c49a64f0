"""Shared set-up for the benchmarks: a copy of the sample project, a plain (no debugger)
container started the way LocalWebservice would, and small statistics helpers."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

# The benchmarks use the tests' DAP client (tests/support/dap.py), which does not ship in the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amldebug.core.spec import SCORING_PORT_IN_CONTAINER, layout, resolve_spec
from amldebug.engine import docker as engine

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "sample"
DEFAULT_IMAGE = "amldebug-test/azmlinfsrv:1"


def workspace() -> Path:
    ws = Path(tempfile.mkdtemp(prefix="amldebug-bench-"))
    shutil.copytree(SAMPLE, ws / "sample")
    return ws


def median(values):
    return statistics.median(values)


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def score(uri: str, body: str = '{"data": [1, 2, 3]}', timeout: float = 30) -> requests.Response:
    return requests.post(uri, data=body, timeout=timeout, headers={"Content-Type": "application/json"})


def wait_healthy(uri: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    health = uri.rsplit("/score", 1)[0] + "/"
    while time.monotonic() < deadline:
        try:
            if requests.get(health, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{health} did not answer")


def start_plain(client, ws: Path, image: str, port: int, name: str = "amldebug-bench-plain"):
    """The image's own azmlinfsrv with the same code and model placement, no debugpy:
    what LocalWebservice runs (without its nginx)."""
    spec = resolve_spec(ws / "sample", model_dir=ws / "sample" / "model", image=image, workspace=ws)
    lay = layout(spec)
    env = {k: v for k, v in lay.env.items() if not k.startswith(("AMLDEBUG_", "PYDEVD_"))}
    for old in client.containers.list(all=True, filters={"name": name}):
        old.remove(force=True)
    box = client.containers.run(
        image, ["azmlinfsrv", *lay.args], name=name, detach=True, environment=env, working_dir=lay.app_root,
        volumes={spec.source_dir: {"bind": lay.code_dir, "mode": "rw"},
                 spec.model_dir: {"bind": lay.model_target, "mode": "ro"}},
        ports={f"{SCORING_PORT_IN_CONTAINER}/tcp": ("127.0.0.1", port)},
        labels={engine.LABEL_KIND: "bench"},
    )
    return box, f"http://127.0.0.1:{port}/score"
