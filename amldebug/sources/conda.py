"""Conda packages, as pip reads them: a conda environment file's ``dependencies`` mapped to
PyPI requirements. Pure: no network, no files.

Azure ML builds a conda file with conda; amldebug builds offline with wheels from PyPI, so
each conda package becomes the PyPI project of the same name (or a known rename), conda's
version syntax becomes PEP 440, channels are ignored and packages that are not Python
(compilers, BLAS, CUDA) are skipped, each with a note for the build log.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from ..errors import UsageError

# conda name -> PyPI name, where they differ (conda-forge and defaults).
RENAMES = {
    "pytorch": "torch", "pytorch-cpu": "torch", "pytorch-gpu": "torch",
    "py-xgboost": "xgboost", "py-xgboost-cpu": "xgboost", "py-xgboost-gpu": "xgboost", "xgboost-cpu": "xgboost",
    "py-lightgbm": "lightgbm", "lightgbm-cpu": "lightgbm",
    "py-opencv": "opencv-python", "opencv": "opencv-python",
    "matplotlib-base": "matplotlib", "pytables": "tables", "msgpack-python": "msgpack",
    "python-graphviz": "graphviz", "ruamel_yaml": "ruamel.yaml", "typing_extensions": "typing-extensions",
    "tensorflow-base": "tensorflow", "tensorflow-cpu": "tensorflow", "keras-base": "keras",
    "pyqt": "PyQt5", "pywavelets": "PyWavelets", "gmpy2": "gmpy2", "arrow-cpp": None,
    "scikit-learn-intelex": "scikit-learn-intelex", "sklearn": "scikit-learn", "pillow-simd": "pillow",
    "llvmlite": "llvmlite", "libpython": None, "importlib_metadata": "importlib-metadata",
    # conda's split and variant packages of one PyPI project
    "numpy-base": "numpy", "seaborn-base": "seaborn", "dask-core": "dask", "brotli-python": "brotli",
    "tensorflow-mkl": "tensorflow", "tensorflow-eigen": "tensorflow", "tensorflow-gpu": "tensorflow",
    "keras-gpu": "keras", "torchvision-cpu": "torchvision", "faiss": "faiss-cpu",
    # conda-forge's 'python-' names of Python bindings
    "python-kaleido": "kaleido", "python-xxhash": "xxhash", "python-lmdb": "lmdb",
    "python-flatbuffers": "flatbuffers", "python-tzdata": "tzdata",
}

# Conda packages that are not Python distributions: libraries, compilers, tools. Skipped.
NOT_PYTHON = frozenset({
    "mkl", "mkl-include", "mkl_fft", "mkl_random", "intel-openmp", "llvm-openmp", "openblas", "blas", "nomkl",
    "cudatoolkit", "cudnn", "nccl", "cuda", "cupti", "magma", "cpuonly", "pytorch-cuda", "pytorch-mutex",
    "openssl", "ca-certificates", "zlib", "xz", "sqlite", "readline", "ncurses", "tk", "bzip2", "lz4-c", "zstd",
    "gcc", "gxx", "gcc_linux-64", "gxx_linux-64", "gfortran", "make", "cmake", "ninja", "pkg-config", "git",
    "curl", "wget", "nodejs", "openjdk", "graphviz", "ffmpeg", "hdf5", "icu", "tzdata", "krb5", "expat",
    "unixodbc", "openmpi", "mpich", "boost", "boost-cpp", "eigen", "tbb", "jpeg", "libpng", "freetype",
    "fontconfig", "ld_impl_linux-64", "r-base", "r", "vs2015_runtime", "vc", "ucrt", "m2w64-toolchain",
    "python_abi", "cudatoolkit-dev", "yaml", "gmp", "mpfr", "mpc", "gnutls", "nettle", "openh264", "lame", "x264",
    "x265", "lerc", "giflib", "lcms2", "openjpeg", "pcre", "pcre2", "glib", "gettext", "dbus", "qt", "qt-main",
    "harfbuzz", "cairo", "pango", "pixman", "fribidi", "c-ares", "keyutils", "nspr", "nss", "re2", "abseil-cpp",
    "snappy", "brotli-bin", "fftw", "tbb-devel", "mkl-devel", "proj", "geos", "postgresql", "zeromq", "jemalloc",
    "sysroot_linux-64", "kernel-headers_linux-64", "binutils", "binutils_linux-64", "vc14_runtime",
})
# Prefixes of such packages' names: conda's own (_libgcc_mutex, _openmp_mutex), CUDA, C libraries, R, X11, fonts.
_NOT_PYTHON_PREFIXES = ("_", "cuda-", "libcu", "r-", "xorg-", "font-ttf-", "fonts-", "aws-c-", "m2-", "m2w64-")
# conda's own tools and Jupyter extensions for conda environments: nothing a scoring server needs, and not on
# PyPI (or an unrelated old release there).
CONDA_TOOLS = frozenset({"conda", "conda-build", "conda-libmamba-solver", "mamba", "anaconda", "anaconda-client",
                         "nb_conda", "nb_conda_kernels", "menuinst", "conda-package-handling"})
# Python packages for Windows only (no Linux wheel): Azure ML's Linux build would fail on them too.
WINDOWS_ONLY = frozenset({"pywin32", "pywinpty", "winpty", "wincertstore", "win_inet_pton"})
# conda-forge's spaCy pipelines ('spacy-model-en_core_web_sm'): Explosion publishes them on GitHub, not on PyPI.
_SPACY_MODEL = "spacy-model-"
_SPACY_RELEASES = "https://github.com/explosion/spacy-models/releases/download"
# 'lib*' conda packages are C libraries, except these Python ones.
_LIB_PYTHON = frozenset({"librosa", "libclang", "libsass", "libcst"})
# Build-time pieces of Python itself: pip and setuptools are installed by amldebug as conda does.
_SELF = frozenset({"python", "pip"})


@dataclasses.dataclass(frozen=True)
class Mapped:
    """One conda spec and what became of it: a pip requirement, or None (skipped) with a note."""

    spec: str
    requirement: Optional[str]
    note: str


@dataclasses.dataclass(frozen=True)
class CondaPlan:
    python: Optional[str]  # the python spec's version ("3.10", "3.8.10"), or None
    python_spec: Optional[str]
    mapped: tuple[Mapped, ...]
    channels: tuple[str, ...]

    @property
    def requirements(self) -> list[str]:
        return [m.requirement for m in self.mapped if m.requirement]

    def log_lines(self) -> list[str]:
        """The build log's account of every mapping made (one line each)."""
        lines = [f"amldebug: conda {m.spec!r} -> {m.note}" for m in self.mapped]
        if self.channels:
            lines.append(f"amldebug: conda channels ignored ({', '.join(self.channels)}): packages come from "
                         "the host's package index (PyPI)")
        return lines


_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:\[(?P<brackets>[^\]]*)\])?\s*(?P<rest>.*)$")


def split_spec(spec: str) -> tuple[str, str, Optional[str], dict]:
    """(name, version constraint, build string, bracket keys) of a conda MatchSpec such as
    ``conda-forge::numpy=1.21.2=py39_0``, ``numpy 1.21.*``, ``numpy>=1.2,<2``, ``numpy[version='>=1.2']``."""
    body = spec.strip()
    if "::" in body:
        body = body.split("::", 1)[1]
    if "/" in body.split("[", 1)[0]:  # channel/subdir/name
        body = body.rsplit("/", 1)[1]
    match = _SPEC.match(body)
    if not match:
        raise UsageError(f"conda package '{spec}' is not a conda spec; write it like 'numpy=1.26'")
    name, rest = match.group("name"), match.group("rest").strip()
    keys = {}
    for key, value in re.findall(r"(\w+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^,\s]+)", match.group("brackets") or ""):
        keys[key] = value.strip("'\"")
    build = keys.get("build")
    version = keys.get("version", "")
    if rest:
        if rest[0] not in "=<>!~" and " " not in rest and not rest[0].isdigit() and rest[0] != "*":
            raise UsageError(f"conda package '{spec}' is not a conda spec; write it like 'numpy=1.26'")
        parts = rest.split()
        if len(parts) > 1 and not parts[0].startswith(("=", "<", ">", "!", "~")):  # "numpy 1.21.2 py39_0"
            version, build = parts[0], parts[1]
        elif rest.startswith("=") and not rest.startswith("=="):
            pieces = rest[1:].split("=")
            version = "=" + pieces[0]
            if len(pieces) > 1:
                build = pieces[1]
        elif rest.startswith("==") and rest.count("=") > 2:  # "==1.2=build"
            version, build = rest[:rest.index("=", 2)], rest[rest.index("=", 2) + 1:]
        else:
            version = "".join(parts)
        if version[:1].isdigit() and "*" not in version and "," not in version:
            version = "==" + version  # "numpy 1.21.2" is exact in conda; only "numpy=1.21.2" is a prefix
    return name.lower(), version.strip(), build, keys


def pep440(version: str, build: Optional[str], spec: str) -> str:
    """conda's version syntax as a PEP 440 specifier: ``1.21`` -> ``==1.21.*`` (conda's
    ``=1.21`` is a prefix match), ``1.21.2`` with a build string -> ``==1.21.2``,
    ``==1.21.2`` stays, ``>=1.2,<2`` stays, ``1.21.*`` -> ``==1.21.*``."""
    version = version.strip()
    if not version or version == "*":
        return ""
    if "|" in version:
        raise UsageError(f"conda package '{spec}' uses '|' (either version); pip has no such operator: write one "
                         "range under '- pip:' instead")
    out = []
    for part in version.split(","):
        part = part.strip()
        if not part:
            continue
        op = re.match(r"^(==|!=|>=|<=|>|<|~=|=)?\s*(.*)$", part)
        operator, number = op.group(1) or "", op.group(2).strip()
        if not re.match(r"^[0-9][0-9A-Za-z.*+!_-]*$", number):
            raise UsageError(f"conda package '{spec}' has version '{part}', which pip cannot read; write it like "
                             "'numpy=1.26' or 'numpy>=1.24,<2'")
        number = number.rstrip(".")
        if operator in ("", "="):
            if build and "*" not in number and "," not in version:
                out.append(f"=={number}")  # an exact build ('=1.21.2=py39_0'): the exact version
            elif number.endswith("*"):
                out.append(f"=={number.rstrip('*').rstrip('.')}.*")
            else:
                out.append(f"=={number}.*")
        elif operator == "==" and number.endswith("*"):
            out.append(f"=={number.rstrip('*').rstrip('.')}.*")
        else:
            out.append(f"{operator}{number}")
    return ",".join(out)


def map_spec(spec: str) -> Mapped:
    name, version, build, keys = split_spec(spec)
    if name in NOT_PYTHON or name.startswith(_NOT_PYTHON_PREFIXES) or (
            name.startswith("lib") and name not in _LIB_PYTHON):
        return Mapped(spec, None, "skipped: not a Python package (a library or tool that conda provides; the "
                                  "base image must bring it if the code needs it)")
    if name in CONDA_TOOLS:
        return Mapped(spec, None, "skipped: a conda tool, not needed to serve (and not on PyPI)")
    if name in WINDOWS_ONLY:
        return Mapped(spec, None, "skipped: Windows only (no Linux build; the image is Linux)")
    if name.startswith(_SPACY_MODEL):
        return _spacy_model(spec, name[len(_SPACY_MODEL):], pep440(version, build, spec))
    pypi = RENAMES.get(name, name)
    if pypi is None:
        return Mapped(spec, None, "skipped: not a Python package")
    specifier = pep440(version, build, spec)
    requirement = pypi + specifier
    how = [f"'{requirement}'"]
    if pypi != name:
        how.append(f"(PyPI name of conda's '{name}')")
    if build:
        how.append(f"(build string '{build}' dropped)")
    if specifier.endswith(".*") and version.startswith("=") and not version.startswith("==") \
            and not version.endswith("*"):
        how.append(f"(conda's '{version}' means {version[1:]}.*)")
    return Mapped(spec, requirement, " ".join(how))


def _spacy_model(spec: str, model: str, specifier: str) -> Mapped:
    """A spaCy pipeline at its GitHub release (wheels since 3.0, sdists before), for an
    exact version; without one, skipped with the line to write instead."""
    exact = re.match(r"^==(\d+\.\d+\.\d+)(?:\.\*)?$", specifier)
    if not exact:
        return Mapped(spec, None, f"skipped: spaCy pipelines are not on PyPI; pin its version (e.g. "
                                  f"'{_SPACY_MODEL}{model}=3.7.1'), or write '{model} @ {_SPACY_RELEASES}/"
                                  f"{model}-VERSION/{model}-VERSION-py3-none-any.whl' under '- pip:'")
    version = exact.group(1)
    archive = f"{model}-{version}-py3-none-any.whl" if int(version.split(".")[0]) >= 3 else f"{model}-{version}.tar.gz"
    requirement = f"{model} @ {_SPACY_RELEASES}/{model}-{version}/{archive}"
    return Mapped(spec, requirement, f"'{requirement}' (spaCy's release on GitHub; not on PyPI)")


def plan(specs: tuple[str, ...] | list[str], channels: tuple[str, ...] = ()) -> CondaPlan:
    """The PyPI requirements for conda ``specs`` (python and pip are not among them)."""
    python = python_spec = None
    mapped = []
    for spec in specs:
        name, version, build, _ = split_spec(spec)
        if name == "python":
            python_spec = spec
            pinned = re.match(r"^(?:==?)?\s*(\d+(?:\.\d+)*)", version)  # a pin, not a range
            python = pinned.group(1) if pinned and not version.startswith(("<", ">", "!", "~")) else None
            continue
        if name in _SELF:
            mapped.append(Mapped(spec, None, "skipped: amldebug installs with the host's resolver"))
            continue
        mapped.append(map_spec(spec))
    channel_names = tuple(channels) + tuple(dict.fromkeys(s.split("::", 1)[0] for s in specs if "::" in s))
    return CondaPlan(python, python_spec, tuple(mapped), tuple(dict.fromkeys(channel_names)))


def python_mismatch(python: Optional[str], image_version: str) -> bool:
    """Whether a conda python pin ("3.10", "3.10.4", "3") names another minor than the image's."""
    if not python:
        return False
    wanted, have = python.split("."), image_version.split(".")
    return wanted[:2] != have[:len(wanted[:2])]
