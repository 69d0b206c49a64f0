"""The state file the in-container launcher writes (payload/launch.py ``write_state``):
status (starting, listening, waiting, attached, reloading, ready, failed), the reload
generation, and the pid. Polling it is how amldebug learns that a worker is ready."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

from .inject import cache_root

def state_folder(service: str) -> Path:
    return cache_root() / "state" / service


class StateFile:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "state.json"

    def reset(self, *, shared: bool = True) -> None:
        """Empty the folder. ``shared``: a container's user (root or not) must write here;
        a local process runs as us, and then nobody else may."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o777 if shared else 0o700)

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, predicate: Callable[[dict], bool], timeout: float, *,
             alive: Callable[[], bool] = lambda: True, poll: float = 0.01) -> Optional[dict]:
        """Poll until predicate(state) holds (return it); None if ``alive()`` turns false;
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        next_alive_check = 0.0
        while True:
            state = self.read()
            if state and predicate(state):
                return state
            now = time.monotonic()
            if now >= next_alive_check:
                if not alive():
                    state = self.read()
                    return state if state and predicate(state) else None
                next_alive_check = now + 0.25
            if now >= deadline:
                raise TimeoutError
            time.sleep(poll)
