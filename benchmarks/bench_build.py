"""How long `amldebug build` takes: cold (empty wheel cache, no image), with a warm pip
cache but no image, and warm (unchanged inputs: the image is found by its hash).

    python benchmarks/bench_build.py [--repeat 3] [--warm-repeat 10] [--env FILE] [--base-image IMAGE]

Needs the Docker engine and the offline test base image (python tests/images/build.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amldebug.engine.docker import connect  # noqa: E402
from amldebug.runtime import imagebuild as build  # noqa: E402

DEFAULT_ENV = ROOT / "tests" / "fixtures" / "build" / "app" / "requirements.txt"
DEFAULT_BASE = "amldebug-test/base:bookworm"


def remove_image(client, env_file: Path, base: str) -> None:
    digest = build.env_hash(build.read_environment(env_file), client.images.get(base).id)
    for image in client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}):
        client.images.remove(image.id, force=True)  # its untagged layers go with it: no build cache left


def timed_build(client, env_file: Path, base: str, cache: Path, stages: dict) -> build.BuildResult:
    os.environ["AMLDEBUG_CACHE"] = str(cache)
    marks = {}
    started = time.monotonic()

    def progress(line: str) -> None:
        if line.startswith("amldebug: resolving"):
            marks["pip"] = time.monotonic()
        elif line.startswith("amldebug: building the image"):
            marks["docker"] = time.monotonic()

    result = build.build_image(env_file, base_image=base, client=client, progress=progress)
    ended = time.monotonic()
    if result.built:
        stages.setdefault("probe", []).append(marks["pip"] - started)
        stages.setdefault("pip", []).append(marks["docker"] - marks["pip"])
        stages.setdefault("docker", []).append(ended - marks["docker"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold builds (and pip-cached builds)")
    parser.add_argument("--warm-repeat", type=int, default=10)
    parser.add_argument("--env", type=Path, default=DEFAULT_ENV)
    parser.add_argument("--base-image", default=DEFAULT_BASE)
    args = parser.parse_args()

    client = connect()
    rows = []
    with tempfile.TemporaryDirectory(prefix="amldebug-bench-") as tmp:
        cold, cold_stages = [], {}
        for i in range(args.repeat):
            remove_image(client, args.env, args.base_image)
            cold.append(timed_build(client, args.env, args.base_image, Path(tmp, f"cold-{i}"), cold_stages).seconds)
        rows.append(("cold: empty wheel cache, no image", cold, cold_stages))

        shared = Path(tmp, "shared")
        timed_build(client, args.env, args.base_image, shared, {})  # fills the wheel cache
        cached, cached_stages = [], {}
        for _ in range(args.repeat):
            remove_image(client, args.env, args.base_image)
            cached.append(timed_build(client, args.env, args.base_image, shared, cached_stages).seconds)
        rows.append(("wheel cache warm, no image", cached, cached_stages))

        warm = []
        for _ in range(args.warm_repeat):
            started = time.monotonic()
            result = build.build_image(args.env, base_image=args.base_image, client=client, progress=lambda _: None)
            assert not result.built
            warm.append(time.monotonic() - started)
        rows.append(("warm: unchanged inputs (image exists)", warm, {}))
        remove_image(client, args.env, args.base_image)

    print(f"env: {args.env.relative_to(ROOT) if args.env.is_relative_to(ROOT) else args.env}  "
          f"base: {args.base_image}  python {sys.version.split()[0]}")
    print(f"{'case':<40} {'n':>3} {'median':>9} {'min':>9} {'max':>9}   median probe / pip / docker build")
    for name, times, stages in rows:
        split = " / ".join(f"{statistics.median(stages[k]):.2f}" for k in ("probe", "pip", "docker")) if stages else "-"
        print(f"{name:<40} {len(times):>3} {statistics.median(times):>8.3f}s {min(times):>8.3f}s "
              f"{max(times):>8.3f}s   {split}")


if __name__ == "__main__":
    main()
