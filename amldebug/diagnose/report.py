"""What ``amldebug diagnose`` reads and prints: the log's text (``read_log``), and the
findings as a report for people (``render_report``) or as JSON (``findings_as_json``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ..errors import UsageError
from .log import Log
from .rules import Finding


def render_report(findings: Sequence[Finding], text: str, *, tail: int = 20) -> str:
    """Human-readable report; with no findings, say so and show the log's last ``tail`` lines."""
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
        raise UsageError(f"tail must be a whole number of lines, 0 or more; got {tail!r}")
    if not findings:
        log = Log(text)
        out = ["no known problem found"]
        shown = list(range(max(1, len(log) - tail + 1), len(log) + 1)) if tail else []
        if shown:
            out.append(f"last {len(shown)} lines of the log:")
            out += [f"  line {n}: {log.quote(n)[1]}" for n in shown]
        return "\n".join(out)
    blocks = []
    for finding in findings:
        block = [f"{finding.title}  [{finding.rule}]"]
        if finding.location:
            block.append(f"  at {finding.location}")
        block += [f"  line {number}: {line}" for number, line in finding.lines]
        block.append(f"  cause: {finding.cause}")
        block.append(f"  fix: {finding.fix}")
        blocks.append("\n".join(block))
    count = f"{len(findings)} problem{'s' if len(findings) > 1 else ''} found"
    return count + "\n\n" + "\n\n".join(blocks)


def findings_as_json(findings: Sequence[Finding]) -> list[dict]:
    """The findings as JSON-ready dicts (the shape ``amldebug diagnose --json`` prints)."""
    return [
        {
            "rule": f.rule,
            "title": f.title,
            "location": f.location,
            "lines": [{"line": number, "text": text} for number, text in f.lines],
            "cause": f.cause,
            "fix": f.fix,
        }
        for f in findings
    ]


def read_log(source: str) -> str:
    """The text of a log file, or of standard input for ``"-"``; UsageError when it is not a text log."""
    if source == "-":
        name = "standard input"
        stream = getattr(sys.stdin, "buffer", None)
        data: bytes | str = stream.read() if stream is not None else sys.stdin.read()
    else:
        name = source
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no such log file: {source}; pass the file that holds the server's output, "
                             "or '-' to read standard input") from None
        except IsADirectoryError:
            raise UsageError(f"{source} is a directory, not a log file") from None
        except OSError as exc:
            raise UsageError(f"cannot read the log {source}: {exc.strerror or exc}") from None
    text = data if isinstance(data, str) else _decode(data, name)
    if "\x00" in text:
        raise UsageError(f"{name} is binary, not a text log; pass the server's output (docker logs, get_logs())")
    if not text.strip():
        raise UsageError(f"the log is empty: {name}")
    return text


def _decode(data: bytes, name: str) -> str:
    # PowerShell 5 redirects (`docker logs x > log.txt`) write UTF-16 with a byte-order mark.
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise UsageError(f"{name} is binary, not a text log; pass the server's output (docker logs, get_logs())")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the log as UTF-8"
        ) from None
