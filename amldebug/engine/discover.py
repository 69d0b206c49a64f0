"""Which image to run when none was named (contract C2): a local image that has the
scoring server (the newest of those that show a sign of it first), checked as ``attach``
probes an image; otherwise the process runtime.

So F5 in a project that ``amldebug init`` made, or ``amldebug demo``, starts something
on a machine that has a scoring image, and says which image it picked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from ..core.options import Runtime
from ..core.images import candidates
from ..core.paths import cache_root
from ..core.progress import Progress, notice, stage
from ..core.spec import ServiceSpec
from . import docker as engine
from ..errors import AmlDebugError, DockerUnavailableError, ImageError, UsageError
from . import inject

# How many images to probe at most in one look (each probe of a new image runs a container
# once; its answer is cached by image id, a "no" as well, so a later look goes further).
MAX_PROBES = 8

# A probe that did not answer in time (a large image on a busy engine) is not tried again for
# a day: every 'attach' without --image would wait for it.
PROBE_TIMEOUT = 20
NO_ANSWER_SECONDS = 24 * 3600


def _no_server_mark(image) -> Path:
    return cache_root() / "probes" / (image.id.replace(":", "-") + ".noserver")


def _no_answer_mark(image) -> Path:
    return cache_root() / "probes" / (image.id.replace(":", "-") + ".noanswer")


def _known_not_to_serve(image) -> bool:
    if _no_server_mark(image).exists():
        return True
    try:
        return time.time() - _no_answer_mark(image).stat().st_mtime < NO_ANSWER_SECONDS
    except OSError:
        return False


def _mark(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _build_history(image) -> list[str]:
    try:
        return [str(layer.get("CreatedBy") or "") for layer in image.history()]
    except Exception:  # noqa: BLE001 - only a hint is at stake
        return []


def find_scoring_image(client, progress: Progress) -> Optional[str]:
    """A local image with azmlinfsrv (its first tag), checked with the probe that ``attach``
    runs, in the order of :func:`candidates`; None when there is none."""
    stage(progress, "looking for a local image with azmlinfsrv")
    try:
        images = client.images.list()
    except Exception as exc:  # noqa: BLE001 - the engine's own error, as ours
        raise DockerUnavailableError(f"cannot list the local images: {str(exc)[:200]}") from None
    payload = inject.payload_dir()
    unknown = [image for image in images if image.tags and not _known_not_to_serve(image)]
    for image in candidates(unknown, _build_history)[:MAX_PROBES]:
        try:
            engine.probe_image(client, image, payload, cache_root(), timeout=PROBE_TIMEOUT)
        except ImageError:  # no server, no Python, no /bin/sh: remember (an image never changes), look further
            _mark(_no_server_mark(image))
        except AmlDebugError:  # no answer in time: not a 'no', but not worth waiting for on every look
            _mark(_no_answer_mark(image))
        else:
            return image.tags[0]
    return None


def with_local_image(spec: ServiceSpec, progress: Progress) -> ServiceSpec:
    """``spec`` (container runtime, no image) with the image found, or in the process
    runtime when no engine answers or no local image has azmlinfsrv; says which, and why."""
    try:
        client = engine.connect()
    except DockerUnavailableError as exc:
        notice(progress, f"amldebug: no --image given and {str(exc).split(';')[0]}; using the process runtime "
                 "(this machine's Python)")
        return spec.replace(runtime=Runtime.PROCESS, image_found=True)
    ref = find_scoring_image(client, progress)
    if ref is None:
        notice(progress, "amldebug: no --image given and no local image has azmlinfsrv; using the process runtime "
                 "(this machine's Python). Pass --image, or make one with 'amldebug build'")
        return spec.replace(runtime=Runtime.PROCESS, image_found=True)
    notice(progress, f"amldebug: no --image given; using '{ref}', a local image with azmlinfsrv (the newest of "
             "those that show it; pass --image to choose another)")
    return spec.replace(image=ref, image_found=True)


def choose_runtime(requested: Optional[Runtime], image: Optional[str],
                   progress: Progress) -> tuple[Runtime, Optional[str], str]:
    """(runtime, image, why) for ``amldebug demo``: the one ``--runtime`` asked for; else the
    container when an engine answers and a scoring image is here (``image``, else the newest
    local one with azmlinfsrv), else the process runtime. ``--runtime container`` with no
    image to be found is a UsageError."""
    if requested == Runtime.PROCESS:
        return requested, None, "asked for with --runtime"
    if requested == Runtime.CONTAINER and image:
        return requested, image, "asked for with --runtime"
    chosen, image, why = _found_runtime(image, progress)
    if requested == Runtime.CONTAINER and chosen != requested:
        raise UsageError(f"--runtime container: {why}")
    return chosen, image, why


def _found_runtime(image: Optional[str], progress: Progress) -> tuple[Runtime, Optional[str], str]:
    try:
        client = engine.connect()
    except DockerUnavailableError as exc:
        return Runtime.PROCESS, None, f"{str(exc).split(';')[0]}"
    if image:
        engine.get_image(client, image)  # a named image that is not here is an error, not a fallback
        return Runtime.CONTAINER, image, f"image '{image}' is present"
    found = find_scoring_image(client, progress)
    if found is None:
        return Runtime.PROCESS, None, ("a Docker engine answers, but no local image has azmlinfsrv (pass --image, "
                                       "or make one with 'amldebug build')")
    return Runtime.CONTAINER, found, f"image '{found}' has azmlinfsrv (the newest local image that shows it)"
