"""Run a piece of the payload in a process of its own, as the server would: the payload folder
loaded by launch.py (the package ``amldebug_payload``), the state folder in AMLDEBUG_STATE.
For tests/unit/test_payload_master.py and test_payload_worker.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from amldebug.payload.common import protocol

PAYLOAD = Path(protocol.__file__).resolve().parents[1]

PRELUDE = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import launch
sys.path.pop(0)
module = launch.module
def say(*words):
    print(*words, flush=True)
"""


def start(code: str, state: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``code`` after the prelude, in the host's Python, with its stdin and stdout piped."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(protocol.ENV_PREFIX)}
    environ.update({protocol.ENV_STATE: str(state), **(env or {})})
    return subprocess.Popen([sys.executable, "-c", PRELUDE + code, str(PAYLOAD), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=environ)


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait(5)
    for stream in (child.stdin, child.stdout):
        if stream:
            stream.close()
