"""What a long command prints while it works: stages with the time elapsed, plain lines
when stderr is not a terminal (a pipe, a VS Code task: contract C1), NO_COLOR or
AMLDEBUG_PROGRESS=plain; a rich spinner on a terminal; -q keeps only what matters."""

import io

import pytest

from amldebug.cli.progress import Reporter, progress_mode
from amldebug.core.progress import Stage, notice, stage


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("isatty, environ, mode", [
    (True, {}, "rich"),
    (False, {}, "plain"),
    (True, {"NO_COLOR": "1"}, "plain"),
    (True, {"NO_COLOR": ""}, "rich"),  # no-color.org: present *and not empty*
    (True, {"AMLDEBUG_PROGRESS": "plain"}, "plain"),
    (True, {"TERM": "dumb"}, "plain"),
])
def test_mode(isatty, environ, mode):
    assert progress_mode(isatty, environ) == mode


def test_plain_lines_name_each_stage_with_the_time_elapsed():
    stream, clock = io.StringIO(), Clock()
    report = Reporter(stream=stream, environ={}, clock=clock)
    report.always("amldebug: starting service 'demo'")
    stage(report, "probing image 'score:1'")
    clock.now += 0.42
    stage(report, "fetching debugpy for Python 3.9")
    report("  pip: Collecting debugpy")
    clock.now += 3.1
    stage(report, "waiting for init()")
    report.finish()
    report.always("amldebug: service 'demo' is ready for a debugger on localhost:5678")
    assert stream.getvalue().splitlines() == [
        "amldebug: starting service 'demo'",
        "amldebug: probing image 'score:1' [0.0 s]",
        "amldebug: fetching debugpy for Python 3.9 [0.4 s]",
        "  pip: Collecting debugpy",
        "amldebug: waiting for init() [3.5 s]",
        "amldebug: service 'demo' is ready for a debugger on localhost:5678",
    ]


def test_a_stage_is_a_plain_string_to_any_other_callable():
    seen = []
    stage(seen.append, "launching the container")
    assert seen == ["amldebug: launching the container"] and isinstance(seen[0], Stage)


def test_quiet_keeps_the_start_and_ready_lines_warnings_errors_and_choices_made_for_the_user():
    stream = io.StringIO()
    report = Reporter(quiet=True, stream=stream, environ={})
    report.always("amldebug: starting service 'demo'")
    stage(report, "probing image 'score:1'")
    report("  docker: Step 1/3")
    report("amldebug: fetched debugpy")
    notice(report, "amldebug: no --image given; using 'score:1'")  # what runs depends on it
    report("warning: the debug port will listen on 0.0.0.0")
    report.always("amldebug: service 'demo' is ready for a debugger on localhost:5678")
    assert stream.getvalue().splitlines() == [
        "amldebug: starting service 'demo'",
        "amldebug: no --image given; using 'score:1'",
        "warning: the debug port will listen on 0.0.0.0",
        "amldebug: service 'demo' is ready for a debugger on localhost:5678",
    ]


def test_a_terminal_gets_each_finished_stage_with_its_time_and_no_colour_codes_under_no_color():
    clock = Clock()
    rich_out = Terminal()
    report = Reporter(stream=rich_out, environ={"TERM": "xterm"}, clock=clock)
    assert report.mode == "rich"
    stage(report, "probing image 'score:1'")
    clock.now += 1.25
    report("amldebug: a note while it runs")
    stage(report, "launching the container")
    clock.now += 0.5
    report.finish()
    text = rich_out.getvalue()
    assert "amldebug: probing image 'score:1' (1.2 s)" in text or "amldebug: probing image 'score:1' (1.3 s)" in text
    assert "amldebug: launching the container (0.5 s)" in text and "amldebug: a note while it runs" in text

    plain = Terminal()
    report = Reporter(stream=plain, environ={"NO_COLOR": "1", "TERM": "xterm"}, clock=clock)
    stage(report, "probing image 'score:1'")
    report.finish()
    assert plain.getvalue() == "amldebug: probing image 'score:1' [0.0 s]\n"  # no escape codes, no spinner


class _Writes:
    def __init__(self):
        self.calls = []

    def write(self, text):
        self.calls.append(text)

    def flush(self):
        pass


def test_each_printed_line_is_one_write_so_streamed_log_lines_cannot_splice_into_it(monkeypatch):
    """With PYTHONUNBUFFERED=1 print() writes a line's text and its newline separately; a log
    line from the streaming thread then lands between them and VS Code's begin/end patterns
    miss both lines."""
    import sys

    from amldebug.cli.app import note, out

    err, std = _Writes(), _Writes()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", std)
    note("amldebug: reloading score.py")
    out("amldebug: result")
    assert err.calls == ["amldebug: reloading score.py\n"]
    assert std.calls == ["amldebug: result\n"]
