"""The gunicorn master's set-up, then the hand-over to the image's own ``azmlinfsrv``.

Puts the debugpy copy that amldebug mounted beside the payload on sys.path, makes gunicorn
keep the master alive when a worker fails to boot (so the next save can recover and the
debug session survives), starts debugpy in this process -- the gunicorn master -- with
subprocess support so forked workers are debuggable, optionally waits for a client, then
runs the server in this process. Settings come from AMLDEBUG_* variables (common/protocol.py).
"""

import os
import runpy
import sys

from .. import ROOT
from ..common import protocol
from ..common.protocol import Status
from ..common.state import say, write_state
from ..worker import boot
from . import arbiter, control, inbox


def start_debugger():
    port = int(os.environ.get(protocol.ENV_DEBUG_PORT) or protocol.DEFAULT_DEBUG_PORT)
    host = os.environ.get(protocol.ENV_DEBUG_HOST, protocol.DEFAULT_DEBUG_HOST)
    lib = os.path.join(ROOT, protocol.DEBUGPY_LIB, protocol.debugpy_tag(*sys.version_info[:2]))
    if os.path.isdir(lib):
        sys.path.insert(0, lib)
    import debugpy

    debugpy.listen((host, port))
    write_state(Status.LISTENING)
    say("debugger listening on port %d" % port)
    # While a user connects VS Code, load the server's dependencies (untraced, since no
    # client is attached yet), so the worker boots quickly once they are.
    preimport()
    if os.environ.get(protocol.ENV_WAIT, protocol.ON) == protocol.ON:
        write_state(Status.WAITING)
        say("waiting for a debugger to attach before init()")
        debugpy.wait_for_client()
        write_state(Status.ATTACHED)
        say("debugger attached")


# The scoring server's own dependencies, imported once in the master so that each worker
# gunicorn forks (at start and at every reload) finds them loaded: this is most of a
# worker's boot time. Only third-party modules without configuration side effects; the
# server's config and the user's code are still imported fresh in every worker.
PREIMPORT = (
    "flask", "flask_cors", "werkzeug", "pydantic", "pydantic_settings", "inference_schema.schema_util",
    "opentelemetry.sdk.trace", "opentelemetry.sdk._logs", "opentelemetry.sdk.resources",
    "azure.monitor.opentelemetry.exporter", "azureml_inference_server_http.server",
)


def preimport():
    if os.environ.get(protocol.ENV_PREIMPORT, protocol.ON) != protocol.ON:
        return
    import importlib

    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def bind_scoring_host(host):
    """The server binds 0.0.0.0 (right inside a container, whose port amldebug publishes on
    127.0.0.1 only); as a local process it must bind the loopback interface itself."""
    if not host:
        return
    import azureml_inference_server_http.amlserver as amlserver

    amlserver.DEFAULT_HOST = host


def quiet_extra_keys_warning():
    """azmlinfsrv's config check compares variable NAMES with field names, so every variable
    it supports (AML_APP_ROOT, AZUREML_SOURCE_DIRECTORY, ...: Azure ML sets them too) is
    reported as an "extra key" at each worker boot. Drop that warning when it lists only
    such names (a config file with truly unknown keys keeps it), and say so once."""
    import logging

    class Filter(logging.Filter):
        def filter(self, record):
            message = record.getMessage()
            if "Found extra keys in the config file" not in message:
                return True
            # Logged while the config module runs; its alias table is defined by then.
            config = sys.modules.get("azureml_inference_server_http.server.config")
            known = set(getattr(config, "alias_mapping", ()))
            listed = message.split("Extra keys = ", 1)[-1].strip("[] \n")
            names = [name.strip(" '\"") for name in listed.split(",") if name.strip()]
            return not names or not set(names) <= known

    logging.getLogger("azmlinfsrv").addFilter(Filter())
    say("hiding the server's 'Found extra keys in the config file' warning: azmlinfsrv compares the names "
        "of the variables it supports with its own field names and lists them all")


def main(argv):
    """Set up the master and run the server; ``argv``: the server's arguments."""
    server = os.environ.get(protocol.ENV_SERVER) or protocol.DEFAULT_SERVER
    write_state(Status.STARTING)
    arbiter.install()
    boot.install()  # the workers' hooks: installed here, run after each fork
    quiet_extra_keys_warning()
    control.start(arbiter.wakeup)
    inbox.start()
    if os.environ.get(protocol.ENV_DEBUG_PORT):
        start_debugger()
    else:
        preimport()
    bind_scoring_host(os.environ.get(protocol.ENV_SERVER_HOST))
    sys.argv = [server] + list(argv)
    runpy.run_path(server, run_name="__main__")
