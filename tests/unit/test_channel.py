"""The reload channel's named pipes (engine/channel.py): a line reaches a reader; a pipe
nobody reads, a missing one, or a plain file says so at once, so the caller can fall back
to a signal through the engine."""

import os
import threading

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
