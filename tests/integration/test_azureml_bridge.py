"""The azureml-core bridge against a real engine: a container shaped exactly like the one
LocalWebservice makes (its labels, with azureml-core's own pickled objects; the image tagged
with the service name; code copied in with put_archive; port 5001 on 127.0.0.1), reloaded
by azureml-core's real LocalWebservice.reload(), and amldebug services made from an
InferenceConfig and from that container."""

import io
import pickle
import socket
import tarfile
import time
from base64 import b64encode

import docker.errors
import pytest
import requests

from amldebug import azureml_bridge as bridge
from amldebug.service import registry as amlservice
from amldebug.watch import ReloadLoop
from tests.conftest import require_azureml  # noqa: E402

require_azureml()
from azureml.core.environment import Environment  # noqa: E402
from azureml.core.model import InferenceConfig  # noqa: E402
from azureml.core.webservice import LocalWebservice  # noqa: E402

pytestmark = pytest.mark.docker

# What Model.package's Dockerfile puts in the image: the entry script's place, and the
# local model under azureml-models/<name>/0 (LocalWebservice numbers local models 0).
DOCKERFILE = """FROM {base}
ENV AZUREML_ENTRY_SCRIPT=sample/score.py AZUREML_SOURCE_DIRECTORY=sample
COPY model /var/azureml-app/azureml-models/model/0/model
WORKDIR /var/azureml-app
CMD ["sh", "-c", "exec azmlinfsrv --entry_script $AML_APP_ROOT/$AZUREML_ENTRY_SCRIPT --port 5001"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nothing healthy on port {port} after {timeout} s")


def _enc(value) -> str:
    return b64encode(pickle.dumps(value)).decode()


@pytest.fixture
def local_webservice(docker_client, test_images, workspace, service_name, tmp_path):
    """A running LocalWebservice-made container for ``service_name`` (what Model.deploy leaves)."""
    sample = workspace / "sample"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=test_images["azmlinfsrv"]))
    import shutil

    shutil.copytree(sample / "model", context / "model")
    # LocalWebservice.reload() recreates the container from the image named like the service.
    docker_client.images.build(path=str(context), tag=service_name, rm=True, network_mode="none")

    env = Environment("amldebug-test")
    env.environment_variables = {"GREETING": "hi"}
    config = InferenceConfig(entry_script="score.py", source_directory=str(sample), environment=env)
    port = _free_port()
    labels = {  # LocalWebservice._run_container's labels, same keys and encodings
        "amlDeploymentConfig": _enc(LocalWebservice.deploy_configuration(port=port)),
        "amlImageConfig": _enc(None),
        "amlInferenceConfig": _enc(config),
        "amlIsService": "True",
        "amlModelPathDir": "model/0",
        "amlModelsLocal": _enc([{"name": "model", "image_path": "model", "local_path": str(sample / "model")}]),
        "amlModelsRemote": _enc([]),
        "amlServiceName": service_name,
        "amlOverrideConfig": _enc(None),
        "containerName": service_name,
    }
    box = docker_client.containers.create(
        service_name, detach=True, labels=labels,
        environment={"AZUREML_MODEL_DIR": "azureml-models/model/0", "GREETING": "hi"},
        ports={5001: ("127.0.0.1", port), 8883: ("127.0.0.1",)},
    )
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:  # as write_dir_in_container does
        tar.add(str(sample), arcname="/var/azureml-app/sample")
    archive.seek(0)
    box.put_archive("/", archive)
    box.start()
    _wait_healthy(port)
    yield {"name": service_name, "port": port, "sample": sample, "container": box}
    for leftover in docker_client.containers.list(all=True, filters={"label": f"containerName={service_name}"}):
        try:
            leftover.remove(force=True)
        except docker.errors.NotFound:
            pass
    try:
        docker_client.images.remove(service_name, force=True)
    except docker.errors.NotFound:
        pass


def test_local_webservice_reload_recreates_the_container_with_the_new_code(local_webservice, docker_client):
    name, port, sample = local_webservice["name"], local_webservice["port"], local_webservice["sample"]
    uri = f"http://127.0.0.1:{port}/score"
    assert requests.post(uri, json={"data": [1, 2]}).json() == {"result": [3, 6], "version": "v1"}

    webservice = bridge.find_local_webservice(name)
    target = bridge.LocalWebserviceTarget(webservice)
    assert target.spec.source_dir == str(sample)
    score = sample / "score.py"
    score.write_text(score.read_text().replace('"version": "v1"', '"version": "v2"'))
    messages = []
    ReloadLoop(target, report=messages.append).handle([str(score)])

    assert messages[0] == "amldebug: reloading score.py"
    assert messages[1].startswith("amldebug: reloaded: restarted the service in ")
    assert messages[1].endswith("; re-attach the debugger") and len(messages) == 2
    [box] = docker_client.containers.list(all=True, filters={"label": f"containerName={name}"})
    assert box.id != local_webservice["container"].id  # recreated, not restarted: a debug session would drop
    assert requests.post(uri, json={"data": [1, 2]}).json() == {"result": [3, 6], "version": "v2"}

    result = target.reload()
    assert result.restarted and result.seconds > 0


def test_find_local_webservice_names_a_missing_service(docker_client):
    with pytest.raises(bridge.ServiceNotFoundError, match="containerName=t-none"):
        bridge.find_local_webservice("t-none")


def test_spec_from_local_webservice_container_starts_a_debuggable_copy(local_webservice, docker_client, service_name):
    spec = bridge.spec_from_local_webservice_container(docker_client, local_webservice["name"], wait=False)

    assert (spec.image, spec.source_dir, spec.entry_script) == (f"{service_name}:latest",
                                                                str(local_webservice["sample"]), "score.py")
    assert dict(spec.env) == {"GREETING": "hi"}
    started = amlservice.start(spec, client=docker_client)
    try:
        started.wait_for_deployment(timeout=60)
        assert started.port != local_webservice["port"]
        assert started.run({"data": [2]}) == {"result": [6], "version": "v1"}
    finally:
        started.delete()


def test_spec_from_inference_config_serves_a_request(docker_client, server_image, workspace, service_name):
    config = InferenceConfig(entry_script="score.py", source_directory="sample")
    spec = bridge.spec_from_inference_config(config, models=["sample/model"], image=server_image,
                                             name=service_name, wait=False)

    started = amlservice.start(spec, client=docker_client)
    try:
        started.wait_for_deployment(timeout=60)
        assert started.run({"data": [1, 2, 3]}) == {"result": [3, 6, 9], "version": "v1"}
    finally:
        started.delete()
