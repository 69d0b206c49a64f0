"""Build the test scoring images offline (no registry, no network inside a build).

* ``amldebug-test/base:bookworm``: Debian bookworm made with debootstrap and imported
  (Python 3.11, bash, runit, nginx), the stand-in for a pulled base image.
* ``amldebug-test/azmlinfsrv:1``: the base plus a venv-shaped Python environment under
  /opt/miniconda/envs/amlenv (as in Azure ML images) holding azureml-inference-server-http,
  installed on the host with ``pip install --target`` and copied in; command ``azmlinfsrv``.
* ``amldebug-test/runit:1``: the same with Azure ML's chain: ``runsvdir /var/runit``,
  runit starting azmlinfsrv on 31311 behind nginx on 5001.
* ``amldebug-test/azmlinfsrv-nonroot:1``: the azmlinfsrv image running as ``dockeruser``
  (uid 1000), as Azure ML's prebuilt inference images do.
* ``amldebug-test/azmlinfsrv-py39:1`` and ``amldebug-test/azmlinfsrv-py313:1``: the same
  server environment on Debian bullseye (Python 3.9) and trixie (Python 3.13), with the
  server installed on the host for that Python (``pip download`` and ``pip install --target``
  with ``--python-version``); azureml-inference-server-http 1.5.1 on all three Pythons.

Images are cached by tag and rebuilt only when the label with the hash of their inputs
changes. Run: ``python tests/images/build.py`` (needs root for debootstrap).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("AMLDEBUG_TEST_CACHE", Path.home() / ".cache" / "amldebug-test"))
BASE = "amldebug-test/base:bookworm"
SERVER = "amldebug-test/azmlinfsrv:1"
RUNIT = "amldebug-test/runit:1"
NONROOT = "amldebug-test/azmlinfsrv-nonroot:1"
SERVER_REQUIREMENT = os.environ.get("AMLDEBUG_TEST_SERVER", "azureml-inference-server-http==1.5.1")
ENV_PREFIX = "/opt/miniconda/envs/amlenv"
DEBOOTSTRAP_PACKAGES = "python3,bash,runit,nginx-light,procps"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
LABEL = "amldebug.test.inputs"


@dataclass(frozen=True)
class OtherPython:
    """A server image on another Debian suite, for another Python than the host's."""

    tag: str
    suite: str
    python: str  # the suite's python3, "X.Y"
    requirement: str  # azureml-inference-server-http 1.5.1 supports 3.9 to 3.13

    @property
    def base(self) -> str:
        return f"amldebug-test/base:{self.suite}"


# Only what the server needs (no runit/nginx): each suite is a cold debootstrap in CI.
OTHER_PACKAGES = "python3,bash,procps,libgomp1"  # libgomp: as in Azure ML's images (lightgbm's wheels need it)
# What pip may pick for the image's Python: bullseye has glibc 2.31, trixie 2.41.
OTHER_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
OTHER_PYTHONS = (
    OtherPython("amldebug-test/azmlinfsrv-py39:1", "bullseye", "3.9",
                os.environ.get("AMLDEBUG_TEST_SERVER_PY39", "azureml-inference-server-http==1.5.1")),
    OtherPython("amldebug-test/azmlinfsrv-py313:1", "trixie", "3.13",
                os.environ.get("AMLDEBUG_TEST_SERVER_PY313", "azureml-inference-server-http==1.5.1")),
)


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


def build_base(client: docker.DockerClient, suite: str = "bookworm", packages: str = DEBOOTSTRAP_PACKAGES,
               tag: str = BASE) -> None:
    # bookworm's digest is the package list alone (as before), so its cached image stays valid.
    digest = _digest(packages) if suite == "bookworm" else _digest(suite, packages)
    if _current(client, tag, digest):
        return
    _log(f"debootstrap {suite} ({packages}), about a minute")
    with tempfile.TemporaryDirectory(prefix="amldebug-rootfs-") as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={packages}", suite, root, DEBIAN_MIRROR],
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
            repository=tag.split(":")[0],
            tag=tag.split(":")[1],
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
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=CACHE))  # test sessions may build at once
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
             "--only-binary=:all:", "--target", str(tmp), SERVER_REQUIREMENT],
            check=True,
        )
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts name the host's Python
        try:
            tmp.rename(target)
        except OSError:  # another build finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _site_packages_for(python: str, requirement: str) -> Path:
    """``requirement`` installed on the host for another Python (wheels only, Linux x86_64)."""
    target = CACHE / ("site-packages-" + _digest(requirement, python, *OTHER_PLATFORMS, "download, then install"))
    if not target.is_dir():
        _log(f"pip download + install --target --python-version {python} ({requirement}) on the host")
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=CACHE))  # test sessions may build at once
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        where = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python,
                 *[arg for platform in OTHER_PLATFORMS for arg in ("--platform", platform)]]
        # Two steps: 'pip install --target --python-version' (pip 23.2) checks a wheel's own
        # Requires-Python against the HOST's Python (an index page without data-requires-python
        # gave click 8.5, which needs 3.10, to Python 3.9); 'pip download' checks the target's
        # and backtracks. The install then only unpacks what download chose.
        subprocess.run([*pip, "download", "--quiet", *where, "--dest", str(tmp / "wheels"), requirement], check=True)
        subprocess.run([*pip, "install", "--quiet", "--no-warn-conflicts", "--no-deps", "--no-index",
                        "--ignore-requires-python", *where,
                        "--target", str(tmp / "site"), *map(str, sorted((tmp / "wheels").glob("*.whl")))],
                       check=True)
        shutil.rmtree(tmp / "site" / "bin", ignore_errors=True)
        _check_requires_python(tmp / "site", python)
        try:
            (tmp / "site").rename(target)
        except OSError:  # another build finished first: keep its copy
            pass
        shutil.rmtree(tmp)
    return target


def _check_requires_python(site: Path, python: str) -> None:
    from email.parser import HeaderParser

    from packaging.specifiers import SpecifierSet

    wrong = []
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        wants = HeaderParser().parsestr(metadata.read_text(errors="replace")).get("Requires-Python")
        if wants and python not in SpecifierSet(wants):
            wrong.append(f"{metadata.parent.name} (Requires-Python {wants})")
    if wrong:
        raise SystemExit(f"packages installed for Python {python} do not support it: {', '.join(wrong)}")


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


def _server_dockerfile(base: str, python: str) -> str:
    return f"""
FROM {base}
RUN python3 -m venv --without-pip {ENV_PREFIX} && mkdir -p /var/azureml-app
COPY site-packages/ {ENV_PREFIX}/lib/python{python}/site-packages/
COPY azmlinfsrv {ENV_PREFIX}/bin/azmlinfsrv
ENV PATH={ENV_PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    AML_APP_ROOT=/var/azureml-app
WORKDIR /var/azureml-app
EXPOSE 5001
CMD ["azmlinfsrv", "--entry_script", "/var/azureml-app/main.py", "--port", "5001"]
"""


SERVER_DOCKERFILE = _server_dockerfile(BASE, "3.11")

# Azure ML's prebuilt inference images run as 'dockeruser'; no useradd in minbase needed.
NONROOT_DOCKERFILE = f"""
FROM {SERVER}
RUN echo 'dockeruser:x:1000:1000:dockeruser:/home/dockeruser:/bin/bash' >> /etc/passwd \\
 && echo 'dockeruser:x:1000:' >> /etc/group \\
 && mkdir -p /home/dockeruser && chown 1000:1000 /home/dockeruser
ENV HOME=/home/dockeruser
USER 1000:1000
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
    nonroot_digest = _digest(server_digest, NONROOT_DOCKERFILE)
    if not _current(client, NONROOT, nonroot_digest):
        started = time.monotonic()
        _build(client, NONROOT, NONROOT_DOCKERFILE, {}, nonroot_digest)
        _log(f"{NONROOT} ready in {time.monotonic() - started:.0f} s")
    built = [BASE, SERVER, RUNIT, NONROOT]
    for other in OTHER_PYTHONS:
        build_other_python(client, other)
        built += [other.base, other.tag]
    return built


def build_other_python(client: docker.DockerClient, other: OtherPython) -> None:
    started = time.monotonic()
    build_base(client, other.suite, OTHER_PACKAGES, other.base)
    dockerfile = _server_dockerfile(other.base, other.python)
    site = _site_packages_for(other.python, other.requirement)
    digest = _digest(dockerfile, site.name, _digest(other.suite, OTHER_PACKAGES), (HERE / "azmlinfsrv").read_bytes())
    if _current(client, other.tag, digest):
        return
    _build(client, other.tag, dockerfile, {"site-packages": site, "azmlinfsrv": HERE / "azmlinfsrv"}, digest)
    _log(f"{other.tag} ready in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    for tag in build_all():
        print(tag)
