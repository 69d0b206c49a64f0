"""Where a service's inputs come from, read without side effects: environment files (requirements,
conda, Azure ML environments) and Azure ML configuration files."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError
from .azureml import file_kind, read_setup
from .envfile import Environment, read_env_file, read_text


def read_environment(env_file: str | os.PathLike | None) -> Environment:
    """The environment a file describes (a requirements file, a conda YAML by its
    ``.yml``/``.yaml`` suffix or its top-level ``dependencies:``, or an Azure ML
    environment definition or inference configuration in JSON or YAML); None: no packages
    beyond the scoring server."""
    if env_file is None:
        return Environment(None)
    path = Path(env_file).expanduser().absolute()
    read_text(path)
    if file_kind(path):
        setup = read_setup(path)
        if setup.environment is None:
            raise UsageError(f"'{path}' sets userManagedDependencies: its image ({setup.base_image}) is used as it "
                             "is and there is nothing to build; pass it to 'amldebug attach --image'")
        return setup.environment
    return read_env_file(path)
