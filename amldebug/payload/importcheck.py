"""Run in a throwaway container: import the entry script as the scoring server would
(without calling init()), and say whether it worked."""

import importlib.util
import os
import sys
import traceback

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
print("AMLDEBUG-IMPORT-OK")
