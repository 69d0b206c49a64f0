"""Which Python an environment is built for, and on which base image.

Azure ML does not use the base image's Python: the image brings a ``conda`` binary, and
``conda env create`` makes the Python the file pins (``python=3.8``), then runs pip in it. So
amldebug builds for the pinned Python too, in this order (``--base-image`` always wins):

1. the environment's own image, when its Python is the pinned one;
2. Azure ML's prebuilt inference image for that Python: present locally, else pulled
   (through AMLDEBUG_REGISTRY_MIRROR when set);
3. another local image whose Python is the pinned one (probed once, cached by image id): after
   the pull, since any image with that Python may hold anything (a derived image with a
   broken package was picked this way before the order was so);
4. Azure ML's own way, where a registry and conda's channels are reachable: conda in Azure
   ML's conda base image creates the pinned Python and runs the pip step (``conda_build``);
5. only when none of these is possible, the nearest Python that has builds for every pin,
   named as a deviation.

One line says which path was taken and why. With no pin, the environment's own image is used
as it is; without one either, amldebug's default Python (3.9, its default image's) goes
through the same steps as a pin would.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import urllib.parse
from typing import Callable, Iterable, Optional, Sequence

from ..core.images import candidates
from ..core.paths import cache_root
from ..core.progress import Progress
from ..engine.docker import SERVER_PYTHON_SH, find_image, pull_image, run_once
from ..errors import AmlDebugError, ImageError
from ..sources import conda
from ..sources.envfile import Environment


DEFAULT_BASE_IMAGE = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
DEFAULT_PYTHON = "3.9"  # DEFAULT_BASE_IMAGE's
# Azure ML's prebuilt inference images, by their Python (FACTS.md: all run as a non-root user).
PREBUILT = {
    "3.9": "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest",
    "3.11": "mcr.microsoft.com/azureml/minimal-py311-inference:latest",
    "3.12": "mcr.microsoft.com/azureml/minimal-py312-inference:latest",
}
AZUREML_IMAGES = "mcr.microsoft.com/azureml/"
# Azure ML's conda base image (v1's default): conda creates the environment's Python in it.
CONDA_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
_CONDA_BASES = re.compile(r"^(?:mcr\.microsoft\.com/)?azureml/(?:openmpi|intelmpi|base:intelmpi|base-gpu:|"
                          r"curated/)")
CONDA_CHANNEL = "https://conda.anaconda.org/conda-forge/noarch/repodata.json"
# Labelled images are amldebug's own builds: an environment on top of another one is not a base.
_BUILT_LABEL = "amldebug.env.hash"
MAX_PROBES = 8


@dataclasses.dataclass(frozen=True)
class Base:
    """The image an environment is built on, its probed Python, and why it was chosen."""

    ref: str
    image: object
    probe: dict
    why: str  # one line for the build log
    deviation: bool = False  # built for another Python than the file pins
    conda: bool = False  # conda creates the Python in the image (Azure ML's way): see conda_dockerfile


def pinned_minor(env: Environment) -> Optional[str]:
    """'3.8' for a conda file's python=3.8 / python=3.8.10 / python==3.8.*; None without a
    pin to a minor version (no python, python=3, python>=3.8)."""
    python = conda.plan(env.conda, env.channels).python
    if not python or "." not in python:
        return None
    return ".".join(python.split(".")[:2])


def is_conda_base(ref: Optional[str]) -> bool:
    """Azure ML's conda base images (openmpi/intelmpi/curated): no scoring server, and their own
    Python is not what the environment runs."""
    return bool(ref) and bool(_CONDA_BASES.match(ref))


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def by_distance(wanted: str, versions: Iterable[str]) -> list[str]:
    """``versions`` nearest to ``wanted`` first; of two as near, the older one (its releases are
    nearer to the pins of an older file)."""
    w = _minor(wanted)
    return sorted(set(versions), key=lambda v: (abs(_minor(v)[1] - w[1]) + 100 * abs(_minor(v)[0] - w[0]), _minor(v)))


def synthetic_probe(version: str, machine: str = "x86_64", glibc: str = "glibc 2.35") -> dict:
    """What a probe of an image not pulled yet would say, for checking which pins have builds:
    Azure ML's inference images are Ubuntu 22.04 (glibc 2.35)."""
    return {"version": version, "machine": machine, "libc": glibc, "abiflags": "", "musl": False,
            "markers": {"python_full_version": f"{version}.0"}}


def pins_fit(pins: dict[str, str], index: dict, probe: dict) -> list[str]:
    """The pins (name==version) with no build for ``probe``'s Python: empty when all fit."""
    from .resolve import fits, matching

    return [f"{name}{spec}" for name, spec in pins.items()
            if name in index and matching(index[name], spec)
            and not any(fits(r, probe, name) for r in matching(index[name], spec))]


# -- the base image's Python (an edge: the engine) -------------------------------------------

def get_base_image(client, ref: str, progress: Progress):
    """The base image, pulled (with progress) when it is not present locally."""
    image = find_image(client, ref, what="base image")
    if image is not None:
        return image
    return pull_image(client, ref, what="base image", progress=progress,
                      hint="or pass --base-image with a local image that has Python")


# The Python that would run the server (azmlinfsrv's shebang, if the base has one), else
# python3/python on PATH, runs the probe code ($1).
_PROBE_SHELL = SERVER_PYTHON_SH + r"""
for py in "$cand" $(command -v python3 2>/dev/null) $(command -v python 2>/dev/null); do
  [ -n "$py" ] && [ -x "$py" ] || continue
  exec "$py" -c "$1"
done
echo "AMLDEBUG-PROBE: no python3 or python on PATH=$PATH"
exit 12
"""

# No f-strings: an old Python must get as far as saying it is too old.
_PROBE_PYTHON = r"""
import glob, json, os, platform, shutil, site, sys, sysconfig
if sys.version_info < (3, 7):
    print("AMLDEBUG-PROBE: %s is Python %s; the scoring server needs Python 3.8 or later"
          % (sys.executable, platform.python_version()))
    sys.exit(13)
impl = sys.implementation
try:
    sites = [p for p in site.getsitepackages() if p.endswith("-packages")]
except AttributeError:
    sites = []
purelib = sysconfig.get_paths()["purelib"]
libc = ""
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
except (AttributeError, ValueError, OSError):
    pass
server = None
try:
    from importlib import metadata
    server = metadata.version("azureml-inference-server-http")
except Exception:
    pass
conda = None
for cand in (os.environ.get("CONDA_EXE"), shutil.which("conda"), os.path.join(sys.prefix, "bin", "conda"),
             os.path.join(sys.prefix, "..", "..", "bin", "conda")):
    if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
        conda = os.path.normpath(cand)
        break
iv = "%d.%d.%d" % tuple(impl.version[:3])
if impl.version.releaselevel != "final":
    iv += impl.version.releaselevel[0] + str(impl.version.serial)
markers = {
    "implementation_name": impl.name, "implementation_version": iv, "os_name": os.name,
    "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": "%d.%d" % sys.version_info[:2], "sys_platform": sys.platform,
}
print("AMLDEBUG-PROBE-JSON " + json.dumps({
    "python": sys.executable, "version": "%d.%d" % sys.version_info[:2], "implementation": impl.name,
    "abiflags": getattr(sys, "abiflags", ""), "machine": platform.machine(), "libc": libc,
    "musl": bool(glob.glob("/lib/ld-musl-*.so.1")), "site": (sites or [purelib])[0],
    "server": server, "conda": conda, "path": os.environ.get("PATH", ""), "markers": markers,
}))
"""


def _probe_cache(image) -> tuple:
    root = cache_root() / "build-probes"
    stem = image.id.replace(":", "-")
    return root / f"{stem}.json", root / f"{stem}.nopython"


def probe_python(client, image, ref: str) -> dict:
    """The base image's Python: version, machine, C library, site-packages (cached by image id)."""
    cache_file, no_python = _probe_cache(image)
    if cache_file.is_file():
        try:
            return json.loads(cache_file.read_text())
        except ValueError:
            pass
    status, out = run_once(client, image.id, ["/bin/sh", "-c", _PROBE_SHELL, "probe", _PROBE_PYTHON], ref=ref,
                           what="base image", kind="probe", timeout=60,
                           hint="amldebug build needs a base image with a shell and Python 3, e.g. an Azure ML "
                                "inference image")
    out = out.strip()
    result = next((line[len("AMLDEBUG-PROBE-JSON "):] for line in out.splitlines()
                   if line.startswith("AMLDEBUG-PROBE-JSON ")), None)
    if status != 0 or result is None:
        reason = out.splitlines()[-1].replace("AMLDEBUG-PROBE: ", "") if out else f"exit code {status}"
        if status in (12, 13):  # an image never changes: no need to ask it again
            no_python.parent.mkdir(parents=True, exist_ok=True)
            no_python.touch()
        if status == 12:
            raise ImageError(f"base image '{ref}' has no Python ({reason}); pass --base-image with an image that "
                             "has Python 3, e.g. an Azure ML inference image")
        raise ImageError(f"base image '{ref}' cannot be used: {reason}; pass --base-image with an image that "
                         "has Python 3.8 or later")
    info = json.loads(result)
    if info["implementation"] != "cpython":
        raise ImageError(f"base image '{ref}' runs {info['implementation']} {info['version']}; amldebug build "
                         "installs CPython wheels only: pass --base-image with a CPython image")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(info))
    return info


def local_pythons(client, progress: Progress) -> list[tuple[str, object, dict]]:
    """(ref, image, probe) of the local images with a CPython, images with the scoring server and
    Azure ML's names first, then the newest. Probes are cached by image id (a 'no Python' too);
    at most MAX_PROBES new ones a look."""
    try:
        images = client.images.list()
    except Exception as exc:  # noqa: BLE001 - only a choice of base is at stake
        progress(f"amldebug: cannot list the local images ({str(exc)[:120]}); looking no further for one")
        return []
    usable = [i for i in images if i.tags and _BUILT_LABEL not in (i.labels or {})
              and not _probe_cache(i)[1].exists()]
    found, new = [], 0
    for image in candidates(usable):
        cached = _probe_cache(image)[0].is_file()
        if not cached:
            if new >= MAX_PROBES:
                continue
            new += 1
        try:
            found.append((image.tags[0], image, probe_python(client, image, image.tags[0])))
        except AmlDebugError:
            continue
    # Azure ML's own images first, then those with the scoring server; newest first within each
    # (the order ``candidates`` gave).
    return sorted(found, key=lambda f: (not f[0].startswith(AZUREML_IMAGES), not f[2].get("server")))


# -- Azure ML's own way: conda in its conda base image ----------------------------------------

def conda_reachable(url: str = CONDA_CHANNEL, timeout: float = 3.0) -> bool:
    """Whether conda's channel answers from this machine (a TCP connection to its host)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


CONDA_PREFIX = "/azureml-envs/amldebug"


def conda_dockerfile(base: str, prefix: str = CONDA_PREFIX, server: str = "azureml-inference-server-http",
                     labels: Optional[dict] = None) -> str:
    """What Azure ML's image build runs (FACTS.md): conda creates the pinned Python and runs the
    file's pip section (``pip install -U``) in it; the scoring server is added when the file
    lacks it. Needs network inside the build."""
    label = ["LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))] if labels else []
    return "\n".join([
        f"FROM {base}",
        "COPY conda.yml /tmp/amldebug/conda.yml",
        f"RUN conda env create -p {prefix} -f /tmp/amldebug/conda.yml && conda clean -aqy",
        f"RUN {prefix}/bin/python -c 'import azureml_inference_server_http' 2>/dev/null "
        f"|| {prefix}/bin/python -m pip install --no-cache-dir {server}",
        f"ENV PATH={prefix}/bin:$PATH AZUREML_CONDA_ENVIRONMENT_PATH={prefix}",
        *label,
        "",
    ])


# -- the choice ------------------------------------------------------------------------------

def choose(env: Environment, explicit: Optional[str], client, progress: Progress,
           pins_index: Callable[[], tuple[dict[str, str], dict]] = lambda: ({}, {})) -> Base:
    """The base image to build ``env`` on (see the module's docstring for the order).
    ``pins_index()`` gives the environment's exact pins and the index's releases of them, asked
    for only when the nearest Python must be chosen."""
    wanted = pinned_minor(env)
    spec = conda.plan(env.conda, env.channels).python_spec or ""
    if explicit:
        base = _use(client, explicit, progress)
        why = f"building on '{explicit}' (--base-image), Python {base.probe['version']}"
        if wanted and wanted != base.probe["version"]:
            why += f"; the environment pins {spec}: Azure ML would create Python {wanted} with conda"
        return dataclasses.replace(base, why=why, deviation=bool(wanted and wanted != base.probe["version"]))
    own = None if is_conda_base(env.base_image) else env.base_image
    if wanted is None and own:
        base = _use(client, own, progress)
        return dataclasses.replace(base, why=f"building on '{own}' (the environment's image), Python "
                                             f"{base.probe['version']}" + ("; the environment pins no Python"
                                                                           if env.conda else ""))
    if wanted is None:  # amldebug's default image, found or pulled as a pin's would be
        wanted, spec = DEFAULT_PYTHON, f"no pin: amldebug's default, Python {DEFAULT_PYTHON}"
    tried: list[str] = []
    if own:
        try:
            base = _use(client, own, progress)
        except AmlDebugError as exc:
            tried.append(f"the environment's image '{own}' cannot be had ({str(exc).split(';')[0]})")
        else:
            if base.probe["version"] == wanted:
                return dataclasses.replace(base, why=f"building for Python {wanted} ({spec}) on '{own}', the "
                                                     "environment's own image")
            tried.append(f"the environment's image '{own}' has Python {base.probe['version']} (Azure ML would "
                         f"create {wanted} in it with conda)")
    local = local_pythons(client, progress)
    matching = [(ref, image, probe) for ref, image, probe in local if probe["version"] == wanted]
    azure = [found for found in matching if found[0].startswith(AZUREML_IMAGES)]
    if azure:
        return _local(azure[0], wanted, spec, tried)
    prebuilt = PREBUILT.get(wanted)
    if prebuilt:
        try:
            base = _use(client, prebuilt, progress)
        except AmlDebugError as exc:
            tried.append(f"Azure ML's inference image for it cannot be pulled ({str(exc).split(';')[0]})")
        else:
            if base.probe["version"] == wanted:
                return dataclasses.replace(base, why=f"building for Python {wanted} ({spec}) on '{prebuilt}', Azure "
                                                     f"ML's prebuilt inference image for Python {wanted}")
            tried.append(f"'{prebuilt}' has Python {base.probe['version']}, not {wanted}")
    if matching:
        return _local(matching[0], wanted, spec, tried)
    if not prebuilt:
        tried.append(f"no local image has Python {wanted} and Azure ML publishes no inference image for it")
    if conda_reachable() and env.source is not None:
        try:
            base = _use(client, CONDA_BASE_IMAGE, progress)
        except AmlDebugError as exc:
            tried.append(f"Azure ML's conda base image cannot be pulled ({str(exc).split(';')[0]})")
        else:
            if base.probe.get("conda"):
                probe = dict(base.probe, version=wanted, python=f"{CONDA_PREFIX}/bin/python", server=None,
                             markers=dict(base.probe.get("markers") or {}, python_version=wanted,
                                          python_full_version=f"{wanted}.0"))
                return Base(CONDA_BASE_IMAGE, base.image, probe, f"building for Python {wanted} ({spec}) as Azure ML "
                            f"does: conda creates it in '{CONDA_BASE_IMAGE}' and runs the pip part in it (network "
                            "inside the build)", conda=True)
            tried.append(f"'{CONDA_BASE_IMAGE}' has no conda")
    else:
        tried.append("conda's channels cannot be reached from this machine to create it (Azure ML's way)")
    return _nearest(client, wanted, spec, local, tried, progress, pins_index)


def _local(found: tuple[str, object, dict], wanted: str, spec: str, tried: list[str]) -> Base:
    ref, image, probe = found
    return Base(ref, image, probe, f"building for Python {wanted} ({spec}) on '{ref}', a local image with Python "
                                   f"{wanted}" + (f" ({'; '.join(tried)})" if tried else ""))


def _use(client, ref: str, progress: Progress) -> Base:
    image = get_base_image(client, ref, progress)
    return Base(ref, image, probe_python(client, image, ref), "")


def _nearest(client, wanted: str, spec: str, local: Sequence[tuple[str, object, dict]], tried: list[str],
             progress: Progress, pins_index: Callable[[], tuple[dict[str, str], dict]]) -> Base:
    """The nearest Python (of the local images and Azure ML's prebuilt ones) with builds for every
    pin; when none has, the nearest one (the build then names the pins without builds)."""
    pins, index = pins_index()
    versions = {probe["version"] for _, _, probe in local if re.match(r"^3\.\d+$", probe["version"])} | set(PREBUILT)
    ordered = by_distance(wanted, versions)
    fitting = [v for v in ordered if not pins_fit(pins, index, synthetic_probe(v))]
    reason = "the nearest Python with builds for every pin" if fitting and pins else "the nearest Python"
    errors = []
    for version in fitting + [v for v in ordered if v not in fitting]:
        # In the order of choose(): Azure ML's image (local, else pulled), then other local images.
        refs = [ref for ref, _, probe in local if probe["version"] == version]
        azure = [ref for ref in refs if ref.startswith(AZUREML_IMAGES)]
        prebuilt = [PREBUILT[version]] if version in PREBUILT and PREBUILT[version] not in azure else []
        refs = azure + prebuilt + [ref for ref in refs if ref not in azure]
        for ref in refs:
            try:
                base = _use(client, ref, progress)
            except AmlDebugError as exc:
                errors.append(str(exc).split(";")[0])
                continue
            pinned = f"the environment pins {spec}" if not spec.startswith("no pin") else \
                f"the environment pins no Python (amldebug's default: {wanted})"
            why = (f"{pinned}; {'; '.join(tried)}: building for Python {version} on '{ref}', "
                   f"{reason} (a deviation: Azure ML would run Python {wanted})")
            return dataclasses.replace(base, why=why, deviation=True)
    raise ImageError(f"the environment pins {spec or 'no Python'} and no image with a Python can be had for it: "
                     f"{'; '.join(tried + errors)}. Pass --base-image with a local image whose Python is {wanted}, or "
                     "set AMLDEBUG_REGISTRY_MIRROR to a registry that has Azure ML's images")
