"""DOCKER_CONTEXT and the docker CLI's current context are honoured as the docker CLI does
(DOCKER_HOST wins), read from its context store; the message names the context."""

import hashlib
import json

import pytest

from amldebug import cli
from amldebug.engine.docker import docker_endpoint
from amldebug.errors import DockerUnavailableError, ExitStatus


def make_context(config_dir, name, host, tls=False):
    folder = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    if tls:
        certs = config_dir / "contexts" / "tls" / hashlib.sha256(name.encode()).hexdigest() / "docker"
        certs.mkdir(parents=True)
        return certs


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "dockercfg"
    folder.mkdir()
    for key in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


def test_docker_context_names_a_context_of_the_store(config_dir, tmp_path):
    make_context(config_dir, "remote", f"unix://{tmp_path}/remote.sock")
    env = {"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "remote"}
    assert docker_endpoint(env) == (f"unix://{tmp_path}/remote.sock", "remote", None)


def test_docker_host_wins_over_the_context(config_dir):
    make_context(config_dir, "remote", "tcp://10.0.0.1:2376")
    env = {"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///x.sock"}
    assert docker_endpoint(env) == ("unix:///x.sock", None, None)


def test_the_current_context_of_config_json_and_its_tls_folder(config_dir):
    certs = make_context(config_dir, "tls-box", "tcp://10.0.0.1:2376", tls=True)
    (config_dir / "config.json").write_text(json.dumps({"currentContext": "tls-box", "auths": {}}))
    assert docker_endpoint({"DOCKER_CONFIG": str(config_dir)}) == ("tcp://10.0.0.1:2376", "tls-box", certs)
    # "default", or no current context: the local engine (DOCKER_HOST or the socket)
    (config_dir / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert docker_endpoint({"DOCKER_CONFIG": str(config_dir)}) == (None, None, None)
    assert docker_endpoint({"DOCKER_CONFIG": str(config_dir / "none")}) == (None, None, None)


def test_an_unknown_context_is_named(config_dir):
    with pytest.raises(DockerUnavailableError) as caught:
        docker_endpoint({"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "nope"})
    assert "Docker context 'nope' (DOCKER_CONTEXT) does not exist" in str(caught.value)
    assert "'docker context ls' lists the contexts" in str(caught.value)


def test_the_cli_talks_to_the_context_and_says_so(config_dir, tmp_path, monkeypatch, capsys):
    make_context(config_dir, "remote", f"unix://{tmp_path}/remote.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    monkeypatch.setenv("AMLDEBUG_CACHE", str(tmp_path / "cache"))
    code = cli.run(["status"])
    err = capsys.readouterr().err
    assert code == ExitStatus.DOCKER
    assert f"no Docker engine answers at unix://{tmp_path}/remote.sock (Docker context 'remote')" in err
