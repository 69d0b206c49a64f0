"""Which image to run when none was named (contract C2): the newest local image that has
the scoring server, checked as ``attach`` probes an image; otherwise the process runtime.

So F5 in a project that ``amldebug init`` made, or ``amldebug demo``, starts something
on a machine that has a scoring image, and says which image it picked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..core.options import Runtime
from ..core.paths import cache_root
from ..core.progress import Progress, stage
from ..core.spec import ServiceSpec
from ..engine import docker as engine
from ..errors import AmlDebugError, DockerUnavailableError, ImageError
from . import inject

# How many likely images to probe at most (each probe of a new image runs a container once;
# its answer is cached by image id, a "no" as well).
MAX_PROBES = 8

# Signs in an image's configuration that it may serve a scoring script: Azure ML's inference
# images (runsvdir, AML_APP_ROOT), images whose command is the server, amldebug's own builds.
_HINTS = ("azmlinfsrv", "azureml", "aml_app_root", "runsvdir", "inference", "amldebug-env")


def _created(image) -> str:
    return str(image.attrs.get("Created") or "")


def _looks_like_scoring_image(image) -> bool:
    config = image.attrs.get("Config") or {}
    words = [*image.tags, *(config.get("Cmd") or []), *(config.get("Entrypoint") or []), *(config.get("Env") or []),
             *(f"{k}={v}" for k, v in (config.get("Labels") or {}).items())]
    text = " ".join(str(w) for w in words).lower()
    return any(hint in text for hint in _HINTS)


def _no_server_mark(image) -> Path:
    return cache_root() / "probes" / (image.id.replace(":", "-") + ".noserver")


def candidates(images: list) -> list:
    """Tagged images that may serve a scoring script, newest first (a pure ordering of what
    the engine listed)."""
    tagged = [i for i in images if i.tags and _looks_like_scoring_image(i)]
    return sorted(tagged, key=_created, reverse=True)


def find_scoring_image(client, progress: Progress) -> Optional[str]:
    """The newest local image with azmlinfsrv (its first tag), checked with the probe that
    ``attach`` runs; None when there is none."""
    stage(progress, "looking for a local image with azmlinfsrv")
    try:
        images = client.images.list()
    except Exception as exc:  # noqa: BLE001 - the engine's own error, as ours
        raise DockerUnavailableError(f"cannot list the local images: {str(exc)[:200]}") from None
    payload = inject.payload_dir()
    for image in candidates(images)[:MAX_PROBES]:
        if _no_server_mark(image).exists():
            continue
        try:
            engine.probe_image(client, image, payload, cache_root())
        except ImageError:  # no server, no Python, no /bin/sh: remember (an image never changes), look further
            mark = _no_server_mark(image)
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except AmlDebugError:  # the engine was slow or went away: not an answer about the image
            continue
        else:
            return image.tags[0]
    return None


def with_local_image(spec: ServiceSpec, progress: Progress) -> ServiceSpec:
    """``spec`` (container runtime, no image) with the image found, or in the process
    runtime when no engine answers or no local image has azmlinfsrv; says which, and why."""
    try:
        client = engine.connect()
    except DockerUnavailableError as exc:
        progress(f"amldebug: no --image given and {str(exc).split(';')[0]}; using the process runtime "
                 "(this machine's Python)")
        return spec.replace(runtime=Runtime.PROCESS, image_found=True)
    ref = find_scoring_image(client, progress)
    if ref is None:
        progress("amldebug: no --image given and no local image has azmlinfsrv; using the process runtime "
                 "(this machine's Python). Pass --image, or make one with 'amldebug build'")
        return spec.replace(runtime=Runtime.PROCESS, image_found=True)
    progress(f"amldebug: no --image given; using '{ref}', the newest local image with azmlinfsrv "
             "(pass --image to choose another)")
    return spec.replace(image=ref, image_found=True)
