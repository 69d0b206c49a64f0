"""Run in a throwaway container: import the entry script as the scoring server would
(without calling init()), and say whether it worked."""

import importlib.util
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == HERE:
    del sys.path[0]  # the user's code must not find our packages (common, master, worker)
_spec = importlib.util.spec_from_file_location("amldebug_protocol", os.path.join(HERE, "common", "protocol.py"))
protocol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protocol)

root = os.environ.get("AML_APP_ROOT", "/var/azureml-app")
sys.path.append(root)
if os.environ.get("AZUREML_SOURCE_DIRECTORY"):
    sys.path.append(os.path.join(root, os.environ["AZUREML_SOURCE_DIRECTORY"]))
path = os.path.join(root, os.environ["AZUREML_ENTRY_SCRIPT"])
try:
    spec = importlib.util.spec_from_file_location("entry_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except BaseException:
    traceback.print_exc()
    sys.exit(3)
print(protocol.IMPORT_OK)
