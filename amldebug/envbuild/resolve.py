"""Resolving an environment on the host for the image's Python, so that the result imports.

conda keeps compiled packages binary-compatible (a scikit-learn built against numpy 1.x
pulls numpy < 2); pip and uv pick the newest of every unpinned package. amldebug bounds
what is not pinned to what existed when the newest pinned package was released (uv's
``--exclude-newer``), except the scoring server's own dependency stack, which stays current
(amldebug's debugging needs a current server). Before resolving, every pin is checked
against the index: the pins with no build for the image's Python are one error that names,
for each, the Pythons it has builds for on the image's platform (and the platforms that have
a wheel for the image's Python, when only the platform is missing). After resolving, every
installed distribution that landed far below its newest release is reported with the
requirement that held it back (a dependency capped by a current package is not: that is what
the package declares), and compiled wheels built on the host for another Python are refused.

The pure parts (pins, cutoff, compatibility, backtracks, the uv command) take the index's
answers as arguments; ``fetch_releases`` and ``run_uv`` are the edges.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..core.paths import cache_root
from ..core.progress import Progress, stage
from ..errors import AmlDebugError, BuildError
from ..sources.envfile import normalize_name, requirement_name


SERVER_DIST = "azureml-inference-server-http"
DEFAULT_INDEX = "https://pypi.org/simple"
# Compiled projects whose source builds take minutes and need a compiler and headers: never
# built on the host; a version without a wheel for the image is skipped (then reported).
NO_BUILD = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "tensorflow", "xgboost", "lightgbm", "pyarrow",
            "matplotlib", "pillow", "h5py", "grpcio", "opencv-python", "scikit-image", "numba", "llvmlite",
            "onnxruntime", "catboost", "statsmodels", "shap", "tokenizers", "cryptography", "pydantic-core")
# setuptools 82 dropped pkg_resources; conda's Pythons carry setuptools, and old packages import it.
SETUPTOOLS = "setuptools<82"
# A direct requirement older than its newest allowed release by this much is reported.
FAR_BELOW = dt.timedelta(days=365)
INDEX_TTL = 6 * 3600


def _packaging():
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.utils import parse_sdist_filename, parse_wheel_filename
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pip vendors packaging
        from pip._vendor.packaging.specifiers import SpecifierSet
        from pip._vendor.packaging.utils import parse_sdist_filename, parse_wheel_filename
        from pip._vendor.packaging.version import InvalidVersion, Version
    return SpecifierSet, Version, InvalidVersion, parse_wheel_filename, parse_sdist_filename


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    uploaded: dt.datetime  # the last file's upload time
    files: tuple[str, ...]
    yanked: bool = False
    requires_python: tuple[str, ...] = ()  # each file's Requires-Python ('' when none), as files


# -- pins and the cutoff -------------------------------------------------------------------

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(==\s*[^,;\s]+)\s*(?:;.*)?$")


def exact_pins(lines: Iterable[str]) -> dict[str, str]:
    """{normalized name: '==X' or '==X.*'} for requirement lines that pin one version (or
    one version prefix, as conda's ``=1.21`` becomes)."""
    pins = {}
    for line in lines:
        match = _PIN.match(line.split(" --", 1)[0])
        if match:
            pins[normalize_name(match.group(1))] = match.group(2).replace(" ", "")
    return pins


def matching(releases: dict[str, Release], spec: str) -> list[Release]:
    """Releases matching ``spec``, oldest first (pre-releases only when pinned exactly)."""
    SpecifierSet, Version, InvalidVersion, *_ = _packaging()
    wanted = SpecifierSet(spec)
    found = []
    for release in releases.values():
        try:
            version = Version(release.version)
        except InvalidVersion:
            continue
        if wanted.contains(version, prereleases=True) and not release.yanked:
            found.append((version, release))
    return [r for _, r in sorted(found, key=lambda pair: pair[0])]


def cutoff(pins: dict[str, str], index: dict[str, dict[str, Release]],
           probe: dict) -> Optional[tuple[dt.datetime, str]]:
    """(the upload time of the newest pinned release, 'name==version') or None (no pins)."""
    best = None
    for name, spec in pins.items():
        usable = [r for r in matching(index.get(name, {}), spec) if fits(r, probe, name)]
        if not usable:
            continue
        newest = usable[-1]
        if best is None or newest.uploaded > best[0]:
            best = (newest.uploaded, f"{name}=={newest.version}")
    return best


# -- which builds fit the image's Python ---------------------------------------------------

def _glibc(probe: dict) -> Optional[tuple[int, int]]:
    match = re.match(r"glibc (\d+)\.(\d+)", probe.get("libc") or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _platform_fits(platform: str, probe: dict) -> bool:
    machine = probe["machine"]
    if platform == "any":
        return True
    if probe.get("musl"):
        return platform.startswith("musllinux_") and platform.endswith(machine)
    glibc = _glibc(probe) or (2, 17)
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    match = re.match(r"^manylinux_(\d+)_(\d+)_(.+)$", platform)
    if match:
        return (int(match.group(1)), int(match.group(2))) <= glibc and match.group(3) == machine
    for name, level in legacy.items():
        if platform == f"{name}_{machine}":
            return level <= glibc
    return False


def _tag_fits(tag, probe: dict) -> bool:
    major, minor = (int(x) for x in probe["version"].split(".")[:2])
    interp, abi, platform = tag.interpreter, tag.abi, tag.platform
    if not _platform_fits(platform, probe) or not interp[2:].isdigit():  # 'py36+' exists on PyPI
        return False
    if interp.startswith("py"):
        digits = interp[2:]
        return digits == str(major) or (len(digits) > 1 and digits[0] == str(major) and int(digits[1:]) <= minor)
    if interp.startswith("cp"):
        digits = interp[2:]
        if not digits or digits[0] != str(major):
            return False
        built_for = int(digits[1:] or 0)
        if abi == "abi3":
            return built_for <= minor
        return built_for == minor and abi in (f"cp{major}{minor}{probe.get('abiflags', '')}", "none")
    return False


def _python(probe: dict) -> str:
    return (probe.get("markers") or {}).get("python_full_version") or probe["version"]


def _admits(requires: str, python: str) -> bool:
    """Whether a file's Requires-Python admits ``python`` (a malformed one admits all, as pip reads it)."""
    if not requires:
        return True
    SpecifierSet, Version, *_ = _packaging()
    try:
        return SpecifierSet(requires).contains(Version(python), prereleases=True)
    except Exception:
        return True


def _files(release: Release) -> Iterable[tuple[str, str]]:
    return zip(release.files, release.requires_python or ("",) * len(release.files))


def fits(release: Release, probe: dict, name: str) -> bool:
    """Whether ``release`` has a wheel for the image's Python, or a source archive that may be built."""
    *_, parse_wheel_filename, _ = _packaging()
    python = _python(probe)
    for filename, requires in _files(release):
        if not _admits(requires, python):
            continue
        if filename.endswith(".whl"):
            try:
                tags = parse_wheel_filename(filename)[3]
            except Exception:
                continue
            if any(_tag_fits(tag, probe) for tag in tags):
                return True
        elif filename.endswith((".tar.gz", ".zip")) and name not in NO_BUILD:
            return True
    return False


# A wheel's Python: (major, minor or None for any, '+' for this one and later, 't' for free-threaded).
_PyKey = tuple
_LAST_MINOR = 20


def _wheel_pythons(tag, requires: str) -> list[_PyKey]:
    interp, abi = tag.interpreter, tag.abi
    digits = interp[2:]
    if not digits or not digits.isdigit():
        return []
    major = int(digits[0])
    if interp.startswith("cp") and len(digits) >= 2:
        minor = int(digits[1:])
        return [(major, minor, "+" if abi == "abi3" else "", "t" if abi.endswith("t") and abi != "abi3" else "")]
    if not interp.startswith("py"):
        return []
    # A pure-Python wheel is for the Pythons its Requires-Python admits (py3-none-any with
    # '>=3.12' is not a build for 3.11).
    lowest = int(digits[1:]) if len(digits) > 1 else 0
    admitted = [m for m in range(lowest, _LAST_MINOR + 1) if _admits(requires, f"{major}.{m}")]
    if not admitted:
        return []
    if admitted == list(range(admitted[0], _LAST_MINOR + 1)):
        return [(major, None, "", "")] if admitted[0] == 0 else [(major, admitted[0], "+", "")]
    return [(major, m, "", "") for m in admitted]


def _covers(key: _PyKey, major: int, minor: int, flavor: str) -> bool:
    if key[0] != major or key[3] != flavor:
        return False
    return key[1] is None or key[1] == minor or (key[2] == "+" and key[1] <= minor)


def _py_label(key: _PyKey) -> str:
    return f"{key[0]}.x" if key[1] is None else f"{key[0]}.{key[1]}{key[3]}{key[2]}"


def _py_labels(keys: Iterable[_PyKey]) -> list[str]:
    ordered = sorted(set(keys), key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2], k[3]))
    return list(dict.fromkeys(map(_py_label, ordered)))


def image_platform(probe: dict) -> str:
    """How messages name the image's platform: 'Linux x86_64 with glibc 2.36'."""
    if probe.get("musl"):
        return f"Linux {probe['machine']} with musl"
    glibc = _glibc(probe)
    return f"Linux {probe['machine']} with glibc {glibc[0]}.{glibc[1]}" if glibc else f"Linux {probe['machine']}"


def _platform_label(platform: str, probe: dict) -> tuple[str, Optional[tuple[int, int]]]:
    """(a wheel platform's name in messages, the glibc it needs when that is what keeps it off the image)."""
    if platform.startswith("win"):
        return "Windows", None
    if platform.startswith("macosx"):
        return "macOS", None
    legacy = {"manylinux1": "manylinux_2_5", "manylinux2010": "manylinux_2_12", "manylinux2014": "manylinux_2_17"}
    head, _, rest = platform.partition("_")
    spelled = f"{legacy[head]}_{rest}" if head in legacy else platform
    match = re.match(r"^(manylinux|musllinux)_(\d+)_(\d+)_(.+)$", spelled)
    if not match:
        return platform, None
    kind, level, machine = match.group(1), (int(match.group(2)), int(match.group(3))), match.group(4)
    if machine != probe["machine"]:
        return f"Linux {machine}", None
    if kind == "musllinux":
        return f"Linux {machine} with musl", None
    if probe.get("musl"):
        return f"Linux {machine} with glibc", None
    return f"Linux {machine} with glibc", level


@dataclasses.dataclass(frozen=True)
class Builds:
    """The wheels of some releases, seen from the image."""

    pythons: tuple[str, ...]  # the Pythons with wheels for the image's platform ('3.6', '3.8+', '3.x')
    keys: tuple[_PyKey, ...]  # the same, as keys
    elsewhere: tuple[str, ...]  # platforms with a wheel for the image's own Python, none of them the image's
    other_pythons: tuple[str, ...]  # the Pythons with wheels for other platforms only
    other_platforms: tuple[str, ...]  # those platforms

    @property
    def any(self) -> bool:
        return bool(self.pythons or self.other_pythons)


def pythons_with_builds(releases: Sequence[Release], probe: dict) -> Builds:
    """Which Pythons the wheels of ``releases`` are for on the image's platform, and which
    other platforms have wheels (for the image's own Python, or at all)."""
    *_, parse_wheel_filename, _ = _packaging()
    major, minor = (int(x) for x in probe["version"].split(".")[:2])
    flavor = "t" if "t" in (probe.get("abiflags") or "") else ""
    here: set = set()
    there: dict[str, set] = {}  # platform label -> Python keys
    glibc_needed: dict[str, tuple[int, int]] = {}
    for release in releases:
        for filename, requires in _files(release):
            if not filename.endswith(".whl"):
                continue
            try:
                tags = parse_wheel_filename(filename)[3]
            except Exception:
                continue
            for tag in tags:
                keys = _wheel_pythons(tag, requires)
                if not keys:
                    continue
                if _platform_fits(tag.platform, probe):
                    here.update(keys)
                    continue
                label, level = _platform_label(tag.platform, probe)
                if level is not None:
                    glibc_needed[label] = min(level, glibc_needed.get(label, level))
                there.setdefault(label, set()).update(keys)
    names = {label: f"{label} {glibc_needed[label][0]}.{glibc_needed[label][1]}+" if label in glibc_needed else label
             for label in there}
    elsewhere = sorted(names[label] for label, keys in there.items()
                       if any(_covers(k, major, minor, flavor) for k in keys))
    others = set().union(*there.values()) - here if there else set()
    return Builds(tuple(_py_labels(here)), tuple(sorted(here, key=_py_label)), tuple(elsewhere),
                  tuple(_py_labels(others)), tuple(sorted(names.values())))


def _builds_text(builds: Builds, probe: dict) -> str:
    if not builds.any:
        return "it has no wheels at all"
    image = image_platform(probe)
    if not builds.pythons:
        return (f"it has builds for Python {', '.join(builds.other_pythons)} only on "
                f"{', '.join(builds.other_platforms)}, none for {image}")
    text = f"it has builds for Python {', '.join(builds.pythons)}"
    if builds.elsewhere:
        text += f" on {image}, and for CPython {probe['version']} only on {', '.join(builds.elsewhere)}"
    return text


def _newest_common_python(all_builds: Sequence[Builds], probe: dict) -> Optional[str]:
    """The newest Python every one of ``all_builds`` has a wheel for on the image's platform."""
    image = tuple(int(x) for x in probe["version"].split(".")[:2])
    flavor = "t" if "t" in (probe.get("abiflags") or "") else ""
    candidates = {(k[0], k[1], k[3]) for b in all_builds for k in b.keys if k[1] is not None}
    fitting = [c for c in candidates if (c[0], c[1], c[2]) != (*image, flavor)
               and all(any(_covers(k, *c) for k in b.keys) for b in all_builds)]
    if not fitting:
        return None
    newest = max(fitting)
    return f"{newest[0]}.{newest[1]}{newest[2]}"


def check_pins(pins: dict[str, str], index: dict[str, dict[str, Release]], probe: dict, python_spec: str = "",
               *, other_sources: bool = False) -> None:
    """One BuildError for every pin that matches no release, or has no build for the image's
    Python (naming, for each, the Pythons it has builds for), so that one try shows them all.
    With ``other_sources`` (the environment names its own index or links), a pin the default
    index lacks is left to the resolver."""
    unknown: list[str] = []
    unbuilt: list[tuple[str, Builds, bool]] = []
    for name, spec in pins.items():
        releases = index.get(name)
        if releases is None:
            continue  # not on this index (a find-links wheel, another index): the resolver decides
        found = matching(releases, spec)
        if not found and other_sources:
            continue
        if not found:
            known = ", ".join(r.version for r in list(releases.values())[-8:])
            unknown.append(f"{name}{spec} matches no release on the package index (latest: {known or 'none'}); "
                           "check the version")
            continue
        if any(fits(r, probe, name) for r in found):
            continue
        sdist = any(f.endswith((".tar.gz", ".zip")) and _admits(requires, _python(probe))
                    for r in found for f, requires in _files(r))
        unbuilt.append((f"{name}{spec}", pythons_with_builds(found, probe), sdist))
    if not unknown and not unbuilt:
        return
    parts = list(unknown)
    if unbuilt:
        pinned = re.match(r"^python\s*=?=?\s*(\d+\.\d+)", python_spec or "")
        where = (f" (the environment pins {python_spec}; the line on the base image says why the build is for "
                 f"{probe['version']})" if pinned and pinned.group(1) != probe["version"] else "")
        for number, (pin, builds, sdist) in enumerate(unbuilt):
            has = _builds_text(builds, probe)
            if sdist:
                has += " (and source that needs a compiler, which the offline build does not run)"
            if number == 0:
                parts.append(f"{pin} has no build for the base image's CPython {probe['version']}{where}; {has}")
            else:
                parts.append(f"{pin} has no build for CPython {probe['version']} either; {has}")
        names = [pin.split("==", 1)[0] for pin, _, _ in unbuilt]
        what = f"a {names[0]} release" if len(names) == 1 else \
            f"{', '.join(names[:-1])} and {names[-1]} releases"
        all_builds = [builds for _, builds, _ in unbuilt]
        parts.append(f"Pin {what} with wheels for Python {probe['version']}{_platform_note(all_builds, probe)}"
                     f"{_base_image_hint(all_builds, probe)}")
    raise BuildError(". ".join(parts))


def _platform_note(all_builds: Sequence[Builds], probe: dict) -> str:
    """' on Linux aarch64 with glibc 2.36' when a platform, not only a Python, is missing."""
    if any(b.any and (not b.pythons or b.elsewhere) for b in all_builds):
        return f" on {image_platform(probe)}"
    return ""


def _base_image_hint(all_builds: Sequence[Builds], probe: dict) -> str:
    python = _newest_common_python(all_builds, probe)
    if python:
        return f", or pass --base-image with an image whose Python is {python}"
    linux = [set(p for p in b.elsewhere if p.startswith("Linux")) for b in all_builds]
    common = set.intersection(*linux) if linux else set()
    if common:
        return f", or pass --base-image with an image for {sorted(common)[0]}"
    return ""


# -- the index (an edge: HTTP, cached on disk) ---------------------------------------------

def index_url() -> str:
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return DEFAULT_INDEX


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def releases_from_simple_json(name: str, data: dict) -> dict[str, Release]:
    """Releases from a PEP 691 project page (with PEP 700 upload times)."""
    _, Version, _, _, parse_sdist_filename = _packaging()
    by_version: dict[str, list] = {}
    normal: dict[str, str] = {}  # a wheel name's version -> normalized: packaging's full parse of
    # every wheel name was most of the cost for projects with thousands of files (botocore)
    for entry in data.get("files", []):
        filename = entry.get("filename", "")
        try:
            if filename.endswith(".whl"):
                raw = filename.split("-")[1]
                if raw not in normal:
                    normal[raw] = str(Version(raw))
                version = normal[raw]
            elif filename.endswith((".tar.gz", ".zip")):
                version = str(parse_sdist_filename(filename)[1])
            else:
                continue
        except Exception:
            continue
        by_version.setdefault(version, []).append(entry)
    out = {}
    for version, entries in by_version.items():
        times = [_parse_time(e["upload-time"]) for e in entries if e.get("upload-time")]
        if not times:
            continue
        out[version] = Release(version, max(times), tuple(e["filename"] for e in entries),
                               all(bool(e.get("yanked")) for e in entries),
                               tuple(str(e.get("requires-python") or "") for e in entries))
    return out


def fetch_releases(name: str, url: str | None = None) -> Optional[dict[str, Release]]:
    """The releases of project ``name`` on the index (None when the index does not know it),
    cached for a few hours under amldebug's cache."""
    url = url or index_url()
    name = normalize_name(name)
    cache = cache_root() / "index" / (re.sub(r"\W", "_", url) + "-" + name + ".json")
    data = None
    if cache.is_file() and time.time() - cache.stat().st_mtime < INDEX_TTL:
        try:
            data = json.loads(cache.read_text())
        except ValueError:
            data = None
    if data is None:
        request = urllib.request.Request(f"{url}/{name}/", headers={
            "Accept": "application/vnd.pypi.simple.v1+json", "User-Agent": "amldebug"})
        cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
        context = ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as answer:
                data = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise BuildError(f"the package index {url} answered {exc.code} for '{name}'; check the index "
                             "(UV_DEFAULT_INDEX / PIP_INDEX_URL)") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BuildError(f"cannot read '{name}' from the package index {url} ({exc}); check the host's "
                             "network or proxy") from None
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data))
    return releases_from_simple_json(name, data)


# -- uv (an edge: a subprocess) ------------------------------------------------------------

def uv_binary() -> str:
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise AmlDebugError(f"uv is not installed in the Python that runs amldebug ({sys.executable}); install "
                            f"it there: '{sys.executable} -m pip install uv'") from None


def uv_platform(probe: dict) -> str:
    """uv's --python-platform for the image: manylinux_2_X at the image's glibc (uv knows 2_17..2_40)."""
    machine = probe["machine"]
    if probe.get("musl"):
        return f"{machine}-unknown-linux-musl"
    glibc = _glibc(probe)
    if glibc is None or glibc < (2, 17):
        return f"{machine}-manylinux2014" if glibc is None else f"{machine}-unknown-linux-gnu"
    return f"{machine}-manylinux_2_{min(glibc[1], 40)}"


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def uv_command(requirements: Path, target: Path, probe: dict, *, bound: Optional[dt.datetime] = None,
               exempt: Iterable[str] = (), compile_only: bool = False, constraints: Optional[Path] = None,
               upgrade: Iterable[str] = ()) -> list[str]:
    """``uv pip install --target`` (or ``uv pip compile``) for the image's Python and platform;
    ``upgrade``: the names pip's ``-U`` takes to their newest release (what is installed in
    ``target`` already is kept otherwise, as pip's only-if-needed strategy does)."""
    cmd = [uv_binary(), "pip", "compile" if compile_only else "install"]
    if compile_only:
        cmd += ["--no-header", "--no-annotate", "--quiet"]
    else:
        cmd += ["--target", str(target), "--link-mode", "copy"]
    cmd += ["--python-version", probe["version"], "--python-platform", uv_platform(probe),
            "--only-binary", ",".join(NO_BUILD), "--no-progress", "--color", "never"]
    if bound is not None:
        cmd += ["--exclude-newer", _stamp(bound + dt.timedelta(seconds=1))]
        now = _stamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
        for name in sorted(set(exempt)):
            cmd += ["--exclude-newer-package", f"{name}={now}"]
    for var, option in (("PIP_EXTRA_INDEX_URL", "--extra-index-url"), ("PIP_FIND_LINKS", "--find-links")):
        for value in (os.environ.get(var) or "").split():
            if "://" in value and not value.startswith("file://"):
                cmd += [option, value]
            elif os.path.isdir(value.replace("file://", "")):
                cmd += [option, value.replace("file://", "")]
    if constraints is not None:
        cmd += ["--constraint", str(constraints)]
    for name in upgrade:
        cmd += ["--upgrade-package", name]
    return cmd + ([str(requirements)] if compile_only else ["-r", str(requirements)])


def uv_env(no_compiler: bool = False) -> dict:
    """uv's environment: amldebug's cache, pip's index and certificate settings. ``no_compiler``
    (the image's Python is not the host's): a source build gets no C compiler, so a package
    whose C extensions are optional (wrapt 1.12, which inference-schema pins) builds its pure
    Python wheel, as pip builds it in an image without a compiler, instead of extensions for
    the host's Python that the image cannot load."""
    env = dict(os.environ, NO_COLOR="1")
    if no_compiler:
        env.update(CC="false", CXX="false")
    env.setdefault("UV_CACHE_DIR", str(cache_root() / "uv"))  # a wheel cache on disk: rebuilds download nothing
    if not env.get("UV_DEFAULT_INDEX") and not env.get("UV_INDEX_URL") and env.get("PIP_INDEX_URL"):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]
    if not env.get("SSL_CERT_FILE") and env.get("PIP_CERT") and os.path.isfile(env["PIP_CERT"]):
        env["SSL_CERT_FILE"] = env["PIP_CERT"]
    for name in ("VIRTUAL_ENV", "UV_SYSTEM_PYTHON", "UV_TARGET", "UV_PREFIX"):
        env.pop(name, None)
    return env


def run_uv(cmd: list[str], *, no_compiler: bool = False) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=uv_env(no_compiler), errors="replace")
    except OSError as exc:
        raise AmlDebugError(f"cannot run uv ({cmd[0]}): {exc}") from None
    return proc.returncode, proc.stdout


def uv_failure(output: str, probe: dict) -> BuildError:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("Using ", "Resolved "))]
    shown = "\n".join(lines[-14:])
    platform = f"CPython {probe['version']} on Linux {probe['machine']}"
    missing = re.findall(r"Because (\S+) was not found in the package registry", output)
    if missing:
        return BuildError(f"no package named '{missing[0]}' on the package index; check the name (PyPI names can "
                          f"differ from conda's, e.g. pytorch -> torch)\nuv said:\n{shown}", output)
    if "No solution found" in output:
        return BuildError(f"no set of versions satisfies the environment for {platform}; loosen the pins uv "
                          f"names\nuv said:\n{shown}", output)
    built = _FAILED_BUILD.search(output)
    if built:
        name = f"{built.group(1)}=={built.group(2)}"
        chain = re.search(r"^hint: `[^`]+` \(v[^)]+\) was included because (.+)$", output, re.M)
        why = f" ({built.group(1)} is there because {chain.group(1)})" if chain else ""
        advice = [m for m in re.findall(r"^hint: (.+)$", output, re.M)
                  if "was included because" not in m and not m.startswith("Build failures usually")]
        if advice:  # the package's own reason ('`sklearn` is often confused for `scikit-learn`')
            return BuildError(f"{name} cannot be installed: its source refuses to build{why}; uv says: "
                              f"{' '.join(advice)}\nuv said:\n{shown}", output)
        return BuildError(f"{name} has no wheel for {platform}, and its source did not build on the host{why}: the "
                          f"offline build compiles no C code for a Python other than the host's. Pin a release (or a "
                          f"newer version of what requires it) with wheels for Python {probe['version']}, or pass "
                          f"--base-image with an image whose Python has them\nuv said:\n{shown}", output)
    return BuildError(f"resolving the environment for {platform} failed; fix what uv reports (its index and "
                      f"proxy are the host's)\nuv said:\n{shown}", output)


# -- what was installed ---------------------------------------------------------------------

def installed(target: Path) -> dict[str, tuple[str, Path]]:
    """{normalized name: (version, dist-info folder)} of the distributions in ``target``."""
    out = {}
    for info in target.glob("*.dist-info"):
        stem = info.name[:-len(".dist-info")]
        name, _, version = stem.rpartition("-")
        if name:
            out[normalize_name(name)] = (version, info)
    return out


def _wheel_tags(info: Path) -> tuple[bool, list[str]]:
    try:
        text = (info / "WHEEL").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True, []
    pure = re.search(r"^Root-Is-Purelib:\s*true", text, re.M | re.I) is not None
    return pure, re.findall(r"^Tag:\s*(\S+)", text, re.M)


def source_builds(output: str) -> list[tuple[str, str]]:
    """(name, version) of the packages uv built from source ("Built fusepy==3.0.1")."""
    return [(normalize_name(m.group(1)), m.group(2)) for m in re.finditer(r"^\s*Built (\S+)==(\S+)", output, re.M)]


def check_source_builds(built: Sequence[tuple[str, str]], target: Path, probe: dict) -> list[str]:
    """Notes for packages built from source on the host that fit the image (pure Python, or
    compiled for the same Python); BuildError for one compiled for the host's other Python."""
    have = installed(target)
    host = "%d.%d" % sys.version_info[:2]
    notes = []
    for name, version in built:
        info = have.get(name, (version, None))[1]
        pure, tags = _wheel_tags(info) if info is not None else (True, [])
        if pure:
            notes.append(f"amldebug: {name}=={version} exists only as source: built into a pure-Python wheel on the "
                         "host")
            continue
        tag = tags[0] if tags else "?"
        if host != probe["version"]:
            raise BuildError(f"{name}=={version} has no wheel for the base image's CPython {probe['version']}; its "
                             f"source has compiled code, and the host's Python {host} compiled it ({tag}), which does "
                             f"not fit the image. Pin a {name} release with wheels for Python {probe['version']}")
        notes.append(f"amldebug: {name}=={version} has no wheel; compiled from source on the host ({tag}, the "
                     f"image's Python {probe['version']})")
    return notes


def _marker_environment(probe: dict) -> dict:
    machine = probe["machine"]
    env = {"python_version": probe["version"], "python_full_version": _python(probe), "platform_machine": machine,
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython"}
    env.update(probe.get("markers") or {})
    return env


def _requirement(line: str):
    from ..sources.envfile import _requirement_parser

    Requirement, InvalidRequirement = _requirement_parser()
    try:
        return Requirement(line.split(" --", 1)[0].strip())
    except InvalidRequirement:
        return None


def requirers(target: Path, probe: dict, lines: Iterable[str] = ()) -> dict[str, list[tuple[str, str, str]]]:
    """{name: [(requiring distribution, its version, the specifier it asks, e.g. '==1.0.45')]}
    from the Requires-Dist lines of what is installed in ``target``, markers evaluated for the
    image's Python and the extras asked for (by ``lines``, the environment's, or by another
    distribution)."""
    have = installed(target)
    environment = _marker_environment(probe)
    requires: dict[str, list] = {}
    for name, (_, info) in have.items():
        try:
            text = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        header = text.split("\n\n", 1)[0]
        parsed = (_requirement(m) for m in re.findall(r"^Requires-Dist:\s*(.+?)\s*$", header, re.M))
        requires[name] = [r for r in parsed if r is not None]
    extras: dict[str, set[str]] = {}
    for line in lines:
        wanted = _requirement(line) if requirement_name(line) else None
        if wanted is not None and wanted.extras:
            extras.setdefault(normalize_name(wanted.name), set()).update(wanted.extras)

    def applies(requirer: str, requirement) -> bool:
        if requirement.marker is None:
            return True
        return any(requirement.marker.evaluate(dict(environment, extra=extra))
                   for extra in [""] + sorted(extras.get(requirer, ())))

    out: dict[str, list[tuple[str, str, str]]] = {}
    for _ in range(len(requires) + 1):  # an extra asked for can make more requirements apply
        out = {}
        grew = False
        for requirer, found in requires.items():
            for requirement in found:
                if not applies(requirer, requirement):
                    continue
                name = normalize_name(requirement.name)
                if requirement.extras and not set(requirement.extras) <= extras.get(name, set()):
                    extras.setdefault(name, set()).update(requirement.extras)
                    grew = True
                out.setdefault(name, []).append((requirer, have[requirer][0], str(requirement.specifier)))
        if not grew:
            break
    return out


def _newest_above(name: str, mine: str, releases: dict[str, Release], probe: dict, bound: Optional[dt.datetime]):
    """((version, release) installed, (version, release) of the newest release above it that
    fits the image and the date bound), or None when the index does not list what is installed."""
    _, Version, InvalidVersion, *_ = _packaging()
    try:
        parsed_mine = Version(mine)
    except InvalidVersion:
        return None
    ordered = []
    for release in releases.values():
        try:
            ordered.append((Version(release.version), release))
        except InvalidVersion:
            continue
    ordered.sort(key=lambda pair: pair[0], reverse=True)
    installed_release = next((pair for pair in ordered if pair[0] == parsed_mine), None)
    if installed_release is None:
        return None  # another project of that name on the default index, or a local wheel
    for version, release in ordered:
        if version <= parsed_mine:
            break
        late = bound is not None and release.uploaded > bound
        if not (version.is_prerelease or release.yanked or late) and fits(release, probe, name):
            return installed_release, (version, release)
    return installed_release, None


def backtracks(have: dict[str, tuple[str, Path]], index: dict[str, dict[str, Release]], probe: dict,
               bound: Optional[dt.datetime], exempt: Iterable[str] = (), *, direct: Iterable[str] = (),
               held: Iterable[str] = (), required: Optional[dict[str, list[tuple[str, str, str]]]] = None
               ) -> list[str]:
    """Warnings for installed distributions far below the newest release they could have had
    (fitting the image, under the date bound unless exempt from it), naming the requirements
    that hold each back (``required``, from ``requirers``).

    Reported: a direct requirement that fell; a dependency that fell with nothing installed
    asking for less (a conflict held it back); and a dependency held back by one reported (the
    azureml-core of an azureml-defaults that fell). A dependency capped by a package at its
    newest release is what that package declares, as pip and conda would install it: not
    reported. ``held``: what the environment or amldebug itself bounds from above, never reported."""
    exempt, held, direct, required = set(exempt), set(held), set(direct), required or {}
    SpecifierSet, *_ = _packaging()
    falls = {}
    for name in sorted(have):
        if name in held or name not in index:
            continue
        found = _newest_above(name, have[name][0], index[name], probe, None if name in exempt else bound)
        if found is None or found[1] is None:
            continue
        (mine_version, mine), (newest_version, newest) = found
        if mine_version.release == newest_version.release:
            continue  # only a post release: the same code
        if mine_version.major < newest_version.major or newest.uploaded - mine.uploaded > FAR_BELOW:
            holding = [(requirer, version, spec) for requirer, version, spec in required.get(name, [])
                       if not SpecifierSet(spec).contains(newest_version, prereleases=True)]
            falls[name] = (mine, newest, holding)
    reported = [name for name, (_, _, holding) in falls.items() if name in direct or not holding]
    while True:  # dragged down by one reported, in the order the reasons come
        more = [name for name, (_, _, holding) in falls.items() if name not in reported
                and any(requirer in reported for requirer, _, _ in holding)]
        if not more:
            break
        reported += more
    def named(requirements: list[tuple[str, str, str]], name: str) -> str:
        return ", ".join(f"{requirer} {version} ({name}{spec})" for requirer, version, spec in requirements)

    out = []
    for name in reported:
        mine, newest, holding = falls[name]
        limit = f" (the newest allowed by the date bound {bound.date()})" if bound and name not in exempt else ""
        if holding:
            why = f"held back by {named(holding, name)}"
        else:
            why = f"a dependency held it back: pin {name}=={newest.version} to see which one"
            if required.get(name):
                why += f"; required by {named(required[name], name)}"
        out.append(f"amldebug: warning: {name} resolved to {have[name][0]} ({mine.uploaded.date()}), far below "
                   f"{newest.version} ({newest.uploaded.date()}){limit}; {why}")
    return out


def top_level_modules(target: Path, names: Iterable[str]) -> dict[str, list[str]]:
    """{distribution: importable top-level modules} from each one's RECORD; for a namespace
    package (``azureml/`` without ``__init__.py``) the modules one level down (``azureml.core``)."""
    have = installed(target)
    out = {}
    for name in names:
        if name not in have or not (have[name][1] / "RECORD").is_file():
            continue
        modules: list[str] = []
        for row in (have[name][1] / "RECORD").read_text(errors="replace").splitlines():
            parts = row.split(",", 1)[0].split("/")
            if parts[0].endswith((".dist-info", ".data")) or parts[0] in ("bin", "..") or not parts[0]:
                continue
            if len(parts) == 1:
                stem = parts[0].split(".", 1)[0]
                if parts[0].endswith((".py", ".so")) and stem.isidentifier():
                    modules.append(stem)
                continue
            if not parts[0].isidentifier():
                continue
            if (target / parts[0] / "__init__.py").is_file():
                modules.append(parts[0])
            elif len(parts) > 2 and parts[1].isidentifier() and (target / parts[0] / parts[1] / "__init__.py").is_file():
                modules.append(f"{parts[0]}.{parts[1]}")
        modules = [m for m in dict.fromkeys(modules)
                   if not m.split(".")[-1].startswith("_") and m.split(".")[-1] not in ("tests", "test")]
        if modules:
            out[name] = modules
    return out


def _bounds_above(line: str) -> bool:
    return re.search(r"(==|<|~=)", line.split(";", 1)[0]) is not None


def held_names(lines: Iterable[str]) -> set[str]:
    """Names the environment's lines (amldebug's setuptools<82 included) or its constraints files
    (``--constraint PATH``) bound from above (==, <, ~=): where they are is where they were asked
    to be, no backtrack."""
    import shlex

    names = {requirement_name(line) for line in lines if _bounds_above(line)}
    for line in lines:
        if not line.startswith("--constraint "):
            continue
        try:
            text = Path(shlex.split(line)[1]).read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        for row in text.splitlines():
            row = row.split("#", 1)[0].strip()
            if row and _bounds_above(row):
                names.add(requirement_name(row))
    names.discard(None)
    return names


def direct_names(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n for n in map(requirement_name, lines) if n))


# -- the whole step -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Resolved:
    packages: int  # distributions installed
    seconds: float
    bound: Optional[dt.datetime]
    direct: tuple[str, ...]  # the environment's own requirement names (and the server)


def releases(names: Iterable[str], known: Optional[dict[str, dict[str, Release]]] = None
              ) -> dict[str, dict[str, Release]]:
    """The index's answers for ``names``, asking only for those not ``known`` already."""
    from concurrent.futures import ThreadPoolExecutor

    known = dict(known or {})
    names = [name for name in dict.fromkeys(names) if name not in known]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(fetch_releases, names))
    known.update((name, found) for name, found in zip(names, answers) if found is not None)
    return known


def server_stack(server_line: str, probe: dict, work: Path) -> set[str]:
    """The names of the scoring server's dependency closure (resolved alone, current; cached
    for a few hours, as the index answers are)."""
    key = re.sub(r"\W", "_", f"{server_line}-{probe['version']}-{uv_platform(probe)}")
    cache = cache_root() / "server-stack" / f"{key}.json"
    if cache.is_file() and time.time() - cache.stat().st_mtime < INDEX_TTL:
        try:
            return set(json.loads(cache.read_text()))
        except ValueError:
            pass
    requirements = work / "server.txt"
    requirements.write_text(server_line + "\n", encoding="utf-8")
    status, output = run_uv(uv_command(requirements, work, probe, compile_only=True))
    if status != 0:
        raise uv_failure(output, probe)
    names = {normalize_name(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", output, re.M)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(sorted(names)))
    return names


@dataclasses.dataclass(frozen=True)
class Steps:
    """An environment in Azure ML's install order: conda's packages (mapped to PyPI) first, then
    the file's pip section on top, as ``pip install -U`` (conda/env/installers/pip.py)."""

    conda: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    added: tuple[str, ...] = ()  # amldebug's: setuptools goes with conda's part, the server with pip's

    @property
    def user(self) -> list[str]:
        return list(self.conda) + list(self.pip)

    @property
    def lines(self) -> list[str]:
        return self.user + list(self.added)

    def split_added(self) -> tuple[list[str], list[str]]:
        """(amldebug's lines for the conda step, for the pip step)."""
        first = [line for line in self.added if requirement_name(line) == "setuptools"]
        return first, [line for line in self.added if line not in first]


def _applies(line: str, probe: dict) -> bool:
    requirement = _requirement(line)
    return requirement is None or requirement.marker is None or requirement.marker.evaluate(_marker_environment(probe))


def floors(lines: Iterable[str], index: dict[str, dict[str, Release]], probe: dict, bound: Optional[dt.datetime],
           exempt: Iterable[str] = ()) -> dict[str, str]:
    """{name: newest version} for each package the lines name without pinning it: the newest
    release its specifier admits that fits the image (and the date bound, unless exempt). A
    named package keeps that release and its dependencies give way, as with pip's ``-U``
    (uv, left alone, may take an old release of a named package so that a dependency can be
    newer: azureml-defaults 1.0.85 of 2020 for numpy 2)."""
    exempt = set(exempt)
    out: dict[str, str] = {}
    for line in lines:
        name = requirement_name(line)
        requirement = _requirement(line) if name else None
        if requirement is None or requirement.url or name not in index or not _applies(line, probe):
            continue
        if any(s.operator in ("==", "===") for s in requirement.specifier):
            continue
        limit = None if name in exempt else bound
        found = [r for r in matching(index[name], str(requirement.specifier) or ">=0")
                 if fits(r, probe, name) and (limit is None or r.uploaded <= limit)]
        stable = [r for r in found if not _prerelease(r.version)]
        if stable:
            out[name] = stable[-1].version
    return out


def _prerelease(version: str) -> bool:
    _, Version, InvalidVersion, *_ = _packaging()
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return True


_CHANGE = re.compile(r"^\s*([+-])\s+([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)


def replaced(output: str) -> list[tuple[str, str, str]]:
    """(name, version before, version after) of what an install step replaced (uv's ' - x==1' and
    ' + x==2' lines)."""
    removed, added = {}, {}
    for sign, name, version in _CHANGE.findall(output):
        (removed if sign == "-" else added)[normalize_name(name)] = version
    return [(name, removed[name], added[name]) for name in removed if name in added and added[name] != removed[name]]


def _unsolvable(output: str) -> bool:
    return "No solution found" in output or "unsatisfiable" in output.lower()


_NAMED = re.compile(r"(?:^|[\s(,`])([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?:==|>=|<=|!=|~=|<|>)"
                    r"|versions of ([A-Za-z0-9][A-Za-z0-9._-]*)|you require ([A-Za-z0-9][A-Za-z0-9._-]*)")


def conflict_names(output: str) -> set[str]:
    """The packages uv names in its account of a conflict ('Because pyarrow>=0.17.0,<=1.0.1 has
    no usable wheels ... azureml-dataset-runtime>=1.25.0 depends on pyarrow>=0.17.0,<2.0.0')."""
    cause = output[output.find("No solution found"):] if "No solution found" in output else ""
    return {normalize_name(next(g for g in match.groups() if g)) for match in _NAMED.finditer(cause)} - {"python"}


_HOST_WHEEL = re.compile(r"The built wheel `([A-Za-z0-9][A-Za-z0-9_.]*?)-\d[^`]*` is not compatible with the target")
_FAILED_BUILD = re.compile(r"Failed to build `?([A-Za-z0-9][A-Za-z0-9._-]*)==([^`\s]+)`?")


def far_behind_build(output: str, index: dict[str, dict[str, Release]], probe: dict) -> Optional[str]:
    """When uv failed building a source archive of a release far below the newest one that fits
    the image: a sentence naming that backtrack, so that it, not a compiler's error, is what the
    user reads first."""
    match = _FAILED_BUILD.search(output)
    if not match:
        return None
    name, version = normalize_name(match.group(1)), match.group(2)
    releases_of = index.get(name) or {}
    found = _newest_above(name, version, releases_of, probe, None) if releases_of else None
    if not found or found[1] is None:
        return None
    (mine_version, mine), (newest_version, newest) = found
    if mine_version.major < newest_version.major or newest.uploaded - mine.uploaded > FAR_BELOW:
        return (f"the resolver went far back for {name}: {version} ({mine.uploaded.date()}), though "
                f"{newest.version} ({newest.uploaded.date()}) has a build for CPython {probe['version']}; the old "
                f"release has no wheel for it and its source did not build on the host. A requirement of the "
                f"environment holds {name} back: pin the package that requires it to a newer release, or pin "
                f"{name}>={newest.version} to see which one")
    return None


def _write(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def install(steps: Steps, target: Path, probe: dict, progress: Progress, *, python_spec: str = "",
            bound_unpinned: bool = True) -> Resolved:
    """Install ``steps`` into ``target`` for the image's Python with uv on the host, in Azure
    ML's order: the conda part, then the pip part on top (named pip packages taken to their
    newest release, what conda put there replaced where the pip part needs it, each replacement
    logged). Named packages keep their newest fitting release (``floors``). The date bound and
    those floors are amldebug's, not Azure ML's: when they leave no solution they are relaxed,
    and the log says so."""
    started = time.monotonic()
    lines = steps.lines
    direct = direct_names(lines)
    pins = exact_pins(steps.user)
    index = releases(list(pins) + direct)
    other_sources = any(line.startswith(("--index-url", "--extra-index-url", "--find-links", "--no-index"))
                        for line in lines)
    check_pins(pins, index, probe, python_spec, other_sources=other_sources)
    found = cutoff(pins, index, probe) if bound_unpinned else None
    bound = found[0] if found else None
    exempt: set[str] = set()
    if bound is not None:
        server = next((line for line in lines if requirement_name(line) == SERVER_DIST), SERVER_DIST)
        # The whole stack, even what the environment lists unpinned (inference-schema, flask): an old
        # one would hold the server back to an old release.
        # setuptools too: conda's is as new as its Python, and one older than 60 needs the stdlib's
        # distutils, which Python 3.12 dropped and Debian's python3 leaves out.
        stack = server_stack(server, probe, target.parent) | {SERVER_DIST}
        exempt = stack | {"setuptools"}
        progress(f"amldebug: unpinned packages bounded to releases before {bound:%Y-%m-%d %H:%M} UTC, when "
                 f"{found[1]} (the newest pin) came out, as conda would keep them compatible; the scoring server's "
                 f"{len(stack)} packages and setuptools stay current")
    conda_added, pip_added = steps.split_added()
    parts = [("conda", list(steps.conda) + conda_added, ()), ("pip", list(steps.pip) + pip_added,
                                                              tuple(direct_names(steps.pip)))]
    parts = [part for part in parts if any(requirement_name(line) for line in part[1])]
    both = bool(steps.conda) and any(requirement_name(line) for line in steps.pip)  # the file has both parts
    work = target.parent
    no_compiler = probe["version"] != "%d.%d" % sys.version_info[:2]
    stage(progress, f"resolving {len(direct)} requirements for CPython {probe['version']} on Linux "
                    f"{probe['machine']} with uv" + (", conda's part first, then pip's on top" if both else ""))
    limit, keep_newest, relaxed = bound, True, 0
    while True:
        newest: dict[str, str] = {}
        failed = None
        for number, (step, step_lines, upgrade) in enumerate(parts):
            # Each step's own names only: the pip step may replace what conda's put there.
            own = [line for line in step_lines if line not in steps.added]  # amldebug's lines keep their bounds
            mine = floors(own, index, probe, limit, exempt) if keep_newest else {}
            newest.update(mine)
            constraints = _write(work / f"{step}-floors.txt", [f"{n}>={v}" for n, v in sorted(mine.items())])
            requirements = _write(work / f"{step}.txt", step_lines)
            command = uv_command(requirements, target, probe, bound=limit, exempt=exempt, constraints=constraints,
                                 upgrade=upgrade)
            status, output = run_uv(command, no_compiler=no_compiler)
            stale = _HOST_WHEEL.search(output) if status != 0 else None
            if stale:  # a wheel built for the host's Python earlier, in uv's cache: build it again
                status, output = run_uv(command + ["--refresh-package", stale.group(1)], no_compiler=no_compiler)
            if status != 0:
                failed = (step, output)
                break
            for note in check_source_builds(source_builds(output), target, probe):
                progress(note)
            if number > 0 and both:
                for name, before, after in replaced(output):
                    progress(f"amldebug: the pip step replaced {name} {before} (from conda's part) with {after}, "
                             "as Azure ML's 'pip install -U' does")
        if failed is None:
            break
        step, output = failed
        # Relax what is amldebug's, least first: the bound for the packages in the conflict, the
        # whole bound, then the named packages' floors.
        conflict = conflict_names(output) - exempt - set(pins)
        stuck = _FAILED_BUILD.search(output) or _HOST_WHEEL.search(output)
        unbuilt = normalize_name(stuck.group(1)) if stuck else None
        if unbuilt and limit is not None and unbuilt not in exempt | set(pins) and relaxed < 8:
            relaxed += 1
            exempt.add(unbuilt)
            progress(f"amldebug: the date bound ({limit:%Y-%m-%d}) takes {unbuilt} to a release with no wheel for "
                     f"CPython {probe['version']} whose source does not build here; it takes today's release")
        elif _unsolvable(output) and limit is not None and conflict and relaxed < 8:
            relaxed += 1
            exempt |= conflict
            progress(f"amldebug: the date bound ({limit:%Y-%m-%d}) leaves no solution for "
                     f"{', '.join(sorted(conflict))}; those take today's releases, the rest stay bounded")
        elif _unsolvable(output) and limit is not None:
            limit = None
            progress(f"amldebug: the date bound ({bound:%Y-%m-%d}) leaves the environment with no solution; resolving "
                     "again without it (the releases of today, as an image built today in Azure ML would get)")
        elif _unsolvable(output) and keep_newest and newest:
            keep_newest = False
            held = ", ".join(f"{n}>={v}" for n, v in sorted(newest.items()))
            progress(f"amldebug: the named packages cannot all have their newest releases ({held}); letting the "
                     "resolver choose (a far backtrack is named below)")
        else:
            built = _FAILED_BUILD.search(output)
            behind = far_behind_build(output, releases([built.group(1)], index), probe) if built else None
            error = uv_failure(output, probe)
            if behind:
                raise BuildError(f"{behind}\n{error}", output)
            if both:
                when = "on top of conda's part" if step == "pip" else "installed first, as conda does"
                raise BuildError(f"the environment's {step} part ({when}): {error}", error.output)
            raise error
        shutil.rmtree(target)
        target.mkdir()
    have = installed(target)
    try:
        # Every installed distribution, not only the direct ones: a dependency can fall far too
        # (azureml-core under azureml-defaults). The answers are cached for a few hours.
        index = releases(have, index)
    except BuildError as exc:
        progress(f"amldebug: warning: only the environment's own requirements were checked for backtracks: {exc}")
    for warning in backtracks(have, index, probe, limit, exempt, direct=direct, held=held_names(lines),
                              required=requirers(target, probe, lines)):
        progress(warning)
    seconds = time.monotonic() - started
    progress(f"amldebug: installed {len(have)} packages in {seconds:.1f} s")
    return Resolved(len(have), seconds, limit, tuple(direct))
