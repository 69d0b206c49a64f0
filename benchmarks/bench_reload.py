"""Benchmark for the edit loop: save score.py -> the first /score answer showing the change.

Side by side in one run:
  * amldebug watch + reload (SIGHUP in the container), debugger attached, session kept;
  * container restart with no debugger (what LocalWebservice.reload does: remove the
    container, create it again from the same image, start it);
  * container restart with the debugger (recreate, wait for it, re-attach, then score).
Also the watcher's idle CPU over 60 s (`amldebug watch` as its own process).

Run: python benchmarks/bench_reload.py [--image IMAGE] [--edits 20] [--restart-edits 10] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

from common import DEFAULT_IMAGE, median, p95, score, start_plain, workspace

from amldebug.engine import docker as engine
from amldebug.runtime.registry import get_service
from amldebug.watch import ReloadLoop
from tests.support.dap import DebugClient

NAME = "bench-reload"
AMLDEBUG = [sys.executable, "-m", "amldebug"]
RETURN = '"version": "v1"'


def set_version(score_py, tag: str) -> None:
    text = score_py.read_text()
    start = text.index('"version": "') + len('"version": "')
    end = text.index('"', start)
    score_py.write_text(text[:start] + tag + text[end:])


def until_version(uri: str, tag: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = score(uri, timeout=10)
            if r.status_code == 200 and r.json().get("version") == tag:
                return
        except Exception:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{uri} never served version {tag}")


def client_for(ws, service) -> DebugClient:
    return DebugClient("127.0.0.1", service.debug_port, path_mappings=[
        {"localRoot": str(ws / "sample"), "remoteRoot": "/var/azureml-app/sample"}])


def amldebug_reload(ws, image, edits):
    subprocess.run([*AMLDEBUG, "attach", "sample", "--image", image, "--model-dir", "sample/model",
                    "--name", NAME, "--detach", "--debug-port", "17778", "--port", "17201"],
                   cwd=ws, check=True, capture_output=True)
    service = get_service(NAME)
    score_py = ws / "sample" / "score.py"
    times = []
    with client_for(ws, service) as dap:
        dap.attach(timeout=15)
        service.wait_for_deployment()
        root = dap.sessions[0]
        loop = ReloadLoop(service, report=lambda m: None)
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        time.sleep(0.5)
        for i in range(edits):
            tag = f"r{i}"
            started = time.perf_counter()
            set_version(score_py, tag)
            until_version(service.scoring_uri, tag)
            times.append(time.perf_counter() - started)
            time.sleep(0.5)
        loop.stop.set()
        thread.join(5)
        kept = not root.ended and dap.sessions[0] is root
        children = sum(1 for s in dap.sessions if s.is_child)
    return times, kept, children


def restart_plain(client, ws, image, edits):
    score_py = ws / "sample" / "score.py"
    times = []
    box, uri = start_plain(client, ws, image, 17301)
    until_version(uri, _current(score_py))
    for i in range(edits):
        tag = f"p{i}"
        started = time.perf_counter()
        set_version(score_py, tag)
        box.remove(force=True)
        box, uri = start_plain(client, ws, image, 17301)
        until_version(uri, tag)
        times.append(time.perf_counter() - started)
        time.sleep(0.3)
    box.remove(force=True)
    return times


def restart_debugged(ws, image, edits):
    service = get_service(NAME)
    score_py = ws / "sample" / "score.py"
    times = []
    for i in range(edits):
        tag = f"d{i}"
        started = time.perf_counter()
        set_version(score_py, tag)
        service.update()  # recreate the container: the debug session is gone
        with client_for(ws, service) as dap:
            dap.attach(timeout=15)
            until_version(service.scoring_uri, tag)
            times.append(time.perf_counter() - started)
        time.sleep(0.3)
    return times


def _current(score_py) -> str:
    text = score_py.read_text()
    start = text.index('"version": "') + len('"version": "')
    return text[start:text.index('"', start)]


def idle_cpu(ws, seconds: float) -> float:
    proc = subprocess.Popen([*AMLDEBUG, "watch", "--name", NAME], cwd=ws, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # start-up imports are not idle time
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        before, started = cpu(), time.monotonic()
        time.sleep(seconds)
        return 100 * (cpu() - before) / (time.monotonic() - started)
    finally:
        proc.terminate()
        proc.wait(10)


def row(label, values):
    print(f"{label:52} {len(values):5d} {median(values) * 1000:8.0f} {p95(values) * 1000:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--restart-edits", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    ws = workspace()
    client = engine.connect()
    try:
        ours, kept, children = amldebug_reload(ws, args.image, args.edits)
        plain = restart_plain(client, ws, args.image, args.restart_edits)
        debugged = restart_debugged(ws, args.image, args.restart_edits)
        print("save -> first /score showing the change (ms), one run, same machine:")
        print(f"{'':52} {'edits':>5} {'median':>8} {'p95':>8}")
        row("amldebug reload, debugger attached (session kept)", ours)
        row("container restart, no debugger (LocalWebservice)", plain)
        row("container restart + re-attach the debugger", debugged)
        print(f"debug session kept across {args.edits} reloads: {kept} ({children} worker sessions followed)")
        if args.idle > 0:
            print(f"watcher idle CPU over {args.idle:.0f} s: {idle_cpu(ws, args.idle):.2f} %")
    finally:
        subprocess.run([*AMLDEBUG, "down", "--name", NAME], capture_output=True)
        shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
