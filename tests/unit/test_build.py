"""amldebug.build without Docker: reading environment files, the hash, the pip command,
the image layout. The real builds are in tests/integration/test_build.py."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amldebug.errors import ImageError, UsageError
from amldebug.envbuild import image as build
from amldebug.envbuild import python, resolve
from amldebug.envbuild.image import env_hash, read_environment
from amldebug.sources import envfile
from amldebug.sources.envfile import Environment
from tests.support.envfiles import parse_conda_env, parse_requirements

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "build"

PROBE = {
    "python": "/usr/bin/python3", "version": "3.11", "implementation": "cpython", "abiflags": "",
    "machine": "x86_64", "libc": "glibc 2.36", "musl": False, "site": "/usr/local/lib/python3.11/dist-packages",
    "server": None, "conda": None, "path": "/usr/local/bin:/usr/bin:/bin",
    "markers": {"python_version": "3.11"},
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- requirements files --------------------------------------------------------------------

def test_requirements_fixture_is_flattened_as_pip_reads_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # -r resolves against the including file, not the working folder
    assert parse_requirements(FIXTURES / "requirements.txt") == [
        "--extra-index-url https://pkgs.example.com/simple",
        "six==1.16.0",
        "--prefer-binary",
        "azureml-inference-server-http>=1.0",
        'numpy>=1.24,<2 ; python_version >= "3.9"',
        'scikit-learn==1.3.2     ; platform_machine == "x86_64"',
    ]


def test_nested_includes_resolve_against_each_including_file(tmp_path):
    write(tmp_path / "a" / "b" / "deep.txt", "idna\n")
    write(tmp_path / "a" / "mid.txt", "-r b/deep.txt\nrequests\n")
    top = write(tmp_path / "top.txt", "--requirement=a/mid.txt\n-ra/b/deep.txt\n")
    assert parse_requirements(top) == ["idna", "requests", "idna"]


def test_option_spellings_are_normalized(tmp_path):
    links = tmp_path / "wheels"
    links.mkdir()
    req = write(tmp_path / "r.txt", "-i https://a.example/simple\n--index-url=https://b.example/simple\n"
                                    "--trusted-host a.example --pre\n-f wheels\n--only-binary :all:\n")
    assert parse_requirements(req) == [
        "--index-url https://a.example/simple", "--index-url https://b.example/simple",
        "--trusted-host a.example", "--pre", f"--find-links {links}", "--only-binary :all:",
    ]


def test_comments_blank_lines_and_fragments(tmp_path):
    req = write(tmp_path / "r.txt", "\n   # only a comment\nsix  # trailing\n"
                                    "git+https://example.com/repo.git#egg=mypkg\n"
                                    "other @ https://example.com/other-1.0-py3-none-any.whl ; python_version > '3'\n")
    assert parse_requirements(req) == [
        "six", "git+https://example.com/repo.git#egg=mypkg",
        "other @ https://example.com/other-1.0-py3-none-any.whl ; python_version > '3'",
    ]


def test_hashes_after_a_requirement_are_kept(tmp_path):
    req = write(tmp_path / "r.txt", "six==1.16.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n")
    assert parse_requirements(req) == ["six==1.16.0 --hash=sha256:aaaa --hash=sha256:bbbb"]


def test_local_wheels_and_constraints_become_absolute_and_are_inputs(tmp_path, monkeypatch):
    wheel = write(tmp_path / "dist" / "mypkg-1.0-py3-none-any.whl", "not really a zip")
    constraints = write(tmp_path / "constraints.txt", "six<2\n")
    req = write(tmp_path / "r.txt", "./dist/mypkg-1.0-py3-none-any.whl\n-c constraints.txt\n")
    monkeypatch.chdir("/")
    env = read_environment(req)
    assert env.pip == (str(wheel), f"--constraint {constraints}")
    assert env.inputs == (wheel, constraints)
    assert env.requirement_names == {"mypkg"}


@pytest.mark.parametrize("text, line, expected", [
    ("six\nnumpy>=>1\n", 2, "is not a valid requirement"),
    ("six\n\n# c\nrequests; python_version >< '3'\n", 4, "is not a valid requirement"),
    ("--frobnicate\n", 1, "option '--frobnicate' is not supported"),
    ("six\n-e ./src\n", 2, "editable installs"),
    ("--no-binary :all:\n", 1, "build from source"),
    ("--index-url\n", 1, "needs a value"),
    ("six --install-option=--x\n", 1, "per-requirement option"),
    ("-r 'unterminated\n", 1, "close the quote"),
    ("./missing-1.0-py3-none-any.whl\n", 1, "does not exist"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, expected):
    req = write(tmp_path / "requirements.txt", text)
    with pytest.raises(UsageError) as caught:
        parse_requirements(req)
    message = str(caught.value)
    assert f"{req}:{line}:" in message and expected in message


def test_continued_line_error_names_its_first_line(tmp_path):
    req = write(tmp_path / "r.txt", "six\nnumpy \\\n  >=>1\n")
    with pytest.raises(UsageError, match=rf"{tmp_path / 'r.txt'}:2: "):
        parse_requirements(req)


def test_missing_include_names_the_line_that_includes_it(tmp_path):
    req = write(tmp_path / "r.txt", "six\n-r nope.txt\n")
    with pytest.raises(UsageError) as caught:
        parse_requirements(req)
    message = str(caught.value)
    assert message == (f"{req}:2: '-r nope.txt': '{tmp_path / 'nope.txt'}' does not exist; -r and -c paths are "
                       "relative to the file that names them")


def test_include_loop_is_refused(tmp_path):
    write(tmp_path / "b.txt", "-r a.txt\n")
    a = write(tmp_path / "a.txt", "-r b.txt\n")
    with pytest.raises(UsageError, match="remove the loop"):
        parse_requirements(a)


def test_project_folder_is_refused_with_the_fix(tmp_path):
    (tmp_path / "src").mkdir()
    req = write(tmp_path / "r.txt", "./src\n")
    with pytest.raises(UsageError, match=r"r.txt:1: .*pip wheel --no-deps ./src"):
        parse_requirements(req)


# -- conda files ---------------------------------------------------------------------------

def test_conda_fixture(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conda, pip = parse_conda_env(FIXTURES / "conda.yml")
    assert conda == ["python=3.11", "pip=23.2", "conda-forge::numpy=1.26"]
    assert pip == ["azureml-inference-server-http", "scikit-learn>=1.3", "six==1.16.0", "--prefer-binary"]
    env = read_environment(FIXTURES / "conda.yml")
    assert env.channels == ("conda-forge", "defaults")
    assert env.conda_only == ["conda-forge::numpy=1.26"]


def test_conda_flow_lists_unindented_items_and_quotes(tmp_path):
    path = write(tmp_path / "env.yaml", "---\nchannels: [conda-forge]\ndependencies:\n- python=3.9\n"
                                        "- 'pip'\n- pip: [\"six>=1\", idna]\n- \"numpy >=1.2\"  # comment\n")
    assert parse_conda_env(path) == (["python=3.9", "pip", "numpy >=1.2"], ["six>=1", "idna"])


def test_conda_file_is_recognized_by_content(tmp_path):
    path = write(tmp_path / "environment", "name: x\ndependencies:\n  - pip:\n    - six\n")
    assert read_environment(path).pip == ("six",)


@pytest.mark.parametrize("text, line, expected", [
    ("dependencies:\n\t- six\n", 2, "tab"),
    ("dependencies:\n  - python\n  - numpy: 1\n", 3, "is a mapping"),
    ("dependencies:\n  - pip:\n    - six==\n", 3, "is not a valid requirement"),
    ("dependencies:\n  - python\n    - numpy\n", 3, "line the '- ' items up"),
    ("dependencies:\n  python: 3\n", 2, "expected a list item"),
    ("dependencies: python\n", 1, "expected a list"),
    ("dependencies:\n  - \"numpy\n", 2, "unterminated"),
    ("  - six\n", 1, "belongs to no key"),
    ("dependencies:\n  - pip:\n    - a: b\n", 3, "expected a pip requirement"),
])
def test_malformed_conda_lines_name_file_and_line(tmp_path, text, line, expected):
    path = write(tmp_path / "env.yml", text)
    with pytest.raises(UsageError) as caught:
        parse_conda_env(path)
    assert f"{path}:{line}:" in str(caught.value) and expected in str(caught.value)


def test_conda_file_without_dependencies(tmp_path):
    path = write(tmp_path / "env.yml", "name: x\nchannels:\n  - defaults\n")
    with pytest.raises(UsageError, match="has no 'dependencies:' list"):
        parse_conda_env(path)


def test_conda_packages_become_pypi_requirements_and_every_mapping_is_logged(tmp_path):
    env = read_environment(FIXTURES / "conda.yml")
    notes = []
    lines, python = build.conda_requirements(env, PROBE, notes.append)
    assert (lines, python) == (["numpy==1.26.*"], "python=3.11")
    assert notes == [
        "amldebug: conda 'pip=23.2' -> skipped: amldebug installs with the host's resolver",
        "amldebug: conda 'conda-forge::numpy=1.26' -> 'numpy==1.26.*' (conda's '=1.26' means 1.26.*)",
        "amldebug: conda channels ignored (conda-forge, defaults): packages come from the host's package index (PyPI)",
    ]


def test_the_python_a_conda_file_pins_is_the_one_the_build_is_for(tmp_path):
    def pinned(text):
        return python.pinned_minor(read_environment(write(tmp_path / "env.yml", text)))

    assert pinned("dependencies:\n  - python=3.8.10\n  - pip\n") == "3.8"
    assert pinned("dependencies:\n  - python==3.7.*\n") == "3.7"
    assert pinned("dependencies:\n  - python=3\n") is None  # conda picks the minor
    assert pinned("dependencies:\n  - python>=3.8\n") is None
    assert pinned("dependencies:\n  - numpy\n") is None
    notes = []
    assert build.conda_requirements(read_environment(write(tmp_path / "e.yml", "dependencies:\n  - python=3.8\n")),
                                    PROBE, notes.append) == ([], "python=3.8")
    assert not any("warning" in note for note in notes)  # the choice of base image says which Python


def test_the_nearest_python_is_the_closest_minor_and_the_older_of_two_as_close():
    assert python.by_distance("3.8", ["3.11", "3.9", "3.13", "3.12"]) == ["3.9", "3.11", "3.12", "3.13"]
    assert python.by_distance("3.10", ["3.11", "3.9", "3.12"]) == ["3.9", "3.11", "3.12"]
    assert python.by_distance("3.12", ["3.11", "3.13", "3.9"]) == ["3.11", "3.13", "3.9"]


def test_azure_ml_conda_base_images_are_not_the_python_the_environment_runs():
    assert python.is_conda_base("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest")
    assert python.is_conda_base("mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1")
    assert python.is_conda_base("mcr.microsoft.com/azureml/curated/sklearn-1.5:12")
    assert not python.is_conda_base("mcr.microsoft.com/azureml/minimal-py311-inference:latest")
    assert not python.is_conda_base(None)


def test_azure_ml_s_way_creates_the_pinned_python_with_conda_then_adds_the_server():
    text = python.conda_dockerfile("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest")
    assert text.splitlines()[0] == "FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert "conda env create -p /azureml-envs/amldebug -f /tmp/amldebug/conda.yml" in text
    assert "pip install --no-cache-dir azureml-inference-server-http" in text
    assert "ENV PATH=/azureml-envs/amldebug/bin:$PATH" in text


def _release(version, day, *files, requires=""):
    return resolve.Release(version, dt.datetime(2021, 1, day, tzinfo=dt.timezone.utc), files,
                           requires_python=(requires,) * len(files))


def test_pins_without_a_build_for_a_python_are_named():
    index = {"numpy": {"1.19.5": _release("1.19.5", 5, "numpy-1.19.5-cp39-cp39-manylinux2010_x86_64.whl")}}
    assert python.pins_fit({"numpy": "==1.19.5"}, index, python.synthetic_probe("3.9")) == []
    assert python.pins_fit({"numpy": "==1.19.5"}, index, python.synthetic_probe("3.11")) == ["numpy==1.19.5"]


def test_a_named_package_keeps_its_newest_fitting_release_under_the_bound():
    index = {"azureml-defaults": {v: _release(v, d, f"azureml_defaults-{v}-py3-none-any.whl")
                                  for v, d in (("1.0.85", 1), ("1.30.0", 10), ("1.31.0", 20), ("2.0b1", 21))},
             "six": {"1.16.0": _release("1.16.0", 1, "six-1.16.0-py2.py3-none-any.whl")}}
    bound = dt.datetime(2021, 1, 15, tzinfo=dt.timezone.utc)
    lines = ["azureml-defaults", "six==1.16.0", "azureml-defaults<1.31; python_version < '3'", "pandas"]
    assert resolve.floors(lines, index, PROBE, None) == {"azureml-defaults": "1.31.0"}
    assert resolve.floors(lines, index, PROBE, bound) == {"azureml-defaults": "1.30.0"}
    assert resolve.floors(lines, index, PROBE, bound, exempt=["azureml-defaults"]) == {"azureml-defaults": "1.31.0"}
    assert resolve.floors(["azureml-defaults<1.30"], index, PROBE, None) == {"azureml-defaults": "1.0.85"}


def test_what_the_pip_step_replaced_is_read_from_uv():
    output = "Uninstalled 1 package in 81ms\nInstalled 4 packages in 111ms\n + llvmlite==0.39.1\n + numba==0.56.4\n" \
             " - numpy==1.24.3\n + numpy==1.23.5\n"
    assert resolve.replaced(output) == [("numpy", "1.24.3", "1.23.5")]


def test_setuptools_and_the_server_are_added_unless_listed():
    notes = []
    env = Environment(None, ("six",))
    assert build.added_requirements(env, ["six"], None, notes.append) == [
        "azureml-inference-server-http", "setuptools<82"]
    assert "pkg_resources" in notes[0]
    assert build.added_requirements(env, ["setuptools==69.0", "azureml-defaults"], "1.5.1", notes.append) == []
    hashed = ["azureml-defaults==1.0 --hash=sha256:aaaa"]
    assert build.added_requirements(Environment(None, tuple(hashed)), hashed, None, notes.append) == []
    assert notes[-1].startswith("amldebug: the environment pins hashes, so setuptools (pkg_resources) is not added")


# -- missing files -------------------------------------------------------------------------

def test_missing_environment_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(UsageError) as caught:
        read_environment(tmp_path / "nope.txt")
    assert f"environment file '{tmp_path / 'nope.txt'}' does not exist" in str(caught.value)
    assert "pass --env with a pip requirements file or a conda YAML" in str(caught.value)


def test_folder_instead_of_environment_file(tmp_path):
    with pytest.raises(UsageError, match="is a folder, not a file"):
        read_environment(tmp_path)


def test_no_environment_file_means_the_server_only():
    env = read_environment(None)
    assert env.pip == () and build.with_server(env, None) == ["azureml-inference-server-http"]


# -- hash ----------------------------------------------------------------------------------

def test_hash_follows_every_input(tmp_path):
    wheel = write(tmp_path / "w-1.0-py3-none-any.whl", "one")
    req = write(tmp_path / "r.txt", "six\n./w-1.0-py3-none-any.whl\n")
    first = env_hash(read_environment(req), "sha256:base1")
    assert len(first) == 16 and first == env_hash(read_environment(req), "sha256:base1")
    assert env_hash(read_environment(req), "sha256:base2") != first
    assert env_hash(read_environment(req), "sha256:base1", version="9.9.9") != first
    write(req, "# a comment does not change what is installed\nsix   \n./w-1.0-py3-none-any.whl\n")
    assert env_hash(read_environment(req), "sha256:base1") == first
    write(req, "six==1.16.0\n./w-1.0-py3-none-any.whl\n")
    changed = env_hash(read_environment(req), "sha256:base1")
    assert changed != first
    write(wheel, "two")  # the same path with other bytes
    assert env_hash(read_environment(req), "sha256:base1") != changed


def test_hash_follows_included_files(tmp_path):
    inc = write(tmp_path / "inc.txt", "six\n")
    req = write(tmp_path / "r.txt", "-r inc.txt\n")
    before = env_hash(read_environment(req), "b")
    write(inc, "six\nidna\n")
    assert env_hash(read_environment(req), "b") != before


# -- server, platforms, pip ---------------------------------------------------------------

def test_server_is_added_unless_the_environment_brings_it(tmp_path):
    plain = Environment(None, ("six",))
    assert build.with_server(plain, None) == ["six", "azureml-inference-server-http"]
    assert build.with_server(plain, "1.5.1") == ["six", "azureml-inference-server-http==1.5.1"]
    for line in ("azureml-defaults==1.55", "Azureml_Inference.Server-HTTP>=1"):
        assert build.with_server(Environment(None, (line,)), None) == [line]


def test_server_cannot_be_added_in_hash_checking_mode(tmp_path):
    env = Environment(Path("r.txt"), ("six==1 --hash=sha256:aa",))
    with pytest.raises(UsageError, match="pins hashes.*add azureml-inference-server-http"):
        build.with_server(env, None)


@pytest.mark.parametrize("line, name", [
    ("Six>=1", "six"), ("zope.interface[x]==5; python_version>'3'", "zope-interface"),
    ("mypkg @ https://x.example/mypkg.whl", "mypkg"), ("/abs/dist/my_pkg-1.0-py3-none-any.whl", "my-pkg"),
    ("git+https://x.example/r.git#egg=Foo_Bar", "foo-bar"), ("https://x.example/a/b", None), ("--pre", None),
])
def test_requirement_names(line, name):
    assert envfile.requirement_name(line) == name


def test_platforms_cover_every_manylinux_level_of_the_glibc():
    assert build.pip_platforms(PROBE) == [f"manylinux_2_{k}_x86_64" for k in range(36, 16, -1)] + [
        "manylinux2014_x86_64"]
    assert build.pip_platforms(dict(PROBE, libc="glibc 2.12", machine="i686")) == ["manylinux2010_i686"]
    assert build.pip_platforms(dict(PROBE, libc="", musl=True, machine="aarch64")) == [
        "musllinux_1_2_aarch64", "musllinux_1_1_aarch64"]
    with pytest.raises(ImageError, match="C library"):
        build.pip_platforms(dict(PROBE, libc=""))


def test_pip_command_targets_the_image_python(tmp_path):
    cmd = build.pip_command(tmp_path / "r.txt", tmp_path / "t", dict(PROBE, version="3.9"), tmp_path / "cache")
    joined = " ".join(cmd[4:])
    for part in ("install --target", "--only-binary=:all:", "--implementation cp", "--python-version 3.9",
                 "--abi cp39", "--platform manylinux_2_17_x86_64", "--platform manylinux2014_x86_64",
                 f"--cache-dir {tmp_path / 'cache'}", "--no-compile", f"-r {tmp_path / 'r.txt'}"):
        assert part in joined
    same = build.pip_command(tmp_path / "r.txt", tmp_path / "t", dict(PROBE, version="%d.%d" % sys.version_info[:2]),
                             tmp_path / "cache")
    assert "--no-compile" not in same  # the host's .pyc files fit the image's Python


def test_pip_failure_names_the_missing_package():
    output = ("Looking in indexes: https://pypi.org/simple\n"
              "ERROR: Could not find a version that satisfies the requirement nosuchpkg==1.0 (from versions: none)\n"
              "ERROR: No matching distribution found for nosuchpkg==1.0\n")
    error = build.pip_failure(output, PROBE, 1)
    message = str(error)
    assert message.startswith("no wheel of 'nosuchpkg==1.0' fits the base image's CPython 3.11 on Linux x86_64")
    assert "pass --base-image" in message and "ERROR: No matching distribution found for nosuchpkg==1.0" in message
    assert error.output == output


def test_pip_failure_for_conflicts_and_others():
    assert "no set of versions" in str(build.pip_failure("ERROR: ResolutionImpossible: x", PROBE, 1))
    assert "pip failed (exit code 2)" in str(build.pip_failure("ERROR: boom", PROBE, 2))


@pytest.mark.parametrize("tag, ok", [
    ("my-env", True), ("my-env:1", True), ("registry.example:5000/team/env:v1.2", True),
    ("My-Env:1", False), ("env:", False), ("env:bad tag", False), ("-x", False),
])
def test_tags(tag, ok):
    if ok:
        build.check_tag(tag)
    else:
        with pytest.raises(UsageError, match=f"--tag '{tag}' is not a valid image name"):
            build.check_tag(tag)


def test_check_tag_splits_repository_and_tag():
    assert build.check_tag("localhost:5000/env") == ("localhost:5000/env", "latest")
    assert build.check_tag("env:2") == ("env", "2")


# -- the image layout ----------------------------------------------------------------------

def test_console_scripts_get_the_image_python(tmp_path):
    plain = write(tmp_path / "bin" / "flask", "#!/home/me/.venv/bin/python3\nimport sys\nprint(1)\n")
    tramp = write(tmp_path / "bin" / "gunicorn",
                  "#!/bin/sh\n'''exec' \"/long path/python\" \"$0\" \"$@\"\n' '''\nimport sys\n")
    other = write(tmp_path / "bin" / "tool.sh", "#!/bin/bash\necho hi\n")
    build.retarget_scripts(tmp_path / "bin", "/opt/conda/bin/python")
    assert plain.read_text() == "#!/opt/conda/bin/python\nimport sys\nprint(1)\n"
    assert tramp.read_text() == "#!/opt/conda/bin/python\nimport sys\n"
    assert other.read_text() == "#!/bin/bash\necho hi\n"
    assert os.access(plain, os.X_OK)


def test_server_script_and_dockerfile():
    assert build.server_script("/usr/bin/python3").startswith("#!/usr/bin/python3\n")
    assert build.server_script("/opt/my env/python").startswith("#!/bin/sh\n'''exec' \"/opt/my env/python\"")
    text = build.dockerfile("sha256:abc", PROBE, {"amldebug.env.file": 'C:\\a "b" $HOME', "z": "1"})
    assert text.splitlines() == [
        "FROM sha256:abc",
        'COPY ["site-packages/", "/opt/amldebug-env/site-packages/"]',
        'COPY ["bin/", "/opt/amldebug-env/bin/"]',
        'COPY ["pth/", "/usr/local/lib/python3.11/dist-packages/"]',
        'ENV PATH="/opt/amldebug-env/bin:/usr/local/bin:/usr/bin:/bin"',
        'LABEL amldebug.env.file="C:\\\\a \\"b\\" \\$HOME" z="1"',
    ]
    assert "RUN" not in text  # nothing executes inside the build


def test_activation_puts_the_environment_before_site_packages_only(tmp_path):
    """The .pth hook, run by a real Python: the environment's folder (and the .pth files
    in it) come before the image's own site-packages, after the standard library."""
    env_root = tmp_path / "env"
    write(env_root / "site-packages" / "extra.pth", str(tmp_path / "from-pth") + "\n")
    site_dir = tmp_path / "site"
    write(site_dir / "_amldebug_env.py", build._ACTIVATE_MODULE.format(env=env_root))
    write(site_dir / "amldebug-env.pth", "import _amldebug_env\n")
    (tmp_path / "from-pth").mkdir()
    code = f"import site, sys; site.addsitedir({str(site_dir)!r}); print('\\n'.join(sys.path))"
    path = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    entries = path.split("\n")
    ours = entries.index(str(env_root / "site-packages"))
    assert entries[ours + 1] == str(tmp_path / "from-pth")
    assert entries[ours + 2] == str(site_dir)
    assert any(e.endswith("python%d.%d" % sys.version_info[:2]) for e in entries[:ours])  # stdlib first


def test_context_files_are_root_owned_and_readable(tmp_path):
    import io
    import tarfile

    private = write(tmp_path / "ctx" / "site-packages" / "m.py", "x = 1\n")
    private.chmod(0o600)
    exe = write(tmp_path / "ctx" / "bin" / "tool", "#!/bin/sh\n")
    exe.chmod(0o700)
    buffer = io.BytesIO()
    build.write_context(tmp_path / "ctx", buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["site-packages/m.py"].mode == 0o644 and members["bin/tool"].mode == 0o755
    assert {(m.uid, m.gid, m.uname) for m in members.values()} == {(0, 0, "root")}


class _FakeAPI:
    def __init__(self):
        self.kwargs = None

    def build(self, **kwargs):
        self.kwargs = kwargs
        return iter([{"stream": "Step 1/1 : FROM x\n"}, {"aux": {"ID": "sha256:feed"}},
                     {"stream": "Successfully built feed\n"}])


def test_docker_build_has_no_network_and_prints_no_engine_lines(tmp_path):
    client = type("Client", (), {"api": _FakeAPI()})()
    write(tmp_path / "Dockerfile", "FROM x\n")
    seen = []
    assert build.docker_build(client, tmp_path, seen.append) == "sha256:feed"
    assert client.api.kwargs["network_mode"] == "none" and client.api.kwargs["pull"] is False
    assert "tag" not in client.api.kwargs  # tagged only once the build succeeded
    assert seen == []  # the stage lines around the build say what happens (issue 13: no raw lines)


def test_import_failure_names_the_package_and_the_fix():
    modules = {"scikit-learn": ["sklearn"], "numpy": ["numpy"], "azureml-core": ["azureml.core"]}
    ok = [{"module": "numpy", "ok": True}]
    assert build.import_failure(ok, modules, PROBE) is None
    results = ok + [
        {"module": "sklearn", "ok": False, "file": "/opt/amldebug-env/site-packages/sklearn/__init__.py",
         "error": "ValueError: numpy.dtype size changed, may indicate binary incompatibility"},
        {"module": "azureml.core", "ok": False, "file": "/opt/amldebug-env/site-packages/azureml/core/__init__.py",
         "error": "ModuleNotFoundError: No module named 'pkg_resources'"}]
    message = str(build.import_failure(results, modules, PROBE))
    assert message == ("the built environment does not import: 'import sklearn' (scikit-learn) fails in the image's "
                       "Python 3.11 with ValueError: numpy.dtype size changed, may indicate binary incompatibility; "
                       "scikit-learn was compiled against numpy 1.x and numpy 2 was installed: add 'numpy<2' to the "
                       "environment file (conda's builds carry that bound, PyPI's do not); also failing: azureml.core")
    message = str(build.import_failure(results[2:], modules, PROBE))
    assert "'import azureml.core' (azureml-core)" in message and "add 'setuptools<82'" in message
    gomp = [{"module": "lightgbm", "ok": False, "file": "/opt/amldebug-env/site-packages/lightgbm/basic.py",
             "error": "OSError: libgomp.so.1: cannot open shared object file: No such file or directory"}]
    message = str(build.import_failure(gomp, {"lightgbm": ["lightgbm"]}, PROBE))
    assert message.endswith("lightgbm needs the system library libgomp.so.1, which the base image lacks (conda "
                            "installs such libraries with the package; PyPI's wheels expect the image to have them): "
                            "use a base image that has it (Azure ML's inference images do), or add it to yours (e.g. "
                            "'apt-get install libgomp1' for libgomp.so.1)"), message


def test_pypi_aliases_written_by_azureml_core_are_dropped():
    notes = []
    lines = ["--find-links https://pypi.python.org/simple/index.html", "--extra-index-url https://pypi.python.org/simple",
             "--extra-index-url https://pkgs.example.com/simple", "six"]
    assert build.without_pypi_aliases(lines, notes.append) == ["--extra-index-url https://pkgs.example.com/simple", "six"]
    assert len(notes) == 2 and notes[0].endswith("names PyPI, the default index: dropped")


def test_the_packages_in_a_conflict_are_read_from_uv():
    output = ("error: No solution found when resolving dependencies\n  cause: Because pyarrow>=0.17.0,<=1.0.1 has no "
              "usable wheels and only the following versions of pyarrow are available:\n  And because "
              "azureml-dataset-runtime>=1.25.0 depends on pyarrow>=0.17.0,<2.0.0, we can conclude that ...\n  And "
              "because azureml-defaults>=1.25.0 depends on azureml-dataset-runtime[fuse]>=1.25.0 and you require "
              "azureml-defaults>=1.25.0, we can conclude that your requirements are unsatisfiable.\n")
    assert resolve.conflict_names(output) == {"pyarrow", "azureml-dataset-runtime", "azureml-defaults"}
    assert resolve.conflict_names("Resolved 3 packages") == set()


def test_a_source_that_refuses_to_build_is_named_with_the_package_s_own_reason():
    probe = {"version": "3.9", "machine": "x86_64"}
    output = ("error: Failed to build `sklearn==0.0.post12`\n  cause: ... The 'sklearn' PyPI package is deprecated, use "
              "'scikit-learn'\nhint: `sklearn` is often confused for `scikit-learn`. Did you mean to install "
              "`scikit-learn` instead?\nhint: Build failures usually indicate a problem with the package or the build "
              "environment\n")
    message = str(resolve.uv_failure(output, probe))
    assert message.startswith("sklearn==0.0.post12 cannot be installed: its source refuses to build; uv says: "
                              "`sklearn` is often confused for `scikit-learn`. Did you mean to install `scikit-learn` "
                              "instead?"), message
    compiled = "error: Failed to build `pyyaml==5.3`\n  cause: command 'false' failed\n"
    assert "the offline build compiles no C code for a Python other than the host's" in str(
        resolve.uv_failure(compiled, probe))
    gone = [{"module": "keras", "ok": False, "file": "/x/site-packages/google/protobuf/descriptor.py",
             "error": "TypeError: Descriptors cannot be created directly."}]
    assert "add 'protobuf<4' to the environment file" in str(build.import_failure(gone, {"keras": ["keras"]}, PROBE))
