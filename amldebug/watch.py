"""The edit loop: watch SOURCE_DIR with watchdog and reload the service on save.

Shaped like uvicorn's reload supervisor: start the observer, then for each debounced
batch of changes either reload (code) or update (environment file, model), until a
threading.Event says stop. The path filter is a plain callable; debounce is a number.
"""

from __future__ import annotations

import fnmatch
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .core.scriptcheck import syntax_error
from .errors import AmlDebugError

IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".vscode", ".idea", ".mypy_cache", ".pytest_cache",
                ".ipynb_checkpoints", "node_modules", ".venv", "venv"}
IGNORED_FILES = ("*.pyc", "*.pyo", "*.swp", "*.swo", "*.swx", "*.swpx", "*~", ".#*", "#*#", "*.tmp",
                 "*.bak", "*.orig", ".DS_Store", "4913", "*.crswap", ".*.kate-swp")


def is_relevant(path: str) -> bool:
    """True for a file whose change should reach the service (not caches, VCS, editor temp files)."""
    parts = Path(path).parts
    if any(part in IGNORED_DIRS for part in parts[:-1]):
        return False
    name = parts[-1] if parts else ""
    return not any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_FILES)


class _Collector(FileSystemEventHandler):
    def __init__(self, sink: "queue.Queue[str]", accept: Callable[[str], bool]) -> None:
        self._sink = sink
        self._accept = accept

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and self._accept(os.fsdecode(path)):
                self._sink.put(os.fsdecode(path))


def _under(path: str, root: Optional[str]) -> bool:
    if not root:
        return False
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ReloadLoop:
    """Watch the service's files and keep it serving the latest good code."""

    def __init__(self, service, *, debounce: float = 0.1, report: Callable[[str], None] = print,
                 accept: Callable[[str], bool] = is_relevant, stop: Optional[threading.Event] = None) -> None:
        self.service = service
        self.debounce = debounce
        self.report = report
        self.accept = accept
        self.stop = stop or threading.Event()
        self.reloads = 0
        self.busy = threading.Event()  # set while a batch is handled (an update swaps the backend)
        self._changes: "queue.Queue[str]" = queue.Queue()
        self._observer = None

    def _roots(self) -> list[str]:
        spec = self.service.spec
        roots = {spec.source_dir}
        for extra in (spec.env_file, spec.model_dir):
            if extra and not _under(extra, spec.source_dir):
                roots.add(extra if os.path.isdir(extra) else os.path.dirname(extra))
        return sorted(roots)

    def startup(self) -> None:
        self._observer = Observer()
        handler = _Collector(self._changes, self.accept)
        for root in self._roots():
            self._observer.schedule(handler, root, recursive=True)
        self._observer.start()

    def shutdown(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

    def run(self, on_ready: Callable[[], None] = lambda: None) -> None:
        """Watch until ``stop`` is set; ``on_ready`` runs once the file watches are in place
        (say "save to reload" only then: a save before it would be missed)."""
        self.startup()
        on_ready()
        try:
            while not self.stop.is_set():
                batch = self.next_batch(timeout=0.5)
                if batch:
                    self.busy.set()
                    try:
                        self.handle(batch)
                    finally:
                        self.busy.clear()
        finally:
            self.shutdown()

    def next_batch(self, timeout: float) -> list[str]:
        """Block for the first change, then gather until ``debounce`` seconds pass quietly."""
        try:
            first = self._changes.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = {first}
        while True:
            try:
                batch.add(self._changes.get(timeout=self.debounce))
            except queue.Empty:
                return sorted(batch)

    def handle(self, batch: Iterable[str]) -> None:
        spec = self.service.spec
        batch = list(batch)
        rebuild = [p for p in batch if _under(p, spec.env_file) or _under(p, spec.model_dir)]
        try:
            if rebuild:
                self.report(f"amldebug: {_names(rebuild)} changed: recreating the service "
                            "(re-attach the debugger when it is up)")
                self.service.update()
                self.report("amldebug: service recreated")
                return
            for path in batch:
                if path.endswith(".py") and os.path.isfile(path):
                    problem = syntax_error(Path(path))
                    if problem:
                        self.report(f"{problem} (still serving the last good code)")
                        return
            started = time.monotonic()
            result = self.service.reload()
            self.reloads += 1
            self.report(f"amldebug: reloaded {_names(batch)} in {(time.monotonic() - started) * 1000:.0f} ms "
                        f"(worker {result.worker_pid}); the debugger stays attached"
                        if not result.restarted else "amldebug: restarted; re-attach the debugger")
        except AmlDebugError as exc:
            self.report(f"amldebug: reload failed: {exc}")


def _names(paths: list[str]) -> str:
    names = sorted({os.path.basename(p) for p in paths})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
