"""Benchmark for `amldebug attach`.

1. From `amldebug attach --detach` (the real command, a new process) to a debugger that
   answers a DAP `initialize`, and to the first /score answer after a client attached
   (median of N runs, image present).
2. /score latency over 200 requests: plain container (no debugpy), amldebug with debugpy
   listening but no client, and with a client attached (no breakpoint hit), measured in
   interleaved rounds in the same run.

Run: python benchmarks/bench_attach.py [--image IMAGE] [--runs 5] [--requests 200]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from common import DEFAULT_IMAGE, median, p95, score, start_plain, wait_healthy, workspace

from amldebug.engine import docker as engine
from amldebug.session import get_service
from tests.support.dap import DebugClient, initialize_roundtrip

NAME = "bench-attach"
AMLDEBUG = [sys.executable, "-m", "amldebug"]


def attach(ws, image, *extra):
    return subprocess.run([*AMLDEBUG, "attach", "sample", "--image", image, "--model-dir", "sample/model",
                           "--name", NAME, "--detach", "--debug-port", "17678", "--port", "17001", *extra],
                          cwd=ws, capture_output=True, text=True, check=True)


def until_initialize(port: int, timeout: float = 30) -> float:
    """perf_counter() when the adapter answered initialize (the linger after it not counted)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asked = time.perf_counter()
            return asked + initialize_roundtrip("127.0.0.1", port, timeout=2)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def client_for(ws, service) -> DebugClient:
    return DebugClient("127.0.0.1", service.debug_port, path_mappings=[
        {"localRoot": str(ws / "sample"), "remoteRoot": "/var/azureml-app/sample"}])


def startup(ws, image, runs):
    to_init, to_score = [], []
    attach(ws, image)  # warm: the image probe and the debugpy payload are cached after this
    for _ in range(runs):
        started = time.perf_counter()
        attach(ws, image)
        service = get_service(NAME)
        to_init.append(until_initialize(service.debug_port) - started)
        with client_for(ws, service) as client:
            client.attach(timeout=15)
            while True:
                try:
                    if score(service.scoring_uri, timeout=10).status_code == 200:
                        break
                except Exception:
                    time.sleep(0.01)
            to_score.append(time.perf_counter() - started)
    return to_init, to_score


def latency(uri, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = score(uri)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    ws = workspace()
    client = engine.connect()
    try:
        to_init, to_score = startup(ws, args.image, args.runs)
        print(f"attach --detach -> DAP initialize answered: median {median(to_init):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in to_init)})")
        print(f"attach --detach -> first /score after attach: median {median(to_score):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in to_score)})")

        plain_box, plain_uri = start_plain(client, ws, args.image, 17101)
        wait_healthy(plain_uri)
        attach(ws, args.image, "--no-wait")
        service = get_service(NAME)
        service.wait_for_deployment()
        results = {"plain (no debugpy)": [], "debugpy, no client": [], "debugger attached": []}
        rounds, per_round = 4, max(1, args.requests // 4)
        for uri in (plain_uri, service.scoring_uri):
            latency(uri, 20)  # warm-up
        for _ in range(rounds):
            results["plain (no debugpy)"] += latency(plain_uri, per_round)
            results["debugpy, no client"] += latency(service.scoring_uri, per_round)
        with client_for(ws, service) as dap:
            dap.attach(timeout=15)
            time.sleep(1)
            latency(service.scoring_uri, 20)
            for _ in range(rounds):
                results["debugger attached"] += latency(service.scoring_uri, per_round)
                results["plain (no debugpy)"] += latency(plain_uri, per_round)
        print("\n/score latency (ms), interleaved rounds in one run:")
        print(f"{'':22} {'requests':>8} {'median':>8} {'p95':>8}")
        for label, values in results.items():
            print(f"{label:22} {len(values):8d} {median(values):8.2f} {p95(values):8.2f}")
        overhead = median(results["debugger attached"]) - median(results["plain (no debugpy)"])
        print(f"attached overhead per request (median): {overhead:.2f} ms")
        plain_box.remove(force=True)
    finally:
        subprocess.run([*AMLDEBUG, "down", "--name", NAME], capture_output=True)
        shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
