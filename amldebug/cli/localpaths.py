"""Container paths in what amldebug prints, as local files: a traceback from the container
names ``/var/azureml-app/<code>/score.py``; printed as the local file, a terminal or VS Code
opens it with a click."""

from __future__ import annotations

import re
from typing import Callable, Sequence

from ..core.options import Runtime
from ..core.spec import ServiceSpec, layout

# A mapped path ends where a name part ends: '/', a quote, ':' (file:line), a space... anything
# but a letter, a digit, '_', '.' or '-' ("/var/azureml-app/sample2" is another folder).
_PART_END = r"(?![\w.-])"


def container_to_local(spec: ServiceSpec) -> list[tuple[str, str]]:
    """(container path, local path) for what a container service has mounted: the code
    folder and every model, longest container path first. None in the process runtime (its
    paths are local already)."""
    if spec.runtime != Runtime.CONTAINER:
        return []
    lay = layout(spec)
    pairs = [(lay.code_dir, spec.source_dir)] + [(inside, host) for host, inside in lay.model_mounts]
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def map_paths(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``text`` with each container path of ``pairs`` (and what is under it) replaced by
    its local path; a path that only starts like one (``/var/azureml-app/sample2``) is kept."""
    if not pairs:
        return text
    pattern = re.compile("|".join(f"({re.escape(remote.rstrip('/'))}){_PART_END}" for remote, _ in pairs))
    local = [lp.rstrip("/") for _, lp in pairs]
    return pattern.sub(lambda m: local[m.lastindex - 1], text)


def local_path_mapper(spec: ServiceSpec) -> Callable[[str], str]:
    """A function that maps one printed line of ``spec``'s service to local paths."""
    pairs = container_to_local(spec)
    return lambda line: map_paths(line, pairs)
