"""Run a tasks.json shell task as VS Code's terminal task system does: the command and its
arguments through the user's shell (`bash -c "<command> <args quoted>"`, which execs a single
command, so the task's process is the program itself), in ``options.cwd``, with
``options.env`` over the inherited environment, stdout and stderr on one pseudo-terminal (a
task runs in a terminal, so the program sees a TTY), read line by line with the time each line
arrived. ``${workspaceFolder}`` and ``${command:python.interpreterPath}`` are resolved as VS
Code resolves them (the selected interpreter: this Python, unless another is given)."""

from __future__ import annotations

import os
import pty
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def resolve(value: str, workspace: Path, interpreter: str) -> str:
    return value.replace("${workspaceFolder}", str(workspace)).replace("${command:python.interpreterPath}",
                                                                     interpreter)


class TaskRun:
    """A running task; ``lines`` are (seconds since the start, line as VS Code's matcher gets it)."""

    def __init__(self, task: dict, workspace: Path, *, interpreter: str = sys.executable,
                 extra_env: dict | None = None, without: tuple[str, ...] = ()) -> None:
        options = task.get("options", {})
        argv = [resolve(task["command"], workspace, interpreter), *(resolve(a, workspace, interpreter)
                                                                    for a in task.get("args", []))]
        self.command_line = shlex.join(argv)
        env = {key: value for key, value in os.environ.items() if key not in without}
        env.update({**(extra_env or {}), **options.get("env", {})})
        cwd = resolve(options.get("cwd", "${workspaceFolder}"), workspace, interpreter)
        master, slave = pty.openpty()
        self.started = time.monotonic()
        self.proc = subprocess.Popen([shutil.which("bash") or "/bin/sh", "-c", self.command_line], cwd=cwd, env=env, stdin=slave,
                                     stdout=slave, stderr=slave, start_new_session=True, close_fds=True)
        os.close(slave)
        self._master = master
        self.lines: list[tuple[float, str]] = []
        self.raw: list[tuple[float, bytes]] = []  # what the terminal got, chunk by chunk
        self._queue: "queue.Queue[tuple[float, str] | None]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the other side closed
                chunk = b""
            if not chunk:
                break
            self.raw.append((time.monotonic() - self.started, chunk))
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                self._queue.put((time.monotonic() - self.started, raw.decode("utf-8", "replace").rstrip("\r")))
        if pending:
            self._queue.put((time.monotonic() - self.started, pending.decode("utf-8", "replace")))
        self._queue.put(None)

    def next_line(self, timeout: float) -> tuple[float, str] | None:
        """The next line (None at the end of the output or after ``timeout`` seconds)."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is not None:
            self.lines.append(item)
        else:
            self._queue.put(None)  # stays at the end
        return item

    def wait_for(self, pattern: str, timeout: float) -> tuple[float, str]:
        """Read until a line matches ``pattern`` (re.search); AssertionError with the output otherwise."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            item = self.next_line(left)
            if item is None:
                break
            if re.search(pattern, item[1]):
                return item
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s from `{self.command_line}`:\n"
                             + "\n".join(line for _, line in self.lines))

    def read_quiet(self, quiet: float = 1.0) -> list[str]:
        """The lines that come until none has come for ``quiet`` seconds."""
        got = []
        while (item := self.next_line(quiet)) is not None:
            got.append(item[1])
        return got

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C, as VS Code's Terminate Task does to a task's terminal; the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self._reader.join(5)
        os.close(self._master)
        return code

    @staticmethod
    def has_escape_codes(line: str) -> bool:
        return bool(_ANSI.search(line))
