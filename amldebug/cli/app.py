"""The typer application and how it prints: results to stdout, progress and diagnostics
to stderr."""

from __future__ import annotations

import json
import sys

import typer
import typer.core

from ..core.version import __version__
from ..errors import exit_code_table

# click rewraps an epilog's paragraphs unless they start with \b: the table keeps its lines.
EPILOG = ("Exit codes:\n\n\b\n" + exit_code_table()
          + "\n\nShell completion: amldebug --install-completion (bash, zsh, fish, PowerShell).")

# typer prints an argument's type after its name ("NAME <str>"); the name says enough, and
# options name their values with metavars ("--image IMAGE").
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None

app = typer.Typer(
    name="amldebug",
    help="Debug an Azure ML scoring script (score.py) in its local image from VS Code, with hot reload.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: fits 80 columns, and keeps brackets such as 'amldebug[azureml]' (rich
    # markup takes them for tags and drops them).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _line(stream, text: str) -> None:
    # One write per line: print() writes the text and its newline separately when Python is
    # unbuffered (PYTHONUNBUFFERED=1), and a log line streamed by another thread can land
    # between them, splicing two lines so VS Code's begin/end patterns no longer match.
    stream.write(f"{text}\n")
    stream.flush()


def out(text: str = "") -> None:
    """Results go to stdout."""
    _line(sys.stdout, text)


def out_json(value) -> None:
    """A command's result as one JSON document on stdout (--json)."""
    _line(sys.stdout, json.dumps(value, indent=2, default=str))


def note(text: str) -> None:
    """Progress and diagnostics go to stderr."""
    _line(sys.stderr, text)


@app.callback(invoke_without_command=True)
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (never with local variables).",
                               show_default=False),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out(__version__)
        raise typer.Exit()
