"""A package whose release needs Python >= 3.10 on the Python 3.9 image (issue 18 F): click 8.4.2
(a `match` statement: SyntaxError in site-packages) and typing-inspection 0.4.4 (`from typing import
TypeAlias`: ImportError). Each is installed into a copy of the py39 image as an index without
Requires-Python installs it; the user's score.py imports it; `amldebug attach` fails, and
`diagnose` (of what attach printed and of the server's own `docker logs`) and `check` name the
package, its version, the Python it needs, the image's Python and the pin, never site-packages.
networkx 3.6.1 (`@dataclass(slots=True)`, Requires-Python >=3.11), imported in run(), leaves the
service up: `amldebug logs` and `diagnose --name` name it after a request fails."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

from amldebug.errors import ExitStatus
from tests.integration.helpers import amldebug

pytestmark = pytest.mark.docker

LABEL = "amldebug.test.newer-python"
# kind: (requirement, top-level package, what score.py imports, the pin diagnose names)
PACKAGES = {
    "click": ("click==8.4.2", "click", "import click", "`click<8.2`"),
    "typing": ("typing-inspection==0.4.4", "typing_inspection", "import typing_inspection.introspection",
               "`typing-inspection<0.4.3`"),
}
# kind: (requirement, top-level package) of every derived image
IMAGES = {kind: package[:2] for kind, package in PACKAGES.items()} | {"networkx": ("networkx==3.6.1", "networkx")}
SITE = "/opt/miniconda/envs/amlenv/lib/python3.9/site-packages"


def _context(dockerfile: str, site: Path) -> io.BytesIO:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(site, arcname="site")
    context.seek(0)
    return context


@pytest.fixture(scope="module")
def too_new_images(docker_client, other_images, tmp_path_factory) -> dict[str, str]:
    """kind -> the py39 image with that package replaced by its release for Python >= 3.10, built
    offline from a host-side install (tests/support/images.py builds from a Dockerfile alone; these
    need the installed files in the context). Removed after the module: a newest local image that
    looks like a scoring image is what `attach` without --image (and a build's base) picks first."""
    images = {}
    try:
        for kind, (requirement, top) in IMAGES.items():
            tag = f"amldebug-test/py39-too-new-{kind}:{uuid.uuid4().hex[:8]}"
            site = tmp_path_factory.mktemp(f"site-{kind}")
            # --ignore-requires-python: what an index without Requires-Python (or a resolve for another
            # Python) does; PyPI's own pages would refuse these releases to Python 3.9.
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--ignore-requires-python", "--only-binary=:all:", "--implementation", "cp",
                            "--python-version", "3.9", "--platform", "manylinux2014_x86_64", "--target", str(site),
                            requirement], check=True)
            dockerfile = (f"FROM {other_images['py39']}\n"
                          f"RUN rm -rf {SITE}/{top} {SITE}/{top}-*.dist-info\n"
                          f"COPY site/ {SITE}/\n"
                          f'LABEL {LABEL}="{requirement}"\n')
            docker_client.images.build(fileobj=_context(dockerfile, site), custom_context=True, tag=tag, pull=False,
                                       network_mode="none", rm=True, forcerm=True)
            images[kind] = tag
        yield images
    finally:
        for tag in images.values():
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.NotFound:
                pass


def _project(workspace: Path, kind: str) -> Path:
    project = workspace / f"too-new-{kind}"
    project.mkdir()
    (project / "score.py").write_text(f"import json\n\n{PACKAGES[kind][2]}\n\n\ndef init():\n    pass\n\n\n"
                                      "def run(raw_data):\n    return json.loads(raw_data)\n")
    return project


def _server_log(docker_client, image: str, project: Path) -> str:
    """What `docker logs` shows of the image's server started on the user's score.py."""
    name = f"too-new-{uuid.uuid4().hex[:8]}"
    box = docker_client.containers.run(image, ["azmlinfsrv", "--entry_script", "/var/azureml-app/src/score.py"],
                                       detach=True, network_mode="none", name=name, labels={LABEL: "server"},
                                       volumes={str(project): {"bind": "/var/azureml-app/src", "mode": "ro"}})
    try:
        box.wait(timeout=60)
        return box.logs().decode("utf-8", "replace")
    finally:
        box.remove(force=True)


def _assert_names_the_fix(report: str, version: str | None, image: str | None, kind: str):
    requirement, top, _, pin = PACKAGES[kind]
    dist = requirement.split("==")[0]
    assert "package-needs-newer-python" in report, report
    if version:
        assert f"{dist} {version} requires Python >=3.10; the image '{image}' has Python 3.9" in report, report
    else:
        assert dist in report and "3.10" in report and "Python 3.9" in report, report
    fixes = [line for line in report.splitlines() if line.strip().startswith("fix:")]
    assert fixes and all(pin in fix and "Python 3.10 or newer" in fix for fix in fixes), fixes
    assert not any("site-packages" in fix for fix in fixes), fixes
    assert "fix the code at" not in report and "pin `typing`" not in report, report


@pytest.mark.parametrize("kind", sorted(PACKAGES))
def test_a_package_too_new_for_the_image_python_is_named_with_its_pin(capsys, docker_client, too_new_images, kind,
                                                                      workspace, tmp_path, service_name):
    image = too_new_images[kind]
    version = PACKAGES[kind][0].split("==")[1]
    project = _project(workspace, kind)

    code, _, err = amldebug(capsys, "attach", project.name, "--image", image, "--name", service_name, "--detach",
                            "--no-wait")
    assert code == ExitStatus.DOCKER, err
    assert "Traceback" in err  # the server's own import fails: click via flask, typing_inspection via pydantic

    saved = tmp_path / "attach.log"  # the user keeps what attach printed and asks diagnose
    saved.write_text(err)
    code, out, _ = amldebug(capsys, "diagnose", saved)
    assert code == ExitStatus.OK
    _assert_names_the_fix(out, None, None, kind)
    code, out, _ = amldebug(capsys, "diagnose", saved, "--image", image)
    assert code == ExitStatus.OK
    _assert_names_the_fix(out, version, image, kind)
    assert out.startswith("1 problem found"), out

    server_log = tmp_path / "server.log"  # `docker logs` of the image started as Azure ML starts it
    server_log.write_text(_server_log(docker_client, image, project))
    code, out, _ = amldebug(capsys, "diagnose", server_log, "--image", image, "--json")
    assert code == ExitStatus.OK
    assert '"rule": "package-needs-newer-python"' in out
    assert f"requires Python >=3.10; the image '{image}' has Python 3.9" in out

    code, out, _ = amldebug(capsys, "check", project.name, "--image", image)
    assert code == ExitStatus.ERROR
    packages = next(line for line in out.splitlines() if "packages for its Python" in line)
    dist = PACKAGES[kind][0].split("==")[0]
    assert packages == (f"FAIL  packages for its Python: {dist} {version} requires Python >=3.10; the image '{image}' "
                        "has Python 3.9"), out
    assert re.search(rf"fix: pin {re.escape(PACKAGES[kind][3])} ", out), out


def test_the_py39_image_itself_passes_the_package_check(capsys, other_images, workspace):
    """The same check on the untouched image: every package it carries supports Python 3.9, so
    check adds no line (the import passes)."""
    project = _project(workspace, "click")
    code, out, _ = amldebug(capsys, "check", project.name, "--image", other_images["py39"])
    assert "PASS  import in image" in out, out
    assert "packages for its Python" not in out, out


def test_a_package_too_new_imported_in_run_is_named_by_logs_and_diagnose(capsys, too_new_images, workspace,
                                                                         service_name):
    image = too_new_images["networkx"]
    project = workspace / "too-new-in-run"
    project.mkdir()
    (project / "score.py").write_text("import json\n\n\ndef init():\n    pass\n\n\ndef run(raw_data):\n"
                                      "    import networkx\n\n    return {'edges': networkx.path_graph(json.loads("
                                      "raw_data)['nodes']).number_of_edges()}\n")
    code, _, err = amldebug(capsys, "attach", project.name, "--image", image, "--name", service_name, "--detach",
                            "--no-wait")
    assert code == ExitStatus.OK, err  # the server itself never imports networkx
    code, _, err = amldebug(capsys, "score", "--name", service_name, "--data", '{"nodes": 4}')
    assert code == ExitStatus.SCORING, err

    exact = f"networkx 3.6.1 requires Python !=3.14.1,>=3.11; the image '{image}' has Python 3.9"
    for command in (["logs", "--name", service_name], ["diagnose", "--name", service_name]):
        code, out, _ = amldebug(capsys, *command)
        assert code == ExitStatus.OK
        assert f"{exact}  [package-needs-newer-python]" in out, out
        assert "  at too-new-in-run/score.py:9" in out or "  at score.py:9" in out, out
        fix = next(line for line in out.splitlines() if line.strip().startswith("fix:"))
        assert "pin `networkx<3.3`" in fix and "Python 3.11 or newer" in fix and "site-packages" not in fix, fix
        assert "[run-exception]" not in out, out
