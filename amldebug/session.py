"""A debug session (``amldebug attach``): start the debug service and write the VS Code configuration,
all or nothing (a launch.json that cannot be parsed stops us before any container starts;
a failure after the start removes the container)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .core.options import LOOPBACK, AttachOptions, Runtime
from .core.spec import ServiceSpec, spec_from_options
from .errors import UsageError
from .runtime.registry import start
from .runtime.service import Progress, Service, _stderr
from .sources.project import load_project
from .vscode.entries import task_env_note
from .vscode.files import check_vscode_files, write_vscode_files

if TYPE_CHECKING:
    from .sources.azureml import EnvironmentSetup, InferenceSetup


@dataclasses.dataclass(frozen=True)
class Attached:
    service: Service
    launch_json: Path | None


def spec_for(options: AttachOptions, *, setup: InferenceSetup | EnvironmentSetup | None = None,
             project: bool = True, progress: Progress = _stderr) -> ServiceSpec:
    """The one way from what a user asked for to a ServiceSpec, whoever asks (the CLI, the
    Python API, demo, the F5 task): where the code and the environment come from (a
    LocalWebservice, an inference configuration, an environment, the project's
    amldebug.json), then the image they need, built if it must be. ``setup``: an Azure ML
    configuration read already (from azureml-core objects). ``project``: fill what was not
    given from the source folder's amldebug.json (the command line does; the Python API
    takes its arguments as they are)."""
    from .sources.azureml import InferenceSetup, read_inference_config  # noqa: F811 (the class, at run time)

    if options.debug_bind != LOOPBACK:
        progress(f"warning: the debug port will listen on {options.debug_bind}: anyone who can reach it can run any "
                 "code in the container. Use it only on a network you trust.")
    if options.service:
        if options.inference_config is not None:
            raise UsageError("--service and --inference-config both say where the code comes from; pass one")
        from .engine import docker as engine
        from .localwebservice import spec_from_local_webservice_container

        spec = spec_from_local_webservice_container(
            engine.connect(), options.service, source_dir=_given_folder(options.source_dir),
            model_dir=options.model_dir,
            port=options.port, debug_port=options.debug_port, wait=options.wait,
            just_my_code=options.just_my_code, debug_bind=options.debug_bind)
        return spec.replace(name=options.name or f"{options.service}-debug")
    if options.inference_config is not None or isinstance(setup, InferenceSetup):
        setup = setup or read_inference_config(options.inference_config)
        for flag, differs in (
                ("SOURCE_DIR", _given_folder(options.source_dir) is not None
                 and Path(options.source_dir).resolve() != Path(setup.source_dir).resolve()),
                ("--entry-script", options.entry_script and options.entry_script != setup.entry_script),
                ("--env", options.env_file is not None)):
            if differs:
                raise UsageError(f"{flag} comes from the inference configuration '{setup.origin}'; "
                                 f"drop {flag} or --inference-config")
        options = options.replace(source_dir=str(setup.source_dir), entry_script=setup.entry_script)
    given = options
    if project:
        options = options.with_project(load_project(Path(options.source_dir or ".")) or {})
    spec = spec_from_options(options)
    if setup is not None:
        return apply_setup(spec, setup, base_image=options.base_image, progress=progress)
    if given.env_file is not None:
        return apply_env_file(spec, image_given=bool(given.image), base_image=options.base_image, progress=progress)
    # C2: F5 from 'amldebug init' (amldebug.json names its requirements.txt to watch, not to build)
    if spec.runtime == Runtime.CONTAINER and not spec.image:
        from .runtime.discover import with_local_image

        spec = with_local_image(spec, progress)
    return spec


def attach(spec: ServiceSpec, *, write_vscode: bool = True, client=None, exact_ports: bool = False,
           progress: Progress = _stderr) -> Attached:
    """Start (or replace) the service and point VS Code at it. ``exact_ports``: fail rather
    than move to the next free port (F5: VS Code attaches where launch.json said)."""
    if write_vscode:
        check_vscode_files(spec)
    service = written = None
    try:  # the service is removed if writing the files fails, or a signal comes before we return it
        service = start(spec, client=client, exact_ports=exact_ports, progress=progress)
        if write_vscode:
            written = write_vscode_files(service.spec)
    except BaseException:
        if service is not None:
            service.delete()
        raise
    note = task_env_note(service.spec) if write_vscode else None
    if note:
        progress(note)
    return Attached(service, written)


def _given_folder(source_dir: str | None) -> str | None:
    """SOURCE_DIR as given, with '.' (the default folder) counted as not given: the code's
    folder then comes from the inference configuration or the LocalWebservice."""
    return None if source_dir is None or Path(source_dir) == Path(".") else source_dir


def with_built_image(spec: ServiceSpec, environment, *, base_image: str | None = None,
                     progress: Progress = _stderr) -> ServiceSpec:
    """``spec`` with the image built (or found unchanged) for ``environment``: an
    environment file, or an Environment read already (amldebug build)."""
    from .runtime.imagebuild import build_image

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
    from .sources.azureml import InferenceSetup  # noqa: F811 (the class itself, at run time)

    if isinstance(setup, InferenceSetup) and Path(setup.origin).is_file():
        spec = spec.replace(inference_config=setup.origin)
    if spec.runtime != Runtime.CONTAINER:
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
    from .sources.azureml import file_kind, read_setup

    path = Path(spec.env_file)
    if file_kind(path):
        return apply_setup(spec, read_setup(path), base_image=base_image, progress=progress)
    if spec.runtime == Runtime.CONTAINER and not image_given:
        return with_built_image(spec, path, base_image=base_image, progress=progress)
    return spec
