"""``amldebug build``: a local scoring image from an environment file, with no network
inside the build.

Packages are resolved and downloaded on the HOST, by the host's pip with its own
configuration (index, proxy, certificates), for the base image's Python version and
platform, into a folder. The image is then ``FROM <base>`` plus ``COPY`` steps only: that
folder becomes ``/opt/amldebug-env/site-packages``, a ``.pth`` hook puts it in front of
the image Python's own site-packages (the way a virtual environment would), and an
``azmlinfsrv`` script with the image's Python in its shebang goes on PATH.

Images are tagged ``amldebug-env:<hash>`` (hash of the environment, the base image id and
amldebug's version) and labelled with that hash, so an unchanged environment is found
again without pip or a Docker build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from ..core.paths import cache_root
from ..core.progress import Progress, stage
from ..core.version import __version__
from ..engine.docker import (
    build_image_from_context,
    connect,
    find_image_by_label,
    remove_image,
    run_once,
    tag_image,
)
from ..errors import AmlDebugError, BuildError, ImageError, UsageError
from ..sources import (
    conda,
    read_environment,  # noqa: F401 (build.read_environment, as before)
)
from ..sources.envfile import Environment, requirement_name
from . import python, resolve
from .python import DEFAULT_BASE_IMAGE, get_base_image, probe_python  # noqa: F401 (build.get_base_image, as before)


DEFAULT_REPOSITORY = "amldebug-env"
ENV_ROOT = "/opt/amldebug-env"
SERVER_DIST = "azureml-inference-server-http"
# Either one brings the scoring server (azureml-defaults depends on it).
SERVER_PROVIDERS = frozenset({"azureml-inference-server-http", "azureml-defaults"})

LABEL_HASH = "amldebug.env.hash"
LABEL_BASE = "amldebug.env.base"
LABEL_BASE_ID = "amldebug.env.base-id"
LABEL_FILE = "amldebug.env.file"
LABEL_PYTHON = "amldebug.env.python"
LABEL_VERSION = "amldebug.version"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class BuildResult:
    tag: str
    image_id: str
    built: bool  # False: an image with the same hash existed (no pip, no Docker build)
    seconds: float


# Bump when the image layout below changes, so older images are not reused.
_LAYOUT_VERSION = "3"  # 2: uv, conda packages mapped, setuptools, import check; 3: the pinned Python, conda then pip


def env_hash(env: Environment, base_image_id: str, *, version: str = __version__) -> str:
    """Hash of what the built image depends on: the environment's meaning (its pip and
    conda lines, not comments or layout), the bytes of local files it names, the base
    image's id and amldebug's version. 16 hex digits."""
    digest = hashlib.sha256()
    digest.update(f"amldebug {version} layout {_LAYOUT_VERSION}\nbase {base_image_id}\n".encode())
    for line in env.pip:
        digest.update(f"pip {line}\n".encode())
    for spec in env.conda:
        digest.update(f"conda {spec}\n".encode())
    for path in env.inputs:
        digest.update(f"file {path} ".encode())
        digest.update(_file_digest(path).encode() + b"\n")
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise UsageError(f"cannot read '{path}' named by the environment file ({exc})") from None
    return h.hexdigest()


_TAG = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


def check_tag(tag: str) -> tuple[str, str]:
    """(repository, tag) of an image name given with --tag."""
    if not _TAG.match(tag):
        raise UsageError(f"--tag '{tag}' is not a valid image name; use lower-case 'name' or 'name:tag', "
                         "e.g. 'my-env:1'")
    repo, _, name = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, ":", "latest")
    return repo, name


def with_server(env: Environment, server_version: Optional[str]) -> list[str]:
    """The pip lines plus the scoring server when the environment lacks it: pinned to the
    base image's version when the base has one, so the image keeps the server it had."""
    lines = list(env.pip)
    if env.requirement_names & SERVER_PROVIDERS:
        return lines
    if any("--hash" in line or line == "--require-hashes" for line in lines):
        raise UsageError(f"{env.label} pins hashes, so amldebug cannot add {SERVER_DIST} to it; "
                         f"add {SERVER_DIST} (with its hashes) to the file")
    lines.append(f"{SERVER_DIST}=={server_version}" if server_version else SERVER_DIST)
    return lines


def conda_requirements(env: Environment, probe: dict, progress: Progress = _stderr) -> tuple[list[str], str]:
    """The environment's conda packages as PyPI requirements, and its python spec ('' if
    none). Every mapping is logged; which Python the build is for is said by the choice of the
    base image (envbuild/python.py)."""
    mapped = conda.plan(env.conda, env.channels)
    for line in mapped.log_lines():
        progress(line)
    return mapped.requirements, mapped.python_spec or ""


_PYPI_ITSELF = re.compile(r"^--(?:find-links|extra-index-url|index-url)\s+'?https?://pypi\.(?:python\.)?org/simple"
                          r"(?:/index\.html)?/?'?$")


def without_pypi_aliases(lines: Sequence[str], progress: Progress = _stderr) -> list[str]:
    """The lines without those that only name PyPI again (azureml-core's CondaDependencies
    writes '--find-links https://pypi.python.org/simple/index.html' and
    '--extra-index-url https://pypi.python.org/simple' into every file): PyPI is the
    default index already, and the old host name may not resolve."""
    kept = []
    for line in lines:
        if _PYPI_ITSELF.match(line):
            progress(f"amldebug: '{line}' names PyPI, the default index: dropped")
        else:
            kept.append(line)
    return kept


def added_requirements(env: Environment, user_lines: Sequence[str], server_version: Optional[str],
                       progress: Progress = _stderr) -> list[str]:
    """What amldebug adds to the environment: the scoring server (pinned to the base
    image's version when it has one) and setuptools with pkg_resources, as every conda
    Python has it."""
    names = {n for n in map(requirement_name, user_lines) if n}
    added = [line for line in with_server(Environment(env.source, tuple(user_lines)), server_version)
             if line not in user_lines]
    hashed = any("--hash" in line or line == "--require-hashes" for line in user_lines)
    if "setuptools" not in names and hashed:
        progress("amldebug: the environment pins hashes, so setuptools (pkg_resources) is not added; list it "
                 "with its hashes if the code needs pkg_resources")
    elif "setuptools" not in names:
        added.append(resolve.SETUPTOOLS)
        progress(f"amldebug: adding '{resolve.SETUPTOOLS}' (pkg_resources), which every conda Python has")
    return added


# ---------------------------------------------------------------------------------------
# Pip on the host, for the image's Python
# ---------------------------------------------------------------------------------------

def pip_platforms(probe: dict) -> list[str]:
    """pip --platform values for the image: every manylinux level its glibc supports
    (pip does not expand manylinux_2_X to lower levels itself), or musllinux."""
    machine = probe["machine"]
    libc = probe.get("libc") or ""
    match = re.match(r"glibc (\d+)\.(\d+)", libc)
    if match and int(match.group(1)) == 2:
        minor = int(match.group(2))
        platforms = [f"manylinux_2_{k}_{machine}" for k in range(minor, 16, -1)]
        if minor >= 17:
            platforms.append(f"manylinux2014_{machine}")  # pip adds manylinux2010/1 to this one
        elif minor >= 12:
            platforms.append(f"manylinux2010_{machine}")
        elif minor >= 5:
            platforms.append(f"manylinux1_{machine}")
        return platforms
    if probe.get("musl"):
        return [f"musllinux_1_2_{machine}", f"musllinux_1_1_{machine}"]
    raise ImageError(f"cannot tell which C library the base image's Python uses ('{libc or 'unknown'}'); "
                     "amldebug build needs a glibc (manylinux) or musl image")


def platform_text(probe: dict) -> str:
    return f"CPython {probe['version']} on Linux {probe['machine']} ({probe.get('libc') or 'musl'})"


# Runs pip with the image's marker environment: pip evaluates environment markers
# (python_version < "3.10") against the Python running it, not --python-version
# (pypa/pip#11010), which would drop or add the wrong packages for another Python.
_PIP_WRAPPER = r"""
import json, runpy, sys
target = json.loads(sys.argv.pop(1))
try:
    from pip._vendor.packaging import markers
    _host = markers.default_environment
    def _target():
        env = _host()
        env.update(target)
        return env
    markers.default_environment = _target
except Exception as exc:
    print("amldebug: warning: environment markers follow the host's Python (%s)" % exc, file=sys.stderr)
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def pip_command(requirements: Path, target: Path, probe: dict, cache: Path) -> list[str]:
    nodot = probe["version"].replace(".", "")
    cmd = [
        sys.executable, "-c", _PIP_WRAPPER, json.dumps(probe.get("markers") or {}),
        "install", "--target", str(target), "--only-binary=:all:",
        "--implementation", "cp", "--python-version", probe["version"],
        "--abi", f"cp{nodot}{probe.get('abiflags', '')}",
    ]
    for platform in pip_platforms(probe):
        cmd += ["--platform", platform]
    cmd += ["--cache-dir", str(cache), "--no-warn-script-location", "--disable-pip-version-check",
            "--progress-bar", "off", "--no-input"]
    if probe["version"] != "%d.%d" % sys.version_info[:2]:
        cmd.append("--no-compile")  # the host would write .pyc files for its own Python version
    return cmd + ["-r", str(requirements)]


_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_FROM_VERSIONS = re.compile(r"Could not find a version that satisfies the requirement (\S+) \(from versions: ([^)]*)\)")


def pip_failure(output: str, probe: dict, returncode: int) -> BuildError:
    """An error that names what pip could not find (parsed from its output) and shows pip's errors."""
    errors = [line for line in output.splitlines() if line.startswith("ERROR:") or "error:" in line.lower()]
    shown = "\n".join(errors[-12:] or output.strip().splitlines()[-12:])
    missing = _NO_MATCH.findall(output)
    if missing:
        versions = dict(_FROM_VERSIONS.findall(output))
        named = ", ".join(f"'{m}'" for m in dict.fromkeys(missing))
        found = "; ".join(f"{m}: versions with a fitting wheel: {versions.get(m) or 'none'}" for m in missing)
        return BuildError(
            f"no wheel of {named} fits the base image's {platform_text(probe)} ({found}); check the name and "
            "version against your package index, or pass --base-image with a Python that has wheels for it "
            f"(the build installs wheels only: no compiler, no network inside it)\npip said:\n{shown}",
            output,
        )
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        return BuildError(f"pip found no set of versions that satisfies the environment for {platform_text(probe)}; "
                          f"loosen the pins it names\npip said:\n{shown}", output)
    return BuildError(f"pip failed (exit code {returncode}) resolving the environment for {platform_text(probe)}; "
                      f"fix what it reports (its index/proxy settings are the host's)\npip said:\n{shown}", output)


def pip_install(lines: Sequence[str], target: Path, probe: dict, progress: Progress, cache: Path | None = None) -> None:
    """Resolve and install ``lines`` into ``target`` for the image's Python with the host's
    pip (wheels only). The build uses uv (envbuild/resolve.py); benchmarks/bench_build.py
    measures this against it."""
    if importlib.util.find_spec("pip") is None:
        raise AmlDebugError(f"pip is not installed in the Python that runs amldebug ({sys.executable}); "
                            f"install it there: '{sys.executable} -m ensurepip'")
    requirements = target.parent / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cache = cache or cache_root() / "pip"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_USER="0", PIP_REQUIRE_VIRTUALENV="0")
    for conflicting in ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_NO_BINARY"):
        env.pop(conflicting, None)
    cmd = pip_command(requirements, target, probe, cache)
    output: list[str] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                errors="replace")
    except OSError as exc:
        raise AmlDebugError(f"cannot run pip with {sys.executable}: {exc}") from None
    with proc:
        for raw in proc.stdout:
            output.append(raw.rstrip())
    if proc.returncode != 0:
        raise pip_failure("\n".join(output), probe, proc.returncode)


# ---------------------------------------------------------------------------------------
# The build context: the installed tree, the console scripts, the .pth hook, a Dockerfile
# ---------------------------------------------------------------------------------------

_ACTIVATE_MODULE = '''\
"""Written by 'amldebug build': put {env}/site-packages in front of this Python's own
site-packages (as a virtual environment would), so the environment's versions win."""
import os
import site
import sys

ENV = "{env}/site-packages"


def _activate():
    if ENV in sys.path or not os.path.isdir(ENV):
        return
    before = list(sys.path)
    site.addsitedir(ENV)  # also runs the .pth files of the installed packages
    added = [p for p in sys.path if p not in before]
    here = os.path.dirname(os.path.abspath(__file__))
    at = before.index(here) if here in before else len(before)
    sys.path[:] = before[:at] + added + before[at:]


_activate()
'''


def _shebang(python: str) -> str:
    if re.search(r"\s", python):  # a shebang cannot hold spaces: pip's sh trampoline
        return f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\n"
    return f"#!{python}\n"


def server_script(python: str) -> str:
    return (_shebang(python) + "# Written by 'amldebug build'.\nimport sys\n"
            "from azureml_inference_server_http.amlserver import run\n\n"
            "if __name__ == \"__main__\":\n    sys.exit(run())\n")


def retarget_scripts(bin_dir: Path, python: str) -> None:
    """pip wrote the console scripts with the host's Python in the shebang; use the image's."""
    for script in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []:
        if not script.is_file():
            continue
        try:
            lines = script.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        if not lines or not lines[0].startswith("#!"):
            continue
        if lines[0].startswith("#!/bin/sh") and len(lines) > 2 and lines[1].startswith("'''exec'"):
            rest = lines[3:]
        elif "python" in lines[0]:
            rest = lines[1:]
        else:
            continue
        script.write_text(_shebang(python) + "".join(rest), encoding="utf-8")
        script.chmod(0o755)


def _quoted(text: str) -> str:
    """A Dockerfile ENV/LABEL value in double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def dockerfile(base_id: str, probe: dict, labels: dict) -> str:
    """COPY steps only: nothing runs inside the build, so it needs neither network nor a shell."""
    path = f"{ENV_ROOT}/bin:{probe.get('path') or DEFAULT_PATH}"
    return "\n".join([
        f"FROM {base_id}",
        f"COPY [{json.dumps('site-packages/')}, {json.dumps(ENV_ROOT + '/site-packages/')}]",
        f"COPY [{json.dumps('bin/')}, {json.dumps(ENV_ROOT + '/bin/')}]",
        f"COPY [{json.dumps('pth/')}, {json.dumps(probe['site'].rstrip('/') + '/')}]",
        f"ENV PATH={_quoted(path)}",
        # One LABEL step (the build API's labels= makes one step, and one container, per label).
        "LABEL " + " ".join(f"{key}={_quoted(value)}" for key, value in sorted(labels.items())),
        "",
    ])


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Owned by root and readable by all: Azure ML images run as a non-root user, and the
    # host's umask must not decide who can import the packages.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isdir():
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def write_context(ctx: Path, out) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(ctx)):
            tar.add(str(ctx / name), arcname=name, recursive=True, filter=_tar_filter)


def prepare_context(ctx: Path, site: Path, base_id: str, probe: dict, labels: dict) -> None:
    """Lay out ``ctx`` around the installed tree ``site`` (which is moved into it)."""
    python = probe["python"]
    shutil.move(str(site), str(ctx / "site-packages"))
    bin_dir = ctx / "bin"
    if (ctx / "site-packages" / "bin").is_dir():
        shutil.move(str(ctx / "site-packages" / "bin"), str(bin_dir))
    bin_dir.mkdir(exist_ok=True)
    retarget_scripts(bin_dir, python)
    (bin_dir / "azmlinfsrv").write_text(server_script(python), encoding="utf-8")
    (bin_dir / "azmlinfsrv").chmod(0o755)
    pth = ctx / "pth"
    pth.mkdir()
    (pth / "_amldebug_env.py").write_text(_ACTIVATE_MODULE.format(env=ENV_ROOT), encoding="utf-8")
    (pth / "amldebug-env.pth").write_text("import _amldebug_env\n", encoding="utf-8")
    (ctx / "Dockerfile").write_text(dockerfile(base_id, probe, labels), encoding="utf-8")


# ---------------------------------------------------------------------------------------
# The engine (through amldebug.container): base image, probe, build, tag
# ---------------------------------------------------------------------------------------

def find_built(client, digest: str):
    """The image built earlier for this hash, or None."""
    return find_image_by_label(client, f"{LABEL_HASH}={digest}")


def docker_build(client, context: Path, progress: Progress) -> str:
    """Build (untagged) from ``context`` with no network; return the image id. The engine's
    own lines (COPY steps) are not shown: the stage lines around this say what happens."""
    with tempfile.TemporaryFile(prefix="amldebug-ctx-") as tar:
        write_context(context, tar)
        tar.seek(0)
        return build_image_from_context(client, tar, lambda _line: None)


# Imports each module in the built image; one JSON line per module. The last traceback frame
# inside site-packages names the package that raised, not the module imported.
_IMPORT_CHECK = r"""
import json, sys, traceback
for name in sys.argv[1:]:
    try:
        __import__(name)
        print("AMLDEBUG-IMPORT " + json.dumps({"module": name, "ok": True}))
    except BaseException as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = [f.filename for f in frames if "/site-packages/" in f.filename]
        print("AMLDEBUG-IMPORT " + json.dumps({"module": name, "ok": False, "error": "%s: %s" % (
            type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else ""),
            "file": where[-1] if where else ""}))
"""


def import_failure(results: list[dict], modules: dict[str, list[str]], probe: dict) -> Optional[BuildError]:
    """A BuildError naming the package whose import failed in the built image, or None."""
    owner = {module: dist for dist, names in modules.items() for module in names}
    failed = [r for r in results if not r.get("ok")]
    if not failed:
        return None
    first = failed[0]
    dist = owner.get(first["module"], first["module"])
    error = first.get("error", "")
    raised_in = ""
    match = re.search(r"/site-packages/([^/]+)", first.get("file") or "")
    if match and match.group(1).split(".")[0] != first["module"]:
        raised_in = f" (raised inside {match.group(1).split('.')[0]})"
    hint = "pin versions that work together in the environment file"
    if "numpy.dtype size changed" in error or "compiled using NumPy 1.x" in error or "_ARRAY_API" in error:
        hint = (f"{dist} was compiled against numpy 1.x and numpy 2 was installed: add 'numpy<2' to the "
                "environment file (conda's builds carry that bound, PyPI's do not)")
    elif "Descriptors cannot be created directly" in error:
        hint = (f"{dist} imports code generated by a protoc older than the protobuf installed (4 or later) accepts: "
                "add 'protobuf<4' to the environment file (protobuf's own message says the same), since nothing in "
                "it bounds protobuf from above")
    elif "cannot open shared object file" in error:
        library = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", error)
        hint = (f"{dist} needs the system library {library.group(1) if library else 'it names'}, which the base image "
                "lacks (conda installs such libraries with the package; PyPI's wheels expect the image to have them): "
                "use a base image that has it (Azure ML's inference images do), or add it to yours (e.g. 'apt-get "
                "install libgomp1' for libgomp.so.1)")
    elif "pkg_resources" in error:
        hint = "add 'setuptools<82' to the environment file (setuptools 82 removed pkg_resources)"
    others = ", ".join(r["module"] for r in failed[1:])
    more = f"; also failing: {others}" if others else ""
    return BuildError(f"the built environment does not import: 'import {first['module']}' ({dist}) fails in the "
                      f"image's Python {probe['version']} with {error}{raised_in}; {hint}{more}")


def check_imports(client, image_id: str, probe: dict, modules: dict[str, list[str]], progress: Progress) -> None:
    """Import every top-level module of the environment's own packages once in the image."""
    names = [m for ms in modules.values() for m in ms]
    if not names:
        return
    started = time.monotonic()
    stage(progress, f"checking that the image imports {len(names)} modules ({', '.join(names[:6])}"
                    f"{', ...' if len(names) > 6 else ''})")
    status, out = run_once(client, image_id, [probe["python"], "-c", _IMPORT_CHECK, *names], what="built image",
                           kind="import-check", timeout=300)
    results = [json.loads(line[len("AMLDEBUG-IMPORT "):]) for line in out.splitlines()
               if line.startswith("AMLDEBUG-IMPORT ")]
    error = import_failure(results, modules, probe)
    if error is None and len(results) < len(names):
        error = BuildError(f"the import check in the built image stopped after {len(results)} of {len(names)} "
                           f"modules (exit code {status}); its output:\n{out.strip()[-2000:]}")
    if error is not None:
        raise error
    progress(f"amldebug: imports checked in {time.monotonic() - started:.1f} s")


def build_image(env_file: Path | Environment | None, *, base_image: str | None = None, tag: str | None = None,
                client=None, progress: Progress = _stderr) -> BuildResult:
    """Build (or find) the scoring image for ``env_file`` (a file, or an Environment read
    already) on ``base_image`` (default: the environment's own, then Azure ML's minimal
    inference image).

    Without changes to the environment, the base image or amldebug, the image built before
    is returned at once (``built=False``). ``env_file=None`` adds only the scoring server.
    Raises UsageError (file problems, with FILE:LINE), ImageError (base image), BuildError
    (pip could not provide a package: named, with pip's errors)."""
    started = time.monotonic()
    env = env_file if isinstance(env_file, Environment) else read_environment(env_file)
    for note in env.notes:  # how its files were read where not as UTF-8: a guessed code page is named
        progress(f"amldebug: {note}")
    if tag is not None:
        check_tag(tag)
    if client is None:
        client = connect()
    def pins_index() -> tuple[dict[str, str], dict]:
        pins = resolve.exact_pins(conda.plan(env.conda, env.channels).requirements + list(env.pip))
        return pins, resolve.releases(pins)

    chosen = python.choose(env, base_image, client, progress, pins_index)
    base_ref, base, probe = chosen.ref, chosen.image, chosen.probe
    progress(f"amldebug: {chosen.why}")
    digest = env_hash(env, base.id)
    wanted = tag or f"{DEFAULT_REPOSITORY}:{digest}"

    existing = find_built(client, digest)
    if existing is not None:
        if wanted not in (existing.tags or []):
            tag_image(client, existing.id, wanted)
        return BuildResult(wanted, existing.id, False, time.monotonic() - started)

    labels = {
        LABEL_HASH: digest, LABEL_BASE: base_ref, LABEL_BASE_ID: base.id, LABEL_VERSION: __version__,
        LABEL_FILE: str(env.source or ""), LABEL_PYTHON: f"{probe['python']} {probe['version']}",
    }
    if chosen.conda:
        return _finish(client, conda_build(client, env, chosen, labels, progress), probe,
                       {SERVER_DIST: ["azureml_inference_server_http"]}, wanted, started, progress)
    conda_lines, python_spec = conda_requirements(env, probe, progress)
    pip_lines = without_pypi_aliases(env.pip, progress)
    added = added_requirements(env, conda_lines + pip_lines, probe.get("server"), progress)
    with tempfile.TemporaryDirectory(prefix="amldebug-build-") as work:
        work_dir = Path(work)
        site_dir = work_dir / "install" / "site-packages"
        site_dir.mkdir(parents=True)
        resolved = resolve.install(resolve.Steps(tuple(conda_lines), tuple(pip_lines), tuple(added)), site_dir,
                                   probe, progress, python_spec=python_spec)
        modules = resolve.top_level_modules(site_dir, list(resolved.direct) + [SERVER_DIST])
        ctx = work_dir / "context"
        ctx.mkdir()
        prepare_context(ctx, site_dir, base.id, probe, labels)
        building = time.monotonic()
        stage(progress, f"building the image on '{base_ref}' ({resolved.packages} packages; no network inside "
                        "the build)")
        image_id = docker_build(client, ctx, progress)
        progress(f"amldebug: image built in {time.monotonic() - building:.1f} s")
    return _finish(client, image_id, probe, modules, wanted, started, progress)


def _finish(client, image_id: str, probe: dict, modules: dict[str, list[str]], wanted: str, started: float,
            progress: Progress) -> BuildResult:
    """The import check, then the tag; an image that fails either is removed."""
    try:
        check_imports(client, image_id, probe, modules, progress)
    except BaseException:
        try:
            remove_image(client, image_id)
        except AmlDebugError:
            pass
        raise
    try:
        tag_image(client, image_id, wanted)
    except BaseException:
        try:
            remove_image(client, image_id)
        except AmlDebugError:  # the tagging error is the one to report
            pass
        raise
    seconds = time.monotonic() - started
    progress(f"amldebug: built {wanted} in {seconds:.1f} s")
    return BuildResult(wanted, image_id, True, seconds)


def conda_yaml(env: Environment) -> str:
    """The environment as a conda file (its conda packages, channels and pip part), for conda
    env create."""
    lines = ["name: amldebug"]
    if env.channels:
        lines += ["channels:", *(f"  - {json.dumps(c)}" for c in env.channels)]
    lines += ["dependencies:", *(f"  - {json.dumps(spec)}" for spec in env.conda)]
    if env.pip:
        lines += ["  - pip:", *(f"    - {json.dumps(line)}" for line in env.pip)]
    return "\n".join(lines) + "\n"


def conda_build(client, env: Environment, chosen: python.Base, labels: dict, progress: Progress) -> str:
    """Azure ML's way: conda creates the pinned Python in its conda base image and runs the pip
    part there (network inside the build, as in Azure ML). The image id."""
    with tempfile.TemporaryDirectory(prefix="amldebug-conda-") as work:
        ctx = Path(work)
        (ctx / "conda.yml").write_text(conda_yaml(env), encoding="utf-8")
        (ctx / "Dockerfile").write_text(python.conda_dockerfile(chosen.image.id, labels=labels), encoding="utf-8")
        stage(progress, f"creating Python {chosen.probe['version']} and the environment with conda in "
                        f"'{chosen.ref}' (network inside the build)")
        with tempfile.TemporaryFile(prefix="amldebug-ctx-") as tar:
            write_context(ctx, tar)
            tar.seek(0)
            return build_image_from_context(client, tar, progress, network=True)
