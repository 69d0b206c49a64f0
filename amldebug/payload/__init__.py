"""amldebug's payload: the code that runs inside the scoring server, in the IMAGE's Python
(3.8 to 3.13), mounted read-only at /opt/amldebug (or run from amldebug's cache by the
process runtime). Split by the process it runs in, as debugpy splits launcher/adapter/server:

* ``launch.py``: the entry the host starts; makes this folder the package
  ``amldebug_payload`` (by path: nothing of ours goes on sys.path, where a user's ``common``
  or ``master`` package could meet ours) and hands over to ``master``.
* ``master/``: the gunicorn master (the server's first process): gunicorn's hooks, the warm
  standby, the control pipe, the inbox relay, the HTTP 503 responder, debugpy's listener.
* ``worker/``: a worker gunicorn forks: its boot (the standby's gate, the entry script's
  module noted, failures kept), the hot patcher and the patch itself.
* ``common/``: what both use; ``common/protocol.py`` is the wire to the host, which imports it.
* ``probe.py``, ``importcheck.py``, ``modelpath.py``, ``azmlinfsrv_shim.py``: scripts the host
  runs on their own.

The host imports only ``common.protocol`` from here (tests/unit/test_layers.py checks it).
"""

import os

ROOT = os.path.dirname(os.path.abspath(__file__))
