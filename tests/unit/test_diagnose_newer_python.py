"""Packages too new for the image's Python (issue 18 F): the signatures in real server logs
(tests/unit/logs/server_py39_*.log and amldebug_attach_py39_*.log), the fix diagnose names, what
the image's METADATA adds (diagnose.image, with the image's Python stood in for by canned
answers or this Python), and the Requires-Python arithmetic behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amldebug.diagnose import NEWER_PYTHON, diagnose, render_report
from amldebug.diagnose import pythons
from amldebug.diagnose.image import PROBE, ImageFacts, diagnose_image, explain, misfits_check, read_facts
from amldebug.diagnose.pythons import Installed
from amldebug.errors import ImageError
from tests.support.cli import amldebug

LOGS = Path(__file__).parent / "logs"
CLICK = (LOGS / "server_py39_click_too_new.log").read_text(encoding="utf-8")
TYPING = (LOGS / "server_py39_typing_inspection_too_new.log").read_text(encoding="utf-8")
ATTACH_TYPING = (LOGS / "amldebug_attach_py39_typing_inspection_too_new.log").read_text(encoding="utf-8")

# What `amldebug check --image` printed for a score.py that imports click on the click 8.4.2 image
# (the import check's own traceback: the user's line leads into the package).
SCORE_IMPORTS_CLICK = """\
Traceback (most recent call last):
  File "/opt/amldebug/importcheck.py", line 17, in <module>
    spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 790, in exec_module
  File "<frozen importlib._bootstrap>", line 228, in _call_with_frames_removed
  File "/var/azureml-app/proj/score.py", line 4, in <module>
    import click
  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/click/__init__.py", line 10, in <module>
    from .core import Argument as Argument
  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/click/core.py", line 23, in <module>
    from . import types
  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/click/types.py", line 17, in <module>
    from .exceptions import BadParameter
  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/click/exceptions.py", line 10, in <module>
    from .utils import echo
  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/click/utils.py", line 302
    match message:
          ^
SyntaxError: invalid syntax
"""
CLICK_FACTS = ImageFacts("img:1", "3.9.2", {"click": Installed("click", "8.4.2", ">=3.10")})


def only(text: str):
    findings = diagnose(text)
    assert [f.rule for f in findings] == [NEWER_PYTHON], [(f.rule, f.title) for f in findings]
    return findings[0]


def test_a_syntax_error_in_site_packages_names_the_package_and_its_pin_not_the_file():
    finding = only(CLICK)
    assert finding.title == ("the installed package click does not compile on Python 3.9: click/utils.py:302 uses "
                             "a `match` statement (Python 3.10+)")
    assert "the scoring server itself imports it (azureml_inference_server_http -> flask_cors -> flask -> click)" \
        in finding.cause
    assert finding.fix.startswith("pin `click<8.2` in the environment's dependencies (click 8.1.8 is the last "
                                  "release for Python 3.9) and rebuild the image, or use an image with Python 3.10 "
                                  "or newer")
    assert finding.location is None  # nothing of the user's to open
    assert "site-packages" not in finding.title + finding.cause + finding.fix
    assert "fix the code" not in render_report([finding], CLICK)


def test_a_typing_name_the_python_lacks_names_the_package_not_typing():
    finding = only(TYPING)
    assert "typing-inspection needs Python 3.10 or newer" in finding.title
    assert "imports TypeAlias from typing, which Python 3.9 does not have" in finding.title
    assert "pin `typing-inspection<0.4.3`" in finding.fix and "pin `typing`" not in finding.fix
    assert "azureml_inference_server_http -> pydantic -> typing_inspection" in finding.cause


def test_a_traceback_cut_above_its_header_is_still_the_package():
    """attach prints the last log lines after the logged exception: a second copy without its
    'Traceback' line must not read as the user's own import (or the entry script's syntax)."""
    finding = only(ATTACH_TYPING)
    assert "typing-inspection" in finding.title and finding.location is None


def test_the_users_import_that_leads_into_the_package_is_the_location():
    finding = only(SCORE_IMPORTS_CLICK)
    assert finding.location == "proj/score.py:4"
    assert "proj/score.py:4 imports click" in finding.cause


def test_a_package_amldebug_has_no_last_release_for_gets_a_pin_in_words():
    text = SCORE_IMPORTS_CLICK.replace("click", "fancylib")
    finding = only(text)
    assert finding.fix.startswith("pin fancylib in the environment's dependencies to a release that supports "
                                  "Python 3.9")


def test_python_2_code_in_site_packages_asks_for_a_python_3_release():
    text = (SCORE_IMPORTS_CLICK.replace("click", "oldlib").replace("    match message:", "    print 'x'")
            .replace("SyntaxError: invalid syntax", "SyntaxError: Missing parentheses in call to 'print'. "
                                                    "Did you mean print('x')?"))
    finding = only(text)
    assert "oldlib is Python 2 code" in finding.title and "release for Python 3" in finding.fix


def test_a_scripts_own_newer_syntax_keeps_its_rule_and_names_the_python():
    text = (LOGS / "server_py39_score_uses_match.log").read_text(encoding="utf-8")
    finding = diagnose(text)[0]
    assert finding.rule == "score-syntax-error"
    assert "uses a `match` statement, which needs Python 3.10; the server runs Python 3.9" in finding.cause
    assert finding.fix.startswith("rewrite score.py:10 without a `match` statement")


def test_the_images_metadata_makes_it_exact():
    finding = explain(diagnose(CLICK), CLICK, CLICK_FACTS)[0]
    assert finding.title == "click 8.4.2 requires Python >=3.10; the image 'img:1' has Python 3.9"
    assert "pin `click<8.2`" in finding.fix


def test_an_image_without_the_package_says_so():
    facts = ImageFacts("other:1", "3.9.2", {})
    finding = explain(diagnose(CLICK), CLICK, facts)[0]
    assert "The image 'other:1' has no click installed: is it the image that wrote this log?" in finding.cause


def test_the_image_is_read_only_when_a_finding_needs_it_and_once_per_package():
    opened = []

    def open_image(image):
        opened.append(image)
        return lambda code, args: (0, json.dumps({"python": "3.9.2", "packages": {
            "click": {"name": "click", "version": "8.4.2", "requires_python": ">=3.10", "site": "/x"}}}))

    healthy = (LOGS / "server_healthy.log").read_text(encoding="utf-8")
    assert diagnose_image(healthy, "img:1", open_image) == diagnose(healthy)
    cache: dict = {}
    for _ in range(2):
        titles = [f.title for f in diagnose_image(CLICK, "img:1", open_image, cache=cache)]
    assert titles == ["click 8.4.2 requires Python >=3.10; the image 'img:1' has Python 3.9"]
    assert opened == ["img:1"]


def test_an_image_that_cannot_be_read_fails_only_when_the_user_named_it():
    def open_image(image):
        raise ImageError(f"image '{image}' is not present locally")

    with pytest.raises(ImageError):
        diagnose_image(CLICK, "gone:1", open_image)
    assert diagnose_image(CLICK, "gone:1", open_image, strict=False) == diagnose(CLICK)


def test_read_facts_names_the_image_when_its_python_gives_no_answer():
    with pytest.raises(ImageError, match="could not read the installed packages of image 'img:1': no Python"):
        read_facts(lambda code, args: (12, "no Python in the image\n"), "img:1")


def _dist(site: Path, folder: str, headers: str, **files: str) -> None:
    info = site / folder
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if folder.endswith(".egg-info") else "METADATA")).write_text(headers + "\n\nDescription\n")
    for name, text in files.items():
        (info / name.replace("_", ".") if name != "top_level" else info / "top_level.txt").write_text(text)


def test_the_metadata_probe_finds_the_distribution_of_a_top_level_folder(tmp_path):
    """metadata_probe.py run as the image runs it (python -c, the arguments after), here by this Python."""
    site = tmp_path / "site-packages"
    _dist(site, "click-8.4.2.dist-info", "Metadata-Version: 2.4\nName: click\nVersion: 8.4.2\nRequires-Python: >=3.10",
          RECORD="click/__init__.py,sha256=x,1\nclick/utils.py,sha256=y,2\nclick-8.4.2.dist-info/METADATA,,\n")
    _dist(site, "six-1.17.0.dist-info", "Name: six\nVersion: 1.17.0\nRequires-Python: >=2.7, !=3.0.*",
          RECORD="six.py,sha256=z,3\n")
    _dist(site, "PyYAML-5.4.egg-info", "Name: PyYAML\nVersion: 5.4", top_level="yaml\n_yaml\n")
    wanted = [[str(site), "click"], [str(site), "six"], [str(site), "yaml"], [str(site), "absent"]]
    answer = subprocess.run([sys.executable, "-c", PROBE, json.dumps(wanted)], capture_output=True, text=True,
                            check=True).stdout
    found = json.loads(answer)
    assert found["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert found["packages"]["click"] == {"name": "click", "version": "8.4.2", "requires_python": ">=3.10",
                                          "site": str(site)}
    assert found["packages"]["six"]["name"] == "six" and found["packages"]["yaml"]["name"] == "PyYAML"
    assert "absent" not in found["packages"]

    every = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout
    names = {d["name"] for d in json.loads(every)["every"]}
    assert {"click", "six", "PyYAML"} <= names


def test_the_package_check_names_every_misfit_and_its_pin():
    facts = ImageFacts("img:1", "3.9.2", {}, (Installed("click", "8.4.2", ">=3.10"),
                                              Installed("networkx", "3.6.1", "!=3.14.1,>=3.11"),
                                              Installed("fancylib", "2.0", ">=3.12"),
                                              Installed("six", "1.17.0", ">=2.7, !=3.0.*")))
    what, fix = misfits_check(facts)
    assert what == ("click 8.4.2 requires Python >=3.10; networkx 3.6.1 requires Python !=3.14.1,>=3.11; "
                    "fancylib 2.0 requires Python >=3.12; the image 'img:1' has Python 3.9")
    assert "`click<8.2`" in fix and "`networkx<3.3` (networkx 3.2.1 is the last release for Python 3.9)" in fix
    assert "fancylib to a release older than 2.0 that supports Python 3.9" in fix
    assert "Python 3.12 or newer" in fix
    assert misfits_check(ImageFacts("img:1", "3.12.1", {}, facts.every[1:])) is None


@pytest.mark.parametrize(("spec", "python", "allowed"), [
    (">=3.10", "3.9.2", False), (">=3.10", "3.10", True), (">=3.7", "3.9", True), ("<3.10", "3.9.2", True),
    ("!=3.14.1,>=3.11", "3.14.1", False), ("!=3.14.1,>=3.11", "3.13.0", True), (">=2.7, !=3.0.*", "3.0.1", False),
    ("~=3.9", "3.12", True), ("~=3.9.0", "3.10", False), ("==3.*", "3.9", True), (">3.9", "3.9", False),
    ("garbage", "3.9", True),
])
def test_requires_python_is_read_as_pip_reads_it(spec, python, allowed):
    assert pythons.allows(spec, python) is allowed


def test_the_python_a_log_shows_and_what_a_feature_needs():
    assert pythons.python_in_path("/opt/conda/envs/x/lib/python3.9/site-packages/a.py") == "3.9"
    assert pythons.python_in_path(r"C:\Users\me\AppData\Local\Programs\Python\Python310\Lib\typing.py") == "3.10"
    assert pythons.minimum_python("!=3.14.1,>=3.11") == "3.11"
    assert pythons.syntax_need("    match message:", "invalid syntax") == ("a `match` statement", "3.10")
    assert pythons.syntax_need("    except* ValueError:", "invalid syntax") == ("an `except*` clause", "3.11")
    assert pythons.syntax_need("type Vector = list[float]", "invalid syntax")[1] == "3.12"
    assert pythons.syntax_need("match = re.search(x)", "invalid syntax") is None
    assert pythons.stdlib_need("typing", "override") == "3.12"


def test_diagnose_image_on_the_command_line(capsys, tmp_path, monkeypatch):
    from amldebug.cli import commands

    log = tmp_path / "server.log"
    log.write_text(CLICK)
    monkeypatch.setattr(commands, "_image_python", lambda image: lambda code, args: (0, json.dumps({
        "python": "3.9.2", "packages": {"click": {"name": "click", "version": "8.4.2", "requires_python": ">=3.10"}}})))
    code, out, _ = amldebug(capsys, "diagnose", log, "--image", "py39:1")
    assert code == 0
    assert "click 8.4.2 requires Python >=3.10; the image 'py39:1' has Python 3.9  [package-needs-newer-python]" in out


def test_a_package_whose_metadata_allows_the_python_is_not_said_to_require_another():
    facts = ImageFacts("img:1", "3.9.2", {"click": Installed("click", "8.4.2", ">=3.7")})
    finding = explain(diagnose(CLICK), CLICK, facts)[0]
    assert finding.title.startswith("click 8.4.2 does not run on Python 3.9, though it declares Requires-Python "
                                    ">=3.7: click/utils.py:302 uses a `match` statement")
    assert "Python 3.10 or newer" in finding.fix  # what the syntax needs, not the >=3.7 it declares


class _Service:
    """A container service as `logs` and `diagnose --name` see it: its spec and its log."""

    def __init__(self, tmp_path, text: str) -> None:
        from amldebug.core.spec import ServiceSpec

        self.spec = ServiceSpec(name="svc", source_dir=str(tmp_path), entry_script="score.py", image="svc-image:1")
        self.text = text

    def get_logs(self, num_lines: int = 5000) -> str:
        return self.text


@pytest.mark.parametrize("command", [["logs", "--name", "svc"], ["diagnose", "--name", "svc"]])
def test_a_services_own_image_answers_for_logs_and_diagnose_name(capsys, tmp_path, monkeypatch, command):
    from amldebug.cli import commands
    from amldebug import session as registry

    monkeypatch.setattr(registry, "get_service", lambda name: _Service(tmp_path, CLICK))
    asked = []
    answer = json.dumps({"python": "3.9.2", "packages": {
        "click": {"name": "click", "version": "8.4.2", "requires_python": ">=3.10"}}})
    monkeypatch.setattr(commands, "_image_python", lambda image: asked.append(image) or (lambda code, args: (0, answer)))
    code, out, _ = amldebug(capsys, *command)
    assert code == 0 and asked == ["svc-image:1"]
    assert "click 8.4.2 requires Python >=3.10; the image 'svc-image:1' has Python 3.9" in out


def test_a_services_image_that_cannot_be_read_leaves_the_log_findings(capsys, tmp_path, monkeypatch):
    from amldebug.cli import commands
    from amldebug import session as registry

    def gone(image):
        raise ImageError(f"image '{image}' is not present locally")

    monkeypatch.setattr(registry, "get_service", lambda name: _Service(tmp_path, CLICK))
    monkeypatch.setattr(commands, "_image_python", gone)
    code, out, _ = amldebug(capsys, "logs", "--name", "svc")
    assert code == 0 and "the installed package click does not compile on Python 3.9" in out


def test_score_py_importing_a_package_too_new_is_one_finding_not_an_import_error_of_the_script():
    """The server wraps it (UserScriptImportException): script-import-error and missing-module
    would say 'pin typing' or blame the package's file; only the newer-Python finding stays."""
    text = (LOGS / "server_py39_score_imports_typing_self.log").read_text(encoding="utf-8").replace(
        '    from typing import Self\n',
        '    import fancylib\n  File "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages/fancylib/__init__.py", '
        'line 3, in <module>\n    from typing import Self\n')
    finding = only(text)
    assert finding.location == "score.py:2" and "score.py:2 imports fancylib" in finding.cause
    assert "fancylib needs Python 3.11 or newer" in finding.title and "Python 3.11 or newer" in finding.fix


def test_a_backport_for_older_pythons_is_not_a_package_too_new():
    facts = ImageFacts("img:1", "3.9.2", {}, (Installed("typing", "3.7.4.3", ">=2.7, <3.5"),))
    assert misfits_check(facts) is None
