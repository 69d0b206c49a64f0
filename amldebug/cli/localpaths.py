"""Container paths in what amldebug prints, as local files: a traceback from the container
names ``/var/azureml-app/<code>/score.py``; printed as the local file, a terminal or VS Code
opens it with a click."""

from __future__ import annotations

import re
from typing import Callable, Sequence

from ..core.spec import ServiceSpec
from ..engine.backend import runtime_of

# A mapped path ends where a name part ends: '/', a quote, ':' (file:line), a space... anything
# but a letter, a digit, '_', '.' or '-' ("/var/azureml-app/sample2" is another folder).
_PART_END = r"(?![\w.-])"


def container_to_local(spec: ServiceSpec) -> list[tuple[str, str]]:
    """(path the server sees, local path) for what its runtime places elsewhere (a
    container's mounts: the code folder and every model), longest first; none where its
    paths are local already (the process runtime)."""
    return list(runtime_of(spec).local_paths(spec))


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
