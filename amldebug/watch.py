"""The edit loop: watch SOURCE_DIR with watchdog and reload the service on save.

Shaped like uvicorn's reload supervisor: start the observer, then for each coalesced
batch of changes either reload (code: a hot patch or a fresh worker) or update
(environment file, model), until a threading.Event says stop. The path filter is a plain
callable; the coalescing window is a number.
"""

from __future__ import annotations

import fnmatch
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .core.options import ReloadMode
from .core.scriptcheck import syntax_error
from .errors import AmlDebugError

IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".vscode", ".idea", ".mypy_cache", ".pytest_cache",
                ".ipynb_checkpoints", "node_modules", ".venv", "venv"}
IGNORED_FILES = ("*.pyc", "*.pyo", "*.swp", "*.swo", "*.swx", "*.swpx", "*~", ".#*", "#*#", "*.tmp",
                 "*.bak", "*.orig", ".DS_Store", "4913", "*.crswap", ".*.kate-swp", "*.vsctmp",
                 # temp files saved over the original: sed -i, JetBrains' safe write, gedit
                 "sed??????", "*___jb_tmp___", "*___jb_old___", ".goutputstream-*")


def is_relevant(path: str) -> bool:
    """True for a file whose change should reach the service (not caches, VCS, editor temp files)."""
    parts = Path(path).parts
    if any(part in IGNORED_DIRS for part in parts[:-1]):
        return False
    name = parts[-1] if parts else ""
    return not any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_FILES)


class _Collector(FileSystemEventHandler):
    """Queue (path, what happened to it) for each relevant event; a rename gives the old
    name as "moved_from" (an editor's temp file renamed over the real one)."""

    def __init__(self, sink: "queue.Queue[tuple[str, str]]", accept: Callable[[str], bool]) -> None:
        self._sink = sink
        self._accept = accept

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "moved":
            pairs = [(event.src_path, "moved_from"), (event.dest_path, "moved")]
        else:
            pairs = [(event.src_path, event.event_type)]
        for path, what in pairs:
            path = os.fsdecode(path)
            if path and self._accept(path):
                self._sink.put((path, what))


def _writing(events: list[tuple[str, str]]) -> bool:
    """True while a file of the batch was written but not yet closed (Linux reports closes)."""
    last: dict[str, str] = {}
    for path, what in events:
        last[path] = what
    return any(what in ("created", "modified") for what in last.values())


def saved_files(events: list[tuple[str, str]]) -> list[str]:
    """The real files a batch of events changed: those that exist now, and those deleted
    that existed before the batch. An editor's temp file (created, then renamed over the
    real file or deleted) is not one."""
    born, last = set(), {}
    for path, what in events:
        if what == "created" and path not in last:
            born.add(path)
        last[path] = what
    # A name renamed away lives on under its new name (reported as that); a deleted one
    # is a change only if it existed before the batch.
    return sorted(path for path, what in last.items() if what != "moved_from"
                  and (os.path.exists(path) or (what == "deleted" and path not in born)))


def _only_new(events: list[tuple[str, str]]) -> bool:
    """True when every file of the batch was created in it: perhaps an editor's temp file
    that a rename over the real file will follow."""
    born = {path for path, what in events if what == "created"}
    return bool(born) and all(path in born for path, _ in events)


def _under(path: str, root: Optional[str]) -> bool:
    if not root:
        return False
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Reloadable(Protocol):
    """What the loop drives: amldebug's Service, or ``azureml_bridge.LocalWebserviceTarget``
    (the adapter for an azureml-core LocalWebservice, which has one kind of reload)."""

    spec: Any  # source_dir, env_file, model_dir: what to watch, and what to rebuild on

    def reload(self, *, mode: ReloadMode = ReloadMode.FULL, changed: Sequence[str] = (),
               checked: bool = False) -> Any:
        """Serve the files saved (``changed``; ``checked``: compiled already); returns what
        :func:`describe` reads (``kind``/``restarted``, ``seconds``, ...)."""

    def update(self) -> Any:
        """Start it again: an environment file or a model changed."""


class ReloadLoop:
    """Watch the service's files and keep it serving the latest good code.

    ``window`` (5 ms): a batch ends when no event came for that long (and, where the system reports
    closes, no file of it is still open for writing), so an editor's save -- in place,
    or through a temp file renamed over the original -- is one reload with the final text.
    ``mode``: what a save of code does (see :class:`ReloadMode`)."""

    def __init__(self, service: Reloadable, *, window: float = 0.005, report: Callable[[str], None] = print,
                 accept: Callable[[str], bool] = is_relevant, stop: Optional[threading.Event] = None,
                 mode: ReloadMode = ReloadMode.AUTO, settle_max: float = 0.5, new_file_grace: float = 0.1) -> None:
        self.service = service
        self.window = window
        self.new_file_grace = new_file_grace
        self.settle_max = settle_max
        self.mode = ReloadMode(mode)
        self.report = report
        self.accept = accept
        self.stop = stop or threading.Event()
        self.reloads = 0
        self.busy = threading.Event()  # set while a batch is handled (an update swaps the backend)
        self._changes: "queue.Queue[tuple[str, str]]" = queue.Queue()
        self._observer = None
        self._closes = False

    def _roots(self) -> list[str]:
        spec = self.service.spec
        roots = {spec.source_dir}
        for extra in (spec.env_file, spec.model_dir):
            if extra and not _under(extra, spec.source_dir):
                roots.add(extra if os.path.isdir(extra) else os.path.dirname(extra))
        return sorted(roots)

    def startup(self) -> None:
        self._observer = Observer()
        self._closes = "inotify" in type(self._observer).__module__  # it reports a written file's close
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
        """Block for the first change, then gather until ``window`` seconds pass quietly
        with no file left open for writing (at most ``settle_max`` seconds more; a batch of
        only new files waits ``new_file_grace`` once, for a temp file's rename); the real
        files saved (temp files left out)."""
        try:
            events = [self._changes.get(timeout=timeout)]
        except queue.Empty:
            return []
        cap = time.monotonic() + self.settle_max
        grace = True
        while True:
            try:
                events.append(self._changes.get(timeout=self.window))
            except queue.Empty:
                if time.monotonic() >= cap:
                    return saved_files(events)
                if self._closes and _writing(events):
                    continue
                if grace and _only_new(events):  # wait once for the rename of a temp file
                    grace = False
                    try:
                        events.append(self._changes.get(timeout=self.new_file_grace))
                        continue
                    except queue.Empty:
                        pass
                return saved_files(events)

    def handle(self, batch: Iterable[str]) -> None:
        spec = self.service.spec
        batch = list(batch)
        rebuild = [p for p in batch if _under(p, spec.env_file) or _under(p, spec.model_dir)]
        if rebuild:
            # begin and end lines as for a reload (contract with VS Code's task: problems clear at the end)
            self.report(f"amldebug: reloading {_names(rebuild)}: changed: recreating the service "
                        "(re-attach the debugger when it is up)")
            try:
                self.service.update()
                self.report("amldebug: reloaded: service recreated; re-attach the debugger")
            except AmlDebugError as exc:
                self.report(f"amldebug: reload failed: {exc}")
            return
        self.report(f"amldebug: reloading {_names(batch)}")  # the begin line VS Code's task waits for
        for path in batch:
            if path.endswith(".py") and os.path.isfile(path):
                problem = syntax_error(Path(path))
                if problem:
                    self.report(problem)
                    self.report("amldebug: still serving the last good code")
                    return
        try:
            result = self.service.reload(mode=self.mode, changed=batch, checked=True)
        except AmlDebugError as exc:
            self.report(f"amldebug: reload failed: {exc}")
            return
        self.reloads += 1
        self.report(describe(result))


def describe(result) -> str:
    """The one line that ends a reload attempt (the forms VS Code's end pattern knows)."""
    kind = getattr(result, "kind", "restarted" if result.restarted else "reloaded")
    attached = "; the debugger stays attached" if getattr(result, "attached", None) else ""
    if kind == "patched":
        return (f"amldebug: patched {', '.join(f + '()' for f in result.functions)} in {result.patch_ms:.0f} ms "
                f"(init() not re-run; model kept){attached}")
    if kind == "declined":
        return (f"amldebug: still serving the last good code: cannot patch ({result.reason}); save with "
                "--reload auto, or run 'amldebug reload'")
    if kind == "restarted":
        return f"amldebug: reloaded: restarted the service in {result.seconds:.1f} s; re-attach the debugger"
    seconds = getattr(result, "init_seconds", None)
    init = f", init() re-run in {seconds:.1f} s" if seconds is not None else ""
    why = f" ({result.reason})" if getattr(result, "reason", None) else ""
    return f"amldebug: reloaded: fresh worker{init}{why}{attached}"


def _names(paths: list[str]) -> str:
    names = sorted({os.path.basename(p) for p in paths})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
