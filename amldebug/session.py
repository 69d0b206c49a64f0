"""A debug session (``amldebug attach``): start the debug service and write the VS Code configuration,
all or nothing (a launch.json that cannot be parsed stops us before any container starts;
a failure after the start removes the container)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from . import scaffold
from .service import Progress, Service, _stderr, start
from .spec import ServiceSpec

if TYPE_CHECKING:
    from .inference import EnvironmentSetup, InferenceSetup


@dataclasses.dataclass(frozen=True)
class Attached:
    service: Service
    launch_json: Path | None


def launch_json_path(spec: ServiceSpec) -> Path:
    return Path(spec.workspace) / ".vscode" / "launch.json"


def task_command(spec: ServiceSpec) -> list[str]:
    """argv of the long-running ``amldebug attach`` that the VS Code task runs (F5)."""
    workspace = Path(spec.workspace)
    command = scaffold.attach_command(Path(spec.source_dir), service=spec.name, debug_port=spec.debug_port,
                                      workspace=workspace)

    def rel(path: str) -> str:
        try:
            return Path(path).relative_to(workspace).as_posix()
        except ValueError:
            return path

    if spec.entry_script != "score.py":
        command += ["--entry-script", spec.entry_script]
    if spec.runtime == "process":
        command += ["--runtime", "process"] + (["--python", spec.python] if spec.python else [])
    else:
        built = bool(spec.image and spec.image.startswith("amldebug-env:"))
        # An image amldebug built is built again from its environment by F5 (found at once
        # when nothing changed); the file's variables are read from it again too.
        if spec.inference_config:
            command += ["--inference-config", rel(spec.inference_config)]
        elif built and spec.env_file:
            command += ["--env", rel(spec.env_file)]
        if built and spec.base_image:
            command += ["--base-image", spec.base_image]
        elif spec.image and not built:
            command += ["--image", spec.image]
    if spec.model_dir:
        command += ["--model-dir", rel(spec.model_dir), "--model-name", spec.model_name,
                    "--model-version", spec.model_version]
    command += ["--port", str(spec.port)]
    for key, _ in spec.env:
        if key not in spec.file_env:  # the key only: F5 takes the value from VS Code's environment
            command += ["-e", key]
    if not spec.just_my_code:
        command.append("--no-just-my-code")
    if not spec.wait:
        command.append("--no-wait")
    return command


def check_vscode_files(spec: ServiceSpec) -> None:
    """Refuse early (before anything starts) when launch.json or tasks.json cannot be parsed."""
    scaffold.check_vscode(Path(spec.workspace))


def write_vscode_files(spec: ServiceSpec, *, post_debug_task: bool | None = None) -> Path:
    """Write the attach configuration and the F5 task (merged into the user's files)."""
    workspace = Path(spec.workspace)
    if post_debug_task is None:  # keep what an earlier 'amldebug vscode --post-debug-task' set up
        post_debug_task = scaffold.down_task_label(spec.name) in scaffold.task_labels(workspace)
    entries = scaffold.vscode_files(Path(spec.source_dir), service=spec.name, debug_port=spec.debug_port,
                                    command=task_command(spec), workspace=workspace,
                                    just_my_code=spec.just_my_code, runtime=spec.runtime,
                                    post_debug_task=post_debug_task)
    scaffold.write_vscode(workspace, entries)
    return launch_json_path(spec)


def attach(spec: ServiceSpec, *, write_vscode: bool = True, client=None, exact_ports: bool = False,
           progress: Progress = _stderr) -> Attached:
    """Start (or replace) the service and point VS Code at it. ``exact_ports``: fail rather
    than move to the next free port (F5: VS Code attaches where launch.json said)."""
    if write_vscode:
        check_vscode_files(spec)
    service = start(spec, client=client, exact_ports=exact_ports, progress=progress)
    written = None
    if write_vscode:
        try:
            written = write_vscode_files(service.spec)
        except BaseException:
            service.delete()
            raise
    return Attached(service, written)


def with_built_image(spec: ServiceSpec, environment, *, base_image: str | None = None,
                     progress: Progress = _stderr) -> ServiceSpec:
    """``spec`` with the image built (or found unchanged) for ``environment``: an
    environment file, or an Environment read already (amldebug build)."""
    from .build import build_image

    built = build_image(environment, base_image=base_image, progress=progress)
    if not built.built:  # build_image reports a build itself
        progress(f"amldebug: up to date: {built.tag} in {built.seconds:.1f} s")
    return spec.replace(image=built.tag, base_image=base_image)


def apply_setup(spec: ServiceSpec, setup: InferenceSetup | EnvironmentSetup, *, base_image: str | None = None,
                progress: Progress = _stderr) -> ServiceSpec:
    """What an Azure ML environment (of an inference configuration, or on its own) adds to
    a spec: its environment variables (values given to amldebug win), and its image: the
    base image as it is (userManagedDependencies), or one built from its packages. An
    image given to amldebug is used as it is."""
    for line in setup.notes:
        progress(f"amldebug: {line}")
    given = dict(spec.env)
    spec = spec.replace(env=tuple(sorted({**dict(setup.env), **given}.items())),
                        file_env=tuple(sorted(set(setup.env) - set(given))))
    from .inference import InferenceSetup  # noqa: F811 (the class itself, at run time)

    if isinstance(setup, InferenceSetup) and Path(setup.origin).is_file():
        spec = spec.replace(inference_config=setup.origin)
    if spec.runtime != "container":
        if setup.environment is not None and (setup.environment.pip or setup.environment.conda_only):
            progress("amldebug: the process runtime runs the Python it is given; the environment's packages "
                     "are not installed into it")
        return spec
    if spec.image:
        return spec
    if setup.environment is None:
        return spec.replace(image=base_image or setup.base_image)
    origin = Path(setup.origin)
    if origin.is_file():  # a file: watch it, and rebuild when it changes
        spec = spec.replace(env_file=str(origin))
    return with_built_image(spec, setup.environment, base_image=base_image, progress=progress)


def apply_env_file(spec: ServiceSpec, *, image_given: bool, base_image: str | None = None,
                   progress: Progress = _stderr) -> ServiceSpec:
    """``--env FILE`` (spec.env_file): an Azure ML environment definition or inference
    configuration counts with its variables and base image too; any other environment file
    is built into an image unless one was given."""
    from .inference import file_kind, read_setup

    path = Path(spec.env_file)
    if file_kind(path):
        return apply_setup(spec, read_setup(path), base_image=base_image, progress=progress)
    if spec.runtime == "container" and not image_given:
        return with_built_image(spec, path, base_image=base_image, progress=progress)
    return spec
