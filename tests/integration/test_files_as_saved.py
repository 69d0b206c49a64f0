"""Files as users save them, against the real engine: requirements files saved in a Windows code
page (cp1252, Shift-JIS) build, and the build log names the encoding; a project in a folder named
in Japanese, with a CRLF score.py, is attached and a real DAP client stops in init() and run() at
the local file and line (issue 18 D)."""

import json
import shutil

import pytest

from amldebug.session import get_service
from tests.conftest import FIXTURES, marker_line
from tests.integration.conftest import BASE_IMAGE
from tests.integration.helpers import Request, amldebug, client_from_launch_json

pytestmark = pytest.mark.docker

# As Notepad saves them on a Western and on a Japanese Windows: no BOM, no coding line.
WESTERN = ("# Paquets nécessaires pour le modèle : café, naïve, coût 5 €\n"
           "azureml-inference-server-http\nsix  # « compatibilité »\n")
JAPANESE = "# 必要なパッケージ\nazureml-inference-server-http\nidna  # 国際化ドメイン名\n"


@pytest.mark.parametrize("codec, text, named, folder, module", [
    ("cp1252", WESTERN, "cp1252", "modèle", "six"),
    ("cp932", JAPANESE, "cp932 (Shift-JIS)", "環境", "idna"),
])
def test_a_requirements_file_in_a_windows_code_page_builds_and_the_log_names_it(
        capsys, docker_client, test_images, built_images, tmp_path, codec, text, named, folder, module):
    path = tmp_path / folder / "requirements.txt"  # in a folder named in the same language (the image's label)
    path.parent.mkdir()
    path.write_bytes(text.replace("\n", "\r\n").encode(codec))

    code, out, err = amldebug(capsys, "build", "--env", path, "--base-image", BASE_IMAGE)

    assert code == 0, err
    assert (f"amldebug: '{path}' read as {named} (not UTF-8; guessed; a first line '# -*- coding: {codec} -*-' "
            "makes it certain)") in err.splitlines(), err
    assert "save it as UTF-8" not in err
    image = docker_client.images.get(out.strip())
    assert str(path) in image.labels.values()
    # The file's own package is in the image, and imports there (the build's import check ran on it).
    [checking] = [line for line in err.splitlines() if "checking that the image imports" in line]
    assert module in checking and "amldebug: imports checked in" in err


@pytest.fixture
def japanese_project(tmp_path, monkeypatch):
    """The sample project in ./プロジェクト, its score.py saved with CRLF line ends."""
    ws = tmp_path / "ws"
    project = ws / "プロジェクト"
    shutil.copytree(FIXTURES / "sample", project)
    score = project / "score.py"
    score.write_bytes(score.read_bytes().replace(b"\n", b"\r\n"))
    monkeypatch.chdir(ws)
    return ws, project


def test_a_project_in_a_japanese_folder_with_a_crlf_score_py_stops_at_its_local_lines(
        capsys, server_image, japanese_project, service_name, watching):
    ws, project = japanese_project
    score = project / "score.py"
    assert b"\r\n" in score.read_bytes()

    code, out, err = amldebug(capsys, "attach", "プロジェクト", "--image", server_image, "--model-dir",
                              "プロジェクト/model", "--name", service_name, "--detach")

    assert code == 0, err
    launch = json.loads((ws / ".vscode" / "launch.json").read_text(encoding="utf-8"))
    [config] = [c for c in launch["configurations"] if c["name"] == f"amldebug: {service_name}"]
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}/プロジェクト",
                                       "remoteRoot": "/var/azureml-app/プロジェクト"}]
    uri = next(line.split()[-1] for line in out.splitlines() if line.startswith("scoring URI:"))

    init_line, run_line = marker_line(score, "init-loaded"), marker_line(score, "run-scaled")
    with client_from_launch_json(ws, service_name, {score: [init_line, run_line]}) as client:
        client.attach(timeout=15)
        stop = client.wait_stopped(timeout=60)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), init_line, "init")
        assert client.evaluate(stop, "loaded['scale']") == "3"
        client.continue_(stop)

        request = Request(uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), run_line, "run")
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v1"}

        # A save from a Windows editor keeps CRLF: patched in place, and the session stops at the new line.
        watch = watching(get_service(service_name))
        text = score.read_bytes()
        old = b'    return {"result": result, "version": "v1"}\r\n'
        assert old in text
        score.write_bytes(text.replace(old, b'    bonus = len(result)  # marker: run-new\r\n'
                                            b'    return {"result": result, "version": "v2", "n": bonus}\r\n'))
        new_line = marker_line(score, "run-new")
        client.set_breakpoints(str(score), [new_line])
        watch.wait_report("amldebug: patched run() in ")
        request = Request(uri)
        stop = client.wait_stopped(timeout=30)
        assert (stop.frames[0].path, stop.frames[0].line, stop.frames[0].name) == (str(score), new_line, "run")
        client.continue_(stop)
        assert request.result().json() == {"result": [3, 6, 9], "version": "v2", "n": 3}

    code, out, err = amldebug(capsys, "down", "--name", service_name)
    assert code == 0, err

