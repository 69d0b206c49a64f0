"""Every call to the Docker engine goes through here (docker SDK, never the CLI).

DockerException is caught in this module and re-raised as an AmlDebugError subclass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import docker
import docker.errors
import docker.tls
import requests

from ..core.progress import Progress, stage
from ..core.spec import (
    DEBUG_PORT_IN_CONTAINER,
    PAYLOAD_ROOT,
    SCORING_PORT_IN_CONTAINER,
    Layout,
    ServiceSpec,
)
from ..errors import ContainerError, DockerUnavailableError, ImageError
from ..payload.common import protocol

LABEL_SERVICE = "amldebug.service"
LABEL_SPEC = "amldebug.spec"
LABEL_KIND = "amldebug.kind"
LABEL_SESSION = "amldebug.session"  # one start: what to remove when it is interrupted


def network_name(service: str) -> str:
    return f"amldebug-{service}"


def _engine_gone(exc: BaseException, doing: str) -> DockerUnavailableError:
    where = _where()
    return DockerUnavailableError(
        f"the Docker engine at {where} stopped answering while {doing} ({_short(exc)}); once it is back, "
        "'amldebug status' shows what is left and 'amldebug down --name NAME' removes it")


def docker_endpoint(environ=os.environ) -> tuple[Optional[str], Optional[str], Optional[Path]]:
    """(host, context name, TLS folder) as the docker CLI picks them: DOCKER_HOST wins, then
    DOCKER_CONTEXT, then ``currentContext`` in the CLI's config.json (DOCKER_CONFIG, else
    ~/.docker). (None, None, None) means the default engine. A context is read from the CLI's
    store: ``contexts/meta/<sha256 of the name>/meta.json``, its TLS files under
    ``contexts/tls/<same>/docker/``."""
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"], None, None
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path(environ.get("HOME") or Path.home()) / ".docker")
    name = environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if not name or name == "default":
        return None, None, None
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    origin = "DOCKER_CONTEXT" if environ.get("DOCKER_CONTEXT") else f"currentContext in {config_dir / 'config.json'}"
    try:
        endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
        host = endpoint["Host"]
    except OSError:
        raise DockerUnavailableError(f"Docker context '{name}' ({origin}) does not exist (no {meta}); "
                                     "'docker context ls' lists the contexts") from None
    except (ValueError, KeyError, TypeError):
        raise DockerUnavailableError(f"Docker context '{name}' ({origin}) has no Docker endpoint in {meta}; "
                                     "'docker context inspect' shows it") from None
    tls = config_dir / "contexts" / "tls" / digest / "docker"
    return host, name, (tls if tls.is_dir() else None)


def _where(environ=os.environ) -> str:
    """The engine's address for messages (and the context it comes from)."""
    try:
        host, context, _ = docker_endpoint(environ)
    except DockerUnavailableError:
        return "the Docker context's address"
    if host is None:
        return "unix:///var/run/docker.sock"
    return f"{host} (Docker context '{context}')" if context else host


def connect() -> docker.DockerClient:
    """A client for the engine the docker CLI would use (DOCKER_HOST, else DOCKER_CONTEXT or
    the CLI's current context, else the local socket), or DockerUnavailableError saying how
    to get one."""
    host, context, tls_dir = docker_endpoint()
    where = _where()
    try:
        if host is None or context is None:
            client = docker.from_env(timeout=30)
        else:
            tls = False
            if tls_dir is not None:
                files = {n: tls_dir / f"{n}.pem" for n in ("ca", "cert", "key")}
                tls = docker.tls.TLSConfig(
                    client_cert=(str(files["cert"]), str(files["key"])) if files["cert"].is_file() else None,
                    ca_cert=str(files["ca"]) if files["ca"].is_file() else None, verify=files["ca"].is_file())
            client = docker.DockerClient(base_url=host, timeout=30, tls=tls)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"no Docker engine answers at {where} ({_short(exc)}); start Docker (Docker Desktop, "
            "'sudo systemctl start docker', or 'sudo dockerd &'), or run without it: --runtime process"
        ) from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def get_image(client: docker.DockerClient, ref: str):
    """The local image ``ref``; ImageError saying how to get it when there is none."""
    image = find_image(client, ref)
    if image is None:
        mirrored = mirrored_ref(ref, registry_mirror())
        how = f"'docker pull {ref}'"
        if mirrored:
            how = f"'docker pull {mirrored}' ({MIRROR_SETTING}) or {how}"
        raise ImageError(f"image '{ref}' is not present locally; pull it ({how}) or build one with 'amldebug build'")
    return image


# Sets $srv (azmlinfsrv on PATH, or empty) and $cand (the Python its shebang names, conda's
# sh-exec trampoline included). Shared with amldebug build's probe of a base image.
SERVER_PYTHON_SH = r"""
srv=$(command -v azmlinfsrv 2>/dev/null)
cand=""
if [ -n "$srv" ]; then
  first=$(head -n 1 "$srv" 2>/dev/null | sed -n 's/^#! *//p')
  case "$first" in
    */env\ *) cand=$(command -v "${first##* }" 2>/dev/null) ;;
    */sh|*/bash) cand=$(sed -n "2s/^'''exec' *\"\{0,1\}\([^\" ]*\).*/\1/p" "$srv") ;;
    *) cand=${first%% *} ;;
  esac
fi
"""

# Runs probe.py with the Python next to azmlinfsrv (or a python on PATH that can import the server).
_PROBE_SCRIPT = SERVER_PYTHON_SH + r"""
if [ -z "$srv" ]; then echo "AMLDEBUG-PROBE: no azmlinfsrv on PATH=$PATH"; exit 12; fi
for py in "$cand" $(command -v python3 2>/dev/null) $(command -v python 2>/dev/null); do
  [ -n "$py" ] && [ -x "$py" ] || continue
  if "$py" -c "import azureml_inference_server_http" 2>/dev/null; then
    {env_server}="$srv" exec "$py" {payload_root}/{probe}
  fi
done
echo "AMLDEBUG-PROBE: no Python next to $srv can import azureml_inference_server_http"; exit 13
""".replace("{env_server}", protocol.ENV_SERVER).replace("{payload_root}", PAYLOAD_ROOT).replace(
    "{probe}", protocol.PROBE_SCRIPT)


def probe_image(client: docker.DockerClient, image, payload: Path, cache: Path, *, timeout: float = 60) -> dict:
    """Learn the image's Python and server (cached by image id)."""
    cache_file = cache / "probes" / (image.id.replace(":", "-") + ".json")
    try:
        cached = json.loads(cache_file.read_text())
        if "uid" in cached:  # probes of earlier versions lack the image's user: probe again
            return cached
    except (OSError, ValueError):
        pass
    ref = (image.tags or [image.id])[0]
    status, out = run_once(client, image.id, ["/bin/sh", "-c", _PROBE_SCRIPT], ref=ref, kind="probe", timeout=timeout,
                           placed=Placement(volumes={str(payload): {"bind": PAYLOAD_ROOT, "mode": "ro"}}),
                           hint="amldebug needs an image with /bin/sh and Python")
    out = out.strip()
    if status != 0:
        reason = out.splitlines()[-1] if out else f"exit code {status}"
        raise ImageError(
            f"image '{ref}' cannot serve a scoring script: {reason.replace('AMLDEBUG-PROBE: ', '')}; "
            "use an Azure ML inference image, or an environment with azureml-inference-server-http "
            "(or azureml-defaults) - 'amldebug build' makes one"
        )
    info = json.loads(out.splitlines()[-1])
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, cache_file)
    return info


def find_services(client: docker.DockerClient, name: Optional[str] = None) -> list:
    filters = {"label": [f"{LABEL_SERVICE}={name}" if name else LABEL_SERVICE]}
    try:
        return client.containers.list(all=True, filters=filters)
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"cannot list containers: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, "listing containers") from None


def remove(container) -> None:
    """Stop and remove, ignoring a container that is already gone; a debug service's own
    network goes with it."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise ContainerError(f"cannot remove container {container.short_id}: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"removing container {container.name}") from None
    labels = getattr(container, "labels", None) or {}
    service = labels.get(LABEL_SERVICE)
    if service and labels.get(LABEL_KIND) == "service":
        _remove_network(container.client, network_name(service), session=labels.get(LABEL_SESSION))


def _remove_network(client: docker.DockerClient, name: str, *, session: Optional[str] = None) -> None:
    """Remove network ``name``; with ``session``, only if that start made it (a replacement
    under the same name may have made its own since)."""
    try:
        network = client.networks.get(name)
        if session and (network.attrs.get("Labels") or {}).get(LABEL_SESSION, session) != session:
            return
        network.remove()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # still in use: by a replacement that is starting
        if "active endpoints" not in str(exc):
            raise ContainerError(f"cannot remove network {name}: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"removing network {name}") from None


def remove_session(client: docker.DockerClient, session: str, *, settle: float = 1.0) -> None:
    """Remove every container and network one start made (an interrupted start: a create
    that was sent may still be carried out by the engine, so look again for ``settle`` s)."""
    deadline = time.monotonic() + settle
    while True:
        filters = {"label": [f"{LABEL_SESSION}={session}"]}
        for box in client.containers.list(all=True, filters=filters):
            remove(box)
        for net in client.networks.list(filters=filters):
            _remove_network(client, net.name)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def _own_network(client: docker.DockerClient, spec: ServiceSpec, labels: dict) -> str:
    """A bridge network for this service alone: other containers on the engine cannot reach
    its debug port or its scoring port (Docker isolates bridge networks from each other);
    the ports are still published on the host."""
    name = network_name(spec.name)
    _remove_network(client, name)  # left over by a service that was killed
    try:
        client.networks.create(name, driver="bridge", labels=labels, check_duplicate=True)
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot create the network {name} for service '{spec.name}': {_short(exc)}; "
                             "'docker network ls' shows the networks (a full address pool needs "
                             "'docker network prune')") from None
    return name


def model_mounts(lay: Layout) -> list:
    """Every model, read-only where the layout places it. Mounts, not volumes: one host
    folder may be mounted twice (a v2 model's parent folder can be the code folder too)."""
    return [docker.types.Mount(target, host, type="bind", read_only=True) for host, target in lay.model_mounts]


def start_service(client: docker.DockerClient, spec: ServiceSpec, lay: Layout, command: list,
                  payload: Path, state: Path, port: int, debug_port: int, *, session: str):
    """Create and start the debug container on a network of its own; the caller owns
    removing it on failure (``remove_session(client, session)``)."""
    volumes = {
        spec.source_dir: {"bind": lay.code_dir, "mode": "rw"},
        str(payload): {"bind": PAYLOAD_ROOT, "mode": "ro"},
        str(state): {"bind": lay.env[protocol.ENV_STATE], "mode": "rw"},
    }
    mounts = model_mounts(lay)
    ports = {
        f"{SCORING_PORT_IN_CONTAINER}/tcp": ("127.0.0.1", port),
        f"{DEBUG_PORT_IN_CONTAINER}/tcp": (spec.debug_bind, debug_port),
    }
    labels = {LABEL_SERVICE: spec.name, LABEL_KIND: "service", LABEL_SESSION: session}
    network = _own_network(client, spec, labels)
    try:
        box = client.containers.create(
            spec.image,
            entrypoint=command,
            command=[],
            name=f"amldebug-{spec.name}",
            detach=True,
            environment=lay.env,
            working_dir=lay.workdir or lay.app_root,
            volumes=volumes,
            mounts=mounts,
            ports=ports,
            network=network,
            labels={**labels, LABEL_SPEC: spec.to_label()},
        )
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot create service '{spec.name}' from image '{spec.image}': {_short(exc)}") from None
    try:
        box.start()
        return box
    except docker.errors.APIError as exc:
        remove(box)  # a container that could not start is not left behind
        taken = port_taken(str(exc))  # the whole text: Docker names the port only after 200 characters
        if taken is not None:
            raise ContainerError(
                f"{f'port {taken}' if taken else 'a port'} of service '{spec.name}' was taken by another program "
                "while the service started; "
                "run again (amldebug moves to a free port), or pass --port/--debug-port"
            ) from None
        raise ContainerError(f"cannot start service '{spec.name}' from image '{spec.image}': {_short(exc)}") from None


_PORT_TAKEN = re.compile(r"Bind for (?P<addr>\S+?) failed: port is already allocated"
                         r"|listen tcp[46]? (?P<listen>\S+?): bind: address already in use")


def port_taken(text: str) -> str | None:
    """The address:port Docker's start error says is taken ('driver failed programming
    external connectivity on endpoint ...: Bind for 127.0.0.1:5678 failed: port is already
    allocated'), '' when it names none, or None for any other error."""
    match = _PORT_TAKEN.search(text)
    if match:
        return match["addr"] or match["listen"]
    return "" if "port is already allocated" in text or "address already in use" in text else None


def log_text(container, *, tail: int | str = "all", since: float | None = None) -> str:
    kwargs = {"tail": tail}
    if since:
        kwargs["since"] = since
    try:
        return container.logs(**kwargs).decode("utf-8", "replace")
    except docker.errors.NotFound:
        return ""
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot read the logs of {container.name}: {_short(exc)}") from None


def follow_lines(container, *, since: float | None = None, tail: int | str = "all") -> Iterator[str]:
    """Yield log lines as they come until the container stops."""
    kwargs = {"stream": True, "follow": True, "tail": tail}
    if since:
        kwargs["since"] = since
    buffer = b""
    try:
        for chunk in container.logs(**kwargs):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
    except (docker.errors.DockerException, requests.RequestException):
        return  # the caller asks the engine what happened (state())
    if buffer:
        yield buffer.decode("utf-8", "replace")


def signal(container, sig: str) -> None:
    try:
        container.kill(signal=sig)
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot signal {container.name}: {_short(exc)}") from None


def state(container) -> str:
    try:
        container.reload()
    except docker.errors.NotFound:
        return "Deleted"
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"service {container.name} ran") from None
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot read the state of {container.name}: {_short(exc)}") from None
    return container.status


def spec_of(container) -> ServiceSpec:
    """The spec a service container was started with; variable values come from the
    container's own environment (the label holds only their keys)."""
    values = dict(item.split("=", 1) for item in (container.attrs.get("Config") or {}).get("Env") or [] if "=" in item)
    return ServiceSpec.from_label(container.labels[LABEL_SPEC], values=values)


def exec_run(container, cmd: list) -> tuple[int, str]:
    try:
        result = container.exec_run(cmd, demux=False)
    except docker.errors.DockerException as exc:
        raise ContainerError(f"cannot run a command in {container.name}: {_short(exc)}") from None
    return result.exit_code, (result.output or b"").decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class Placement:
    """What a throwaway container sees besides its image: folders (``volumes``, docker-py's
    form), read-only ``mounts``, variables and the working directory."""

    volumes: dict = dataclasses.field(default_factory=dict)
    mounts: list = dataclasses.field(default_factory=list)
    environment: dict = dataclasses.field(default_factory=dict)
    working_dir: Optional[str] = None


def run_once(client: docker.DockerClient, image: str, command: list, *, ref: str | None = None,
             what: str = "image", hint: str = "", placed: Placement = Placement(), kind: str = "check",
             timeout: float = 120) -> tuple[int, str]:
    """Run ``command`` in a throwaway container of ``image`` (no network, removed after)
    and return (exit code, output). ``ref``/``what`` name the image in messages
    ("base image 'x'"), ``hint`` says what the image needs; ``placed``: what else it sees.
    Raises ImageError when the image cannot run the command at all."""
    named = f"{what} '{ref or image}'"
    session = uuid.uuid4().hex
    try:
        box = client.containers.create(image, entrypoint=command, command=[], volumes=placed.volumes,
                                       mounts=placed.mounts, environment=placed.environment,
                                       working_dir=placed.working_dir,
                                       labels={LABEL_KIND: kind, LABEL_SESSION: session}, network_mode="none")
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot create a container from {named}: {_short(exc)}") from None
    except BaseException:  # a signal while the create was sent: the engine may still make it
        remove_session(client, session)
        raise
    try:
        try:
            box.start()
        except docker.errors.APIError as exc:
            raise ImageError(f"{named} cannot run {command[0]} ({_short(exc)}){'; ' + hint if hint else ''}") from None
        status = box.wait(timeout=timeout).get("StatusCode", 1)
        return status, box.logs().decode("utf-8", "replace")
    except requests.RequestException:  # docker-py's wait() timing out
        raise ContainerError(f"{named} did not finish '{' '.join(command)[:60]}' within {timeout:.0f} s; "
                             "check that the Docker engine is not overloaded ('docker stats')") from None
    except docker.errors.DockerException as exc:
        raise ContainerError(f"{named} could not run '{' '.join(command)[:60]}' ({_short(exc)}); check the Docker "
                             "engine with 'docker info'") from None
    finally:
        try:
            remove(box)
        except ContainerError:  # a leftover throwaway container must not hide the result
            pass


# ---------------------------------------------------------------------------------------
# Images and containers, for amldebug build and the azureml-core bridge
# ---------------------------------------------------------------------------------------

# A registry that stands for mcr.microsoft.com (a corporate mirror, where MCR itself is blocked):
# "host:port" or "host:port/prefix". Images are pulled from it and tagged under their mcr name.
MIRROR_SETTING = "AMLDEBUG_REGISTRY_MIRROR"
MCR = "mcr.microsoft.com"


def registry_mirror(environ=os.environ) -> Optional[str]:
    """The registry AMLDEBUG_REGISTRY_MIRROR names ("host:port" or "host:port/prefix"; a
    scheme and trailing slashes are dropped), or None when it is not set."""
    value = environ.get(MIRROR_SETTING, "").strip()
    value = re.sub(r"^[a-z]+://", "", value, flags=re.IGNORECASE).strip("/")
    return value or None


def mirrored_ref(ref: str, mirror: Optional[str]) -> Optional[str]:
    """``ref`` as pulled through ``mirror``: 'mcr.microsoft.com/azureml/X:tag' becomes
    'MIRROR/azureml/X:tag'; None when there is no mirror or ``ref`` is not on mcr.microsoft.com."""
    if not mirror or not ref.lower().startswith(MCR + "/"):
        return None
    return f"{mirror}/{ref[len(MCR) + 1:]}"


def _registry_of(ref: str) -> str:
    """The registry a ref is pulled from (Docker Hub when its first part is no host)."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def find_image(client: docker.DockerClient, ref: str, *, what: str = "image"):
    """The local image ``ref``, or None when the engine has none by that name. ``what``
    names it in messages ("base image"). With AMLDEBUG_REGISTRY_MIRROR set, an mcr ref
    present locally only under its mirror name (pulled with 'docker pull MIRROR/...') is
    found too, and tagged under the mcr name."""
    image = _get_image(client, ref, what)
    if image is None:
        mirrored = mirrored_ref(ref, registry_mirror())
        if mirrored and "@" not in ref:
            image = _get_image(client, mirrored, what)
            if image is not None:
                tag_image(client, image.id, ref)
                image = _get_image(client, ref, what)
    return image


def _get_image(client: docker.DockerClient, ref: str, what: str):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot read {what} '{ref}': {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"reading {what} '{ref}'") from None


def pull_image(client: docker.DockerClient, ref: str, *, what: str = "image", hint: str = "",
               progress: Optional[Progress] = None):
    """Pull ``ref`` (its tag, else ``latest``) and return it, reporting to ``progress`` a
    stage, each layer's change of state and, at most every second, how much of a layer is
    down. With AMLDEBUG_REGISTRY_MIRROR set, an mcr.microsoft.com ref is pulled from the
    mirror and tagged under its mcr name (no fallback to mcr: a mirror is set where mcr is
    not reachable). ``hint`` ends the message when it cannot be pulled ("or pass
    --base-image ...")."""
    mirror = registry_mirror()
    source = mirrored_ref(ref, mirror) or ref
    via = f"{mirror.split('/')[0]} ({MIRROR_SETTING})" if source != ref else _registry_of(ref)
    report = progress or (lambda _text: None)
    stage(report, f"pulling {what} '{ref}'" + (f" from {via}" if source != ref else ""))
    repo, tag = docker.utils.parse_repository_tag(source)
    had_source = source != ref and _get_image(client, source, what) is not None
    started = time.monotonic()
    try:
        chunks = client.api.pull(repo, tag=tag or "latest", stream=True, decode=True)
        down = _follow_pull(chunks, report)
    except _PullFailed as exc:
        raise _pull_error(ref, source, via, what, hint, exc.text, mirror) from None
    except docker.errors.APIError as exc:
        raise _pull_error(ref, source, via, what, hint, exc.explanation or str(exc), mirror) from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise _pull_error(ref, source, via, what, hint, _short(exc), mirror) from None
    if source != ref and "@" not in ref:
        pulled = _get_image(client, source, what)
        if pulled is None:
            raise ImageError(f"{what} '{source}' was pulled but the engine does not list it; run again with --debug "
                             "and report it")
        try:
            tag_image(client, pulled.id, ref)
        finally:
            # The mcr name is the one amldebug and the user know; a mirror's name this pull
            # made would only be a second tag to remove.
            if not had_source:
                _untag(client, source)
    image = _get_image(client, source if "@" in ref else ref, what)
    if image is None:
        raise ImageError(f"{what} '{ref}' was pulled but the engine does not list it; run again with --debug and "
                         "report it")
    took = time.monotonic() - started
    report(f"  pulled {what} '{ref}' in {took:.1f} s" + (f" ({down / 1e6:.1f} MB downloaded)" if down else ""))
    return image


def _untag(client: docker.DockerClient, name: str) -> None:
    try:
        client.api.remove_image(name, noprune=True)
    except (docker.errors.DockerException, requests.RequestException):
        pass  # a second name left behind is harmless


class _PullFailed(Exception):
    """The engine reported an error in the middle of a pull's stream."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# Layer states the engine repeats while it works (with a byte count); any other status is a
# change of state, reported as it comes.
_BUSY = {"Downloading", "Extracting", "Verifying Checksum", "Waiting"}


def _follow_pull(chunks, report, *, every: float = 1.0, clock=time.monotonic) -> int:
    """Report a pull's stream (docker's JSON messages): each layer's change of state as a
    line, a layer's progress at most every ``every`` seconds. Returns the bytes downloaded;
    raises _PullFailed on an error message."""
    states: dict[str, str] = {}
    sizes: dict[str, tuple[int, int]] = {}
    last = clock()
    for chunk in chunks:
        if chunk.get("error") or chunk.get("errorDetail"):
            raise _PullFailed(chunk.get("error") or chunk["errorDetail"].get("message", "unknown error"))
        status, layer = chunk.get("status", ""), chunk.get("id", "")
        if not status:
            continue
        detail = chunk.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            sizes[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        if not layer or status.startswith(("Pulling from", "Digest:", "Status:")):
            report(f"  {status}")
            continue
        if states.get(layer) != status:
            states[layer] = status
            if status == "Download complete" and layer in sizes:
                sizes[layer] = (sizes[layer][1], sizes[layer][1])
            if status not in ("Waiting", "Verifying Checksum"):
                report(f"  {layer}: {status}")
            continue
        now = clock() if status in _BUSY else last
        if now - last >= every:
            last = now
            current, total = detail.get("current", 0), detail.get("total", 0)
            if total:
                report(f"  {layer}: {status} {100 * current // total}% of {total / 1e6:.1f} MB")
    return sum(total for _, total in sizes.values())


def _pull_error(ref: str, source: str, via: str, what: str, hint: str, text: str, mirror: Optional[str]) -> ImageError:
    """The message for a pull that failed: the image, the registry tried (the mirror, and the
    setting, when one is set), the cause in a few words, and what to do."""
    reason, kind = _pull_cause(text, source)
    if source != ref:
        mirror_host = via.split()[0]
        todo = {"connection refused": ["start the mirror", f"fix {MIRROR_SETTING}"],
                "no such host": [f"fix {MIRROR_SETTING}"],
                "timeout": ["check that the mirror is reachable from here", f"fix {MIRROR_SETTING}"],
                "not found": [f"copy the image to the mirror as '{source}'", f"fix {MIRROR_SETTING}"],
                "auth": [f"log in to the mirror ('docker login {mirror_host}')", f"fix {MIRROR_SETTING}"],
                "tls": [f"trust the mirror's certificate (or list {mirror_host} in the engine's insecure-registries)",
                        f"fix {MIRROR_SETTING}"]}.get(kind, ["check the mirror", f"fix {MIRROR_SETTING}"])
    else:
        todo = {"not found": ["check the image's name and tag"],
                "auth": [f"log in ('docker login {via}')"]}.get(kind, [])
        if ref.lower().startswith(MCR + "/"):
            todo.append(f"set {MIRROR_SETTING}=host:port to a registry that mirrors {MCR} (a corporate mirror)")
        elif mirror:
            via += f" ({MIRROR_SETTING} stands for {MCR} only)"
    todo.append(f"pull the image yourself ('docker pull {ref}')")
    if hint:
        todo.append(hint.removeprefix("or ").strip())
    tail = ", ".join(todo[:-1]) + (", or " if len(todo) > 1 else "") + todo[-1]
    return ImageError(f"cannot pull {what} '{ref}' from {via}: {reason}; {tail}")


def _pull_cause(text: str, source: str) -> tuple[str, str]:
    """(the cause of a failed pull in a few words, its kind) from the engine's message."""
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused", "connection refused"
    if "no such host" in lowered or "server misbehaving" in lowered or "name resolution" in lowered:
        host = re.search(r"lookup (\S+?)(?: on |: |$)", text)
        return f"no such host ({host.group(1) if host else _registry_of(source)} does not resolve)", "no such host"
    if "timeout" in lowered or "deadline exceeded" in lowered or "timed out" in lowered:
        return "timed out", "timeout"
    if "x509" in lowered or "tls" in lowered or "certificate" in lowered or "http response to https" in lowered:
        return f"TLS: {_last_part(text)}", "tls"
    if "manifest unknown" in lowered or "not found" in lowered or "does not exist" in lowered:
        return f"no such image there ({_last_part(text).rsplit(': ', 1)[-1]})", "not found"
    if any(word in lowered for word in ("unauthorized", "denied", "authentication required", "auth credentials")):
        return f"not authorized ({_last_part(text)})", "auth"
    return _last_part(text), ""


def _last_part(text: str) -> str:
    """The engine's message without its wrapping ('Get "https://h/v2/": dial tcp h: connect: x' -> 'x')."""
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    first = re.sub(r'^(?:Get|Head|Post|Put|Patch) "[^"]*": ', "", first)
    first = re.sub(r"^dial tcp \S*: (?:connect: )?", "", first)
    return first[:200]


def find_image_by_label(client: docker.DockerClient, label: str):
    """An image labelled ``label`` ("key=value"), or None."""
    try:
        found = client.images.list(filters={"label": label})
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"cannot list images: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, "listing images") from None
    return found[0] if found else None


def build_image_from_context(client: docker.DockerClient, context_tar, progress, *, network: bool = False) -> str:
    """Build an untagged image from the tar file object ``context_tar`` with no network
    (nothing pulled, no network inside the build unless ``network``); pass each output line to
    ``progress`` and return the image id."""
    image_id = None
    try:
        stream = client.api.build(fileobj=context_tar, custom_context=True, rm=True, forcerm=True, pull=False,
                                  network_mode="default" if network else "none", decode=True)
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")
                raise ImageError(f"docker build failed: {detail.strip()}")
            text = chunk.get("stream", "")
            for line in text.splitlines():
                if line.strip():
                    progress(f"  docker: {line.rstrip()}")
            if "Successfully built " in text and not image_id:  # the legacy builder's last line
                image_id = (text.split("Successfully built ", 1)[1].split() or [None])[0]
            aux = chunk.get("aux") or {}
            if aux.get("ID"):
                image_id = aux["ID"]
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ImageError(f"docker build failed: {_short(exc)}") from None
    if not image_id:
        raise ImageError("docker build ended without an image id; run again with --debug and report it")
    return image_id


def tag_image(client: docker.DockerClient, image_id: str, name: str) -> None:
    """Tag ``image_id`` as ``name`` ("repository" or "repository:tag"), moving the tag
    from the image that had it."""
    repo, tag = docker.utils.parse_repository_tag(name)
    try:
        if not client.api.tag(image_id, repo, tag or "latest", force=True):
            raise ImageError(f"could not tag image {image_id[:19]} as '{name}'")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ImageError(f"could not tag image {image_id[:19]} as '{name}': {_short(exc)}") from None


def remove_image(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image (its tags too), ignoring one that is already gone."""
    try:
        client.images.remove(image_id, force=True)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot remove image {image_id[:19]}: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"removing image {image_id[:19]}") from None


def containers_labelled(client: docker.DockerClient, label: str) -> list:
    """Every container, running or not, labelled ``label`` ("key=value")."""
    try:
        return client.containers.list(all=True, filters={"label": label})
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"cannot list containers: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, "listing containers") from None


def image_of(container):
    """The image ``container`` was created from, or None when it was removed since."""
    try:
        return container.image
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot read the image of container {container.name}: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise _engine_gone(exc, f"reading the image of container {container.name}") from None


def build_dockerfile(client: docker.DockerClient, context: Path, dockerfile: Path, tag: str, progress) -> str:
    """``docker build -t TAG -f DOCKERFILE CONTEXT`` with the local engine (a v2
    environment's build context, as the v2 local endpoint builds it): base images come
    from the engine (pulled if it can), the build has the host's network. Each output line
    goes to ``progress``; returns the image id."""
    image_id = None
    try:
        stream = client.api.build(path=str(context), dockerfile=str(dockerfile.relative_to(context))
                                  if dockerfile.is_relative_to(context) else str(dockerfile),
                                  tag=tag, rm=True, forcerm=True, decode=True,
                                  labels={LABEL_KIND: "context-build"})
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")
                raise ImageError(f"docker build of {dockerfile} failed: {detail.strip()}; fix the Dockerfile, or "
                                 "pass --image with an image built another way")
            for line in chunk.get("stream", "").splitlines():
                if line.strip():
                    progress(f"  docker: {line.rstrip()}")
            image_id = (chunk.get("aux") or {}).get("ID") or image_id
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ImageError(f"docker build of {dockerfile} failed: {_short(exc)}; check it with 'docker build -f "
                         f"{dockerfile} {context}'") from None
    return image_id or tag
