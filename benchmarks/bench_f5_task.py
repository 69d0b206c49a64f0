"""F5 when the image has to be built first: the F5 task amldebug writes, run as VS Code runs
it (tests/support/vscode_task.py: the shell, options.env, a pseudo-terminal), with an
environment file whose image is removed before each trial, so every trial builds it.

Prints medians of: the first line of output, the first line the task's beginsPattern matches
(and the one the old pattern `^amldebug: starting service` matched), and the ready line. VS
Code tracks the task from its start with `activeOnStart: true`; with the old, misspelt
`activatesOnStart` it tracked it only from the old pattern's line.

    python benchmarks/bench_f5_task.py [--repeat 3] [--base-image amldebug-test/azmlinfsrv:1]

Needs the Docker engine and the offline test images (python tests/images/build.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amldebug.core.options import AttachOptions, task_argv  # noqa: E402
from amldebug.engine.docker import connect  # noqa: E402
from amldebug.envbuild import image as build  # noqa: E402
from amldebug.vscode.entries import attach_prefix, vscode_files  # noqa: E402
from tests.support.vscode_task import TaskRun  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "sample"
REQUIREMENTS = ROOT / "tests" / "fixtures" / "build" / "app" / "requirements.txt"
OLD_BEGINS = r"^amldebug: starting service"


def remove_image(client, env_file: Path, base: str) -> None:
    digest = build.env_hash(build.read_environment(env_file), client.images.get(base).id)
    for image in client.images.list(filters={"label": f"{build.LABEL_HASH}={digest}"}):
        client.images.remove(image.id, force=True)


def trial(workspace: Path, base: str, name: str) -> dict[str, float]:
    options = AttachOptions(source_dir="sample", name=name, env_file="sample/requirements.txt", base_image=base,
                            model_dir="sample/model", port=17951, debug_port=17952, wait=False, exact_ports=True)
    entries = vscode_files(workspace / "sample", service=name, debug_port=17952, workspace=workspace,
                           command=attach_prefix() + task_argv(options))
    task = entries["tasks"][0]
    background = task["problemMatcher"]["background"]
    run = TaskRun(task, workspace)
    marks: dict[str, float] = {}
    try:
        while "ready" not in marks:
            item = run.next_line(300)
            if item is None:
                raise SystemExit("the task ended before it was ready:\n" + "\n".join(text for _, text in run.lines))
            at, line = item
            marks.setdefault("first line", at)
            if re.search(background["beginsPattern"], line):
                marks.setdefault("beginsPattern line", at)
            if re.search(OLD_BEGINS, line):
                marks.setdefault("old beginsPattern line", at)
            if re.search(background["endsPattern"], line):
                marks["ready"] = at
    finally:
        run.stop()
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base-image", default="amldebug-test/azmlinfsrv:1")
    args = parser.parse_args()
    client = connect()
    workspace = Path(tempfile.mkdtemp(prefix="amldebug-bench-f5-"))
    os.environ["AMLDEBUG_CACHE"] = str(workspace / "cache")  # one pip cache for all trials: warm after the first
    shutil.copytree(SAMPLE, workspace / "sample")
    shutil.copy(REQUIREMENTS, workspace / "sample" / "requirements.txt")
    env_file = workspace / "sample" / "requirements.txt"
    results: dict[str, list[float]] = {}
    try:
        for i in range(args.repeat):
            remove_image(client, env_file, args.base_image)
            marks = trial(workspace, args.base_image, f"bench-f5-{os.getpid()}-{i}")
            print(f"trial {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in marks.items()), flush=True)
            for key, value in marks.items():
                results.setdefault(key, []).append(value)
    finally:
        remove_image(client, env_file, args.base_image)
        shutil.rmtree(workspace, ignore_errors=True)
    print(f"median of {args.repeat} (a build each):")
    for key, values in results.items():
        print(f"  {key:<24} {statistics.median(values):6.2f} s  ({len(values)} trials)")
    for key in ("first line", "beginsPattern line", "old beginsPattern line"):
        if key not in results:
            print(f"  {key:<24}  never")


if __name__ == "__main__":
    main()
