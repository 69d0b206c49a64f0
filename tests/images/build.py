"""Build the test scoring images offline (no registry, no network inside a build).

* ``amldebug-test/base:bookworm``: Debian bookworm made with debootstrap and imported
  (Python 3.11, bash, runit, nginx), the stand-in for a pulled base image.
* ``amldebug-test/azmlinfsrv:1``: the base plus a venv-shaped Python environment under
  /opt/miniconda/envs/amlenv (as in Azure ML images) holding azureml-inference-server-http,
  installed on the host with ``pip install --target`` and copied in; command ``azmlinfsrv``.
* ``amldebug-test/runit:1``: the same with Azure ML's chain: ``runsvdir /var/runit``,
  runit starting azmlinfsrv on 31311 behind nginx on 5001.

Images are cached by tag and rebuilt only when the label with the hash of their inputs
changes. Run: ``python tests/images/build.py`` (needs root for debootstrap).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("AMLDEBUG_TEST_CACHE", Path.home() / ".cache" / "amldebug-test"))
BASE = "amldebug-test/base:bookworm"
SERVER = "amldebug-test/azmlinfsrv:1"
RUNIT = "amldebug-test/runit:1"
SERVER_REQUIREMENT = os.environ.get("AMLDEBUG_TEST_SERVER", "azureml-inference-server-http==1.5.1")
ENV_PREFIX = "/opt/miniconda/envs/amlenv"
DEBOOTSTRAP_PACKAGES = "python3,bash,runit,nginx-light,procps"
LABEL = "amldebug.test.inputs"


def _log(msg: str) -> None:
    print(f"[test-images] {msg}", file=sys.stderr, flush=True)


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
    return h.hexdigest()[:16]


def _current(client: docker.DockerClient, tag: str, digest: str) -> bool:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(LABEL) == digest


def build_base(client: docker.DockerClient) -> None:
    digest = _digest(DEBOOTSTRAP_PACKAGES)
    if _current(client, BASE, digest):
        return
    _log(f"debootstrap bookworm ({DEBOOTSTRAP_PACKAGES}), about a minute")
    with tempfile.TemporaryDirectory(prefix="amldebug-rootfs-") as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}", "bookworm", root],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Keep the image small: package caches and docs are not needed.
        for sub in ("var/cache/apt/archives", "usr/share/doc", "usr/share/man", "usr/share/locale"):
            shutil.rmtree(Path(root, sub), ignore_errors=True)
        _log("importing the root file system")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        client.api.import_image_from_stream(
            tar.stdout,
            repository=BASE.split(":")[0],
            tag=BASE.split(":")[1],
            changes=[f"LABEL {LABEL}={digest}", 'CMD ["/bin/bash"]'],
        )
        if tar.wait() != 0:
            raise SystemExit("tar of the root file system failed")


def _site_packages() -> Path:
    if sys.version_info[:2] != (3, 11):
        # Packages are installed with this Python and copied into bookworm's Python 3.11.
        raise SystemExit(f"the test images need Python 3.11 on the host (this is {sys.version.split()[0]})")
    target = CACHE / ("site-packages-" + _digest(SERVER_REQUIREMENT, sys.version))
    if not target.is_dir():
        _log(f"pip install --target ({SERVER_REQUIREMENT}) on the host")
        tmp = target.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--only-binary=:all:", "--target", str(tmp), SERVER_REQUIREMENT],
            check=True,
        )
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts name the host's Python
        tmp.rename(target)
    return target


def _build(client: docker.DockerClient, tag: str, dockerfile: str, files: dict[str, Path], digest: str) -> None:
    with tempfile.TemporaryDirectory(prefix="amldebug-ctx-") as ctx:
        for name, src in files.items():
            dest = Path(ctx, name)
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=True)
            else:
                shutil.copy2(src, dest)
        Path(ctx, "Dockerfile").write_text(dockerfile + f"\nLABEL {LABEL}={digest}\n")
        _log(f"building {tag}")
        try:
            client.images.build(path=ctx, tag=tag, rm=True, forcerm=True, network_mode="none")
        except docker.errors.BuildError as exc:
            for chunk in exc.build_log:
                sys.stderr.write(chunk.get("stream", "") or chunk.get("error", ""))
            raise


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


SERVER_DOCKERFILE = f"""
FROM {BASE}
RUN python3 -m venv --without-pip {ENV_PREFIX} && mkdir -p /var/azureml-app
COPY site-packages/ {ENV_PREFIX}/lib/python3.11/site-packages/
COPY azmlinfsrv {ENV_PREFIX}/bin/azmlinfsrv
ENV PATH={ENV_PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    AML_APP_ROOT=/var/azureml-app
WORKDIR /var/azureml-app
EXPOSE 5001
CMD ["azmlinfsrv", "--entry_script", "/var/azureml-app/main.py", "--port", "5001"]
"""

RUNIT_DOCKERFILE = f"""
FROM {SERVER}
COPY runit/ /var/runit/
COPY nginx-default.conf /etc/nginx/sites-enabled/default
CMD ["runsvdir", "/var/runit"]
"""


def build_all() -> list[str]:
    client = docker.from_env()
    build_base(client)
    site = _site_packages()
    server_digest = _digest(SERVER_DOCKERFILE, SERVER_REQUIREMENT, (HERE / "azmlinfsrv").read_bytes())
    if not _current(client, SERVER, server_digest):
        _build(client, SERVER, SERVER_DOCKERFILE,
               {"site-packages": site, "azmlinfsrv": HERE / "azmlinfsrv"}, server_digest)
    runit_digest = _digest(server_digest, RUNIT_DOCKERFILE, _tree_digest(HERE / "runit"),
                           (HERE / "nginx-default.conf").read_bytes())
    if not _current(client, RUNIT, runit_digest):
        _build(client, RUNIT, RUNIT_DOCKERFILE,
               {"runit": HERE / "runit", "nginx-default.conf": HERE / "nginx-default.conf"}, runit_digest)
    return [BASE, SERVER, RUNIT]


if __name__ == "__main__":
    for tag in build_all():
        print(tag)
