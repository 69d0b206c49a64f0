"""One exception root for everything amldebug reports to a user.

Each subclass carries a message that names the offending value and the fix; the
CLI edge (``amldebug.cli``) turns any of them into that message on stderr and the
exit code below. Code that talks to Docker catches ``docker.errors.DockerException``
where it happens and re-raises one of these.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """The exit codes of ``amldebug`` (the table in ``--help`` and the README is made from
    :data:`EXIT_MEANINGS`)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    DOCKER = 3
    SCORING = 4
    INTERRUPTED = 130


# What each code means, as ``amldebug --help`` prints it. 128 + N is the shell's convention for
# a session ended by signal N (SIGTERM, how VS Code ends a task: 143; SIGHUP: 129).
EXIT_MEANINGS = {
    ExitStatus.OK: "success (a foreground session ended with Ctrl-C too)",
    ExitStatus.ERROR: "an error: a check or a reload failed, a file cannot be read or written",
    ExitStatus.USAGE: "bad input: an unknown option, a missing file, a wrong value",
    ExitStatus.DOCKER: "Docker: no engine, an image missing or unfit, a container that died",
    ExitStatus.SCORING: "score: the request failed (its HTTP status and traceback are printed)",
    ExitStatus.INTERRUPTED: "Ctrl-C while starting; 128+N for signal N (143 SIGTERM, 129 SIGHUP)",
}


def exit_code_table() -> str:
    """The exit codes, one per line ("  0  success ..."), for --help."""
    return "\n".join(f"  {int(code):>3}  {text}" for code, text in EXIT_MEANINGS.items())


class AmlDebugError(Exception):
    """Base of every error amldebug raises on purpose."""

    exit_status: ExitStatus = ExitStatus.ERROR


class UsageError(AmlDebugError):
    """A value given on the command line or to the API is wrong."""

    exit_status = ExitStatus.USAGE


class EntryScriptError(UsageError):
    """The entry script is missing, does not compile, or lacks init()/run()."""


class AzureMLNotInstalledError(UsageError):
    """The azureml extra is needed for this and is missing."""


class ConfigFileError(AmlDebugError):
    """A JSON-with-comments file (launch.json, tasks.json) cannot be parsed or written."""


class ConfigLockError(ConfigFileError):
    """Another amldebug run kept the lock on a workspace's launch.json and tasks.json too long."""


class DockerUnavailableError(AmlDebugError):
    """No Docker engine answers."""

    exit_status = ExitStatus.DOCKER


class ImageError(AmlDebugError):
    """The image is missing or cannot serve (no azmlinfsrv, no Python)."""

    exit_status = ExitStatus.DOCKER


class BuildError(AmlDebugError):
    """pip could not produce the environment; ``output`` holds pip's full output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class ContainerError(AmlDebugError):
    """A container failed to start or died; carries the last log lines."""

    exit_status = ExitStatus.DOCKER

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


class ServiceNotFoundError(AmlDebugError):
    """No amldebug service by that name."""


class ReloadError(AmlDebugError):
    """A reload could not make the service serve the new code."""


class ScoringError(AmlDebugError):
    """A /score request failed; carries what the user needs to see why."""

    exit_status = ExitStatus.SCORING

    def __init__(self, message: str, status: int | None = None, body: str = "", logged_exception: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.logged_exception = logged_exception
