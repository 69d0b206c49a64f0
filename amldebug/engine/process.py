"""The no-Docker runtime: azmlinfsrv from a local Python, under debugpy, with the same
launcher, debug settings and reload as the container.

The app root is a folder under amldebug's state folder that mirrors /var/azureml-app:
``<source name>`` links to the source folder, and each model is placed under
``azureml-models/<name>/<version>/`` as real folders holding hard links of its files (a
copy across file systems), so os.walk, glob and Model.get_model_path see what they see
in a container, where the model is a mount; a symbolic link would hide a model folder
from os.walk. The entry script and the source folder are given
to the server by their real paths, because the server resolves real paths and a
debugger's breakpoints must match the files the user edits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal as signals
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from ..core import interrupts
from ..core.options import Runtime
from ..core.paths import cache_root
from ..core.spec import ServiceSpec, launcher_command, layout
from ..errors import AmlDebugError, ContainerError, UsageError
from ..payload.common import protocol
from .transport import Pipes

REGISTRY = "process.json"
LOG = "server.log"

_PROBE = (
    "import json, os, platform, sys\n"
    "try:\n"
    "    import azureml_inference_server_http as s\n"
    "except ImportError:\n"
    "    print(json.dumps({'error': 'missing'})); sys.exit(0)\n"
    "from importlib import metadata\n"
    "script = os.path.join(os.path.dirname(sys.executable), 'azmlinfsrv')\n"
    "print(json.dumps({'python': sys.executable, 'version': '%d.%d' % sys.version_info[:2],\n"
    "    'machine': platform.machine(), 'server': script if os.path.isfile(script) else '',\n"
    "    'azureml-inference-server-http': metadata.version('azureml-inference-server-http')}))\n"
)


def probe_python(python: Optional[str]) -> dict:
    """What the chosen Python has; UsageError saying how to install the server if it lacks it."""
    exe = python or sys.executable
    try:
        result = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise UsageError(f"--python '{exe}' cannot be run ({exc.strerror}); pass the path of a Python executable")
    if result.returncode != 0:
        raise UsageError(f"--python '{exe}' failed: {result.stderr.strip()[-300:]}")
    info = json.loads(result.stdout.strip().splitlines()[-1])
    if info.get("error"):
        raise UsageError(
            f"azureml-inference-server-http is not importable in {exe}; install it there with "
            f"'{exe} -m pip install azureml-inference-server-http' (or pass --python with one that has it)"
        )
    return info


def app_root(state: Path) -> Path:
    return state / "app"


def process_layout(spec: ServiceSpec, state: Path, server: str, payload: Path):
    """The container layout with host paths: app root mirror, real code paths."""
    root = app_root(state)
    lay = layout(spec, app_root=str(root), debug_port=spec.debug_port, scoring_port=spec.port, server=server,
                 payload_root=str(payload), state_dir=str(state / "run"))
    real_source = os.path.realpath(spec.source_dir)
    lay.env.update({
        "AZUREML_ENTRY_SCRIPT": os.path.join(real_source, spec.entry_script),
        protocol.ENV_DEBUG_HOST: spec.debug_bind,
        protocol.ENV_SERVER_HOST: "127.0.0.1",
    })
    if spec.deployment:  # v2: the scoring script's folder is the app root (and the working directory)
        real_root = os.path.join(real_source, os.path.dirname(spec.entry_script))
        lay.env["AML_APP_ROOT"] = real_root
        lay = dataclasses.replace(lay, workdir=real_root.rstrip("/"))
        lay.env.update({k: v for k, v in spec.env if k == "AML_APP_ROOT"})  # a file's own value still wins
    else:
        lay.env["AZUREML_SOURCE_DIRECTORY"] = real_source
    lay.args[1] = os.path.join(real_source, spec.entry_script)
    return lay


def prepare_app_root(spec: ServiceSpec, state: Path) -> Path:
    root = app_root(state)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / Path(spec.source_dir).name).symlink_to(spec.source_dir, target_is_directory=True)
    for host, target in process_layout(spec, state, "", Path(".")).model_mounts:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        place_model(Path(host), Path(target))
    return root


def place_model(source: Path, target: Path) -> None:
    """``target`` as a real copy of the file or folder ``source``: folders are made, files
    hard-linked (instant, no space), or copied where a hard link is not possible."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link)
    else:
        link(str(source), str(target))


class ProcessRunner:
    """The process runtime (backend.Runner): azmlinfsrv from a local Python, under the same
    launcher, with an app root that mirrors /var/azureml-app."""

    runtime = Runtime.PROCESS
    uses_image = False

    def __init__(self, client=None) -> None:
        pass  # needs no engine

    def probe(self, spec: ServiceSpec, payload: Path) -> dict:
        return probe_python(spec.python)

    def start(self, spec: ServiceSpec, state, payload: Path, info: dict, session: str) -> "ProcessBackend":
        state.reset(session=session)
        return start(spec, state.folder, payload, info, session)

    def undo(self, spec: ServiceSpec, state, session: str, unreturned: bool) -> None:
        backend = backend_in(state.folder)  # started, but the signal came before start() returned
        if backend is not None:
            backend.remove()

    def payload_path(self, payload: Path, script: str) -> str:
        return str(payload / script)

    def find(self, name: Optional[str] = None) -> list:
        return [(spec, backend) for spec, backend, _ in registered(cache_root() / "state")
                if name is None or spec.name == name]

    @classmethod
    def describe(cls, spec: ServiceSpec) -> str:
        return f"Python {spec.python or sys.executable}"

    @classmethod
    def complete(cls, spec: ServiceSpec, progress) -> ServiceSpec:
        return spec

    @classmethod
    def served_source_dir(cls, spec: ServiceSpec) -> str:
        # The server resolves real paths: they map to themselves.
        return str(Path(spec.source_dir).resolve())

    @classmethod
    def local_paths(cls, spec: ServiceSpec) -> list:
        return []  # its paths are local already

    @classmethod
    def task_options(cls, spec: ServiceSpec, options):
        return options.replace(python=spec.python)


class ProcessBackend:
    """A debug service that runs as a local process group (backend.Backend)."""

    runtime = Runtime.PROCESS
    transport = Pipes()  # the state folder is on this host

    def __init__(self, state: Path, pid: int, session: Optional[str] = None) -> None:
        self.state = state
        self.pid = pid
        self.session = session

    @property
    def id(self) -> str:
        return f"pid:{self.pid}"

    def _alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a zombie of ours counts as exited
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True

    def status(self) -> str:
        if not (self.state / REGISTRY).is_file():
            return "Deleted"
        return "running" if self._alive() else "exited"

    def position(self) -> int:
        """A point in the log, for logs(since=...): its size now."""
        try:
            return (self.state / LOG).stat().st_size
        except OSError:
            return 0

    def logs(self, *, tail: int | str = "all", since: int | None = None) -> str:
        try:
            data = (self.state / LOG).read_bytes()
        except OSError:
            return ""
        text = data[since or 0:].decode("utf-8", "replace")
        if tail != "all":
            text = "\n".join(text.splitlines()[-int(tail):]) + "\n"
        return text

    def follow(self, *, tail: int | str = "all") -> Iterator[str]:
        for line in self.logs(tail=tail).splitlines():
            yield line
        path = self.state / LOG
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(0, os.SEEK_END)
            partial = ""
            while True:
                chunk = f.readline()
                if chunk:
                    partial += chunk
                    if partial.endswith("\n"):
                        yield partial.rstrip("\n")
                        partial = ""
                    continue
                if not self._alive():
                    return
                time.sleep(0.1)

    def signal(self, sig: str) -> None:
        try:
            os.kill(self.pid, getattr(signals, sig))
        except ProcessLookupError:
            raise ContainerError(f"the server process {self.pid} is gone") from None

    def remove(self) -> None:
        for sig, wait in ((signals.SIGTERM, 5.0), (signals.SIGKILL, 2.0)):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            deadline = time.monotonic() + wait
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self._alive():
                break
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        _kill_session(self.session)
        recorded = backend_in(self.state)
        if recorded is None or recorded.pid == self.pid:  # not a replacement's, started under the same name
            (self.state / REGISTRY).unlink(missing_ok=True)
            shutil.rmtree(app_root(self.state), ignore_errors=True)

    def run_python(self, python: str, args: list) -> tuple[int, str]:
        env = dict(os.environ, AML_APP_ROOT=str(app_root(self.state)))
        result = subprocess.run([python, *args], capture_output=True, text=True, cwd=app_root(self.state), env=env)
        return result.returncode, result.stdout + result.stderr


def start(spec: ServiceSpec, state: Path, payload: Path, info: dict, session: Optional[str] = None) -> ProcessBackend:
    """Start the server process group detached from the terminal; the caller waits for it."""
    server = info["server"] or str(payload / protocol.SERVER_SHIM)
    lay = process_layout(spec, state, server, payload)
    root = prepare_app_root(spec, state)
    workdir = lay.workdir if spec.deployment else root
    # debugpy's own log files can deadlock a forked worker (a lock held across fork).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGPY_LOG")}
    env.update(lay.env)
    if session:
        env[protocol.ENV_SESSION] = session
    log = open(state / LOG, "ab")
    try:
        with interrupts.deferred():  # a started server is recorded before a signal can end us
            proc = subprocess.Popen(launcher_command(info["python"], lay, str(payload)), cwd=workdir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                registry = state / REGISTRY
                registry.write_text(json.dumps({"pid": proc.pid, "spec": json.loads(spec.to_label()),
                                                "python": info["python"], "session": session}))
                registry.chmod(0o600)
            except OSError as exc:  # a server nobody could find again: stop it
                ProcessBackend(state, proc.pid).remove()
                raise AmlDebugError(f"cannot record the server process in {state}: {exc.strerror}") from None
    except OSError as exc:
        raise AmlDebugError(f"cannot start {info['python']}: {exc.strerror}") from None
    finally:
        log.close()
    return ProcessBackend(state, proc.pid, session)


def _kill_session(session: Optional[str]) -> None:
    """Kill what is left of a start outside its process group: debugpy starts its adapter
    in a session of its own, and an adapter whose server was killed while it started
    waits for it (seen: still there 20 s later). They carry the start's id in their
    environment."""
    if not session:
        return
    marker = f"{protocol.ENV_SESSION}={session}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signals.SIGKILL)
        except (OSError, ValueError):
            continue


def backend_in(state: Path) -> Optional[ProcessBackend]:
    """The backend recorded in a service's state folder, if a server was started there."""
    try:
        data = json.loads((state / REGISTRY).read_text())
        return ProcessBackend(state, int(data["pid"]), data.get("session"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _environ(pid: int) -> dict:
    """The variables a process of ours runs with (where values are kept: not on disk)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode("utf-8", "replace").split("\0") if "=" in item)


def registered(cache_state: Path) -> list[tuple[ServiceSpec, ProcessBackend, str]]:
    """Every process service amldebug started (spec, backend, python)."""
    found = []
    for entry in sorted(cache_state.glob(f"*/{REGISTRY}")):
        try:
            data = json.loads(entry.read_text())
            spec = ServiceSpec.from_label(json.dumps(data["spec"]), values=_environ(int(data["pid"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((spec, ProcessBackend(entry.parent, int(data["pid"]), data.get("session")),
                      data.get("python", sys.executable)))
    return found
