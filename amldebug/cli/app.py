"""The typer application and how it prints: results to stdout, progress and diagnostics
to stderr."""

from __future__ import annotations

import sys

import typer

from ..core.version import __version__

app = typer.Typer(
    name="amldebug",
    help="Debug an Azure ML scoring script (score.py) in its local image from VS Code, with hot reload.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def out(text: str = "") -> None:
    """Results go to stdout."""
    print(text, flush=True)


def note(text: str) -> None:
    """Progress and diagnostics go to stderr."""
    print(text, file=sys.stderr, flush=True)


@app.callback(invoke_without_command=True)
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (never with local variables).",
                               show_default=False),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out(__version__)
        raise typer.Exit()
