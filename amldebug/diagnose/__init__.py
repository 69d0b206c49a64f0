"""Known failure signatures of an Azure ML scoring service, matched against its log:
``diagnose(text)`` returns the ``Finding`` objects that ``render_report`` and
``findings_as_json`` print.

The package in layers, each importing only those before it: ``log`` (the log's lines,
tracebacks and server runs), ``pythons`` (what a Python version has, what Requires-Python asks),
``rules`` (the signatures: ``RULES``, the only table to edit), ``report`` (reading a log,
printing findings), here the dispatcher that runs ``RULES``, and last ``image`` (the findings
made exact with what the image that wrote the log says of its packages; ``metadata_probe`` is the
code it runs in the image's Python).
"""

from __future__ import annotations

from .log import Log
from .report import findings_as_json, read_log, render_report
from .rules import NEWER_PYTHON, RULES, Finding, Rule

__all__ = [
    "Finding",
    "NEWER_PYTHON",
    "Rule",
    "RULES",
    "diagnose",
    "render_report",
    "findings_as_json",
    "read_log",
]


def diagnose(text: str) -> list[Finding]:
    """Findings for ``text``, in log order; each rule reports once per distinct cause."""
    log = Log(text)
    built: list[tuple[Rule, Finding]] = []
    for rule in RULES:
        hits = log.hits(rule.patterns)
        if hits:
            built += [(rule, finding) for finding in rule.findings(log, hits)]
    silenced: dict[str, set[int]] = {}
    for rule, finding in built:
        for victim in rule.supersedes:
            silenced.setdefault(victim, set()).update(_runs(log, finding))
    findings: list[Finding] = []
    for _, finding in built:
        if _runs(log, finding) & silenced.get(finding.rule, set()):
            continue
        if any(f.rule == finding.rule and f.title == finding.title for f in findings):
            continue
        findings.append(finding)
    findings.sort(key=lambda f: f.lines[0][0])
    return findings


def _runs(log: Log, finding: Finding) -> set[int]:
    """The server runs that ``finding`` quotes lines of."""
    return {log.run_of(number) for number, _ in finding.lines}
