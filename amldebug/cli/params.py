"""Each option of the commands, declared once: typer Annotated aliases whose flags and help
come from the AttachOptions field they fill (core.options), and the way from a command's
parameters to an AttachOptions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..core.options import AttachOptions, option_fields


def _flag(name: str):
    """The typer option for an AttachOptions field: its flag and help are declared there,
    once (the default is the command's own, as Annotated options take it)."""
    field = _FIELDS[name]
    decls = [d for d in (field.metadata["flag"], field.metadata["short"]) if d]
    return typer.Option(*decls, help=field.metadata["help"])


_FIELDS = {f.name: f for f in option_fields()}

# Each option of attach/vscode/check, declared once (flags and help come from AttachOptions).
SourceDir = Annotated[Optional[Path], typer.Argument(metavar="SOURCE_DIR", help=_FIELDS["source_dir"].metadata["help"],
                                                     show_default=False)]
EntryScript = Annotated[Optional[str], _flag("entry_script")]
Image = Annotated[Optional[str], _flag("image")]
ModelDir = Annotated[Optional[Path], _flag("model_dir")]
ModelDirs = Annotated[Optional[List[str]], typer.Option(  # repeatable: several models
    "--model-dir", help=_FIELDS["model_dir"].metadata["help"], metavar="[NAME[:VERSION]=]PATH")]
Deployment = Annotated[Optional[Path], _flag("deployment")]
ModelName = Annotated[Optional[str], _flag("model_name")]
ModelVersion = Annotated[Optional[str], _flag("model_version")]
Port = Annotated[int, _flag("port")]
DebugPort = Annotated[int, _flag("debug_port")]
Name = Annotated[Optional[str], _flag("name")]
Wait = Annotated[bool, _flag("wait")]
JustMyCode = Annotated[bool, _flag("just_my_code")]
EnvVars = Annotated[Optional[List[str]], _flag("env")]
DebugBind = Annotated[str, _flag("debug_bind")]
RuntimeName = Annotated[str, _flag("runtime")]
Python = Annotated[Optional[str], _flag("python")]
EnvFile = Annotated[Optional[Path], _flag("env_file")]
BaseImage = Annotated[Optional[str], _flag("base_image")]
FromService = Annotated[Optional[str], _flag("service")]
InferenceConfig = Annotated[Optional[Path], _flag("inference_config")]
ExactPorts = Annotated[bool, _flag("exact_ports")]


def _options(params: dict) -> AttachOptions:
    """AttachOptions from a command's parameters (``-e`` items as (key, value or None))."""
    items = params.get("env") or []
    pairs = tuple((k, v if sep else None) for k, sep, v in (item.partition("=") for item in items))
    return AttachOptions.from_params({**params, "env": pairs})
