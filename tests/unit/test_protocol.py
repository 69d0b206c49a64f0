"""The wire between the host and the payload (payload/common/protocol.py): every message goes
from the host's encoder through the payload's decoder (another process, which loads the
protocol by path as the server does) and back, and state written by the previous version
(launch.py before the protocol module) still reads."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amldebug.engine import channel
from amldebug.engine.statefile import StateFile, Status
from amldebug.payload.common import protocol

from . import protocol_messages
from .protocol_messages import MESSAGES

PAYLOAD = Path(protocol.__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

# The payload's side, in a process of its own: the protocol as launch.py loads it.
PAYLOAD_SIDE = r"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import launch, protocol_messages
p = launch.module("common.protocol")
assert p.__name__ == "amldebug_payload.common.protocol", p.__name__
for out in protocol_messages.serve(p, sys.stdin):
    print(out, flush=True)
"""


@pytest.fixture(scope="module")
def payload_side():
    """The payload's answers (decoded value, its own encoding) to every message the host encoded."""
    entries = "".join(f"{name}\t{json.dumps(encode(protocol, value))}\n" for name, value, encode, _, _ in MESSAGES)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the host's amldebug
    result = subprocess.run([sys.executable, "-I", "-c", PAYLOAD_SIDE, str(PAYLOAD), str(HERE)], input=entries,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(MESSAGES)
    return {m[0]: answer for m, answer in zip(MESSAGES, answers)}


@pytest.mark.parametrize("name", [m[0] for m in MESSAGES])
def test_every_message_goes_from_the_host_to_the_payload_and_back(name, payload_side):
    _, value, encode, decode, _ = protocol_messages.BY_NAME[name]
    answer = payload_side[name]
    assert answer["value"] == value  # the payload read what the host meant
    assert answer["line"] == encode(protocol, value)  # both sides write it alike
    assert decode(protocol, answer["line"]) == value  # and the host reads the payload's line


def test_every_encoder_decoder_and_record_of_the_protocol_has_a_message_here():
    """A message added to the protocol without a round trip here fails this test."""
    exercised = {name for m in MESSAGES for name in m[4]}
    # Names of files and folders, not messages: each has its own test below or in the payload's.
    names_only = {"debugpy_tag", "fifo_probe", "temp_name", "inbox_temp", "Record"}
    public = {name for name, value in vars(protocol).items() if not name.startswith("_")
              and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == protocol.__name__}
    assert public - names_only - exercised == set()
    assert {name for name in exercised if not hasattr(protocol, name)} == set()
    assert {m[1]["status"] for m in MESSAGES if m[0].startswith("state: ")} == {s.value for s in Status}


def test_a_record_refuses_a_field_it_does_not_have_and_reads_what_it_lacks_as_its_default():
    with pytest.raises(TypeError, match="PatchAnswer has no field okay"):
        protocol.PatchAnswer.new(okay=True)
    empty = protocol.PatchAnswer.decode("{}")
    assert (empty.ok, empty.functions, empty.reason) == (False, (), None)
    assert protocol.StateRecord.decode("not json") is None and protocol.StateRecord.decode("[1]") is None
    assert protocol.parse_control("") == (None, None) and protocol.parse_control("halt now") == (None, None)
    assert protocol.parse_control("ready\n") == (protocol.READY, None)  # an older worker's line
    assert protocol.parse_inbox_entry(protocol.inbox_temp("17")) is None  # still being written
    assert protocol.parse_gate(b"4") is None and protocol.parse_gate(b"4\n") == 4


def test_names_of_files_and_folders():
    assert protocol.patch_pipe(31) == "patch-31"
    assert protocol.temp_name(protocol.STATE_FILE, 31).startswith(".")  # the relay and readers skip it
    assert protocol.fifo_probe(31).startswith(".")
    assert os.path.join(protocol.DEBUGPY_LIB, protocol.debugpy_tag(3, 9)) == "lib/cp39"


# What launch.py wrote before the protocol module (amldebug 0.1.0 as of issue 19): the same
# names, so a service started by it is still read (and reloaded) by this host.
PREVIOUS_STATE = '{"generation": 2, "init_ms": 3.1, "pid": 31, "status": "ready"}'
PREVIOUS_PATCH = '{"functions": ["run"], "ms": 2.5, "ok": true, "pid": 31, "seq": "4242-17", "traced": false}'


def test_state_written_by_the_previous_launcher_still_reads(tmp_path):
    state = StateFile(tmp_path)
    state.channel.mkdir()
    assert state.read() == {} and state.read().status is None and state.read().generation == 0
    (state.channel / "state.json").write_text(PREVIOUS_STATE)
    read = state.read()
    assert read.status == Status.READY and read.generation == 2 and read.pid == 31 and read.init_ms == 3.1
    assert read["pid"] == 31 and read.get("status") == "ready"  # still a dict for older callers
    assert state.wait(lambda st: st.status in (Status.READY, Status.FAILED), 1) == json.loads(PREVIOUS_STATE)
    (state.channel / "patch.json").write_text(PREVIOUS_PATCH)
    answer = channel.wait_answer(state.channel / "patch.json", lambda a: a.seq == "4242-17", 1,
                                 record=protocol.PatchAnswer)
    assert answer.ok and answer.functions == ["run"] and answer.pid == 31


def test_the_host_and_the_payload_name_the_same_files_and_pipes():
    """What the host's modules use are the protocol's own names, not copies."""
    assert channel.CONTROL is protocol.CONTROL_PIPE and channel.INBOX_SIGNAL is protocol.INBOX_SIGNAL
    assert channel.patch_pipe is protocol.patch_pipe
    assert StateFile(Path("/x")).path.name == protocol.STATE_FILE
    assert Status is protocol.Status
