"""Run in the image's Python by amldebug to learn what it needs to inject the debugger."""

import importlib.util
import json
import os
import platform
import sys

_spec = importlib.util.spec_from_file_location(
    "amldebug_protocol", os.path.join(os.path.dirname(os.path.abspath(__file__)), "common", "protocol.py"))
protocol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protocol)

info = {
    "python": sys.executable,
    "version": "%d.%d" % sys.version_info[:2],
    "machine": platform.machine(),
    "server": os.environ.get(protocol.ENV_SERVER, ""),
    # The image's user: the state folder amldebug mounts must be writable by it.
    "uid": os.getuid(),
    "gid": os.getgid(),
}
try:
    from importlib import metadata
except ImportError:  # Python < 3.8
    metadata = None
for dist in ("azureml-inference-server-http", "gunicorn", "azureml-core", "debugpy"):
    try:
        info[dist] = metadata.version(dist) if metadata else "unknown"
    except Exception:
        info[dist] = None
print(json.dumps(info))
