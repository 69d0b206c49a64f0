"""Benchmark for what `amldebug attach --detach` prints while it starts, read through a pipe
as a VS Code task reads it: when the first line comes, when the `amldebug: starting` line
(the task's begin pattern) comes, the longest silence between two lines, and the ready line.
Each run starts with an empty amldebug cache (the image is probed and debugpy copied again).

Run: python benchmarks/bench_progress.py [--image IMAGE] [--runs 3] [--env-file FILE --base-image IMAGE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from common import DEFAULT_IMAGE, median, workspace

AMLDEBUG = [sys.executable, "-m", "amldebug"]


def one_run(ws, args) -> tuple[float, float, float, float]:
    name = f"bench-progress-{uuid.uuid4().hex[:6]}"
    cache = tempfile.mkdtemp(prefix="amldebug-bench-cache-")
    env = {**os.environ, "AMLDEBUG_CACHE": cache}
    started = time.monotonic()
    proc = subprocess.Popen([*AMLDEBUG, "attach", "sample", "--model-dir", "sample/model", "--name", name, "--detach",
                             "--no-wait", "--port", "17101", "--debug-port", "17102", *args], cwd=ws, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    stamps = [(time.monotonic() - started, line.rstrip()) for line in proc.stderr]
    proc.wait()
    try:
        if proc.returncode != 0:
            raise SystemExit("attach failed:\n" + "\n".join(line for _, line in stamps[-20:]))
        begin = next(t for t, line in stamps if line.startswith("amldebug: starting"))
        silences = [b - a for (a, _), (b, _) in zip([(0.0, "")] + stamps, stamps)]
        return stamps[0][0], begin, max(silences), stamps[-1][0]
    finally:
        subprocess.run([*AMLDEBUG, "down", name], env=env, capture_output=True)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env-file", help="build from this file instead of --image (cold only the first time)")
    parser.add_argument("--base-image")
    opts = parser.parse_args()
    args = ["--env-file", opts.env_file, *(["--base-image", opts.base_image] if opts.base_image else [])] \
        if opts.env_file else ["--image", opts.image]
    ws = workspace()
    if opts.env_file:
        shutil.copy(opts.env_file, ws / "sample" / "requirements-bench.txt")
        args[1] = "sample/requirements-bench.txt"
    runs = [one_run(ws, args) for _ in range(opts.runs)]
    for index, what in enumerate(("first line", "'amldebug: starting' line", "longest silence", "ready line")):
        print(f"{what:<28} median {median(r[index] for r in runs):6.2f} s   ({', '.join(f'{r[index]:.2f}' for r in runs)})")
    shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
