"""Run the amldebug command line in-process, as a user would in a shell."""

from __future__ import annotations

from amldebug import cli


def amldebug(capsys, *args) -> tuple[int, str, str]:
    """``amldebug ARGS...``: its exit code, what it printed on stdout, and on stderr."""
    capsys.readouterr()
    code = cli.run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
