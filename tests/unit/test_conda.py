"""Conda packages as pip reads them (sources/conda.py) and the pure parts of resolution
(envbuild/resolve.py: pins, the date bound, builds per Python, backtracks). No network: the
index's answers are written here as the simple API gives them."""

import datetime as dt
from pathlib import Path

import pytest

from amldebug.errors import BuildError, UsageError
from amldebug.envbuild import resolve
from amldebug.envbuild.resolve import Release
from amldebug.sources import conda
from amldebug.sources.envfile import read_env_file

PROBE = {"python": "/usr/bin/python3", "version": "3.11", "machine": "x86_64", "libc": "glibc 2.36", "abiflags": ""}
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "conda"


@pytest.mark.parametrize("spec, requirement", [
    ("numpy", "numpy"),
    ("numpy=1.21", "numpy==1.21.*"),  # conda's '=' is a prefix match
    ("numpy=1.21.2", "numpy==1.21.2.*"),
    ("numpy=1.21.2=py39h_0", "numpy==1.21.2"),  # a build string pins the exact version
    ("numpy==1.21.2", "numpy==1.21.2"),
    ("numpy 1.21.2", "numpy==1.21.2"),  # the space form is exact
    ("numpy 1.21.2 py39_0", "numpy==1.21.2"),
    ("numpy 1.21.*", "numpy==1.21.*"),
    ("numpy=1.21.*", "numpy==1.21.*"),
    ("numpy>=1.21,<2", "numpy>=1.21,<2"),
    ("numpy[version='>=1.2']", "numpy>=1.2"),
    ("conda-forge::numpy=1.26", "numpy==1.26.*"),
    ("pytorch=2.1", "torch==2.1.*"),
    ("py-xgboost", "xgboost"),
    ("xgboost==3.0.2", "xgboost==3.0.2"),
    ("scikit-learn=1.7.0", "scikit-learn==1.7.0.*"),
])
def test_conda_specs_map_to_pypi_requirements(spec, requirement):
    assert conda.plan([spec]).requirements == [requirement]


@pytest.mark.parametrize("spec", ["mkl", "mkl=2023.1", "libgcc-ng", "cudatoolkit=11.3", "_openmp_mutex", "openssl",
                                  "cuda-nvcc", "r-base"])
def test_non_python_conda_packages_are_skipped_with_a_note(spec):
    mapped = conda.plan([spec])
    assert mapped.requirements == []
    assert mapped.log_lines() == [f"amldebug: conda {spec!r} -> skipped: not a Python package (a library or tool "
                                  "that conda provides; the base image must bring it if the code needs it)"]


# conda-only names, each checked against PyPI ('pip index versions NAME', 2026-12): the PyPI project
# they are, or why they are skipped.
@pytest.mark.parametrize("spec, requirement", [
    ("pytorch", "torch"), ("pytorch-cpu=1.1", "torch==1.1.*"), ("torchvision", "torchvision"),
    ("torchvision-cpu", "torchvision"), ("py-xgboost=1.7.6", "xgboost==1.7.6.*"), ("python-graphviz", "graphviz"),
    ("tensorflow-mkl=2.4", "tensorflow==2.4.*"), ("tensorflow-gpu", "tensorflow"), ("keras-gpu", "keras"),
    ("py-opencv", "opencv-python"), ("matplotlib-base=3.8", "matplotlib==3.8.*"), ("pyyaml", "pyyaml"),
    ("ruamel.yaml", "ruamel.yaml"), ("ruamel_yaml", "ruamel.yaml"), ("msgpack-python", "msgpack"),
    ("mkl-service", "mkl-service"), ("pillow", "pillow"), ("py-lightgbm", "lightgbm"), ("lightgbm", "lightgbm"),
    ("ipykernel", "ipykernel"), ("notebook", "notebook"), ("numpy-base=1.21.5=py39h7a5d4dd_0", "numpy==1.21.5"),
    ("seaborn-base", "seaborn"), ("dask-core", "dask"), ("faiss", "faiss-cpu"), ("python-kaleido", "kaleido"),
    ("brotli-python", "brotli"), ("python-tzdata", "tzdata"),
    ("spacy-model-en_core_web_sm=3.7.1", "en_core_web_sm @ https://github.com/explosion/spacy-models/releases/"
                                         "download/en_core_web_sm-3.7.1/en_core_web_sm-3.7.1-py3-none-any.whl"),
    ("spacy-model-en_core_web_sm=2.3.1", "en_core_web_sm @ https://github.com/explosion/spacy-models/releases/"
                                         "download/en_core_web_sm-2.3.1/en_core_web_sm-2.3.1.tar.gz"),
])
def test_conda_only_names_map_to_their_pypi_projects(spec, requirement):
    assert conda.plan([spec]).requirements == [requirement]


@pytest.mark.parametrize("spec, why", [
    ("cudatoolkit=11.3", "not a Python package"), ("cudnn", "not a Python package"),
    ("libopencv", "not a Python package"), ("jpeg", "not a Python package"), ("libxgboost", "not a Python package"),
    ("_libgcc_mutex=0.1=main", "not a Python package"), ("_openmp_mutex", "not a Python package"),
    ("libstdcxx-ng", "not a Python package"), ("libgomp", "not a Python package"),
    ("python_abi=3.11=4_cp311", "not a Python package"), ("yaml", "not a Python package"),
    ("xorg-libx11", "not a Python package"), ("snappy", "not a Python package"),
    ("pywin32", "Windows only"), ("nb_conda", "a conda tool"), ("nb_conda_kernels", "a conda tool"),
    ("conda", "a conda tool"),
    ("spacy-model-en_core_web_sm", "pin its version (e.g. 'spacy-model-en_core_web_sm=3.7.1'), or write "
                                   "'en_core_web_sm @ https://github.com/explosion/spacy-models/releases/download/"
                                   "en_core_web_sm-VERSION/en_core_web_sm-VERSION-py3-none-any.whl' under '- pip:'"),
])
def test_conda_only_names_without_a_pypi_project_are_skipped_with_why(spec, why):
    mapped = conda.plan([spec])
    assert mapped.requirements == []
    assert mapped.log_lines()[0].startswith(f"amldebug: conda {spec!r} -> skipped: ") and why in mapped.log_lines()[0]


def test_python_pip_and_channels():
    mapped = conda.plan(["python=3.10", "pip=25.1.1", "conda-forge::numpy"], ("defaults",))
    assert (mapped.python, mapped.python_spec, mapped.requirements) == ("3.10", "python=3.10", ["numpy"])
    assert mapped.log_lines()[-1] == ("amldebug: conda channels ignored (defaults, conda-forge): packages come from "
                                      "the host's package index (PyPI)")
    assert conda.plan(["python>=3.8"]).python is None  # a range is not a pin
    assert conda.python_mismatch("3.10", "3.11") and conda.python_mismatch("3.6", "3.11")
    assert not conda.python_mismatch("3.11.4", "3.11") and not conda.python_mismatch("3", "3.11")


@pytest.mark.parametrize("spec, expected", [("numpy>=1|<0.5", "uses '|'"), ("numpy=abc", "which pip cannot read"),
                                            ("=numpy", "is not a conda spec")])
def test_conda_specs_pip_cannot_express_are_refused(spec, expected):
    with pytest.raises(UsageError, match=expected):
        conda.plan([spec])


def test_every_sample_conda_file_maps(tmp_path):
    """The azureml-examples and MachineLearningNotebooks conda files, as written (tests/fixtures/conda)."""
    seen = {}
    for path in sorted(SAMPLES.glob("*.y*ml")):
        env = read_env_file(path)
        mapped = conda.plan(env.conda, env.channels)
        seen[path.name] = (mapped.python, mapped.requirements)
    assert seen["inference-schema-env.yml"] == ("3.10", ["scikit-learn==1.2.2.*", "numpy", "pandas"])
    assert seen["model-1-conda.yaml"] == ("3.12", ["numpy==2.3.1.*", "scikit-learn==1.7.0.*", "scipy==1.16.0.*"])
    assert seen["custom-model-conda.yaml"][1][-1] == "xgboost==3.0.2"
    assert seen["openapi-env.yml"] == ("3.10", ["numpy", "scikit-learn"])
    assert seen["v1-sklearn-0.22-py36.yml"] == ("3.6.2", ["scikit-learn==0.22.1"])
    assert seen["v1-sklearn-fuse.yml"] == ("3.10.18", ["scikit-learn==1.5.1", "numpy==1.23.5"])


# -- resolution, pure parts ----------------------------------------------------------------

def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day + "T12:00:00+00:00")


INDEX = {
    "scikit-learn": {
        "0.19.1": Release("0.19.1", _at("2017-10-23"), (
            "scikit_learn-0.19.1-cp27-cp27mu-manylinux1_x86_64.whl", "scikit_learn-0.19.1-cp36-cp36m-manylinux1_x86_64.whl",
            "scikit_learn-0.19.1-cp35-cp35m-win_amd64.whl", "scikit-learn-0.19.1.tar.gz")),
        "1.2.2": Release("1.2.2", _at("2023-03-09"), (
            "scikit_learn-1.2.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "scikit-learn-1.2.2.tar.gz")),
    },
    "numpy": {
        "1.24.2": Release("1.24.2", _at("2023-02-05"), ("numpy-1.24.2-cp311-cp311-manylinux_2_17_x86_64.whl",)),
        "2.0.0": Release("2.0.0", _at("2024-06-16"), ("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl",)),
    },
    "fusepy": {"3.0.1": Release("3.0.1", _at("2018-09-17"), ("fusepy-3.0.1.tar.gz",))},
    "azureml-defaults": {
        "1.0.45": Release("1.0.45", _at("2019-06-24"), ("azureml_defaults-1.0.45-py2.py3-none-any.whl",)),
        "1.61.0": Release("1.61.0", _at("2026-01-10"), ("azureml_defaults-1.61.0-py3-none-any.whl",)),
    },
}


def test_exact_pins():
    assert resolve.exact_pins(["numpy==1.21.*", "six", "pandas>=2", "scikit-learn == 1.2.2 ; python_version > '3'",
                               "azureml-dataset-runtime[fuse]==1.5"]) == {
        "numpy": "==1.21.*", "scikit-learn": "==1.2.2", "azureml-dataset-runtime": "==1.5"}


def test_the_bound_is_the_newest_pin_release():
    assert resolve.cutoff({"scikit-learn": "==1.2.2.*", "numpy": "==1.24.*"}, INDEX, PROBE) == (
        _at("2023-03-09"), "scikit-learn==1.2.2")
    assert resolve.cutoff({}, INDEX, PROBE) is None


def test_a_pin_without_a_build_for_the_image_python_names_the_pythons_it_has():
    with pytest.raises(BuildError) as caught:
        resolve.check_pins({"scikit-learn": "==0.19.1"}, INDEX, PROBE, "python=3.6")
    assert str(caught.value) == (
        "scikit-learn==0.19.1 has no build for the base image's CPython 3.11 (the environment pins python=3.6; the "
        "line on the base image says why the build is for 3.11); it has builds for Python 2.7, 3.6 (and source that needs a "
        "compiler, which the offline build does not run). Pin a scikit-learn release with wheels for Python 3.11, "
        "or pass --base-image with an image whose Python is 3.6")
    resolve.check_pins({"scikit-learn": "==1.2.2.*", "fusepy": "==3.0.1"}, INDEX, PROBE)  # a pure sdist may be built
    with pytest.raises(BuildError, match=r"numpy==1.99 matches no release on the package index"):
        resolve.check_pins({"numpy": "==1.99"}, INDEX, PROBE)


def test_every_pin_without_a_build_is_in_one_error():
    """A v1 environment pinning numpy and scikit-learn from 2020: both are named at once, not
    one per try; a pin of a version that does not exist is in the same message."""
    index = dict(INDEX, numpy={"1.19.5": Release("1.19.5", _at("2021-01-05"), tuple(
        f"numpy-1.19.5-cp3{m}-cp3{m}{'m' if m < 8 else ''}-manylinux2010_x86_64.whl" for m in (6, 7, 8, 9)) + (
        "numpy-1.19.5.zip",))}, six=_pure("six", ("1.16.0", "2021-05-05")))
    index["scikit-learn"] = dict(INDEX["scikit-learn"], **{"0.22.1": Release("0.22.1", _at("2020-01-03"), tuple(
        f"scikit_learn-0.22.1-cp3{m}-cp3{m}m-manylinux1_x86_64.whl" for m in (5, 6, 7)) + (
        "scikit_learn-0.22.1-cp38-cp38-manylinux1_x86_64.whl",))})
    message = _no_build({"six": "==1.16.0", "numpy": "==1.19.5", "scikit-learn": "==0.22.1", "fusepy": "==9.9"},
                        index, PROBE, "python=3.6.2")
    assert message == (
        "fusepy==9.9 matches no release on the package index (latest: 3.0.1); check the version. "
        "numpy==1.19.5 has no build for the base image's CPython 3.11 (the environment pins python=3.6.2; the "
        "line on the base image says why the build is for 3.11); it has builds for Python 3.6, 3.7, 3.8, 3.9 (and source that needs a "
        "compiler, which the offline build does not run). scikit-learn==0.22.1 has no build for CPython 3.11 either; "
        "it has builds for Python 3.5, 3.6, 3.7, 3.8. Pin numpy and scikit-learn releases with wheels for Python 3.11, "
        "or pass --base-image with an image whose Python is 3.8")
    assert "\n" not in message  # the CLI's single 'amldebug: error:' line


# One release's wheels, as PyPI lists them: CPython 3.11 for Linux x86_64, Windows and macOS; 3.10 for aarch64.
SPREAD = {"foo": {"1.0": Release("1.0", _at("2024-01-01"), (
    "foo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "foo-1.0-cp311-cp311-win_amd64.whl",
    "foo-1.0-cp311-cp311-macosx_11_0_arm64.whl", "foo-1.0-cp310-cp310-manylinux_2_17_aarch64.whl",
    "foo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"))}}


def _no_build(pins, index, probe, python_spec=""):
    with pytest.raises(BuildError) as caught:
        resolve.check_pins(pins, index, probe, python_spec)
    return str(caught.value)


def test_a_pin_with_the_image_python_only_on_other_platforms_names_them():
    """On an arm64 image the wheels for 3.11 (x86_64, Windows, macOS) are no build for it:
    the message must not claim 3.11 and then suggest a 3.11 image."""
    assert _no_build({"foo": "==1.0"}, SPREAD, dict(PROBE, machine="aarch64")) == (
        "foo==1.0 has no build for the base image's CPython 3.11; it has builds for Python 3.10 on Linux aarch64 "
        "with glibc 2.36, and for CPython 3.11 only on Linux x86_64, Windows, macOS. Pin a foo release with wheels "
        "for Python 3.11 on Linux aarch64 with glibc 2.36, or pass --base-image with an image whose Python is 3.10")


def test_a_pin_whose_linux_wheels_need_a_newer_glibc_names_the_glibc():
    probe = dict(PROBE, version="3.12", libc="glibc 2.17")
    assert _no_build({"foo": "==1.0"}, SPREAD, probe) == (
        "foo==1.0 has no build for the base image's CPython 3.12; it has builds for Python 3.11 on Linux x86_64 with "
        "glibc 2.17, and for CPython 3.12 only on Linux x86_64 with glibc 2.28+. Pin a foo release with wheels for "
        "Python 3.12 on Linux x86_64 with glibc 2.17, or pass --base-image with an image whose Python is 3.11")
    assert _no_build({"foo": "==1.0"}, SPREAD, dict(PROBE, libc="glibc 2.12")) == (
        "foo==1.0 has no build for the base image's CPython 3.11; it has builds for Python 3.10, 3.11, 3.12 only on "
        "Linux aarch64, Linux x86_64 with glibc 2.17+, Windows, macOS, none for Linux x86_64 with glibc 2.12. Pin a "
        "foo release with wheels for Python 3.11 on Linux x86_64 with glibc 2.12, or pass --base-image with an image "
        "for Linux x86_64 with glibc 2.17+")


def test_a_pure_python_wheel_is_a_build_for_the_pythons_its_requires_python_admits():
    index = {"baz": {"3.0": Release("3.0", _at("2025-01-01"), ("baz-3.0-py3-none-any.whl", "baz-3.0.tar.gz"),
                                    requires_python=(">=3.12", ">=3.12"))},
             "old": {"1.0": Release("1.0", _at("2019-01-01"), ("old-1.0-py2-none-any.whl",))}}
    assert not resolve.fits(index["baz"]["3.0"], PROBE, "baz")
    assert resolve.fits(index["baz"]["3.0"], dict(PROBE, version="3.12"), "baz")
    assert _no_build({"baz": "==3.0"}, index, PROBE) == (
        "baz==3.0 has no build for the base image's CPython 3.11; it has builds for Python 3.12+. Pin a baz release "
        "with wheels for Python 3.11, or pass --base-image with an image whose Python is 3.12")
    assert "it has builds for Python 2.x. Pin an old release" not in _no_build({"old": "==1.0"}, index, PROBE)
    assert "it has builds for Python 2.x." in _no_build({"old": "==1.0"}, index, PROBE)


@pytest.mark.parametrize("filename, fits", [
    ("x-1-cp311-cp311-manylinux_2_17_x86_64.whl", True), ("x-1-cp311-cp311-manylinux_2_39_x86_64.whl", False),
    ("x-1-cp38-abi3-manylinux2014_x86_64.whl", True), ("x-1-cp312-abi3-manylinux2014_x86_64.whl", False),
    ("x-1-py3-none-any.whl", True), ("x-1-py2-none-any.whl", False), ("x-1-cp310-cp310-manylinux1_x86_64.whl", False),
    ("x-1-cp311-cp311-musllinux_1_1_x86_64.whl", False), ("x-1-cp311-cp311-manylinux_2_17_aarch64.whl", False),
])
def test_which_wheels_fit_the_image(filename, fits):
    assert resolve.fits(Release("1", _at("2024-01-01"), (filename,)), PROBE, "x") is fits


def test_a_direct_requirement_far_below_its_newest_release_is_reported(tmp_path):
    (tmp_path / "azureml_defaults-1.0.45.dist-info").mkdir()
    (tmp_path / "numpy-1.24.2.dist-info").mkdir()
    have = resolve.installed(tmp_path)
    warnings = resolve.backtracks(have, INDEX, PROBE, None, direct=["azureml-defaults", "numpy"])
    assert warnings == ["amldebug: warning: azureml-defaults resolved to 1.0.45 (2019-06-24), far below 1.61.0 "
                        "(2026-01-10); a dependency held it back: pin azureml-defaults==1.61.0 to see which one",
                        "amldebug: warning: numpy resolved to 1.24.2 (2023-02-05), far below 2.0.0 (2024-06-16); a "
                        "dependency held it back: pin numpy==2.0.0 to see which one"]
    # Under the date bound, numpy 1.24.2 is the newest it could have: no warning.
    assert resolve.backtracks(have, INDEX, PROBE, _at("2023-03-09"), direct=["numpy"]) == []


def _dist(target: Path, name: str, version: str, *requires: str) -> None:
    info = target / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {line}\n" for line in requires) + "\nREADME text\n")


def _pure(name: str, *versions: tuple[str, str]) -> dict[str, Release]:
    return {v: Release(v, _at(day), (f"{name.replace('-', '_')}-{v}-py3-none-any.whl",)) for v, day in versions}


# azureml-defaults fell to 1.0.45 and pinned azureml-core there; urllib3 is capped by a current
# botocore; cloudpickle fell with nothing installed asking for less; setuptools is bounded by amldebug.
FALLEN = {
    "azureml-defaults": INDEX["azureml-defaults"],
    "azureml-core": _pure("azureml-core", ("1.0.45", "2019-06-24"), ("1.61.0", "2026-01-10")),
    "botocore": _pure("botocore", ("1.40.0", "2026-01-01")),
    "urllib3": _pure("urllib3", ("1.26.20", "2024-08-29"), ("2.5.0", "2026-06-18")),
    "cloudpickle": _pure("cloudpickle", ("1.6.0", "2020-09-10"), ("3.1.1", "2025-01-14")),
    "setuptools": _pure("setuptools", ("81.0.0", "2025-11-01"), ("82.0.0", "2026-02-01")),
    "fusepy": INDEX["fusepy"],
}


def _fallen_environment(target: Path) -> None:
    _dist(target, "azureml-defaults", "1.0.45", "azureml-core (==1.0.45)", "fusepy ; extra == 'fuse'")
    _dist(target, "azureml-core", "1.0.45", "urllib3>=1.23", "cloudpickle>=1.0 ; python_version >= '3.6'",
          "botocore ; python_version < '3'")
    _dist(target, "botocore", "1.40.0", "urllib3<1.27,>=1.25.4")
    _dist(target, "urllib3", "1.26.20")
    _dist(target, "cloudpickle", "1.6.0")
    _dist(target, "setuptools", "81.0.0")


def test_requirers_are_read_from_the_installed_metadata_for_the_image_python(tmp_path):
    _fallen_environment(tmp_path)
    required = resolve.requirers(tmp_path, PROBE, ["azureml-defaults"])
    assert required["azureml-core"] == [("azureml-defaults", "1.0.45", "==1.0.45")]
    assert sorted(required["urllib3"]) == [("azureml-core", "1.0.45", ">=1.23"),
                                           ("botocore", "1.40.0", "<1.27,>=1.25.4")]
    assert "botocore" not in required  # its marker is for Python 2
    assert "fusepy" not in required  # an extra nobody asked for
    assert resolve.requirers(tmp_path, PROBE, ["azureml-defaults[fuse]"])["fusepy"] == [
        ("azureml-defaults", "1.0.45", "")]


def test_a_dependency_that_fell_is_reported_with_what_held_it_back(tmp_path):
    """Not only direct requirements: azureml-core dragged down with azureml-defaults, and a
    dependency that fell with nothing asking for less. urllib3 capped by a current botocore is what
    botocore declares, and setuptools<82 is amldebug's own bound: neither is reported."""
    _fallen_environment(tmp_path)
    have = resolve.installed(tmp_path)
    warnings = resolve.backtracks(have, FALLEN, PROBE, None, direct=["azureml-defaults"], held=["setuptools"],
                                  required=resolve.requirers(tmp_path, PROBE, ["azureml-defaults"]))
    assert warnings == [
        "amldebug: warning: azureml-defaults resolved to 1.0.45 (2019-06-24), far below 1.61.0 (2026-01-10); a "
        "dependency held it back: pin azureml-defaults==1.61.0 to see which one",
        "amldebug: warning: cloudpickle resolved to 1.6.0 (2020-09-10), far below 3.1.1 (2025-01-14); a dependency "
        "held it back: pin cloudpickle==3.1.1 to see which one; required by azureml-core 1.0.45 (cloudpickle>=1.0)",
        "amldebug: warning: azureml-core resolved to 1.0.45 (2019-06-24), far below 1.61.0 (2026-01-10); held back "
        "by azureml-defaults 1.0.45 (azureml-core==1.0.45)",
    ]
    # The environment pins azureml-defaults==1.0.45 itself: it and what it pins are where it asked.
    assert [w.split(" resolved")[0] for w in resolve.backtracks(
        have, FALLEN, PROBE, None, direct=["azureml-defaults"], held=["azureml-defaults", "setuptools"],
        required=resolve.requirers(tmp_path, PROBE, ["azureml-defaults==1.0.45"]))] == [
        "amldebug: warning: cloudpickle"]


def test_what_the_environment_or_its_constraints_bound_from_above_is_held(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\nurllib3<2  # botocore\nidna>=2\n")
    assert resolve.held_names(["numpy==1.24.*", "six", "pandas>=2", "setuptools<82", "flask~=2.0",
                               f"--constraint '{constraints}'"]) == {"numpy", "setuptools", "flask", "urllib3"}


def test_a_post_release_or_a_release_for_another_python_is_no_backtrack(tmp_path):
    _dist(tmp_path, "msrestazure", "0.6.4")
    _dist(tmp_path, "click", "8.1.8")
    index = {"msrestazure": _pure("msrestazure", ("0.6.4", "2020-06-29"), ("0.6.4.post1", "2024-04-10")),
             "click": {"8.1.8": Release("8.1.8", _at("2024-12-21"), ("click-8.1.8-py3-none-any.whl",)),
                       "9.0.0": Release("9.0.0", _at("2026-11-06"), ("click-9.0.0-py3-none-any.whl",),
                                        requires_python=(">=3.12",))}}
    assert resolve.backtracks(resolve.installed(tmp_path), index, PROBE, None, direct=["msrestazure", "click"]) == []


def test_uv_command_targets_the_image(tmp_path):
    cmd = resolve.uv_command(tmp_path / "r.txt", tmp_path / "t", dict(PROBE, version="3.9", libc="glibc 2.31"),
                             bound=_at("2023-03-09"), exempt=["flask"])
    text = " ".join(cmd)
    assert "pip install --target" in text and "--python-version 3.9 --python-platform x86_64-manylinux_2_31" in text
    assert "--exclude-newer 2023-03-09T12:00:01Z" in text and "--exclude-newer-package flask=" in text
    assert "--only-binary numpy,scipy," in text and cmd[-2:] == ["-r", str(tmp_path / "r.txt")]
    assert resolve.uv_platform(dict(PROBE, libc="glibc 2.41")) == "x86_64-manylinux_2_40"
    assert resolve.uv_platform(dict(PROBE, libc="", musl=True)) == "x86_64-unknown-linux-musl"


def test_simple_api_answers_become_releases():
    data = {"files": [
        {"filename": "numpy-1.24.2-cp311-cp311-manylinux_2_17_x86_64.whl", "upload-time": "2023-02-05T20:00:00Z"},
        {"filename": "numpy-1.24.2.tar.gz", "upload-time": "2023-02-05T19:00:00.123Z"},
        {"filename": "numpy-1.0.tar.gz", "upload-time": "2006-10-25T00:00:00Z", "yanked": "bad"},
        {"filename": "numpy-2.3.0-cp311-cp311-manylinux_2_17_x86_64.whl", "upload-time": "2025-06-07T00:00:00Z",
         "requires-python": ">=3.11"},
    ]}
    releases = resolve.releases_from_simple_json("numpy", data)
    assert resolve.fits(releases["2.3.0"], PROBE, "numpy")
    assert not resolve.fits(releases["2.3.0"], dict(PROBE, markers={"python_full_version": "3.10.9"}), "numpy")
    assert releases["1.24.2"].uploaded == dt.datetime(2023, 2, 5, 20, tzinfo=dt.timezone.utc)
    assert len(releases["1.24.2"].files) == 2 and releases["1.0"].yanked


def test_source_builds_are_read_from_uv_and_checked(tmp_path):
    assert resolve.source_builds("   Building fusepy==3.0.1\n      Built fusepy==3.0.1\n") == [("fusepy", "3.0.1")]
    info = tmp_path / "fusepy-3.0.1.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    assert resolve.check_source_builds([("fusepy", "3.0.1")], tmp_path, PROBE) == [
        "amldebug: fusepy==3.0.1 exists only as source: built into a pure-Python wheel on the host"]
    info = tmp_path / "wrapt-1.12.1.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Root-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n")
    with pytest.raises(BuildError, match=r"wrapt==1.12.1 has no wheel for the base image's CPython 3.9; its source "
                                         r"has compiled code"):
        resolve.check_source_builds([("wrapt", "1.12.1")], tmp_path, dict(PROBE, version="3.9"))


def test_top_level_modules_from_record(tmp_path):
    for path in ("sklearn/__init__.py", "azureml/core/__init__.py", "six.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    for dist, rows in {"scikit_learn-1.2.2": ["sklearn/__init__.py", "sklearn/tests/x.py"],
                       "azureml_core-1.0": ["azureml/core/__init__.py", "azureml/core/x.py"],
                       "six-1.16.0": ["six.py", "__pycache__/six.cpython-311.pyc"],
                       "azureml_defaults-1.0": ["azureml_defaults-1.0.dist-info/METADATA"]}.items():
        (tmp_path / f"{dist}.dist-info").mkdir()
        (tmp_path / f"{dist}.dist-info" / "RECORD").write_text("\n".join(f"{r},," for r in rows))
    assert resolve.top_level_modules(tmp_path, ["scikit-learn", "azureml-core", "six", "azureml-defaults", "nope"]) == {
        "scikit-learn": ["sklearn"], "azureml-core": ["azureml.core"], "six": ["six"]}
