"""Which option of ``amldebug attach`` takes an Azure ML v2 file (its kind is decided in
sources/kinds.py), and the messages that say so. Pure; read by every reader of Azure ML
files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import UsageError
from .kinds import v2_name


def _wrong_kind(file: Path, kind: Optional[str]) -> str:
    if kind == "environment":
        return f"'{file}' is an Azure ML v2 environment, not a deployment; pass it with --env"
    if kind and "endpoint" in kind and "deployment" not in kind:
        return (f"'{file}' is an Azure ML {kind} (the endpoint its deployments belong to), not a deployment; pass the "
                "deployment file (e.g. blue-deployment.yml) with --deployment")
    return f"'{file}' is an Azure ML {kind} file, not an online deployment; pass an online deployment with --deployment"


def wrong_option_message(file: Path, flag: str) -> Optional[str]:
    """When a v2 file is given to an option that takes another kind: which option takes it."""
    kind = v2_name(file)
    if kind == "deployment" and flag != "--deployment":
        return (f"'{file}' is an Azure ML v2 online deployment (what 'az ml online-deployment create -f' reads), not "
                f"{'an inference configuration' if flag == '--inference-config' else 'an environment'}; "
                f"pass it with --deployment {file.name}")
    if kind == "environment" and flag == "--inference-config":
        return f"'{file}' is an Azure ML v2 environment, not an inference configuration; pass it with --env"
    if kind and kind not in ("deployment", "environment") and flag in ("--env", "--inference-config"):
        return _wrong_kind(file, kind).replace("with --deployment", "with --deployment (its environment: --env)")
    return None


def refuse_misplaced(source_dir: Optional[str], env_file: Optional[str]) -> None:
    """A file given as SOURCE_DIR (a v2 deployment or environment: the option that takes
    it), or a v2 deployment given to --env: UsageError naming the option that takes it,
    before anything looks for amldebug.json or score.py in it (attach and check alike)."""
    if source_dir is not None and Path(source_dir).is_file():
        kind = v2_name(Path(source_dir))
        flag = {"deployment": "--deployment", "environment": "--env"}.get(kind or "")
        if flag:
            raise UsageError(f"'{source_dir}' is an Azure ML v2 {kind} file, not the folder of your scoring "
                             f"script; pass it with {flag} {source_dir}")
        raise UsageError(f"SOURCE_DIR '{source_dir}' is a file, not a folder; pass the folder that holds your "
                         f"scoring script (and --entry-script {Path(source_dir).name} if that is the script)")
    if env_file is not None and Path(env_file).is_file():
        message = wrong_option_message(Path(env_file), "--env")
        if message:
            raise UsageError(message)
