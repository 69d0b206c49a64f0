"""Helpers shared by the end-to-end tests: drive the CLI in-process, and attach a real
DAP client with what the generated launch.json says (as VS Code would)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from amldebug import vscode
from amldebug.watch import ReloadLoop
from tests.support.cli import amldebug  # noqa: F401 (the integration tests import it from here)
from tests.support.dap import DebugClient


def client_from_launch_json(workspace: Path, service: str, breakpoints: dict) -> DebugClient:
    """A DebugClient configured from .vscode/launch.json's entry for ``service``."""
    launch = vscode.parse_jsonc((workspace / ".vscode" / "launch.json").read_text())
    config = next(c for c in launch["configurations"] if c["name"] == f"amldebug: {service}")
    mappings = [
        {"localRoot": m["localRoot"].replace("${workspaceFolder}", str(workspace)), "remoteRoot": m["remoteRoot"]}
        for m in config["pathMappings"]
    ]
    return DebugClient(config["connect"]["host"], config["connect"]["port"], path_mappings=mappings,
                       just_my_code=config["justMyCode"], breakpoints={str(k): v for k, v in breakpoints.items()})


class Request(threading.Thread):
    """POST /score in the background (the debugger holds it at a breakpoint)."""

    def __init__(self, uri: str, body: str = '{"data": [1, 2, 3]}') -> None:
        super().__init__(daemon=True)
        self.uri, self.body, self.response, self.error = uri, body, None, None
        self.start()

    def run(self) -> None:
        try:
            self.response = requests.post(self.uri, data=self.body, timeout=60,
                                          headers={"Content-Type": "application/json"})
        except Exception as exc:  # reported by the test
            self.error = exc

    def result(self, timeout: float = 60):
        self.join(timeout)
        assert not self.is_alive(), "the scoring request did not finish"
        assert self.error is None, self.error
        return self.response


class Watching:
    """Run the real watcher loop in a thread and collect what it reports."""

    def __init__(self, service, **options) -> None:
        self.reports: list[str] = []
        self.loop = ReloadLoop(service, report=self.reports.append, **options)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()
        time.sleep(0.3)  # let the observer start

    def wait_report(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.reports:
                if text in line:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no report containing {text!r}; got {self.reports}")

    def stop(self) -> None:
        self.loop.stop.set()
        self.thread.join(5)
