"""The foreground session (``amldebug attach`` without ``--detach``, ``amldebug demo``): start
the service, stream its log and reload on save until Ctrl-C, SIGTERM or SIGHUP, then remove
it; and end quietly when another ``amldebug attach`` takes the service over, or ``amldebug
down`` removes it. As uvicorn's server owns start, reload and shutdown: the command line
only says where the lines go (:class:`Console`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional

from .core.options import ReloadMode
from .core.spec import ServiceSpec
from .engine.statefile import StateFile, state_folder
from .errors import AmlDebugError, ContainerError
from .session import Attached
from .watch import ReloadLoop


def _unmapped(spec: ServiceSpec) -> Callable[[str], str]:
    return lambda line: line


@dataclasses.dataclass(frozen=True)
class Console:
    """Where a foreground session's lines go: ``out`` the service's log (stdout), ``note``
    amldebug's own messages (stderr), after ``local(spec)`` turned the paths the server
    prints into local files."""

    out: Callable[[str], None]
    note: Callable[[str], None]
    local: Callable[[ServiceSpec], Callable[[str], str]] = _unmapped


CHANNELS = {
    "pipe": "saves reach the server through named pipes in its state folder",
    "engine": "saves reach the server as signals through the Docker API (this host cannot open the "
              "container's named pipes, as with Docker Desktop): a few ms slower, the same reloads",
}


def say_channel(service, note: Callable[[str], None]) -> None:
    """Say once how a save reaches the server (the fast path, or the one Docker Desktop needs)."""
    how = CHANNELS.get(service.channel())
    if how:
        note(f"amldebug: {how}")


def reload_reporter(service, console: Console) -> Callable[[str], None]:
    """``note`` for a reload loop's reports: a failed reload's traceback names local files
    (the spec is read at each report: update() replaces it)."""
    return lambda text: console.note(console.local(service.spec)(text))


def session_of(name: str) -> Optional[str]:
    """The start that owns the service's state folder now (a replacement writes its own)."""
    try:
        return (StateFile(state_folder(name)).folder / "session").read_text()
    except OSError:
        return None


def removed_elsewhere(service, settle: float = 3.0) -> Optional[str]:
    """Why the service is gone when another amldebug command removed it (another attach took
    its name over, or 'amldebug down'), as the line to print; None when it stopped by itself."""
    ours = service.session
    deadline = time.monotonic() + settle
    while True:
        state = service.state
        owner = session_of(service.name)
        if ours and owner and owner != ours:
            holder = StateFile(state_folder(service.name)).owner_pid()
            return (f"amldebug: service '{service.name}' was taken over by another 'amldebug attach'"
                    f"{f' (pid {holder})' if holder else ''}; this session ends, that one serves now")
        if state not in ("Removing", "Deleted"):
            return None
        if time.monotonic() >= deadline:  # removed, and no new start took the name
            return f"amldebug: service '{service.name}' was removed ('amldebug down'?); this session ends"
        time.sleep(0.1)


def run_foreground(start: Callable[[], Attached], announce: Callable[[Attached], None], console: Console, *,
                   watch: bool = True, mode: ReloadMode = ReloadMode.AUTO) -> None:
    """Start the service, announce it, stream its log (and reload on save) until Ctrl-C,
    SIGTERM or SIGHUP, then remove it. The start is inside the try, so a signal at any
    moment cleans up (start() itself removes what an unfinished start made). A service
    another 'amldebug attach' replaced (F5 while a terminal runs it) ends this session
    with a message instead of an error."""
    note = console.note
    stop = threading.Event()
    loop = thread = service = None
    try:
        result = start()
        service = result.service
        StateFile(state_folder(service.name)).claim()
        announce(result)
        if watch:
            loop = ReloadLoop(service, report=reload_reporter(service, console), stop=stop, mode=mode)
            watching = threading.Event()
            thread = threading.Thread(target=loop.run, kwargs={"on_ready": watching.set}, daemon=True)
            thread.start()
            watching.wait(30)
            note(f"amldebug: watching {service.spec.source_dir} - save to reload, Ctrl-C to stop")
            say_channel(service, note)
        while True:
            local = console.local(service.spec)  # tracebacks name local files (terminal and VS Code links)
            for line in service.follow_logs():
                console.out(local(line))
            # The log ends when the service stops, or when an update() (a model or
            # environment change) replaced it: then follow the new one.
            while loop is not None and loop.busy.is_set():
                time.sleep(0.1)
            if service.state != "Running":
                why = removed_elsewhere(service)
                if why:
                    note(why)
                    service = None  # nothing of ours is left to remove
                    return
                raise ContainerError(f"the service '{service.name}' stopped", service.get_logs(30))
    except KeyboardInterrupt as exc:
        if service is None:  # interrupted while starting: exit 130 (or 128 + the signal)
            raise
        how = "" if type(exc) is KeyboardInterrupt else f" ({exc})"
        note(f"amldebug: stopping service '{service.name}'{how}")  # the usual end of a session: exit 0
    finally:
        stop.set()
        if thread is not None and thread.ident is not None:  # an update in flight finishes: nothing it starts
            thread.join(150)                                 # is left behind (a signal may come before start())
        if service is not None:
            try:
                service.delete()
            except AmlDebugError as exc:  # e.g. the engine went away: say what is left
                note(f"amldebug: could not remove service '{service.name}': {exc}")
