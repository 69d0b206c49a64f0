"""Concurrent ``amldebug vscode`` runs in one workspace (two services, or F5 while a terminal
attach runs) must not lose each other's entries. Real processes, no Docker engine needed:
``amldebug vscode`` only writes the two files."""

from __future__ import annotations

import shutil
import subprocess
import sys

from amldebug import vscode

TRIALS = 10
WRITERS = 4
# One service per run; every other run asks for the down task too, so some runs add two
# entries to tasks.json.
SERVICES = ["svc0", "svc1", "svc2", "svc3"]


def _argv(index: int, service: str) -> list[str]:
    argv = [sys.executable, "-m", "amldebug", "vscode", "sample", "--image", "scoring:1", "--name", service,
            "--debug-port", str(17800 + index), "--port", str(17900 + index)]
    return argv + (["--post-debug-task"] if index % 2 else [])


def _expected() -> tuple[set[str], set[str]]:
    configs = {vscode.config_name(s) for s in SERVICES}
    tasks = {f"amldebug: {s}" for s in SERVICES} | {f"amldebug: down {s}" for i, s in enumerate(SERVICES) if i % 2}
    return configs, tasks


def _names(path, array_key: str, id_key: str) -> set[str]:
    parsed = vscode.parse_jsonc(path.read_text(encoding="utf-8"), str(path))
    return {item[id_key] for item in parsed[array_key]}


def test_concurrent_vscode_runs_keep_every_entry_in_both_files(workspace):
    configs, tasks = _expected()
    lost_launch, lost_tasks, failed = [], [], []
    for trial in range(TRIALS):
        shutil.rmtree(workspace / ".vscode", ignore_errors=True)
        procs = [subprocess.Popen(_argv(i, s), cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for i, s in enumerate(SERVICES)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failed.append(f"trial {trial}: exit {proc.returncode}: {err.strip()}")
        missing = configs - _names(workspace / ".vscode" / "launch.json", "configurations", "name")
        if missing:
            lost_launch.append(f"trial {trial}: {sorted(missing)}")
        missing = tasks - _names(workspace / ".vscode" / "tasks.json", "tasks", "label")
        if missing:
            lost_tasks.append(f"trial {trial}: {sorted(missing)}")
        leftovers = [p.name for p in (workspace / ".vscode").iterdir() if p.name not in ("launch.json", "tasks.json")]
        assert leftovers == [], f"trial {trial}: amldebug left files in .vscode: {leftovers}"

    summary = (f"launch.json lost an entry in {len(lost_launch)}/{TRIALS} trials, tasks.json in "
               f"{len(lost_tasks)}/{TRIALS}, {len(failed)} of {TRIALS * WRITERS} runs failed")
    assert not (lost_launch or lost_tasks or failed), "\n".join([summary, *lost_launch, *lost_tasks, *failed])
