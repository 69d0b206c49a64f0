"""The Python floor in pyproject.toml is true: every installed dependency accepts it, the
package's code parses at it, and CI runs on the floor itself (so it checks what it claims)."""

import ast
import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FLOOR = tuple(int(p) for p in re.fullmatch(r">=\s*(\d+\.\d+)", PROJECT["requires-python"]).group(1).split("."))


def test_the_floor_is_one_lower_bound():
    assert FLOOR >= (3, 10)  # typer >= 0.29 has no release for 3.9


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_each_dependency_as_installed_accepts_the_floor(requirement):
    name = Requirement(requirement).name
    needs = metadata.metadata(name).get("Requires-Python") or ""
    floor = "%d.%d" % FLOOR
    assert SpecifierSet(needs).contains(floor), f"{name} {metadata.version(name)} needs Python {needs}; floor {floor}"


def test_the_package_parses_at_the_floor():
    for path in (ROOT / "amldebug").rglob("*.py"):
        if "payload" in path.parts:  # runs in the image's Python (3.8 and later: test_payload_compat)
            continue
        ast.parse(path.read_text(), filename=str(path), feature_version=FLOOR)


def test_ci_runs_on_the_floor():
    if os.environ.get("CI", "").lower() != "true" and os.environ.get("AMLDEBUG_REQUIRE_DOCKER") != "1":
        pytest.skip("checked in CI, which must run the lowest Python the package claims")
    assert sys.version_info[:2] == FLOOR
