"""Where a service's inputs come from, read without side effects: environment files (requirements,
conda, Azure ML environments) and Azure ML configuration files."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError
from .azureml import EnvironmentSetup, InferenceSetup
from .azureml import read_setup as _read_v1_setup
from .envfile import Environment, read_env_file, read_text
from .kinds import Kind, kind_of


def read_setup(path: str | os.PathLike) -> EnvironmentSetup | InferenceSetup:
    """The environment of an Azure ML file given as --env: a v1 environment definition or
    inference configuration, or a v2 environment YAML (a v2 deployment: UsageError naming
    --deployment)."""
    file = Path(path).expanduser()
    if kind_of(file) is Kind.V2_ENVIRONMENT:
        from .deployment import read_environment_yaml

        return read_environment_yaml(file)
    return _read_v1_setup(file)


def read_environment(env_file: str | os.PathLike | None) -> Environment:
    """The environment a file describes (a requirements file, a conda YAML by its
    ``.yml``/``.yaml`` suffix or its top-level ``dependencies:``, or an Azure ML
    environment definition or inference configuration in JSON or YAML); None: no packages
    beyond the scoring server."""
    if env_file is None:
        return Environment(None)
    path = Path(env_file).expanduser().absolute()
    read_text(path)
    kind = kind_of(path)
    if kind is Kind.V2_DEPLOYMENT:  # its environment (a service from --deployment rebuilds from its file)
        from .deployment import read_deployment

        setup = read_deployment(path)
        if setup.environment is None:
            raise UsageError(f"'{path}' uses its image {setup.base_image or '(a build context)'} as it is: there "
                             "is nothing to build; run 'amldebug attach --deployment' with it")
        return setup.environment
    if kind.is_azureml:
        setup = read_setup(path)
        if setup.environment is None and getattr(setup, "build", None) is not None:
            raise UsageError(f"'{path}' builds from a Docker context ({setup.build.dockerfile}); 'amldebug attach "
                             "--env' builds it, 'amldebug build' installs packages only")
        if setup.environment is None:
            raise UsageError(f"'{path}' sets userManagedDependencies: its image ({setup.base_image}) is used as it "
                             "is and there is nothing to build; pass it to 'amldebug attach --image'")
        return setup.environment
    return read_env_file(path, kind)
