"""Run in the service's container: resolve a model the way Model.get_model_path(NAME)
does, and list what is under azureml-models/. Prints one JSON object."""

import json
import logging
import os
import sys

name = sys.argv[1]
root = os.environ.get("AML_APP_ROOT", "/var/azureml-app")
models = os.path.join(root, "azureml-models")
result = {"name": name, "app_root": root, "path": None, "error": None, "via": None, "tree": []}

try:
    from azureml.core.model import Model  # the real thing, when the image has azureml-core

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    result["via"] = "azureml-core Model.get_model_path"
    try:
        result["path"] = Model.get_model_path(name)
    except Exception as exc:  # noqa: BLE001 - the message is what the user needs
        result["error"] = str(exc)
except ImportError:
    # azureml-core's lookup: the highest version folder, which must hold one entry;
    # otherwise ./<name> in the working directory.
    result["via"] = "the lookup of Model.get_model_path (azureml-core is not in the image)"
    base = os.path.join(models, name)
    if os.path.isdir(base):
        versions = [v for v in os.listdir(base) if v.isdigit()]
        if versions:
            folder = os.path.join(base, max(versions, key=int))
            entries = os.listdir(folder)
            if len(entries) == 1:
                result["path"] = os.path.join(folder, entries[0])
            else:
                result["error"] = "Dir %s can contain only 1 file or folder. Found %s" % (folder, entries)
        else:
            result["error"] = "no version folder under %s" % base
    elif os.path.exists(name):
        result["path"] = os.path.abspath(name)
    else:
        result["error"] = "Model %s not found in cache at %s or in current working directory %s." % (
            name, base, os.getcwd())

for top, dirs, files in os.walk(models):
    dirs.sort()
    for entry in sorted(dirs) + sorted(files):
        result["tree"].append(os.path.relpath(os.path.join(top, entry), root))
        if len(result["tree"]) >= 200:
            break
print(json.dumps(result))
