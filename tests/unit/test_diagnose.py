"""amldebug.diagnose against logs that show each failure (tests/unit/logs; its README says
which are captured from the real scoring server and which are written in the tools' formats)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from amldebug.diagnose import RULES, Finding, diagnose, findings_as_json, read_log, render_report
from amldebug.errors import UsageError

LOGS = Path(__file__).parent / "logs"


def log_text(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def only_finding(text: str) -> Finding:
    findings = diagnose(text)
    assert len(findings) == 1, [(f.rule, f.title) for f in findings]
    return findings[0]


def numbers(finding: Finding) -> list[int]:
    return [number for number, _ in finding.lines]


# (fixture, rule, quoted line numbers, location, a piece of the title)
CASES = [
    ("server_syntax_error.log", "score-syntax-error", [43, 44, 45, 46, 60], "score.py:6",
     "does not compile: SyntaxError: '{' was never closed"),
    ("server_import_azureml_missing.log", "missing-azureml-package", [41, 42, 43], "score.py:3",
     "No module named 'azureml'"),
    ("sh_azmlinfsrv_not_found.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("bash_azmlinfsrv_not_found.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("python_m_server_missing.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("aci_entry_script_azureml_api.log", "missing-azureml-package", [17, 21], None,
     "No module named 'azureml.api'"),
    ("server_import_missing_module.log", "missing-module", [41, 42, 43, 57], "score.py:4",
     "imports lightgbm, which is not installed"),
    ("server_entry_script_missing.log", "entry-script-not-found", [36, 43, 57], None,
     "the entry script /tmp/amlg/entry_missing/scoring.py does not exist"),
    ("server_no_run_function.log", "entry-script-invalid", [41, 46], "score.py",
     "does not have a run() function defined"),
    ("server_model_not_found.log", "model-not-found", [9, 43, 44, 55, 79], "score.py:10",
     "Model.get_model_path('sklearn_mnist') found no model"),
    ("server_model_dir_two_files.log", "model-dir-ambiguous", [43, 44, 52, 77], "score.py:10",
     "azureml-models/sklearn_mnist/1 holds 2 entries"),
    ("server_debugger_refused.log", "debugger-not-listening", [36, 41, 45, 106], None,
     "could not reach a debugger on port 5698"),
    ("server_debugpy_missing.log", "debugpy-not-installed", [36, 38, 210], None, "debugpy is not installed"),
    ("debugpy_listen_port_in_use.log", "debug-port-in-use", [26], None, "the debug port is already in use"),
    ("server_port_in_use.log", "port-in-use", [28, 30, 38], None, "port 5097 is already in use"),
    ("docker_port_allocated.log", "port-in-use", [3], None, "port 5001 is already in use"),
    ("server_init_exception.log", "init-exception", [39, 43, 46, 47, 48, 65], "score.py:11",
     "init() raised ValueError: model file"),
    ("aml_image_init_file_not_found.log", "init-exception", [21, 25, 27, 28, 31, 35], "score.py:14",
     "init() raised FileNotFoundError"),
    ("server_import_file_not_found.log", "script-import-error", [42, 43, 45, 59], "score.py:4",
     "importing the entry script raised FileNotFoundError"),
    ("server_import_value_error.log", "script-import-error", [41, 42, 44, 58], "score.py:5",
     "raised ValueError: invalid literal for int()"),
    ("server_run_exception.log", "run-exception", [45, 52, 53, 55, 67], "score.py:13",
     "run() raised KeyError: 'data' (HTTP 500)"),
    ("server_run_output_not_serializable.log", "run-output-not-serializable", [43, 70, 72], None,
     "run() returned a set"),
    ("server_scoring_timeout.log", "scoring-timeout", [49, 51], None, "scoring timeout of 1000 ms"),
    ("server_worker_timeout.log", "worker-timeout", [43, 47, 107], "score.py:10", "more than 2 s in run()"),
    ("server_worker_timeout_sigkill.log", "worker-timeout", [43, 44, 45], None, "more than 2 s in run()"),
    ("server_oom_in_init.log", "out-of-memory", [39, 40, 49, 59, 180], None, "killed 15 times during init()"),
    ("server_oom_in_run.log", "out-of-memory", [45, 46], None, "the worker was killed (SIGKILL"),
    ("kubectl_describe_oomkilled.log", "out-of-memory", [21, 22], None, "ran out of memory (OOMKilled"),
    ("aml_image_silent_restart_loop.log", "restart-loop", [14, 22, 30, 38], None, "restarted 3 times"),
    ("aks_unschedulable_gpu.log", "aks-insufficient-resources", [22, 26], None,
     "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
    ("kubectl_describe_failedscheduling_cpu.log", "aks-insufficient-resources", [36], None,
     "3 Insufficient cpu, 3 Insufficient memory"),
    ("webservice_run_502.log", "http-502", [8, 10, 15], None, "HTTP 502"),
    ("client_503.log", "http-503", [13, 22, 23], None, "HTTP 503"),
    ("webservice_run_504.log", "http-504", [8, 10, 15], None, "HTTP 504"),
    ("kubectl_describe_crashloop.log", "crash-loop", [3, 23, 26, 51], None, "(CrashLoopBackOff, exit code 3)"),
    ("aci_container_crashed.log", "crash-loop", [18, 24, 25], None, "keeps crashing"),
    ("server_boot_failed_tail.log", "worker-boot-failed", [2, 4], None, "worker failed to boot"),
]


@pytest.mark.parametrize(("fixture", "rule", "lines", "location", "title"), CASES, ids=[c[0] for c in CASES])
def test_rule_reports_the_failure_with_its_lines(fixture, rule, lines, location, title):
    text = log_text(fixture)
    finding = only_finding(text)
    assert finding.rule == rule
    assert numbers(finding) == lines
    assert finding.location == location
    assert title in finding.title
    raw = text.splitlines()
    for number, quoted in finding.lines:
        assert raw[number - 1].rstrip().startswith(quoted.removesuffix(" ..."))
    assert finding.cause and finding.fix


def test_every_rule_has_a_fixture_and_ids_are_unique():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert {case[1] for case in CASES} == set(ids)


def test_healthy_start_and_requests_give_no_findings():
    assert diagnose(log_text("server_healthy.log")) == []


@pytest.mark.parametrize(
    "fixture",
    ["server_healthy_3_workers.log", "server_reload_sighup.log", "unknown_tool_output.log"],
)
def test_normal_boots_reloads_and_foreign_output_give_no_findings(fixture):
    assert diagnose(log_text(fixture)) == []


def test_two_boots_without_a_death_are_not_a_restart_loop():
    lines = log_text("aml_image_silent_restart_loop.log").splitlines()
    assert sum("Booting worker" in line for line in lines[:29]) == 2
    assert diagnose("\n".join(lines[:29])) == []


def test_worker_timeouts_are_not_a_restart_loop_or_out_of_memory():
    rules = [f.rule for f in diagnose(log_text("server_worker_timeout_sigkill.log"))]
    assert rules == ["worker-timeout"]


def test_worker_timeout_fix_names_the_settings():
    finding = only_finding(log_text("server_worker_timeout.log"))
    assert "WORKER_TIMEOUT=4" in finding.fix
    assert "WORKER_TIMEOUT=0" in finding.fix


def test_scoring_timeout_fix_doubles_the_limit():
    finding = only_finding(log_text("server_scoring_timeout.log"))
    assert "SCORING_TIMEOUT_MS=2000" in finding.fix
    assert "scoring_timeout_ms=2000" in finding.fix


def test_model_not_found_names_the_model_the_service_has():
    finding = only_finding(log_text("server_model_not_found.log"))
    assert "model 'sklearn-mnist' version 1" in finding.cause
    assert "Model.get_model_path('sklearn-mnist')" in finding.fix
    assert "`amldebug model-path sklearn_mnist`" in finding.fix


def test_model_dir_ambiguous_suggests_the_first_file():
    finding = only_finding(log_text("server_model_dir_two_files.log"))
    assert "'model.pkl'" in finding.fix
    assert "`amldebug model-path sklearn_mnist`" in finding.fix


def test_init_exception_points_the_debugger_at_the_user_line():
    finding = only_finding(log_text("server_init_exception.log"))
    assert "stop at score.py:11 with `amldebug attach --wait`" in finding.fix


def test_missing_model_file_in_init_points_to_model_path():
    finding = only_finding(log_text("aml_image_init_file_not_found.log"))
    assert "`amldebug model-path sklearn_mnist`" in finding.fix


def test_relative_file_at_module_level_explains_the_working_directory():
    finding = only_finding(log_text("server_import_file_not_found.log"))
    assert "os.path.dirname(os.path.abspath(__file__))" in finding.fix


def test_missing_module_fix_names_the_package():
    finding = only_finding(log_text("server_import_missing_module.log"))
    assert "add `lightgbm`" in finding.fix


SKLEARN_MISSING = """\
2024-03-11 10:15:02,114 E [41] azmlinfsrv - Traceback (most recent call last):
  File "/opt/miniconda/envs/amlenv/lib/python3.8/site-packages/azureml_inference_server_http/server/user_script.py", line 74, in load_script
    main_module_spec.loader.exec_module(user_module)
  File "<frozen importlib._bootstrap_external>", line 848, in exec_module
  File "<frozen importlib._bootstrap>", line 219, in _call_with_frames_removed
  File "/var/azureml-app/src/score.py", line 5, in <module>
    from sklearn.linear_model import LogisticRegression
ModuleNotFoundError: No module named 'sklearn'
"""

JOBLIB_MOVED = """\
2024-03-11 10:15:02,114 E [41] azmlinfsrv - Traceback (most recent call last):
  File "/opt/miniconda/envs/amlenv/lib/python3.8/site-packages/azureml_inference_server_http/server/user_script.py", line 74, in load_script
    main_module_spec.loader.exec_module(user_module)
  File "<frozen importlib._bootstrap_external>", line 848, in exec_module
  File "<frozen importlib._bootstrap>", line 219, in _call_with_frames_removed
  File "/var/azureml-app/src/score.py", line 3, in <module>
    from sklearn.externals import joblib
ImportError: cannot import name 'joblib' from 'sklearn.externals' (/opt/miniconda/envs/amlenv/lib/python3.8/site-packages/sklearn/externals/__init__.py)
"""


def test_missing_module_maps_import_names_to_pip_packages():
    finding = only_finding(SKLEARN_MISSING)
    assert finding.rule == "missing-module"
    assert "add `scikit-learn`" in finding.fix
    assert finding.location == "src/score.py:5"  # relative to the image's app root


def test_cannot_import_name_is_a_version_mismatch():
    finding = only_finding(JOBLIB_MOVED)
    assert finding.rule == "missing-module"
    assert "imports joblib from sklearn.externals" in finding.title
    assert "pin `scikit-learn`" in finding.fix
    assert numbers(finding) == [6, 7, 8]


def test_docker_timestamps_do_not_hide_the_traceback():
    stamped = "\n".join(
        f"2026-11-24T22:25:52.{n:09d}Z {line}"
        for n, line in enumerate(log_text("server_init_exception.log").splitlines())
    )
    finding = only_finding(stamped)
    assert finding.rule == "init-exception"
    assert finding.location == "score.py:11"
    assert numbers(finding) == [39, 43, 46, 47, 48, 65]
    assert finding.lines[0][1].startswith("2026-11-24T22:25:52.000000038Z ")


def test_run_errors_are_reported_once_per_cause_in_log_order():
    findings = diagnose(log_text("server_run_errors_and_timeout.log"))
    assert [(f.rule, f.location) for f in findings] == [
        ("run-exception", "score.py:13"),
        ("scoring-timeout", None),
        ("run-exception", "score.py:14"),
    ]
    assert findings[0].title == "run() raised KeyError: 'data' (HTTP 500, 2 requests)"
    assert findings[2].title == "run() raised KeyError: 'x' (HTTP 500)"


def test_a_specific_cause_only_silences_symptoms_of_its_own_server_run():
    text = log_text("server_model_not_found.log") + log_text("server_init_exception.log")
    rules = [f.rule for f in diagnose(text)]
    assert rules == ["model-not-found", "init-exception"]


def test_kubectl_oomkilled_replaces_the_crash_loop():
    text = log_text("kubectl_describe_oomkilled.log")
    assert "CrashLoopBackOff" in text
    assert [f.rule for f in diagnose(text)] == ["out-of-memory"]


def test_debugger_still_waiting_for_a_connection():
    head = "\n".join(log_text("server_debugger_refused.log").splitlines()[:36])
    finding = only_finding(head)
    assert finding.rule == "debugger-not-listening"
    assert "waiting in debugpy.connect() for a debugger on port 5698" in finding.title
    assert numbers(finding) == [36]


def test_debugger_that_accepted_is_not_a_problem():
    head = log_text("server_debugger_refused.log").splitlines()[:36]
    ready = "2026-11-24 22:26:39,100 I [22186] azmlinfsrv - Worker with pid 22186 ready for serving traffic"
    assert diagnose("\n".join(head + [ready])) == []


def test_long_lines_are_shortened_when_quoted():
    finding = only_finding(log_text("aks_unschedulable_gpu.log"))
    number, quoted = finding.lines[1]
    assert number == 26
    assert quoted.endswith(" ...")
    assert len(quoted) == 300


def test_gpu_shortage_fix_offers_gpu_nodes_or_no_gpu():
    finding = only_finding(log_text("aks_unschedulable_gpu.log"))
    assert "gpu_cores=0" in finding.fix


def test_cpu_and_memory_shortage_fix_names_both_settings():
    finding = only_finding(log_text("kubectl_describe_failedscheduling_cpu.log"))
    assert "cpu_cores" in finding.fix
    assert "memory_gb" in finding.fix


def test_http_503_points_to_replicas():
    finding = only_finding(log_text("client_503.log"))
    assert "`amldebug replicas --target-rps R --request-time S`" in finding.fix
    assert "autoscale_min_replicas" in finding.fix


# ---- render_report and findings_as_json


def test_report_shows_title_lines_cause_and_fix():
    text = log_text("server_init_exception.log")
    findings = diagnose(text)
    report = render_report(findings, text)
    lines = report.splitlines()
    assert lines[0] == "1 problem found"
    assert lines[2].startswith("init() raised ValueError: model file ")
    assert lines[2].endswith("  [init-exception]")
    assert lines[3] == "  at score.py:11"
    assert lines[4] == "  line 39: " + text.splitlines()[38]
    assert f"  cause: {findings[0].cause}" in lines
    assert f"  fix: {findings[0].fix}" in lines


def test_report_separates_several_findings():
    text = log_text("server_run_errors_and_timeout.log")
    report = render_report(diagnose(text), text)
    assert report.startswith("3 problems found\n\n")
    assert report.count("\n  fix: ") == 3


def test_report_without_findings_shows_the_tail_not_a_guess():
    text = log_text("unknown_tool_output.log")
    lines = text.splitlines()
    report = render_report([], text)
    assert report.splitlines() == ["no known problem found", "last 20 lines of the log:"] + [
        f"  line {n}: {lines[n - 1]}" for n in range(len(lines) - 19, len(lines) + 1)
    ]


def test_report_tail_is_capped_by_the_log_and_can_be_off():
    text = "first\nsecond\n"
    assert render_report([], text, tail=5) == (
        "no known problem found\nlast 2 lines of the log:\n  line 1: first\n  line 2: second"
    )
    assert render_report([], text, tail=0) == "no known problem found"


@pytest.mark.parametrize("tail", [-1, 2.5, "3", True])
def test_report_rejects_a_bad_tail(tail):
    with pytest.raises(UsageError, match="tail"):
        render_report([], "x", tail=tail)


def test_json_shape():
    findings = diagnose(log_text("server_run_exception.log"))
    data = findings_as_json(findings)
    assert json.loads(json.dumps(data)) == data
    assert list(data[0]) == ["rule", "title", "location", "lines", "cause", "fix"]
    assert data[0]["rule"] == "run-exception"
    assert data[0]["location"] == "score.py:13"
    assert data[0]["lines"][0] == {"line": 45, "text": findings[0].lines[0][1]}
    assert [entry["line"] for entry in data[0]["lines"]] == [45, 52, 53, 55, 67]
    assert findings_as_json([]) == []


def test_json_location_is_null_when_unknown():
    data = findings_as_json(diagnose(log_text("client_503.log")))
    assert data[0]["location"] is None


# ---- read_log


def test_read_log_reads_a_file():
    assert read_log(str(LOGS / "server_healthy.log")) == log_text("server_healthy.log")


def test_read_log_reads_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Booting worker with pid: 7\n")))
    assert read_log("-") == "Booting worker with pid: 7\n"


def test_read_log_names_a_missing_file(tmp_path):
    missing = tmp_path / "nope.log"
    with pytest.raises(UsageError, match="no such log file: .*nope.log"):
        read_log(str(missing))


def test_read_log_rejects_a_directory(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        read_log(str(tmp_path))


def test_read_log_rejects_binary(tmp_path):
    path = tmp_path / "core.bin"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    with pytest.raises(UsageError, match="binary"):
        read_log(str(path))


def test_read_log_rejects_undecodable_bytes(tmp_path):
    path = tmp_path / "latin.log"
    path.write_bytes("Modèle chargé\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"not UTF-8 text \(byte 0xe8 at offset 3\)"):
        read_log(str(path))


@pytest.mark.parametrize("content", [b"", b"\n  \n\t\n"])
def test_read_log_rejects_an_empty_file(tmp_path, content):
    path = tmp_path / "empty.log"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=f"the log is empty: {path}"):
        read_log(str(path))


def test_read_log_rejects_empty_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(UsageError, match="the log is empty: standard input"):
        read_log("-")


def test_read_log_decodes_utf16_from_powershell(tmp_path):
    path = tmp_path / "ps.log"
    path.write_bytes("\ufeffReason: Worker failed to boot.\r\n".encode("utf-16-le"))
    text = read_log(str(path))
    assert text == "Reason: Worker failed to boot.\r\n"
    assert [f.rule for f in diagnose(text)] == ["worker-boot-failed"]
