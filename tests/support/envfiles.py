"""The two readers of environment files as the tests call them: a requirements file's pip
lines, and a conda file's (conda packages, pip lines). The package reads both through
``envfile.read_env_file``; these name the two halves the tests check."""

from __future__ import annotations

import os
from pathlib import Path

from amldebug.sources.envfile import Reader, read_conda_environment


def parse_requirements(path: str | os.PathLike) -> list[str]:
    """The lines pip should read for requirements file ``path``: comments and blank lines
    dropped, continuations joined, ``-r`` files inlined (relative to the file naming
    them), local paths made absolute. Raises UsageError naming FILE:LINE."""
    reader = Reader()
    reader.read_file(Path(path).expanduser().absolute())
    return reader.lines


def parse_conda_env(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(conda packages, pip lines) of a conda environment file. Pip lines are read as in a
    requirements file (``-r`` relative to the YAML file). Raises UsageError naming FILE:LINE."""
    env = read_conda_environment(Path(path).expanduser().absolute())
    return list(env.conda), list(env.pip)
