"""The commands: each parses its options, makes one call, and prints."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from ..core.options import DEFAULT_DEBUG_PORT, DEFAULT_PORT, LOOPBACK, AttachOptions, Runtime
from ..errors import AmlDebugError, ContainerError, ExitStatus, UsageError
from .app import app, note, out
from .params import (
    BaseImage,
    DebugBind,
    DebugPort,
    Deployment,
    EntryScript,
    EnvFile,
    EnvVars,
    ExactPorts,
    FromService,
    Image,
    InferenceConfig,
    JustMyCode,
    ModelDir,
    ModelDirs,
    ModelName,
    ModelVersion,
    Name,
    Port,
    Python,
    RuntimeName,
    SourceDir,
    Wait,
    _options,
)


def _describe(service, launch_json) -> None:
    out(f"service:     {service.name}")
    out(f"scoring URI: {service.scoring_uri}")
    out(f"debug port:  localhost:{service.debug_port}")
    if launch_json:
        out(f"launch.json: {launch_json} (configuration \"amldebug: {service.name}\")")


@app.command()
def attach(
    source_dir: SourceDir = None, entry_script: EntryScript = None, image: Image = None, model_dir: ModelDirs = None,
    model_name: ModelName = None, model_version: ModelVersion = None, port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT, name: Name = None, wait: Wait = True,
    just_my_code: JustMyCode = True, env: EnvVars = None, debug_bind: DebugBind = LOOPBACK,
    runtime: RuntimeName = Runtime.CONTAINER.value, python: Python = None, env_file: EnvFile = None,
    base_image: BaseImage = None, service: FromService = None, inference_config: InferenceConfig = None,
    exact_ports: ExactPorts = False, deployment: Deployment = None,
    detach: bool = typer.Option(False, "--detach", "-d", help="Start, write launch.json, print, and return."),
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Reload on save (foreground only)."),
) -> None:
    """Start the scoring container with the debugger inside and write .vscode/launch.json."""
    from ..session import attach as do_attach
    from ..session import spec_for

    options = _options(locals())
    if options.env_file is not None and not Path(options.env_file).is_file():
        raise UsageError(f"environment file '{options.env_file}' does not exist; pass --env with a requirements.txt "
                         "or conda YAML")
    spec = spec_for(options, progress=note)
    where = f"image '{spec.image}'" if spec.runtime == Runtime.CONTAINER else f"Python {spec.python or sys.executable}"
    note(f"amldebug: starting service '{spec.name}' from {where}")
    started = time.monotonic()

    def announce(result) -> None:
        _describe(result.service, result.launch_json)
        when = "before init()" if spec.wait else "any time"
        note(f"amldebug: service '{result.service.name}' is ready for a debugger on "
             f"localhost:{result.service.debug_port} ({when}; {time.monotonic() - started:.1f} s)")

    start = lambda: do_attach(spec, exact_ports=options.exact_ports, progress=note)  # noqa: E731
    if detach:
        announce(start())
        return
    _foreground(start, watch, announce)


def _foreground(start, watch: bool, announce) -> None:
    """Start the service, announce it, stream its log (and reload on save) until Ctrl-C,
    SIGTERM or SIGHUP, then remove it. The start is inside the try, so a signal at any
    moment cleans up (start() itself removes what an unfinished start made)."""
    from ..engine.statefile import StateFile, state_folder
    from ..watch import ReloadLoop

    stop = threading.Event()
    loop = thread = service = None
    try:
        result = start()
        service = result.service
        StateFile(state_folder(service.name)).claim()
        announce(result)
        if watch:
            loop = ReloadLoop(service, report=note, stop=stop)
            watching = threading.Event()
            thread = threading.Thread(target=loop.run, kwargs={"on_ready": watching.set}, daemon=True)
            thread.start()
            watching.wait(30)
            note(f"amldebug: watching {service.spec.source_dir} - save to reload, Ctrl-C to stop")
        while True:
            for line in service.follow_logs():
                out(line)
            # The log ends when the service stops, or when an update() (a model or
            # environment change) replaced it: then follow the new one.
            while loop is not None and loop.busy.is_set():
                time.sleep(0.1)
            if service.state != "Running":
                raise ContainerError(f"the service '{service.name}' stopped", service.get_logs(30))
    except KeyboardInterrupt as exc:
        if service is None:  # interrupted while starting: exit 130 (or 128 + the signal)
            raise
        how = "" if type(exc) is KeyboardInterrupt else f" ({exc})"
        note(f"amldebug: stopping service '{service.name}'{how}")  # the usual end of a session: exit 0
    finally:
        stop.set()
        if thread is not None and thread.ident is not None:  # an update in flight finishes: nothing it starts
            thread.join(150)                                 # is left behind (a signal may come before start())
        if service is not None:
            try:
                service.delete()
            except AmlDebugError as exc:  # e.g. the engine went away: say what is left
                note(f"amldebug: could not remove service '{service.name}': {exc}")


@app.command()
def vscode(
    source_dir: SourceDir = None, entry_script: EntryScript = None, image: Image = None, model_dir: ModelDirs = None,
    model_name: ModelName = None, model_version: ModelVersion = None, port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT, name: Name = None, wait: Wait = True,
    just_my_code: JustMyCode = True, env: EnvVars = None, runtime: RuntimeName = Runtime.CONTAINER.value, python: Python = None,
    deployment: Deployment = None,
    post_debug_task: bool = typer.Option(False, "--post-debug-task", help="Stop the service when debugging ends."),
) -> None:
    """Write .vscode/launch.json and tasks.json so that F5 starts the service and attaches."""
    from ..session import spec_for
    from ..vscode.entries import task_env_note
    from ..vscode.files import check_vscode_files, write_vscode_files

    spec = spec_for(_options(locals()), progress=note)
    workspace = Path(spec.workspace)
    if not (workspace / ".vscode").is_dir():
        note(f"amldebug: {workspace} has no .vscode folder yet; creating it (open {workspace} in VS Code)")
    check_vscode_files(spec)
    launch = write_vscode_files(spec, post_debug_task=post_debug_task)
    if task_env_note(spec):
        note(task_env_note(spec))
    out(f"launch.json: {launch} (configuration \"amldebug: {spec.name}\", preLaunchTask \"amldebug: {spec.name}\")")
    out(f"tasks.json:  {launch.parent / 'tasks.json'}")


@app.command("init")
def init_project(
    folder: Path = typer.Argument(Path("."), help="Folder to create the project in."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder, overwriting these files."),
    image: Optional[str] = typer.Option(None, "--image", help="Scoring image to record in amldebug.json."),
    post_debug_task: bool = typer.Option(False, "--post-debug-task", help="Stop the service when debugging ends."),
) -> None:
    """Scaffold a working project: score.py, a small model, environment files, .vscode, README."""
    from ..scaffold import init_project as scaffold_project

    for path in scaffold_project(folder, force=force, image=image, post_debug_task=post_debug_task):
        out(str(path))
    note(f"amldebug: next: 'cd {folder}' and 'amldebug check', then open it in VS Code and press F5")


AZUREML_INFERENCE_IMAGE = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"


def _demo_runtime(image: Optional[str]) -> tuple[Runtime, Optional[str], str]:
    """(runtime, image, why): the container when an engine answers and the image is here."""
    from ..engine import docker as engine
    from ..errors import DockerUnavailableError, ImageError

    wanted = image or AZUREML_INFERENCE_IMAGE
    try:
        client = engine.connect()
    except DockerUnavailableError as exc:
        return Runtime.PROCESS, None, f"{str(exc).split(';')[0]}"
    try:
        engine.get_image(client, wanted)
    except ImageError:
        return Runtime.PROCESS, None, (f"a Docker engine answers, but image '{wanted}' is not present locally "
                                 f"(pull it, or pass --image with a local scoring image)")
    return Runtime.CONTAINER, wanted, f"a Docker engine answers and image '{wanted}' is present"


@app.command()
def demo(
    folder: Path = typer.Option(Path("amldebug-demo"), "--folder", help="Where to put the example project."),
    image: Optional[str] = typer.Option(None, "--image", help="Scoring image for the container runtime."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Force 'container' or 'process'."),
    port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT,
    wait: bool = typer.Option(False, "--wait/--no-wait", help="Hold before init() until a debugger attaches."),
) -> None:
    """Run the bundled example end to end (container if possible, else a local process) until Ctrl-C."""
    from ..scaffold import init_project as scaffold_project
    from ..session import attach as do_attach
    from ..session import spec_for
    from ..sources.project import PROJECT_FILE

    if runtime:
        chosen, why = runtime, "asked for with --runtime"
        image = image or (AZUREML_INFERENCE_IMAGE if runtime == Runtime.CONTAINER else None)
    else:
        chosen, image, why = _demo_runtime(image)
    note(f"amldebug demo: using the {chosen} runtime: {why}")
    if not (folder / PROJECT_FILE).is_file():
        scaffold_project(folder, image=image)
        note(f"amldebug demo: example project written to {folder}/")
    spec = spec_for(AttachOptions(source_dir=str(folder), image=image, port=port, debug_port=debug_port, wait=wait,
                                  runtime=chosen), progress=note)
    note(f"amldebug: starting service '{spec.name}'")

    def announce(result) -> None:
        _describe(result.service, result.launch_json)
        note(f"amldebug: service '{spec.name}' is ready for a debugger on localhost:{result.service.debug_port}")
        note(f"amldebug demo: try  amldebug score --name {spec.name} --file {folder / 'sample-request.json'}")

    _foreground(lambda: do_attach(spec, progress=note), True, announce)


@app.command()
def build(
    env: Optional[Path] = typer.Option(None, "--env", help="pip requirements file or conda YAML."),
    base_image: Optional[str] = typer.Option(None, "--base-image", help="Default: Azure ML's minimal inference image."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Tag for the image (default: amldebug-env:<hash>)."),
) -> None:
    """Build a local scoring image from an environment file, with no network inside the build."""
    from ..runtime.imagebuild import build_image

    result = build_image(env, base_image=base_image, tag=tag, progress=note)
    note(f"amldebug: {'built' if result.built else 'up to date:'} {result.tag} in {result.seconds:.1f} s")
    out(result.tag)


@app.command()
def status(
    name: Optional[str] = typer.Argument(None, help="Service name (default: all)."),
    name_opt: Optional[str] = typer.Option(None, "--name", help="Service name."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per service."),
) -> None:
    """List the services and their state, scoring URI and debug port."""
    from ..runtime.registry import get_service, list_services

    wanted = name_opt or name
    services = [get_service(wanted)] if wanted else list_services()
    if as_json:
        for service in services:
            out(json.dumps(service.as_dict()))
        return
    if not services:
        note("no amldebug services; start one with 'amldebug attach'")
        return
    out(f"{'NAME':<20} {'STATE':<22} {'SCORING URI':<34} DEBUG PORT")
    for service in services:
        out(f"{service.name:<20} {service.health:<22} {service.scoring_uri:<34} {service.debug_port}")


def _service_name(name: Optional[str]) -> str:
    """--name, else the one service there is, else the current folder's name."""
    if name:
        return name
    from ..core.spec import service_name_from
    from ..runtime.registry import list_services

    services = list_services()
    if len(services) == 1:
        return services[0].name
    return service_name_from(Path.cwd())


@app.command()
def down(
    name: Optional[str] = typer.Argument(None, help="Service name."),
    name_opt: Optional[str] = typer.Option(None, "--name", help="Service name."),
) -> None:
    """Stop and remove the service's container."""
    from ..runtime.registry import get_service

    service = get_service(_service_name(name_opt or name))
    service.delete()
    out(f"removed service '{service.name}'")


@app.command()
def reload(name: Optional[str] = typer.Option(None, "--name", help="Service name.")) -> None:
    """Serve the current files now (new worker, fresh init(); the debugger stays attached)."""
    from ..runtime.registry import get_service

    service = get_service(_service_name(name))
    result = service.reload(progress=note)
    out(f"reloaded '{service.name}' in {result.seconds * 1000:.0f} ms"
        + ("; re-attach the debugger" if result.restarted else "; the debugger stays attached"))


@app.command()
def watch(
    name: Optional[str] = typer.Option(None, "--name", help="Service name."),
    service_name: Optional[str] = typer.Option(
        None, "--service", help="An azureml-core LocalWebservice to reload instead (restarts its container)."),
    source_dir: Optional[Path] = typer.Argument(None, help="With --service: the source folder it was deployed from."),
) -> None:
    """Reload a service started with --detach whenever its files change (Ctrl-C stops)."""
    from ..runtime.registry import get_service
    from ..watch import ReloadLoop

    if service_name:
        from ..azureml_bridge import LocalWebserviceTarget, find_local_webservice

        service = LocalWebserviceTarget(find_local_webservice(service_name), source_dir)
        ready = (f"amldebug: watching {service.spec.source_dir} for LocalWebservice '{service_name}': each reload is "
                 "LocalWebservice.reload(), which recreates the container and drops a debug session "
                 "(an amldebug service keeps it: 'amldebug attach --service NAME')")
    else:
        service = get_service(_service_name(name))
        ready = f"amldebug: watching {service.spec.source_dir} for service '{service.name}' - Ctrl-C to stop"
    loop = ReloadLoop(service, report=note)
    try:
        loop.run(on_ready=lambda: note(ready))
    except KeyboardInterrupt:
        loop.stop.set()


@app.command()
def logs(
    name: Optional[str] = typer.Option(None, "--name", help="Service name."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int = typer.Option(200, "--tail", help="How many lines from the end."),
) -> None:
    """Print the service's log."""
    from ..runtime.registry import get_service

    service = get_service(_service_name(name))
    if follow:
        seen: set = set()
        lines: list = []
        next_check = 0.0
        try:
            for line in service.follow_logs(tail=tail):
                out(line)
                lines = (lines + [line])[-5000:]
                if time.monotonic() >= next_check:  # diagnosing is not free: at most twice a second
                    _print_findings("\n".join(lines), seen)
                    next_check = time.monotonic() + 0.5
        except KeyboardInterrupt:
            pass
        return
    text = service.get_logs(num_lines=tail)
    out(text.rstrip("\n"))
    _print_findings(text)


def _print_findings(text: str, seen: Optional[set] = None) -> None:
    from ..diagnose import diagnose as find
    from ..diagnose import render_report

    findings = [f for f in find(text) if seen is None or (f.rule, f.lines[:1]) not in seen]
    if seen is not None:
        seen.update((f.rule, f.lines[:1]) for f in findings)
    if findings:
        out("")
        out("-- amldebug diagnose " + "-" * 40)
        out(render_report(findings, text))


@app.command()
def score(
    name: Optional[str] = typer.Option(None, "--name", help="Service name."),
    data: Optional[str] = typer.Option(None, "--data", help="Request body (JSON)."),
    file: Optional[Path] = typer.Option(None, "--file", help="File with the request body."),
) -> None:
    """Send one request like service.run(); print status, latency and the answer."""
    from ..runtime.registry import get_service

    if (data is None) == (file is None):
        raise UsageError("pass exactly one of --data JSON or --file PATH")
    if file is not None:
        if not file.is_file():
            raise UsageError(f"request file '{file}' does not exist")
        data = file.read_text(encoding="utf-8")
    service = get_service(_service_name(name))
    started = time.perf_counter()
    answer = service.run(data)
    elapsed = time.perf_counter() - started
    note(f"HTTP 200 in {elapsed * 1000:.1f} ms")
    if elapsed > 45:
        note(f"warning: {elapsed:.0f} s is close to AKS's default 60 s request timeout (HTTP 504 in Azure)")
    out(answer if isinstance(answer, str) else json.dumps(answer))


@app.command()
def diagnose(
    source: Optional[str] = typer.Argument(None, help="Log file, or - for stdin."),
    name: Optional[str] = typer.Option(None, "--name", help="Read the local service's container log instead."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    tail: int = typer.Option(20, "--tail", help="Lines of log to show when nothing is recognised."),
) -> None:
    """Recognise known failures in a log (service.get_logs(), azmlinfsrv, gunicorn, AKS/ACI) and say the fix."""
    from ..diagnose import diagnose as find
    from ..diagnose import findings_as_json, read_log, render_report

    if (source is None) == (name is None):
        raise UsageError("pass a log FILE (or - for stdin), or --name SERVICE for a local service's log")
    if name:
        from ..runtime.registry import get_service

        text = get_service(name).get_logs()
        if not text.strip():
            raise UsageError(f"service '{name}' has logged nothing yet")
    else:
        text = read_log(source)
    findings = find(text)
    if as_json:
        out(json.dumps(findings_as_json(findings), indent=2))
    else:
        out(render_report(findings, text, tail=tail))


@app.command()
def check(
    source_dir: SourceDir = None,
    entry_script: EntryScript = None,
    model_dir: ModelDir = None,
    model_name: ModelName = None,
    model_version: ModelVersion = None,
    env_file: EnvFile = None,
    image: Optional[str] = typer.Option(None, "--image", help="Also check that the image serves and imports it."),
    deployment: Deployment = None,
) -> None:
    """Check a project step by step before deploying: script, environment, model, image."""
    from ..check import check_project

    results = check_project(_options(locals()))
    for result in results:
        out(result.render())
    failed = [r for r in results if not r.ok]
    if failed:
        raise typer.Exit(int(ExitStatus.ERROR))


@app.command("model-path")
def model_path(
    model: str = typer.Argument(..., help="Registered model name, as passed to Model.get_model_path()."),
    name: Optional[str] = typer.Option(None, "--name", help="Service name."),
) -> None:
    """Resolve a model inside the running service as Model.get_model_path(NAME) does."""
    from ..runtime.registry import get_service

    service = get_service(_service_name(name))
    result = service.model_path(model)
    root = result["app_root"].rstrip("/") + "/"
    out(f"resolved with {result['via']}")
    out("under azureml-models/:" if result["tree"] else "azureml-models/ is empty or missing")
    for entry in result["tree"]:
        out(f"  {entry}")
    if result["error"]:
        raise UsageError(f"Model.get_model_path('{model}') fails in service '{service.name}': {result['error']}; "
                         f"place it with 'amldebug attach --model-dir PATH --model-name {model}'")
    path = result["path"]
    out(f"Model.get_model_path('{model}') -> {path[len(root):] if path.startswith(root) else path}")


@app.command()
def replicas(
    target_rps: float = typer.Option(..., "--target-rps", help="Requests per second to serve."),
    request_time: float = typer.Option(..., "--request-time", help="Seconds per request."),
    max_concurrent: int = typer.Option(1, "--max-concurrent", help="Concurrent requests per replica."),
    target_utilization: float = typer.Option(0.7, "--target-utilization", help="Utilization target, in (0, 1]."),
) -> None:
    """Compute autoscale_min_replicas with the troubleshooting guide's formula (HTTP 503)."""
    from ..replicas import plan_replicas, render_plan

    out(render_plan(plan_replicas(target_rps, request_time, max_concurrent, target_utilization)))
