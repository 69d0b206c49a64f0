"""The command line: parse, call one function, print. Errors are translated here only."""

from __future__ import annotations

import sys
import traceback
from typing import List, Optional

import typer

from ..core import interrupts
from ..errors import AmlDebugError, ContainerError, ExitStatus, ScoringError
from . import commands  # noqa: F401 (registers the commands on app)
from .app import app, note, out  # noqa: F401
from .params import _options, resolve_aliases  # noqa: F401 (tests parse into options as the commands do)


def _report(exc: AmlDebugError) -> None:
    note(f"amldebug: error: {exc}")
    if isinstance(exc, ContainerError) and exc.logs:
        note(exc.logs.rstrip())
    if isinstance(exc, ScoringError):
        if exc.body:
            note(f"response body: {exc.body.strip()}")
        if exc.logged_exception:
            note("the container logged:\n" + exc.logged_exception.rstrip())


def run(argv: Optional[List[str]] = None) -> int:
    """Run the CLI and return its exit status (in-process; used by main() and the tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # Without standalone mode, click returns a typer.Exit's code instead of raising it.
        code = app(args=resolve_aliases(argv), prog_name="amldebug", standalone_mode=False)
    except AmlDebugError as exc:
        if "--debug" in argv:
            traceback.print_exc()
        _report(exc)
        return int(exc.exit_status)
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # typer's --show-completion/--install-completion end with sys.exit
        return exc.code if isinstance(exc.code, int) else int(ExitStatus.OK if exc.code is None else ExitStatus.ERROR)
    except typer.TyperException as exc:  # usage errors from the (vendored) click parser
        exc.show()
        return int(ExitStatus.USAGE)
    except (KeyboardInterrupt, typer.Abort) as exc:
        return _interrupted(getattr(exc, "exit_status", None))
    except Exception as exc:  # a bug of ours: say so, without a traceback unless asked
        if "--debug" in argv:
            traceback.print_exc()
        note(f"amldebug: internal error: {type(exc).__name__}: {exc}; run again with --debug for the "
             "traceback, and please report it")
        return int(ExitStatus.ERROR)
    if code == ExitStatus.INTERRUPTED:  # typer itself turns an interrupt into a bare 130, message-less
        return _interrupted(interrupts.raised_status())
    return code if isinstance(code, int) else int(ExitStatus.OK)


def _interrupted(status: Optional[int]) -> int:
    """Ended by Ctrl-C, SIGTERM or SIGHUP before the command finished: 130, 143 or 129 (128 + N)."""
    note("interrupted")
    return int(status or ExitStatus.INTERRUPTED)


def main() -> None:
    interrupts.install()  # SIGTERM (a VS Code task ended) and SIGHUP (a closed terminal) clean up as Ctrl-C does
    sys.exit(run())
