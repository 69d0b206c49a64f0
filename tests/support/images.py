"""Images the tests derive from a local one: a Dockerfile of FROM/ENV/LABEL/RUN lines, built
offline (no pull, no network in the build)."""

from __future__ import annotations

import io
import tarfile


def build_from_dockerfile(client, dockerfile: str, tag: str):
    """Build ``dockerfile`` (its only file is the Dockerfile) as ``tag``; the image."""
    data = dockerfile.encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, pull=False, network_mode="none",
                                   rm=True, forcerm=True)
    return image
