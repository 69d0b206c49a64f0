"""A debug session (``amldebug attach``): start the debug service and write the VS Code configuration,
all or nothing (a launch.json that cannot be parsed stops us before any container starts;
a failure after the start removes the container)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .core.options import LOOPBACK, AttachOptions
from .core.progress import Progress
from .core.spec import ServiceSpec, spec_from_options
from .engine.backend import runtime_of
from .errors import UsageError
from .service import registry
from .service.service import Service, _stderr
from .sources.project import load_project
from .vscode.entries import task_env_note
from .vscode.files import check_vscode_files, launch_json_path, write_vscode_files

if TYPE_CHECKING:
    from .sources.azureml import EnvironmentSetup, InferenceSetup
    from .sources.deployment import DeploymentSetup


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
    from .sources.v2files import refuse_misplaced

    refuse_misplaced(options.source_dir, options.env_file)  # a file where the folder goes, a deployment as --env
    if options.deployment is not None:
        return spec_for_deployment(options, project=project, progress=progress)
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
    return runtime_of(spec).complete(spec, progress)  # C2: a local scoring image when none is named


def attach(spec: ServiceSpec, *, write_vscode: bool = True, client=None, exact_ports: bool = False,
           progress: Progress = _stderr) -> Attached:
    """Start (or replace) the service and point VS Code at it. ``exact_ports``: fail rather
    than move to the next free port (F5: VS Code attaches where launch.json said)."""
    if write_vscode:
        check_vscode_files(spec)
    service = written = None
    try:  # the service is removed if writing the files fails, or a signal comes before we return it
        service = registry.start(spec, client=client, exact_ports=exact_ports, progress=progress, recreate=recreate)
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


def recreate(spec: ServiceSpec, changes: dict, *, client=None) -> Service:
    """``Service.update(**changes)``: the service started again with ``changes`` (its ports
    kept where free). An image amldebug built from an environment file is built again (the
    file changed), and VS Code's files follow the new ports."""
    spec = spec.replace(**changes)
    if spec.env_file and runtime_of(spec).uses_image and spec.image and spec.image.startswith("amldebug-env:") \
            and "image" not in changes:
        from .envbuild.image import build_image  # the environment file changed: the image follows it

        spec = spec.replace(image=build_image(Path(spec.env_file), base_image=spec.base_image, client=client).tag)
    service = registry.start(spec, client=client, keep_ports=True, recreate=recreate)
    if launch_json_path(service.spec).is_file():  # keep VS Code pointed at the (new) debug port
        write_vscode_files(service.spec)
    return service


def get_service(name: str, *, client=None) -> Service:
    """The service called ``name``, in whichever runtime it runs (its update() is :func:`recreate`)."""
    return registry.get_service(name, client=client, recreate=recreate)


def list_services(*, client=None) -> list[Service]:
    """Every service, in every runtime whose engine answers."""
    return registry.list_services(client=client, recreate=recreate)


def _given_folder(source_dir: str | None) -> str | None:
    """SOURCE_DIR as given, with '.' (the default folder) counted as not given: the code's
    folder then comes from the inference configuration or the LocalWebservice."""
    return None if source_dir is None or Path(source_dir) == Path(".") else source_dir


def with_built_image(spec: ServiceSpec, environment, *, base_image: str | None = None,
                     progress: Progress = _stderr) -> ServiceSpec:
    """``spec`` with the image built (or found unchanged) for ``environment``: an
    environment file, or an Environment read already (amldebug build)."""
    from .envbuild.image import build_image

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
                        file_env=tuple(sorted(set(spec.file_env) | (set(setup.env) - set(given)))))
    from .sources.azureml import InferenceSetup  # noqa: F811 (the class itself, at run time)

    if isinstance(setup, InferenceSetup) and Path(setup.origin).is_file():
        spec = spec.replace(inference_config=setup.origin)
    if not runtime_of(spec).uses_image:
        if setup.environment is not None and (setup.environment.pip or setup.environment.conda_only):
            progress("amldebug: the process runtime runs the Python it is given; the environment's packages "
                     "are not installed into it")
        return spec
    if spec.image:
        return spec
    if getattr(setup, "build", None) is not None:  # a v2 environment's Docker build context
        if base_image:
            raise UsageError(f"--base-image does not apply: '{setup.origin}' builds its image from a Dockerfile "
                             f"({setup.build.dockerfile}); pass --image to use another image instead")
        return spec.replace(image=build_context(setup.build, spec.name, progress))
    dockerfile = getattr(setup, "base_dockerfile", None)
    if dockerfile is not None and not base_image:
        raise UsageError(f"'{setup.origin}' is built on the Dockerfile beside it, '{dockerfile}' "
                         "(Environment.save_to_directory wrote it; Azure ML builds the environment on top of it), "
                         "and amldebug builds on an image: build that first with "
                         f"'docker build -t my-base -f {dockerfile} {dockerfile.parent}' and pass --base-image my-base, "
                         "or pass --image with an image that has the packages")
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
    from .sources import read_setup
    from .sources.kinds import kind_of

    path = Path(spec.env_file)
    if kind_of(path).is_azureml:
        return apply_setup(spec, read_setup(path), base_image=base_image, progress=progress)
    if runtime_of(spec).uses_image and not image_given:
        return with_built_image(spec, path, base_image=base_image, progress=progress)
    return spec


def spec_for_deployment(options: AttachOptions, *, project: bool = True, progress: Progress = _stderr) -> ServiceSpec:
    """``attach --deployment FILE``: an Azure ML v2 online deployment, placed as the v2
    local endpoint places it. ``--image``/``--base-image`` win over the file's image,
    ``--env`` over its environment, ``--model-dir`` over its model; a cloud reference
    that nothing replaces is refused with the az command that fetches it."""
    from .sources import deployment as v2

    given = options
    spec, setup, options = place_deployment(options, project=project)
    reference = setup.environment_reference
    if reference is not None and not (given.image or given.env_file):
        raise UsageError(v2.environment_reference_message(setup.origin, reference) if reference else
                         v2.no_environment_message(setup.origin))
    progress(f"amldebug: {setup.origin}: {setup.kind} online deployment '{setup.name}': code "
             f"{setup.source_dir.name}/{setup.entry_script}, model {spec.model_name}:{spec.model_version} from "
             f"{spec.model_dir}")
    if setup.request_timeout_ms is not None:
        progress(f"amldebug: request_settings.request_timeout_ms is {setup.request_timeout_ms} ms (Azure ends a "
                 "request after that); debug mode keeps the scoring timeout off, so a paused breakpoint is not cut "
                 "short")
    file_fields = spec.file_fields
    if options.env_file is not None:  # --env replaces the file's environment (a registered one exported, say)
        spec = apply_env_file(_with_variables(spec, setup, progress), image_given=bool(options.image),
                              base_image=options.base_image, progress=progress)
        return spec.replace(file_fields=file_fields)
    if not options.image and setup.environment is None and not options.base_image:
        file_fields += ("image",)  # the file's image (or build context) as it is
    spec = apply_setup(spec, setup, base_image=options.base_image, progress=progress)
    return spec.replace(file_fields=file_fields, inference_config=None)


def place_deployment(options: AttachOptions, *, project: bool = True) -> tuple[ServiceSpec, DeploymentSetup,
                                                                                AttachOptions]:
    """What ``attach --deployment`` and ``check --deployment`` share, before any image: the
    file read, the command line checked against it, and the spec placed as the v2 local
    endpoint places it (its code, its model named and versioned as azure-ai-ml does, no
    image yet; ``file_fields`` has 'model' when the file gave it). Returns the spec, the
    deployment read, and the options with the file's code (and amldebug.json's values)."""
    from .sources import deployment as v2

    setup = v2.read_deployment(options.deployment)
    for flag, given in (("--inference-config", options.inference_config is not None),
                        ("--service", options.service is not None)):
        if given:
            raise UsageError(f"{flag} and --deployment both say where the code comes from; pass one")
    for flag, differs in (
            ("SOURCE_DIR", _given_folder(options.source_dir) is not None
             and Path(options.source_dir).resolve() != setup.source_dir),
            ("--entry-script", options.entry_script and options.entry_script != setup.entry_script)):
        if differs:
            raise UsageError(f"{flag} comes from the deployment '{setup.origin}' (code_configuration); drop {flag}")
    if isinstance(options.model_dir, tuple):
        raise UsageError(f"a v2 deployment places one model ('{setup.origin}': model); pass one --model-dir")
    file_fields = ()
    model = setup.model
    if options.model_dir is not None:  # the command line's model, named as the file names it unless told
        path = Path(options.model_dir).expanduser()
        if not path.exists():
            raise UsageError(f"model path '{options.model_dir}' does not exist; pass --model-dir with a model file "
                             "or folder (its parent folder is placed, as Azure ML places a v2 model)")
        model = v2.ModelSource(path.resolve(), options.model_name or (model.name if model else None),
                               options.model_version or (model.version if model else None))
    elif model is None:
        raise UsageError(f"{setup.origin}: no 'model'; the local endpoint needs one: add model: {{path: <file or "
                         "folder>}} or pass --model-dir")
    elif model.path is None:
        raise UsageError(v2.model_reference_message(setup.origin, model.reference))
    else:
        file_fields = ("model",)
    if model.name is None:  # azure-ai-ml registers an unnamed model as the hash of its content, version 1
        name, version = v2.model_folder_hash(model.path), "1"
    else:
        # azure-ai-ml's local endpoint writes a missing version as 'None'; Azure registers a new name as 1.
        name, version = model.name, model.version or "1"
    options = options.replace(source_dir=str(setup.source_dir), entry_script=setup.entry_script, model_dir=None,
                              model_name=None, model_version=None, inference_config=None,
                              name=options.name or _tag_part(setup.name))
    if project:
        options = options.with_project({k: v for k, v in (load_project(setup.source_dir) or {}).items()
                                        if k not in ("entry_script", "model_dir", "model_name", "env_file")})
    spec = spec_from_options(options).replace(model_dir=str(model.path), model_name=name, model_version=version,
                                              deployment=str(Path(setup.origin).resolve()), file_fields=file_fields)
    return spec, setup, options


def _with_variables(spec: ServiceSpec, setup, progress: Progress) -> ServiceSpec:
    """The deployment's environment_variables (values given to amldebug win) and its notes."""
    for line in setup.notes:
        progress(f"amldebug: {line}")
    given = dict(spec.env)
    return spec.replace(env=tuple(sorted({**dict(setup.env), **given}.items())),
                        file_env=tuple(sorted(set(setup.env) - set(given))))


def build_context(build, name: str, progress: Progress = _stderr) -> str:
    """Build a v2 environment's Docker build context with the local engine, as the v2
    local endpoint does ('docker build' of the context); the engine's cache makes an
    unchanged context quick. Returns the image's tag."""
    from .engine import docker as engine

    tag = f"amldebug-context/{_tag_part(name)}:latest"
    progress(f"amldebug: building {build.dockerfile} (context {build.path}) as {tag}")
    engine.build_dockerfile(engine.connect(), build.path, build.dockerfile, tag, progress)
    return tag


def _tag_part(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-._") or "deployment"

