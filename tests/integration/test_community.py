"""The community corpus (tests/fixtures/community): Azure ML scoring projects written outside
Microsoft, each attached with its own files as a new user would, with no --base-image.

For each project the test lays its files out in a fresh workspace, runs `amldebug attach`
with the arguments of its manifest entry (Azure ML's images come from the test registry
through AMLDEBUG_REGISTRY_MIRROR, as a corporate user's come from a mirror), and then:
- a project that serves: a DAP client from the launch.json amldebug wrote stops in init()
  and in run() at the local file and line, and the answer to the project's request is
  checked (against the answer computed outside amldebug, where the manifest has one);
- a project whose init() raises (its own bug): the debugger stops in init(), and a request is
  then answered 503 with the traceback that names the cause;
- a project that cannot serve: the attach fails with its real cause named (the manifest's
  ``cause`` parts, read in amldebug's error line only), exits non-zero, and leaves nothing.

Images, wheels and workspaces are kept between runs under ~/.cache/amldebug-test/community (a
cache: the first run builds torch and azureml-defaults environments for minutes).

The projects' files are other people's code: they are not in git. materialize.py lays them
out from snapshots of their repositories (the search tool's fetch); where a snapshot is not
on the machine, that project is skipped with the command that brings it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import docker
import pytest
import yaml

from amldebug.engine import docker as engine
from amldebug.envbuild import image as imagebuild
from tests.integration.helpers import amldebug, client_from_launch_json
from tests.integration.test_corpus import _assert_message, _error_of, _line_of, _Post

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "community"
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))["projects"]
MIRROR = Path(os.environ.get("AMLDEBUG_COMMUNITY_MIRROR", "/work/.mirror"))


def _materialized(project: dict) -> Path:
    """The project's folder with its files laid out (from the snapshot when missing)."""
    folder = ROOT / project["folder"]
    if all((folder / path).is_file() for path in project["files"]):
        return folder
    sys.path.insert(0, str(ROOT))
    try:
        import materialize
    finally:
        sys.path.remove(str(ROOT))
    if materialize.git_dir(MIRROR, project["repository"]) is None:
        pytest.skip(f"no snapshot of {project['repository']} under {MIRROR}: fetch github:{project['repository']} "
                    "with the search tool, then run tests/fixtures/community/materialize.py")
    assert materialize.main(["--mirror", str(MIRROR), project["name"]]) == 0
    return folder


def test_the_corpus_spans_what_the_issue_asks_for():
    """At least 12 projects outside Microsoft, 2019 to 2026, half of them v2 or more, Python pins
    from 3.7 to 3.12, libraries beyond scikit-learn; each either serves or names its cause."""
    assert len(MANIFEST) >= 12
    owners = {p["repository"].split("/")[0].lower() for p in MANIFEST}
    assert not owners & {"azure", "microsoft", "microsoftdocs", "azure-samples"}, owners
    years = {int(str(p["commit_date"])[:4]) for p in MANIFEST}
    assert min(years) <= 2019 and max(years) >= 2026, years
    assert sum(p["azureml"] == "v2" for p in MANIFEST) * 2 >= len(MANIFEST)
    pins = {str(p["python_pin"]).replace("==", "=").split("=")[1][:4].rstrip(".") for p in MANIFEST if p["python_pin"]}
    assert {"3.7", "3.8", "3.9", "3.10", "3.11", "3.12"} <= pins, pins
    libraries = " ".join(" ".join(p["libraries"]) for p in MANIFEST).lower()
    for library in ("torch", "xgboost", "lightgbm", "mlflow", "keras"):
        assert library in libraries, library
    for project in MANIFEST:
        assert project["outcome"] in ("serves", "fails", "init-raises"), project["name"]
        assert project["outcome"] == "serves" or project.get("cause"), project["name"]


# Slow to build (torch, azureml-defaults: minutes each), so kept between runs as a cache: the
# images amldebug built (found again by their environment's hash), the wheels uv downloaded,
# and the workspaces they were built from (outside the session's temporary folder, whose
# images other modules remove). AMLDEBUG_COMMUNITY_FRESH=1 removes the images first.
CACHE = Path(os.environ.get("AMLDEBUG_TEST_CACHE", Path.home() / ".cache" / "amldebug-test")) / "community"


@pytest.fixture(scope="module")
def community_cache(docker_client):
    if os.environ.get("AMLDEBUG_COMMUNITY_FRESH") == "1":
        for image in docker_client.images.list(filters={"label": imagebuild.LABEL_HASH}):
            if (image.labels or {}).get(imagebuild.LABEL_FILE, "").startswith(str(CACHE)):
                try:
                    docker_client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    pass
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.mark.corpus_heavy
@pytest.mark.parametrize("project", MANIFEST, ids=[p["name"] for p in MANIFEST])
def test_project_serves_and_debugs_or_names_its_real_cause(project, capsys, monkeypatch, docker_client,
                                                           registry_mirror, community_cache, service_name):
    folder = _materialized(project)
    ws = community_cache / "workspaces" / project["name"]
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(folder, ws)
    monkeypatch.chdir(ws)
    monkeypatch.setenv("AMLDEBUG_REGISTRY_MIRROR", registry_mirror)
    monkeypatch.setenv("UV_CACHE_DIR", str(community_cache / "uv"))

    code, out, err = amldebug(capsys, "attach", *project["attach"], "--name", service_name, "--detach")
    if project["outcome"] == "fails":
        assert code != 0, f"expected its cause named, got a running service:\n{out}\n{err}"
        _assert_message(_error_of(err), project["cause"])
        assert "Traceback" not in err
        assert not engine.find_services(docker_client, service_name), "a failed attach left a container"
        return
    assert code == 0, err
    assert "ready for a debugger on localhost:" in err
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))
    if project["outcome"] == "init-raises":  # the project's own bug: the user debugs it
        _init_raises(project, ws, uri, service_name)
        return

    script = ws / project["script"]
    init_line, run_line = _line_of(script, project["init_line"]), _line_of(script, project["run_line"])
    body = json.loads((ws / project["request_file"]).read_text()) if project.get("request_file") else project["request"]
    with client_from_launch_json(ws, service_name, {script: [init_line, run_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=120)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(script), init_line, "init")
        client.continue_(stop)
        request = _Post(uri, ws, {"body": body})
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(script), run_line, "run")
        client.continue_(stop)
        response = request.result()
    assert response.status_code == 200, response.text[:2000]
    if project.get("expected") is not None:
        _same(response.json(), project["expected"])
    code, _, err = amldebug(capsys, "down", "--name", service_name)
    assert code == 0, err


def _same(answer, expected, path: str = "answer") -> None:
    """The answer run() gave, against the one computed outside amldebug (numbers within 1e-6,
    strings and labels equal)."""
    if isinstance(expected, dict):
        assert isinstance(answer, dict) and set(answer) == set(expected), f"{path}: {answer!r} != {expected!r}"
        for key in expected:
            _same(answer[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(answer, list) and len(answer) == len(expected), f"{path}: {answer!r} != {expected!r}"
        for index, (a, e) in enumerate(zip(answer, expected)):
            _same(a, e, f"{path}[{index}]")
    elif isinstance(expected, str) or expected is None or isinstance(expected, bool):
        assert answer == expected, f"{path}: {answer!r} != {expected!r}"
    else:
        assert answer == pytest.approx(expected, rel=1e-6, abs=1e-9), f"{path}: {answer!r} != {expected!r}"


def _init_raises(project: dict, ws: Path, uri: str, service: str) -> None:
    """init() raises (the project's bug): the debugger stops in init() at the local line, then at
    the worker's uncaught exit (VS Code breaks on uncaught exceptions by default); once it goes
    on, a request is answered 503 with the traceback that names the cause."""
    import requests

    script = ws / project["script"]
    init_line = _line_of(script, project["init_line"])
    with client_from_launch_json(ws, service, {script: [init_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=120)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(script), init_line, "init")
        client.continue_(stop)
        stop = client.wait_stopped(timeout=60)  # the worker's exit on the failed init() (SystemExit(3))
        assert stop.reason == "exception", stop
        client.continue_(stop)
        for _ in range(60):
            answer = requests.post(uri, json=project["request"], timeout=30)
            if answer.status_code == 503 and "Traceback" in answer.text:
                break
            time.sleep(0.5)
    assert answer.status_code == 503, answer.text[:2000]
    _assert_message(answer.text, project["cause"])
