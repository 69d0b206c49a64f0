"""amldebug's launcher: runs as PID 1 of a debug container (or as the process runtime's
server), in the IMAGE's Python, before the scoring server: ``python launch.py <server args>``.

It makes this folder the package ``amldebug_payload`` and runs the master's set-up
(master/main.py), which hands over to the image's own ``azmlinfsrv`` in this process. The
folder is loaded by path, not put on sys.path: the user's code must not find a ``common`` or
``master`` of ours. Kept free of anything newer than Python 3.8: it runs in whatever Python
the image has.
"""

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "amldebug_payload"


def load_payload():
    """The payload folder as the package ``amldebug_payload`` (once per process)."""
    package = sys.modules.get(PACKAGE)
    if package is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location(PACKAGE, os.path.join(HERE, "__init__.py"),
                                                      submodule_search_locations=[HERE])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return package


def module(name):
    """A module of the payload, e.g. ``module("common.protocol")``."""
    load_payload()
    return importlib.import_module("%s.%s" % (PACKAGE, name))


def main():
    # Python put this folder first on sys.path (it runs this file); the user's code must not
    # find our packages there, so nothing is imported from it but by path.
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == HERE:
        del sys.path[0]
    module("master.main").main(sys.argv[1:])


if __name__ == "__main__":
    main()
