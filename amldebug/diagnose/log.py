"""Reading the scoring server's log: the last exception traceback it logged (what amldebug
shows for a failed request, a failed reload or a failed start)."""

from __future__ import annotations

import re

LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z] \[\d+\]")


def logged_exception(log: str) -> str:
    """The last exception traceback the scoring server logged, or ''."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return ""
    first = starts[-1]
    # A chained exception ("The above exception was the direct cause...") is one log
    # record with several tracebacks: go back to the record's first one (the user's).
    for i in range(first, -1, -1):
        if LOG_LINE_START.match(lines[i]) or lines[i].startswith("amldebug:"):
            first = min(j for j in starts if j >= i)
            break
    last = first
    for j in range(first + 1, len(lines)):
        if LOG_LINE_START.match(lines[j]) or lines[j].startswith("amldebug:"):
            break
        last = j
    return "\n".join(lines[first:last + 1])
