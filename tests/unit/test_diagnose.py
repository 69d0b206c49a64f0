"""amldebug.diagnose against logs that show each failure (tests/unit/logs; its README says
which are captured from the real scoring server and which are written in the tools' formats)."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import pytest

import amldebug.diagnose as diagnose_module
from amldebug.diagnose import RULES, Finding, Log, diagnose, findings_as_json, read_log, render_report
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
    ("server_py39_click_too_new.log", "package-needs-newer-python", [22, 23, 24, 25], None,
     "the installed package click does not compile on Python 3.9: click/utils.py:302 uses a `match` statement"),
    ("server_py39_typing_inspection_too_new.log", "package-needs-newer-python", [40, 41, 42, 71], None,
     "the installed package typing-inspection needs Python 3.10 or newer: typing_inspection/introspection.py:10 "
     "imports TypeAlias from typing, which Python 3.9 does not have"),
    ("amldebug_attach_py39_click_too_new.log", "package-needs-newer-python", [39, 40, 41, 42], None,
     "the installed package click does not compile on Python 3.9"),
    ("amldebug_attach_py39_typing_inspection_too_new.log", "package-needs-newer-python", [43, 44, 45], None,
     "the installed package typing-inspection needs Python 3.10 or newer"),
    ("server_py39_score_imports_typing_self.log", "package-needs-newer-python", [44, 45, 46, 59], "score.py:2",
     "score.py imports Self from typing, which Python 3.9 does not have (new in Python 3.11)"),
    ("server_py39_score_uses_match.log", "score-syntax-error", [45, 46, 47, 48, 62], "score.py:10",
     "score.py:10 does not compile: SyntaxError: invalid syntax"),
    ("server_py39_networkx_too_new_in_run.log", "package-needs-newer-python", [47, 48, 53, 54, 55], "score.py:9",
     "the installed package networkx needs Python 3.10 or newer: networkx/utils/configs.py:8 uses "
     "dataclass(slots=...), which Python 3.9 does not have"),
    ("server_import_azureml_missing.log", "missing-azureml-package", [41, 42, 43], "score.py:3",
     "No module named 'azureml'"),
    ("sh_azmlinfsrv_not_found.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("bash_azmlinfsrv_not_found.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("python_m_server_missing.log", "missing-azureml-package", [1], None, "no Azure ML scoring server"),
    ("aci_entry_script_azureml_api.log", "missing-azureml-package", [17, 21], None,
     "No module named 'azureml.api'"),
    ("server_import_missing_module.log", "missing-module", [41, 42, 43, 57], "score.py:4",
     "imports lightgbm, which is not installed"),
    ("server_import_dotted_module_missing.log", "missing-module", [41, 42, 43, 57], "score.py:3",
     "imports werkzeug.contrib, which the installed werkzeug does not have"),
    ("server_import_name_removed.log", "missing-module", [41, 42, 43, 57], "score.py:3",
     "imports url_quote from werkzeug.urls"),
    ("server_entry_script_missing.log", "entry-script-not-found", [36, 43, 57], None,
     "the entry script /tmp/amlg/entry_missing/scoring.py does not exist"),
    ("server_no_entry_script.log", "entry-script-not-found", [36, 37, 42], None,
     "no entry script is configured: the server looked for main.py"),
    ("server_no_run_function.log", "entry-script-invalid", [41, 46], "score.py",
     "does not have a run() function defined"),
    ("server_run_without_argument.log", "entry-script-invalid", [44, 49], None,
     "run() needs to accept an argument for input data"),
    ("server_model_not_found.log", "model-not-found", [9, 43, 44, 55, 79], "score.py:10",
     "Model.get_model_path('sklearn_mnist') found no model"),
    ("server_model_dir_two_files.log", "model-dir-ambiguous", [43, 44, 52, 77], "score.py:10",
     "azureml-models/sklearn_mnist/1 holds 2 entries"),
    ("model_version_not_in_workspace.log", "model-not-found", [2, 3, 9],
     "/mnt/azureml/cr/j/5c0e9b7d2f6a4e1b8d3c/exe/wd/evaluate.py:21",
     "Model.get_model_path('sklearn_mnist', version=3): no such model in the workspace"),
    ("model_path_missing_after_download.log", "model-not-found", [2, 3, 9],
     "/mnt/azureml/cr/j/5c0e9b7d2f6a4e1b8d3c/exe/wd/evaluate.py:21",
     "the downloaded model path azureml-models/sklearn_mnist/2/outputs does not exist"),
    ("server_debugger_refused.log", "debugger-not-listening", [36, 41, 45, 106], None,
     "could not reach a debugger on port 5698"),
    ("server_debugpy_missing.log", "debugpy-not-installed", [36, 38, 210], None, "debugpy is not installed"),
    ("debugpy_listen_port_in_use.log", "debug-port-in-use", [26], None, "the debug port is already in use"),
    ("server_port_in_use.log", "port-in-use", [28, 30, 38], None, "port 5097 is already in use"),
    ("docker_port_allocated.log", "port-in-use", [3], None, "port 5001 is already in use"),
    ("docker_userland_proxy_port_in_use.log", "port-in-use", [3], None, "port 37659 is already in use"),
    ("server_init_exception.log", "init-exception", [39, 43, 46, 47, 48, 65], "score.py:11",
     "init() raised ValueError: model file"),
    ("aml_image_init_file_not_found.log", "init-exception", [21, 25, 27, 28, 31, 35], "score.py:14",
     "init() raised FileNotFoundError"),
    ("server_import_file_not_found.log", "script-import-error", [42, 43, 45, 59], "score.py:4",
     "importing the entry script raised FileNotFoundError"),
    ("server_import_value_error.log", "script-import-error", [41, 42, 44, 58], "score.py:5",
     "raised ValueError: invalid literal for int()"),
    ("aci_entry_script_file_not_found.log", "script-import-error", [17], None,
     "importing the entry script raised FileNotFoundError: [Errno 2] No such file or directory: 'labels.json'"),
    ("server_run_exception.log", "run-exception", [45, 52, 53, 55, 67], "score.py:13",
     "run() raised KeyError: 'data' (HTTP 500)"),
    ("server_run_output_not_serializable.log", "run-output-not-serializable", [43, 70, 72], None,
     "run() returned a set"),
    ("server_scoring_timeout.log", "scoring-timeout", [49, 51], None, "scoring timeout of 1000 ms"),
    ("client_scoring_timeout.log", "scoring-timeout", [13], None, "scoring timeout of 100 ms"),
    ("server_worker_timeout.log", "worker-timeout", [43, 47, 107], "score.py:10", "more than 2 s in run()"),
    ("server_worker_timeout_sigkill.log", "worker-timeout", [43, 44, 45], None, "more than 2 s in run()"),
    ("server_oom_in_init.log", "out-of-memory", [39, 40, 49, 59, 180], None, "killed 15 times during init()"),
    ("server_oom_in_run.log", "out-of-memory", [45, 46], None, "the worker was killed (SIGKILL"),
    ("kubectl_describe_oomkilled.log", "out-of-memory", [21, 22], None, "ran out of memory (OOMKilled"),
    ("kernel_oom_killed.log", "out-of-memory", [78], None, "the container ran out of memory"),
    ("aml_image_silent_restart_loop.log", "restart-loop", [14, 22, 30, 38], None, "restarted 3 times"),
    ("aks_unschedulable_gpu.log", "aks-insufficient-resources", [22, 26], None,
     "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
    ("kubectl_describe_failedscheduling_cpu.log", "aks-insufficient-resources", [36], None,
     "3 Insufficient cpu, 3 Insufficient memory"),
    ("webservice_run_502.log", "http-502", [8, 10, 15], None, "HTTP 502"),
    ("nginx_access_502.log", "http-502", [4], None, "HTTP 502"),
    ("client_503.log", "http-503", [13, 22, 23], None, "HTTP 503"),
    ("webservice_run_503.log", "http-503", [8, 15], None, "HTTP 503"),
    ("requests_debug_503.log", "http-503", [4], None, "HTTP 503"),
    ("webservice_run_504.log", "http-504", [8, 10, 15], None, "HTTP 504"),
    ("nginx_access_504.log", "http-504", [4], None, "HTTP 504"),
    ("kubectl_describe_crashloop.log", "crash-loop", [3, 23, 26, 51], None, "(CrashLoopBackOff, exit code 3)"),
    ("aci_container_crashed.log", "crash-loop", [18, 24, 25], None, "keeps crashing"),
    ("server_boot_failed_tail.log", "worker-boot-failed", [2, 4], None, "worker failed to boot"),
    ("aml_image_boot_failed_tail.log", "worker-boot-failed", [2, 4], None, "worker failed to boot"),
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


@pytest.fixture(scope="module")
def every_log():
    """fixture name -> (Log, findings) for every log in tests/unit/logs."""
    texts = {path.name: path.read_text(encoding="utf-8") for path in sorted(LOGS.glob("*.log"))}
    return {name: (Log(text), diagnose(text)) for name, text in texts.items()}


def test_every_pattern_of_every_rule_has_a_sample_log_that_proves_it(every_log, monkeypatch):
    """A pattern that no log exercises can break unnoticed ("Scoring timeout after N ms",
    dotted module names). For each pattern of each rule, some log in tests/unit/logs must
    match it and get a finding of that rule that changes when the pattern is taken out."""

    def findings_without(rule, index, name):
        without = dataclasses.replace(rule, patterns=rule.patterns[:index] + rule.patterns[index + 1 :])
        with monkeypatch.context() as patched:
            patched.setattr(diagnose_module, "RULES", tuple(without if r is rule else r for r in RULES))
            return [f for f in diagnose(log_text(name)) if f.rule == rule.id]

    unproven = []
    for rule in RULES:
        for index, pattern in enumerate(rule.patterns):
            if not any(
                own and log.hits((pattern,)) and findings_without(rule, index, name) != own
                for name, (log, findings) in every_log.items()
                for own in [[f for f in findings if f.rule == rule.id]]
            ):
                unproven.append(f"{rule.id} pattern {index}: {pattern.pattern}")
    assert unproven == []


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


def test_missing_submodule_of_an_installed_package_is_a_version_mismatch():
    finding = only_finding(log_text("server_import_dotted_module_missing.log"))
    assert "No module named 'werkzeug.contrib'" in finding.title
    assert "pin `werkzeug`" in finding.fix
    assert "add `werkzeug`" not in finding.fix


def test_name_removed_from_a_dotted_module_pins_the_package():
    finding = only_finding(log_text("server_import_name_removed.log"))
    assert "the installed werkzeug.urls does not have" in finding.title
    assert "pin `werkzeug`" in finding.fix


@pytest.mark.parametrize(
    ("module", "package"),
    [("google.protobuf", "protobuf"), ("azure.storage", "azure")],  # namespace packages: a distribution is missing
)
def test_missing_dotted_module_of_a_namespace_package_is_not_installed(module, package):
    text = SKLEARN_MISSING.replace("No module named 'sklearn'", f"No module named '{module}'")
    finding = only_finding(text)
    assert f"imports {module}, which is not installed" in finding.title
    assert f"add `{package}`" in finding.fix


def test_no_entry_script_names_the_option():
    finding = only_finding(log_text("server_no_entry_script.log"))
    assert "--entry_script score.py" in finding.fix


def test_run_without_a_parameter_gets_one():
    finding = only_finding(log_text("server_run_without_argument.log"))
    assert "`def run(raw_data):`" in finding.fix


def test_scoring_timeout_seen_by_the_client_doubles_the_limit():
    finding = only_finding(log_text("client_scoring_timeout.log"))
    assert "SCORING_TIMEOUT_MS=200" in finding.fix
    assert "scoring_timeout_ms=200" in finding.fix


def test_port_held_by_a_host_process_names_both_ways_to_find_it():
    finding = only_finding(log_text("docker_userland_proxy_port_in_use.log"))
    assert "`docker ps --filter publish=37659`" in finding.fix
    assert "`ss -ltnp 'sport = :37659'`" in finding.fix


def test_kernel_oom_kill_asks_for_more_memory():
    finding = only_finding(log_text("kernel_oom_killed.log"))
    assert "memory_gb=1" in finding.fix
    assert "docker run --memory" in finding.fix


@pytest.mark.parametrize("fixture", ["model_version_not_in_workspace.log", "model_path_missing_after_download.log"])
def test_workspace_model_lookups_point_to_model_path_with_the_model_name(fixture):
    finding = only_finding(log_text(fixture))
    assert "`amldebug model-path sklearn_mnist`" in finding.fix


@pytest.mark.parametrize(
    ("fixture", "advice"),
    [
        ("nginx_access_502.log", "`amldebug score --data JSON`"),
        ("webservice_run_503.log", "autoscale_min_replicas"),
        ("nginx_access_504.log", "scoring_timeout_ms=120000"),
    ],
)
def test_http_status_advice(fixture, advice):
    assert advice in only_finding(log_text(fixture)).fix


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


PKG_RESOURCES_MISSING = """\
2026-11-30 10:15:02,114 E [41] azmlinfsrv - Traceback (most recent call last):
  File "/opt/amldebug-env/site-packages/azureml_inference_server_http/server/user_script.py", line 74, in load_script
    main_module_spec.loader.exec_module(user_module)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/var/azureml-app/src/score.py", line 3, in <module>
    from azureml.core.model import Model
  File "/opt/amldebug-env/site-packages/azureml/core/__init__.py", line 13, in <module>
    import pkg_resources
ModuleNotFoundError: No module named 'pkg_resources'
"""

NUMPY_ABI = """\
2026-11-30 10:15:02,114 E [41] azmlinfsrv - Traceback (most recent call last):
  File "/opt/amldebug-env/site-packages/azureml_inference_server_http/server/user_script.py", line 74, in load_script
    main_module_spec.loader.exec_module(user_module)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/var/azureml-app/src/score.py", line 4, in <module>
    import sklearn
  File "/opt/amldebug-env/site-packages/sklearn/__init__.py", line 82, in <module>
    from .utils._show_versions import show_versions
  File "sklearn/utils/_cython_blas.pyx", line 1, in init sklearn.utils._cython_blas
ValueError: numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88 from PyObject

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/opt/amldebug-env/site-packages/azureml_inference_server_http/server/aml_blueprint.py", line 91, in setup
    self.user_script.load_script(config.app_root)
  File "/opt/amldebug-env/site-packages/azureml_inference_server_http/server/user_script.py", line 79, in load_script
    raise UserScriptImportException(ex) from ex
azureml_inference_server_http.server.user_script.UserScriptImportException: Failed to import user script because it raised an unhandled exception
2026-11-30 10:15:02,115 E [7396] gunicorn.error - Worker (pid:41) exited with code 3.
"""


def test_no_module_named_pkg_resources_names_setuptools_and_the_package_that_imports_it():
    finding = only_finding(PKG_RESOURCES_MISSING)
    assert finding.title == ("the installed package azureml (imported from src/score.py:3) imports pkg_resources, "
                             "which is not installed (No module named 'pkg_resources')")
    assert "add `setuptools<82`" in finding.fix and "add `pkg_resources`" not in finding.fix
    assert finding.location == "/opt/amldebug-env/site-packages/azureml/core/__init__.py:13"


def test_an_error_raised_inside_an_installed_package_points_at_the_package():
    findings = diagnose(NUMPY_ABI)
    finding = next(f for f in findings if f.rule == "script-import-error")
    assert finding.title.startswith("importing the entry script failed inside the installed package sklearn: "
                                    "ValueError: numpy.dtype size changed")
    assert finding.location == "/opt/amldebug-env/site-packages/sklearn/__init__.py:82"
    assert "src/score.py:4 imports sklearn" in finding.cause and "add `numpy<2`" in finding.fix


def test_the_warm_standbys_boots_are_reloads_not_a_restart_loop():
    """Captured from a real service with four full reloads: each forks the next standby
    ahead of the save, so 'Booting worker' appears once per reload with no 'Hang up' line.
    The launcher names each standby; without those lines the same log reads as a loop."""
    text = log_text("amldebug_standby_reloads.log")
    assert text.count("Booting worker with pid") == 6
    assert diagnose(text) == []
    without = "\n".join(line for line in text.splitlines() if "standby worker" not in line or "forked" not in line)
    assert [f.rule for f in diagnose(without)] == ["restart-loop"]
