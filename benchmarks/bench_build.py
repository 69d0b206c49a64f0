"""How long resolving and installing an environment takes: the host's pip against uv, side by
side on the same requirement lines, cold (empty wheel cache) and warm (cache filled); uv as
the build runs it (with the date bound and the index lookups); and, with --full, whole
`amldebug build` runs (no image / image found by its hash); with --corpus, the community
corpus's environment files resolved by the previous path (one uv pass for the image's Python,
as amldebug did before issue 18: the code of commit ecffdd2, read from git) and by today's
(the pinned Python's image, conda's part then pip's), cold and warm, with what each gave.

    python benchmarks/bench_build.py [--repeat 3] [--env FILE] [--base-image IMAGE] [--full]
    python benchmarks/bench_build.py --corpus [NAME ...]

Needs the Docker engine (to probe the base image's Python) and the host's package index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amldebug.engine.docker import connect  # noqa: E402
from amldebug.envbuild import image as build  # noqa: E402
from amldebug.envbuild import resolve  # noqa: E402

DEFAULT_ENV = ROOT / "tests" / "fixtures" / "conda" / "inference-schema-env.yml"
DEFAULT_BASE = "amldebug-test/base:bookworm"


def quiet(_: str) -> None:
    pass


def requirement_lines(env_file: Path, probe: dict) -> tuple[resolve.Steps, str]:
    env = build.read_environment(env_file)
    conda_lines, python = build.conda_requirements(env, probe, quiet)
    pip_lines = build.without_pypi_aliases(env.pip, quiet)
    added = build.added_requirements(env, conda_lines + pip_lines, probe.get("server"), quiet)
    return resolve.Steps(tuple(conda_lines), tuple(pip_lines), tuple(added)), python


def pip_run(lines: list[str], probe: dict, cache: Path, work: Path) -> float:
    target = work / "site-packages"
    target.mkdir(parents=True)
    started = time.monotonic()
    build.pip_install(lines, target, probe, quiet, cache=cache)
    return time.monotonic() - started


def uv_run(lines: list[str], probe: dict, cache: Path, work: Path) -> float:
    target = work / "site-packages"
    target.mkdir(parents=True)
    requirements = work / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n")
    os.environ["UV_CACHE_DIR"] = str(cache)
    started = time.monotonic()
    status, output = resolve.run_uv(resolve.uv_command(requirements, target, probe))
    if status != 0:
        raise SystemExit(output)
    return time.monotonic() - started


def uv_as_built(steps: resolve.Steps, python: str, probe: dict, cache: Path, work: Path) -> float:
    """resolve.install as build_image calls it: index lookups (cached under AMLDEBUG_CACHE),
    pin checks, the date bound and the server stack's exemption, then uv: conda's part, then
    pip's on top."""
    target = work / "site-packages"
    target.mkdir(parents=True)
    os.environ["UV_CACHE_DIR"] = str(cache / "uv")
    os.environ["AMLDEBUG_CACHE"] = str(cache / "amldebug")
    started = time.monotonic()
    resolve.install(steps, target, probe, quiet, python_spec=python)
    return time.monotonic() - started


def cold_and_warm(run, repeat: int, tmp: Path, name: str) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for i in range(repeat):
        cache = tmp / f"{name}-cache-{i}"
        cold.append(run(cache, tmp / f"{name}-cold-{i}"))
        warm.append(run(cache, tmp / f"{name}-warm-{i}"))
    return cold, warm


def full_builds(client, env_file: Path, base: str, repeat: int, tmp: Path) -> list[tuple[str, list[float]]]:
    def remove_image() -> None:
        digest = build.env_hash(build.read_environment(env_file), client.images.get(base).id)
        for image in client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}):
            client.images.remove(image.id, force=True)

    cold, cached, warm = [], [], []
    for i in range(repeat):
        remove_image()
        os.environ["AMLDEBUG_CACHE"] = str(tmp / f"full-{i}")
        os.environ["UV_CACHE_DIR"] = str(tmp / f"full-{i}" / "uv")
        cold.append(build.build_image(env_file, base_image=base, client=client, progress=quiet).seconds)
        remove_image()
        cached.append(build.build_image(env_file, base_image=base, client=client, progress=quiet).seconds)
        started = time.monotonic()
        assert not build.build_image(env_file, base_image=base, client=client, progress=quiet).built
        warm.append(time.monotonic() - started)
    remove_image()
    return [("build: cold (empty caches, no image)", cold), ("build: wheel cache warm, no image", cached),
            ("build: unchanged inputs (image exists)", warm)]


PREVIOUS = "ecffdd2"  # the last commit before environments were built as Azure ML builds them
PREVIOUS_PYTHON_IMAGE = "amldebug-test/azmlinfsrv-py39:1"  # the previous default base's Python (3.9)


def previous_resolve():
    """amldebug's resolver as it was at PREVIOUS (one uv pass), loaded from git beside today's."""
    import importlib.util
    import subprocess

    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS}:amldebug/runtime/resolve.py"],
                          check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="amldebug-previous-")) / "previous_resolve.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("amldebug.envbuild.previous_resolve", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def corpus(names: list[str], tmp: Path) -> None:
    """Each community project's environment: the previous path against today's, cold and warm."""
    import yaml

    from amldebug.envbuild import python
    from amldebug.errors import AmlDebugError
    from amldebug.sources import conda

    root = ROOT / "tests" / "fixtures" / "community"
    projects = [p for p in yaml.safe_load((root / "manifest.yml").read_text())["projects"]
                if p.get("environment_file") and (not names or p["name"] in names)]
    client = connect()
    old = previous_resolve()
    old_probe = build.probe_python(client, client.images.get(PREVIOUS_PYTHON_IMAGE), PREVIOUS_PYTHON_IMAGE)
    print(f"{'project':<34} {'path':<9} {'Python':<7} {'cold':>8} {'warm':>8}  result")
    for project in projects:
        file = root / project["folder"] / project["environment_file"]
        if not file.is_file():
            print(f"{project['name']:<34} not laid out (tests/fixtures/community/materialize.py)")
            continue
        env = build.read_environment(file)
        plan = conda.plan(env.conda, env.channels)
        pip_lines = build.without_pypi_aliases(env.pip, quiet)

        def previous(target: Path) -> None:
            user = plan.requirements + pip_lines
            added = build.added_requirements(env, user, old_probe.get("server"), quiet)
            old.install(user, added, target, old_probe, quiet, python_spec=plan.python_spec or "")

        def pins_index():
            pins = resolve.exact_pins(plan.requirements + list(env.pip))
            return pins, resolve.releases(pins)

        try:
            chosen = python.choose(env, None, client, quiet, pins_index)
        except AmlDebugError as exc:
            print(f"{project['name']:<34} {'today':<9} {'-':<7} {'':>8} {'':>8}  {str(exc)[:90]}")
            chosen = None

        def today(target: Path) -> None:
            added = build.added_requirements(env, plan.requirements + pip_lines, chosen.probe.get("server"), quiet)
            resolve.install(resolve.Steps(tuple(plan.requirements), tuple(pip_lines), tuple(added)), target,
                            chosen.probe, quiet, python_spec=plan.python_spec or "")

        for label, run, probe in (("previous", previous, old_probe), ("today", today, chosen and chosen.probe)):
            if probe is None:
                continue
            cache = tmp / f"{project['name']}-{label}"
            times, result = [], "ok"
            for attempt in ("cold", "warm"):
                os.environ["UV_CACHE_DIR"] = str(cache / "uv")
                os.environ["AMLDEBUG_CACHE"] = str(cache / "amldebug")
                target = cache / attempt / "site-packages"
                target.mkdir(parents=True)
                started = time.monotonic()
                try:
                    run(target)
                except AmlDebugError as exc:
                    result = str(exc).splitlines()[0][:90]
                times.append(time.monotonic() - started)
            print(f"{project['name']:<34} {label:<9} {probe['version']:<7} {times[0]:>7.1f}s {times[1]:>7.1f}s  "
                  f"{result}", flush=True)
            shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--env", type=Path, default=DEFAULT_ENV)
    parser.add_argument("--base-image", default=DEFAULT_BASE)
    parser.add_argument("--full", action="store_true", help="also time whole builds (Docker builds: CPU-heavy)")
    parser.add_argument("--corpus", nargs="*", metavar="NAME", help="the community corpus, previous path and today's")
    args = parser.parse_args()
    if args.corpus is not None:
        with tempfile.TemporaryDirectory(prefix="amldebug-bench-") as work:
            corpus(args.corpus, Path(work))
        return

    client = connect()
    probe = build.probe_python(client, build.get_base_image(client, args.base_image, quiet), args.base_image)
    steps, python = requirement_lines(args.env, probe)
    lines = steps.lines
    rows = []
    with tempfile.TemporaryDirectory(prefix="amldebug-bench-") as work:
        tmp = Path(work)
        os.environ["AMLDEBUG_CACHE"] = str(tmp / "amldebug")
        pip_cold, pip_warm = cold_and_warm(lambda c, w: pip_run(lines, probe, c, w), args.repeat, tmp, "pip")
        uv_cold, uv_warm = cold_and_warm(lambda c, w: uv_run(lines, probe, c, w), args.repeat, tmp, "uv")
        built_cold, built_warm = cold_and_warm(lambda c, w: uv_as_built(steps, python, probe, c, w),
                                               args.repeat, tmp, "built")
        rows += [("pip install --target: cold", pip_cold), ("pip install --target: warm", pip_warm),
                 ("uv pip install --target: cold", uv_cold), ("uv pip install --target: warm", uv_warm),
                 ("uv as the build runs it (bound): cold", built_cold),
                 ("uv as the build runs it (bound): warm", built_warm)]
        if args.full:
            rows += full_builds(client, args.env, args.base_image, args.repeat, tmp)

    shown = args.env.relative_to(ROOT) if args.env.is_relative_to(ROOT) else args.env
    print(f"env: {shown} ({len(lines)} requirement lines)  base: {args.base_image} (Python {probe['version']})  "
          f"host python {sys.version.split()[0]}")
    print(f"{'case':<42} {'n':>3} {'median':>9} {'min':>9} {'max':>9}")
    for name, times in rows:
        print(f"{name:<42} {len(times):>3} {statistics.median(times):>8.2f}s {min(times):>8.2f}s {max(times):>8.2f}s")


if __name__ == "__main__":
    main()
