"""The reload channel's named pipes (engine/channel.py): a line reaches a reader; a pipe
nobody reads, a missing one, or a plain file says so at once, so the caller can fall back
to a signal through the engine."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from amldebug.engine import channel


def test_a_line_reaches_the_reader(tmp_path):
    pipe = tmp_path / "control"
    os.mkfifo(pipe)
    reader = os.fdopen(os.open(pipe, os.O_RDWR), "r")  # as the launcher opens it
    got = []
    thread = threading.Thread(target=lambda: got.append(reader.readline()), daemon=True)
    thread.start()
    assert channel.send(pipe, "reload") is True
    thread.join(5)
    assert got == ["reload\n"]
    reader.close()


def test_a_pipe_nobody_reads_a_missing_one_or_a_plain_file_is_refused_at_once(tmp_path):
    unread = tmp_path / "unread"
    os.mkfifo(unread)
    plain = tmp_path / "plain"
    plain.write_text("")
    assert channel.send(unread, "reload") is False
    assert channel.send(tmp_path / "missing", "reload") is False
    assert channel.send(plain, "reload") is False
    assert plain.read_text() == ""


def test_wait_answer_returns_the_matching_answer_or_none(tmp_path):
    answer = tmp_path / "patch.json"
    answer.write_text('{"seq": "a", "ok": true}')
    assert channel.wait_answer(answer, lambda a: a["seq"] == "a", 1) == {"seq": "a", "ok": True}
    assert channel.wait_answer(answer, lambda a: a["seq"] == "b", 0.05) is None


RELAY = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import launch
path, pipe = launch.module("common.pipes").open_fifo("patch-1")
launch.module("master.inbox").start()
print("ready", flush=True)
for line in pipe:
    print(line.strip(), flush=True)
"""


def test_the_inbox_relays_a_line_to_its_pipe_and_answers_for_a_pipe_nobody_reads(tmp_path):
    """Where the host cannot open the pipes: a file in the inbox and SIGURG, and the
    launcher passes the line on to the pipe inside (or says at once that nobody reads it)."""
    payload = Path(channel.__file__).resolve().parents[1] / "payload"
    state = tmp_path / "run"
    state.mkdir()
    child = subprocess.Popen([sys.executable, "-c", RELAY, str(payload)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "AMLDEBUG_STATE": str(state)})
    try:
        assert child.stdout.readline().strip() == "ready"
        assert channel.reachable(state / "patch-1") and not channel.reachable(state / "patch-2")
        old = os.umask(0o077)  # a hardened host: the container's user must still read the line
        try:
            posted = channel.post(state, "patch-1", '{"seq": "s1"}')
        finally:
            os.umask(old)
        assert oct(next((state / "inbox").iterdir()).stat().st_mode & 0o777) == "0o644"
        child.send_signal(signal.SIGURG)
        assert child.stdout.readline().strip() == '{"seq": "s1"}' and posted
        lost = channel.post(state, "patch-2", "nobody reads this")
        child.send_signal(signal.SIGURG)
        with pytest.raises(channel.Undelivered):
            channel.wait_answer(state / "patch.json", lambda a: True, 5, posted=lost)
        assert list((state / "inbox").iterdir()) == []
    finally:
        child.kill()
        child.wait(5)


def test_post_without_an_inbox_says_so(tmp_path):
    assert channel.post(tmp_path, "control", "reload") is None
