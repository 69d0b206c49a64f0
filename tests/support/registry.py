"""A real Docker registry for the tests: Debian's ``docker-registry`` (distribution 2.8) on a
free 127.0.0.1 port, holding the test images under Azure ML's repository names, so that a
pull goes through a registry as a user's does (``--base-image 127.0.0.1:PORT/azureml/...``,
or ``AMLDEBUG_REGISTRY_MIRROR=127.0.0.1:PORT`` for ``mcr.microsoft.com/azureml/...``).

The engine allows plain HTTP to registries on 127.0.0.0/8, so no TLS is set up. Each image is
pushed with one small layer of its own on top of the test image: pulling it then downloads
and extracts that layer for real (the test image's own layers are already present locally),
and removing the pulled image never touches the test image.

Pushing both images costs tens of seconds, so the registry's storage is kept under
``~/.cache/amldebug-test/registry/<key>`` (``AMLDEBUG_TEST_CACHE``), the key made of the test
images' ids: a rebuilt test image is pushed again, an unchanged one is served from the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import requests

BINARY = "docker-registry"  # Debian's package of the same name (/usr/bin/docker-registry)
CACHE = Path(os.environ.get("AMLDEBUG_TEST_CACHE", Path.home() / ".cache" / "amldebug-test")) / "registry"
# Where the running registry is, for tests that run amldebug in another process.
ADDRESS_VARIABLE = "AMLDEBUG_TEST_REGISTRY"
# Azure ML's repository names, and the local test image each one holds.
IMAGES = {
    "azureml/minimal-ubuntu22.04-py39-cpu-inference:latest": "amldebug-test/azmlinfsrv-py39:1",
    "azureml/minimal-py311-inference:latest": "amldebug-test/azmlinfsrv:1",
}
OWN_LAYER_BYTES = 4_000_000  # random, so it does not compress: a pull downloads all of it
LABEL = "amldebug.test.registry"
_LAYOUT = "1"  # bump when what is pushed changes (the layer, the label)


class RegistryUnavailable(Exception):
    """docker-registry is not installed, or it did not start."""


@dataclass
class Registry:
    """A running registry: ``address`` is "127.0.0.1:PORT"."""

    address: str
    storage: Path
    process: subprocess.Popen
    log: Path
    push_seconds: Optional[float] = None  # None when the storage came from the cache
    pushed: dict = field(default_factory=dict)  # repository name -> the test image it holds

    def ref(self, name: str) -> str:
        """The registry's own name for ``name`` ("azureml/X:tag")."""
        return f"{self.address}/{name}"

    def has(self, name: str) -> bool:
        """Whether the registry serves a manifest for ``name`` ("azureml/X:tag")."""
        repo, tag = name.rsplit(":", 1)
        answer = requests.head(f"http://{self.address}/v2/{repo}/manifests/{tag}", timeout=10, headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        return answer.status_code == 200

    def image_id(self, name: str) -> str:
        """The id a pull of ``name`` ("azureml/X:tag") gives: the digest of its manifest's config."""
        repo, tag = name.rsplit(":", 1)
        answer = requests.get(f"http://{self.address}/v2/{repo}/manifests/{tag}", timeout=10, headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        answer.raise_for_status()
        return answer.json()["config"]["digest"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(client, workdir: Path, *, images: dict = IMAGES, cache: Path = CACHE) -> Registry:
    """A registry serving ``images`` (repository name -> local image), from the cache when it
    holds them for these image ids, else pushed now and then cached."""
    binary = shutil.which(BINARY) or ("/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None)
    if binary is None:
        raise RegistryUnavailable("docker-registry is not installed ('apt-get install docker-registry')")
    ids = {name: client.images.get(local).id for name, local in images.items()}
    key = hashlib.sha256(json.dumps([_LAYOUT, OWN_LAYER_BYTES, ids], sort_keys=True).encode()).hexdigest()[:16]
    stored = cache / key
    if (stored / "complete").is_file():
        return _serve(binary, stored, workdir, pushed=dict(images))
    filling = cache / f"{key}.filling-{os.getpid()}"
    shutil.rmtree(filling, ignore_errors=True)
    filling.mkdir(parents=True)
    registry = _serve(binary, filling, workdir)
    try:
        started = time.monotonic()
        for name, local in images.items():
            _push_own_layer(client, registry, name, local)
        seconds = time.monotonic() - started
    finally:
        registry.stop()
    (filling / "complete").write_text(json.dumps({"ids": ids, "push_seconds": round(seconds, 1)}) + "\n")
    try:
        filling.rename(stored)
    except OSError:  # another session cached the same images first: use theirs
        shutil.rmtree(filling, ignore_errors=True)
    for old in cache.iterdir():  # storage for test images that have since been rebuilt
        if old.name != stored.name and ".filling-" not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    registry = _serve(binary, stored, workdir, pushed=dict(images))
    registry.push_seconds = seconds
    return registry


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(binary: str, storage: Path, workdir: Path, *, pushed: Optional[dict] = None) -> Registry:
    """Start the registry on a free port with ``storage`` as its root; wait until it answers."""
    last = ""
    for _ in range(3):  # the free port may be taken between the probe and the registry's bind
        port = _free_port()
        config = workdir / f"config-{port}.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")
        log = workdir / f"registry-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        registry = Registry(f"127.0.0.1:{port}", storage, process, log, pushed=pushed or {})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"http://{registry.address}/v2/", timeout=2).status_code == 200:
                    return registry
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        registry.stop()
        last = log.read_text(errors="replace")[-2000:]
    raise RegistryUnavailable(f"docker-registry did not start on 127.0.0.1:\n{last}")


def _push_own_layer(client, registry: Registry, name: str, local: str) -> None:
    """Push ``local`` plus one layer of its own as ``registry``/``name``; the local copy of
    that image is removed, so that a pull downloads its layer."""
    target = registry.ref(name)
    context = io.BytesIO()
    own = random.Random(name).randbytes(OWN_LAYER_BYTES)
    dockerfile = (f"FROM {local}\nCOPY own-layer /opt/amldebug-test-registry/own-layer\n"
                  f'LABEL {LABEL}="{name}"\n').encode()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for member, data in (("Dockerfile", dockerfile), ("own-layer", own)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=target, pull=False, rm=True,
                                   forcerm=True, network_mode="none")
    try:
        repo, tag = target.rsplit(":", 1)
        for chunk in client.api.push(repo, tag=tag, stream=True, decode=True):
            if chunk.get("error"):
                raise RegistryUnavailable(f"pushing {target} failed: {chunk['error']}")
    finally:
        client.images.remove(image.id, force=True)
    registry.pushed[name] = local
