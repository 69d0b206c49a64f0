"""Every message of the wire (payload/common/protocol.py) as an example value with its encoder
and decoder, for tests/unit/test_protocol.py. Written in Python 3.8 and given the protocol
module as an argument: the test runs it on the host's import of the protocol and, in another
process, on the copy the payload loads by path.

``encode(p, value) -> str`` and ``decode(p, line) -> value``; values are JSON-able, so they
cross a process boundary as they are.
"""

RECORDS = ("StateRecord", "PatchRequest", "PatchAnswer", "MasterAnswer", "StandbyRecord", "UndeliveredRecord")


def _record(name):
    def encode(p, value):
        return getattr(p, name).new(**value).encode()

    def decode(p, line):
        record = getattr(p, name).decode(line)
        # Read through the attributes, as the two sides do: a field the record lacks fails here.
        return dict((field, getattr(record, field)) for field in record)

    return encode, decode


def _control(command, read=lambda argument: argument):
    """The value of a control line of ``command`` (the line itself when it is another command)."""
    def decode(p, line):
        found, argument = p.parse_control(line)
        return read(argument) if found == getattr(p, command) else line

    return decode


MESSAGES = [
    # (name, example value, encode, decode, the protocol names it exercises)
    ("reload", None, lambda p, v: p.reload_line(), _control("RELOAD"), ("reload_line", "parse_control")),
    ("status", "4242-17", lambda p, v: p.status_line(v), _control("STATUS"), ("status_line",)),
    ("ready", 3, lambda p, v: p.ready_line(v), _control("READY", int), ("ready_line",)),
    ("gate", 7, lambda p, v: p.gate_line(v).decode(), lambda p, line: p.parse_gate(line.encode()),
     ("gate_line", "parse_gate")),
    ("inbox entry", ["1733580000000000000", "patch-31"], lambda p, v: p.inbox_entry(*v),
     lambda p, line: list(p.parse_inbox_entry(line)), ("inbox_entry", "parse_inbox_entry")),
    ("inbox entry for a pid's pipe", 31, lambda p, v: p.inbox_entry("17", p.patch_pipe(v)),
     lambda p, line: int(p.parse_inbox_entry(line)[1].rpartition("-")[2]), ("patch_pipe",)),
    ("standby forked (log line)", 812, lambda p, v: p.log_line(p.standby_forked(v)),
     lambda p, line: int(p.standby_forked_pid(line)), ("log_line", "standby_forked", "standby_forked_pid")),
    ("patch request", {"seq": "4242-17"}) + _record("PatchRequest") + (("PatchRequest",),),
    ("patch answer: patched", {"seq": "4242-17", "pid": 31, "ok": True, "functions": ["run", "helper"], "ms": 2.5,
                               "traced": False}) + _record("PatchAnswer") + (("PatchAnswer",),),
    ("patch answer: declined", {"seq": "4242-18", "pid": 31, "ok": False, "reason": "init() changed", "ms": 1.0,
                                "traced": True}) + _record("PatchAnswer") + ((),),
    ("master answer", {"seq": "4242-19", "attached": True}) + _record("MasterAnswer") + (("MasterAnswer",),),
    ("standby record", {"pid": 812, "generation": 4}) + _record("StandbyRecord") + (("StandbyRecord",),),
    ("undelivered", {"seq": "1733580000000000000", "pipe": "patch-31"}) + _record("UndeliveredRecord")
    + (("UndeliveredRecord",),),
    ("state: ready", {"status": "ready", "generation": 2, "pid": 31, "init_ms": 3.1}) + _record("StateRecord")
    + (("StateRecord", "Status"),),
]
for _status in ("starting", "listening", "waiting", "attached", "reloading", "failed"):
    MESSAGES.append(("state: " + _status, {"status": _status, "generation": 0, "pid": 1}) + _record("StateRecord")
                    + ((),))

BY_NAME = dict((m[0], m) for m in MESSAGES)


def serve(p, lines):
    """The payload's side: decode each ``name\\tline`` with ``p`` and encode the value again."""
    import json

    for entry in lines:
        name, _, line = entry.rstrip("\n").partition("\t")
        _, _, encode, decode, _ = BY_NAME[name]
        value = decode(p, json.loads(line))
        yield json.dumps({"value": value, "line": encode(p, value)})
