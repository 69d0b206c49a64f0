"""One options object: every attach option is declared once (AttachOptions), the CLI parses
into it, and the F5 task's argv is made from it and parses back to the same value."""

import pytest
import typer

from amldebug import cli
from amldebug.core.options import AttachOptions, Runtime, option_fields, task_argv
from amldebug.core.spec import resolve_spec
from amldebug.vscode.entries import task_command, task_options


def parse_attach(argv: list[str]) -> AttachOptions:
    """What the real CLI makes of ``amldebug attach ARGV`` (parsed, not run)."""
    command = typer.main.get_command(cli.app).commands["attach"]
    context = command.make_context("attach", list(argv))
    return cli._options(context.params)


EXAMPLES = [
    AttachOptions(),
    AttachOptions(source_dir="sample", name="svc", debug_port=6001, exact_ports=True),
    AttachOptions(source_dir="src", entry_script="app/score.py", image="score:3", model_dir="models/clf",
                  model_name="clf", model_version="7", port=5100, wait=False, just_my_code=False,
                  env=(("LOG_LEVEL", "DEBUG"), ("API_KEY", None))),
    AttachOptions(runtime=Runtime.PROCESS, python="/usr/bin/python3", debug_bind="0.0.0.0"),
    AttachOptions(inference_config="ic.json", base_image="base:1", env_file=None, service=None),
    AttachOptions(env_file="requirements.txt", base_image="python-base:3.11"),
    AttachOptions(service="clf-local", name="clf-debug"),
]


@pytest.mark.parametrize("options", EXAMPLES)
def test_task_argv_parses_back_to_the_same_options(options):
    assert parse_attach(task_argv(options)) == options


def test_every_option_field_is_an_option_of_the_attach_command():
    command = typer.main.get_command(cli.app).commands["attach"]
    declared = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for field in option_fields():
        for flag in field.metadata["flag"].split("/"):
            if flag.startswith("-"):
                assert flag in declared, field.name


def test_the_f5_task_of_a_service_gives_back_what_starts_it_again(workspace):
    spec = resolve_spec("sample", image="score:3", model_dir="sample/model", env={"TOKEN": "secret"}, port=5100,
                        just_my_code=False)
    argv = task_command(spec)
    assert argv[argv.index("attach") + 1:] == task_argv(task_options(spec))
    assert parse_attach(argv[argv.index("attach") + 1:]) == task_options(spec)
    assert "secret" not in " ".join(argv) and argv[argv.index("-e") + 1] == "TOKEN"
