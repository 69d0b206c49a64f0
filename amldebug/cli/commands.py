"""The commands: each parses its options, makes one call, and prints."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..core.options import (
    DEFAULT_DEBUG_PORT,
    DEFAULT_PORT,
    DEFAULT_RUNTIME,
    LOOPBACK,
    AttachOptions,
    ReloadMode,
    Runtime,
)
from ..engine.backend import runtime_of
from ..errors import ContainerError, ExitStatus, ScoringError, UsageError
from ..supervise import Console, reload_reporter, run_foreground, say_channel
from .app import app, note, out, out_json
from .localpaths import local_path_mapper
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
    Reload,
    RuntimeName,
    SourceDir,
    Wait,
    _options,
)
from .progress import Reporter

# A foreground session's lines: the service's log on stdout with the paths it prints as local
# files, amldebug's messages on stderr.
CONSOLE = Console(out=out, note=note, local=local_path_mapper)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print no progress: only warnings, errors, choices "
                                     "made for you (the image picked) and the start and ready lines.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")]


def _first_name(options: AttachOptions) -> Optional[str]:
    """The service's name as far as the command line tells it (before any file is read)."""
    from ..core.spec import service_name_from

    if options.name:
        return options.name
    if options.service:
        return f"{options.service}-debug"
    if options.inference_config:
        return None
    return service_name_from(Path(options.source_dir or "."))


def _describe(service, launch_json) -> None:
    out(f"service:     {service.name}")
    out(f"scoring URI: {service.scoring_uri}")
    out(f"debug port:  localhost:{service.debug_port}")
    if launch_json:
        out(f"launch.json: {launch_json} (configuration \"amldebug: {service.name}\")")


@app.command(short_help="Start the service with the debugger inside; write launch.json.")
def attach(
    source_dir: SourceDir = None, entry_script: EntryScript = None, image: Image = None, model_dir: ModelDirs = None,
    model_name: ModelName = None, model_version: ModelVersion = None, port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT, name: Name = None, wait: Wait = True,
    just_my_code: JustMyCode = True, env: EnvVars = None, debug_bind: DebugBind = LOOPBACK,
    runtime: RuntimeName = DEFAULT_RUNTIME, python: Python = None, env_file: EnvFile = None,
    base_image: BaseImage = None, service: FromService = None, inference_config: InferenceConfig = None,
    exact_ports: ExactPorts = False, deployment: Deployment = None, reload: Reload = ReloadMode.AUTO,
    detach: bool = typer.Option(False, "--detach", "-d", help="Start, write launch.json, print, and return."),
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Reload on save (foreground only)."),
    quiet: Quiet = False, as_json: AsJson = False,
) -> None:
    """Start the scoring container with the debugger inside and write .vscode/launch.json."""
    options = _options(locals())
    if as_json and not detach:
        raise UsageError("--json describes a started service: pass it with --detach")
    with Reporter(quiet=quiet) as progress:
        _attach(options, progress, detach=detach, watch=watch, as_json=as_json)


def _attach(options: AttachOptions, progress: Reporter, *, detach: bool, watch: bool, as_json: bool) -> None:
    from ..session import attach as do_attach
    from ..session import spec_for

    first = _first_name(options)  # C1: the task's first line, before any probe, build or fetch
    progress.always(f"amldebug: starting service '{first}'" if first
                    else f"amldebug: starting (reading {options.inference_config})")
    if options.env_file is not None and not Path(options.env_file).is_file():
        raise UsageError(f"environment file '{options.env_file}' does not exist; pass --env-file with a "
                         "requirements.txt or conda YAML")
    spec = spec_for(options, progress=progress)
    progress(f"amldebug: service '{spec.name}' runs from {runtime_of(spec).describe(spec)}")

    def announce(result) -> None:
        progress.finish()
        if as_json:
            out_json({**result.service.as_dict(), "launch_json": str(result.launch_json or "") or None})
        else:
            _describe(result.service, result.launch_json)
        when = "before init()" if spec.wait else "any time"
        progress.always(f"amldebug: service '{result.service.name}' is ready for a debugger on "
                        f"localhost:{result.service.debug_port} ({when}; {progress.elapsed():.1f} s)")

    def start():
        try:
            return do_attach(spec, exact_ports=options.exact_ports, progress=progress)
        except ContainerError as exc:  # the log it carries names local files, as the streamed log does
            exc.logs = local_path_mapper(spec)(exc.logs or "")
            raise

    if detach:
        announce(start())
        return
    run_foreground(start, announce, CONSOLE, watch=watch, mode=options.reload)


def _local_note(service):
    """``note`` for a reload loop's reports, with the paths the server prints as local files."""
    return reload_reporter(service, CONSOLE)


@app.command(short_help="Write launch.json and tasks.json so that F5 starts and attaches.")
def vscode(
    source_dir: SourceDir = None, entry_script: EntryScript = None, image: Image = None, model_dir: ModelDirs = None,
    model_name: ModelName = None, model_version: ModelVersion = None, port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT, name: Name = None, wait: Wait = True,
    just_my_code: JustMyCode = True, env: EnvVars = None, runtime: RuntimeName = DEFAULT_RUNTIME,
    python: Python = None, deployment: Deployment = None,
    post_debug_task: bool = typer.Option(False, "--post-debug-task", help="Stop the service when debugging ends."),
    as_json: AsJson = False,
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
    if as_json:
        out_json({"name": spec.name, "launch_json": str(launch), "tasks_json": str(launch.parent / "tasks.json"),
                  "configuration": f"amldebug: {spec.name}"})
        return
    out(f"launch.json: {launch} (configuration \"amldebug: {spec.name}\", preLaunchTask \"amldebug: {spec.name}\")")
    out(f"tasks.json:  {launch.parent / 'tasks.json'}")


@app.command("init", short_help="Scaffold a project: score.py, a model, environment, .vscode.")
def init_project(
    folder: Path = typer.Argument(Path("."), help="Folder to create the project in.", metavar="DIR"),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder, overwriting these files."),
    image: Optional[str] = typer.Option(None, "--image", help="Scoring image to record in amldebug.json.",
                                        metavar="IMAGE"),
    post_debug_task: bool = typer.Option(False, "--post-debug-task", help="Stop the service when debugging ends."),
    as_json: AsJson = False,
) -> None:
    """Scaffold a working project: score.py, a small model, environment files, .vscode, README."""
    from ..scaffold import init_project as scaffold_project

    written = [str(p) for p in scaffold_project(folder, force=force, image=image, post_debug_task=post_debug_task)]
    if as_json:
        out_json({"folder": str(folder), "files": written})
    else:
        for path in written:
            out(path)
    note(f"amldebug: next: 'cd {folder}' and 'amldebug check', then open it in VS Code and press F5")


@app.command(short_help="Run the bundled example until Ctrl-C.")
def demo(
    folder: Path = typer.Option(Path("amldebug-demo"), "--folder", help="Where to put the example project.",
                                metavar="DIR"),
    image: Optional[str] = typer.Option(None, "--image", help="Scoring image (default: a local image with "
                                        "azmlinfsrv, found as attach finds one).", metavar="IMAGE"),
    runtime: Optional[Runtime] = typer.Option(None, "--runtime", help="Force the runtime (default: container "
                                              "when a scoring image is here, else process)."),
    port: Port = DEFAULT_PORT,
    debug_port: DebugPort = DEFAULT_DEBUG_PORT,
    wait: bool = typer.Option(False, "--wait/--no-wait", help="Hold before init() until a debugger attaches."),
    quiet: Quiet = False,
) -> None:
    """Run the bundled example end to end (container if possible, else a local process) until Ctrl-C."""
    with Reporter(quiet=quiet) as progress:
        _demo(folder, image, runtime, port, debug_port, wait, progress)


def _demo(folder: Path, image: Optional[str], runtime: Optional[Runtime], port: int, debug_port: int, wait: bool,
          progress: Reporter) -> None:
    from ..core.spec import service_name_from
    from ..demo import demo_spec, refuse_running
    from ..engine.statefile import held
    from ..session import attach as do_attach

    name = service_name_from(folder)
    with held(name, "demo") as other:  # held before the first line: a demo still starting counts too
        progress.always(f"amldebug: starting service '{name}' (amldebug demo)")  # C1
        refuse_running(name, folder, other)
        spec = demo_spec(folder, image, runtime, port, debug_port, wait, progress)

        def announce(result) -> None:
            progress.finish()
            _describe(result.service, result.launch_json)
            progress.always(f"amldebug: service '{spec.name}' is ready for a debugger on "
                            f"localhost:{result.service.debug_port} ({progress.elapsed():.1f} s)")
            progress.always(f"amldebug demo: try  amldebug score --name {spec.name} --file "
                            f"{folder / 'sample-request.json'}")

        run_foreground(lambda: do_attach(spec, progress=progress), announce, CONSOLE)


@app.command(short_help="Build a local scoring image from an environment file.")
def build(
    env_file: Optional[Path] = typer.Option(None, "--env-file", help="pip requirements file or conda YAML "
                                            "(--env still works).", metavar="FILE"),
    base_image: Optional[str] = typer.Option(None, "--base-image", help="Default: Azure ML's minimal inference image.",
                                             metavar="IMAGE"),
    tag: Optional[str] = typer.Option(None, "--tag", help="Tag for the image (default: amldebug-env:<hash>).",
                                      metavar="TAG"),
    quiet: Quiet = False, as_json: AsJson = False,
) -> None:
    """Build a local scoring image from an environment file, with no network inside the build."""
    from ..envbuild.image import build_image

    with Reporter(quiet=quiet) as progress:
        result = build_image(env_file, base_image=base_image, tag=tag, progress=progress)
    if not result.built:  # build_image reports a build itself
        progress(f"amldebug: up to date: {result.tag} in {result.seconds:.1f} s")
    if as_json:
        out_json({"tag": result.tag, "built": result.built, "seconds": round(result.seconds, 3)})
    else:
        out(result.tag)


@app.command(short_help="List the services: state, scoring URI, debug port.")
def status(
    name: Optional[str] = typer.Argument(None, help="Service name (default: all).", metavar="NAME"),
    name_opt: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    as_json: bool = typer.Option(False, "--json", help="Print the services as one JSON array."),
    json_lines: bool = typer.Option(False, "--json-lines", help="One JSON object per line (the older --json)."),
) -> None:
    """List the services and their state, scoring URI and debug port."""
    from ..session import get_service, list_services

    wanted = name_opt or name
    services = [get_service(wanted)] if wanted else list_services()
    if as_json:
        out_json([service.as_dict() for service in services])
        return
    if json_lines:
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
    from ..session import list_services

    services = list_services()
    if len(services) == 1:
        return services[0].name
    return service_name_from(Path.cwd())


@app.command(short_help="Stop and remove a service.")
def down(
    name: Optional[str] = typer.Argument(None, help="Service name.", metavar="NAME"),
    name_opt: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    as_json: AsJson = False,
) -> None:
    """Stop and remove the service's container."""
    from ..session import get_service

    service = get_service(_service_name(name_opt or name))
    service.delete()
    if as_json:
        out_json({"name": service.name, "removed": True})
    else:
        out(f"removed service '{service.name}'")


@app.command(short_help="Serve the current files now: a new worker, a fresh init().")
def reload(name: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
           as_json: AsJson = False) -> None:
    """Serve the current files now (always a fresh worker and init(); an attached debugger stays)."""
    from ..session import get_service

    service = get_service(_service_name(name))
    result = service.reload(progress=note)
    if as_json:
        out_json({"name": service.name, "ms": round(result.seconds * 1000, 1), "restarted": result.restarted,
                  "worker_pid": result.worker_pid, "via": result.via})
        return
    out(f"reloaded '{service.name}' in {result.seconds * 1000:.0f} ms"
        + ("; re-attach the debugger" if result.restarted else "; the debugger stays attached" if result.attached else ""))


@app.command(short_help="Reload a --detach'ed service whenever its files change.")
def watch(
    name: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    service_name: Optional[str] = typer.Option(
        None, "--service", help="An azureml-core LocalWebservice to reload instead (restarts its container).",
        metavar="NAME"),
    source_dir: Optional[Path] = typer.Argument(None, help="With --service: the source folder it was deployed from.",
                                                metavar="SOURCE_DIR"),
    reload: Reload = ReloadMode.AUTO,
) -> None:
    """Reload a service started with --detach whenever its files change (Ctrl-C stops)."""
    from ..session import get_service
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
    loop = ReloadLoop(service, report=_local_note(service), mode=reload)

    def on_ready() -> None:
        note(ready)
        if not service_name:  # a LocalWebservice is recreated, not signalled
            say_channel(service, note)

    try:
        loop.run(on_ready=on_ready)
    except KeyboardInterrupt:
        loop.stop.set()


@app.command(short_help="Print a service's log, with the known failures named.")
def logs(
    name: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int = typer.Option(200, "--tail", help="How many lines from the end.", metavar="LINES"),
) -> None:
    """Print the service's log."""
    from ..session import get_service

    service = get_service(_service_name(name))
    local = local_path_mapper(service.spec)  # tracebacks name local files
    image = service.spec.image  # the service's image answers what its packages require
    if follow:
        seen: set = set()
        lines: list = []
        next_check = 0.0
        read: dict = {}  # what the image said, asked once per package
        try:
            for line in service.follow_logs(tail=tail):
                line = local(line)
                out(line)
                lines = (lines + [line])[-5000:]
                if time.monotonic() >= next_check:  # diagnosing is not free: at most twice a second
                    _print_findings("\n".join(lines), seen, image=image, cache=read)
                    next_check = time.monotonic() + 0.5
        except KeyboardInterrupt:
            pass
        return
    text = "\n".join(local(line) for line in service.get_logs(num_lines=tail).split("\n"))
    out(text.rstrip("\n"))
    _print_findings(text, image=image)


def _print_findings(text: str, seen: Optional[set] = None, *, image: Optional[str] = None,
                    cache: Optional[dict] = None) -> None:
    from ..diagnose import render_report
    from ..diagnose.image import diagnose_image

    found = diagnose_image(text, image, _image_python, strict=False, cache=cache)
    findings = [f for f in found if seen is None or (f.rule, f.lines[:1]) not in seen]
    if seen is not None:
        seen.update((f.rule, f.lines[:1]) for f in findings)
    if findings:
        out("")
        out("-- amldebug diagnose " + "-" * 40)
        out(render_report(findings, text))


def _image_python(image: str):
    """Runs Python code in ``image``'s own Python (the one next to azmlinfsrv, else python3) in a
    throwaway container: how diagnose reads the installed packages' METADATA."""
    from ..engine import docker as engine

    client = engine.connect()
    found = engine.get_image(client, image)
    script = engine.SERVER_PYTHON_SH + (
        'for py in "$cand" $(command -v python3) $(command -v python); do\n'
        '  [ -n "$py" ] && [ -x "$py" ] && exec "$py" -c "$AMLDEBUG_PYTHON_CODE" "$@"\n'
        'done\necho "no Python in the image"; exit 12\n')
    return lambda code, args: engine.run_once(client, found.id, ["/bin/sh", "-c", script, "sh", *args], ref=image,
                                              placed=engine.Placement(environment={"AMLDEBUG_PYTHON_CODE": code}),
                                              timeout=60)


def request_body(data: Optional[str], file: Optional[Path]) -> str:
    """The request body from ``-d/--data`` (JSON; ``@FILE`` reads a file, ``@-`` stdin, as curl
    and httpie take it) or ``--file``, refused here when it is not JSON, with where it breaks."""
    if (data is None) == (file is None):
        raise UsageError("pass exactly one of -d/--data JSON (or @FILE) or --file PATH")
    origin = "--data"
    if data is not None and data.startswith("@"):
        origin, data, file = f"--data {data}", None, Path(data[1:])
        if str(file) == "-":
            data, file = sys.stdin.read(), None
    if file is not None:
        if not file.is_file():
            raise UsageError(f"request file '{file}' does not exist")
        origin = origin if origin != "--data" else f"--file {file}"
        data = file.read_text(encoding="utf-8")
    try:
        json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{origin} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                         f"(character {exc.pos + 1}); nothing was sent") from None
    return data


@app.command(short_help="Send one request; print the status, latency and answer.")
def score(
    name: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Request body (JSON), or @FILE, or @- for stdin.",
                                       metavar="JSON"),
    file: Optional[Path] = typer.Option(None, "--file", help="File with the request body.", metavar="FILE"),
    as_json: AsJson = False,
) -> None:
    """Send one request like service.run(); print status, latency and the answer."""
    from ..session import get_service

    body = request_body(data, file)
    service = get_service(_service_name(name))
    started = time.perf_counter()
    try:
        answer = service.run(body)
    except ScoringError as exc:  # the traceback the service logged names local files
        exc.logged_exception = local_path_mapper(service.spec)(exc.logged_exception or "")
        raise
    elapsed = time.perf_counter() - started
    note(f"HTTP 200 in {elapsed * 1000:.1f} ms")
    if elapsed > 45:
        note(f"warning: {elapsed:.0f} s is close to AKS's default 60 s request timeout (HTTP 504 in Azure)")
    if as_json:
        out_json({"status": 200, "ms": round(elapsed * 1000, 1), "answer": answer})
    else:
        out(answer if isinstance(answer, str) else json.dumps(answer))


@app.command(short_help="Name known failures in a log, and their fixes.")
def diagnose(
    source: Optional[str] = typer.Argument(None, help="Log file, or - for stdin.", metavar="FILE"),
    name: Optional[str] = typer.Option(None, "--name", help="Read the local service's container log instead.",
                                       metavar="NAME"),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    tail: int = typer.Option(20, "--tail", help="Lines of log to show when nothing is recognised.", metavar="LINES"),
    image: Optional[str] = typer.Option(None, "--image", help="The image that wrote the log: read what its installed "
                                        "packages require (Requires-Python) from it. --name uses the service's.",
                                        metavar="IMAGE"),
) -> None:
    """Recognise known failures in a log (service.get_logs(), azmlinfsrv, gunicorn, AKS/ACI) and say the fix."""
    from ..diagnose import findings_as_json, read_log, render_report
    from ..diagnose.image import diagnose_image

    if (source is None) == (name is None):
        raise UsageError("pass a log FILE (or - for stdin), or --name SERVICE for a local service's log")
    chosen = image
    if name:
        from ..session import get_service

        service = get_service(name)
        text = service.get_logs()
        if not text.strip():
            raise UsageError(f"service '{name}' has logged nothing yet")
        image = image or service.spec.image
    else:
        text = read_log(source)
    findings = diagnose_image(text, image, _image_python, strict=chosen is not None)
    if as_json:
        out(json.dumps(findings_as_json(findings), indent=2))
    else:
        out(render_report(findings, text, tail=tail))


@app.command(short_help="Check a project step by step: script, environment, model, image.")
def check(
    source_dir: SourceDir = None,
    entry_script: EntryScript = None,
    model_dir: ModelDir = None,
    model_name: ModelName = None,
    model_version: ModelVersion = None,
    env_file: EnvFile = None,
    image: Optional[str] = typer.Option(None, "--image", help="Also check that the image serves and imports it.",
                                        metavar="IMAGE"),
    deployment: Deployment = None, as_json: AsJson = False,
) -> None:
    """Check a project step by step before deploying: script, environment, model, image."""
    from ..check import check_project

    results = check_project(_options(locals()))
    if as_json:
        out_json([dataclasses.asdict(r) for r in results])
    else:
        for result in results:
            out(result.render())
    failed = [r for r in results if not r.ok]
    if failed:
        raise typer.Exit(int(ExitStatus.ERROR))


@app.command("model-path", short_help="Resolve a model in the service as Model.get_model_path does.")
def model_path(
    model: str = typer.Argument(..., help="Registered model name, as passed to Model.get_model_path().",
                                metavar="MODEL"),
    name: Optional[str] = typer.Option(None, "--name", help="Service name.", metavar="NAME"),
    as_json: AsJson = False,
) -> None:
    """Resolve a model inside the running service as Model.get_model_path(NAME) does."""
    from ..session import get_service

    service = get_service(_service_name(name))
    result = service.model_path(model)
    if as_json:
        out_json(result)
        if result["error"]:
            raise typer.Exit(int(ExitStatus.USAGE))
        return
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


@app.command(short_help="Compute autoscale_min_replicas (the guide's formula).")
def replicas(
    target_rps: float = typer.Option(..., "--target-rps", help="Requests per second to serve.", metavar="RPS"),
    request_time: float = typer.Option(..., "--request-time", help="Seconds per request.", metavar="SECONDS"),
    max_concurrent: int = typer.Option(1, "--max-concurrent", help="Concurrent requests per replica.", metavar="N"),
    target_utilization: float = typer.Option(0.7, "--target-utilization", help="Utilization target, in (0, 1].",
                                             metavar="FRACTION"),
    as_json: AsJson = False,
) -> None:
    """Compute autoscale_min_replicas with the troubleshooting guide's formula (HTTP 503)."""
    from ..replicas import plan_replicas, render_plan

    plan = plan_replicas(target_rps, request_time, max_concurrent, target_utilization)
    if as_json:
        out_json(dataclasses.asdict(plan))
    else:
        out(render_plan(plan))
