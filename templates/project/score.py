"""Azure ML entry script: init() loads the model once, run() scores each request.

The model is a linear model stored as JSON (model/model.json), so this script needs
nothing beyond the standard library and runs in any image that serves Azure ML models.
"""

import json
import logging
import os

model = None


def init():
    """Called once when the server starts: load the model into memory."""
    global model
    # Azure ML sets AZUREML_MODEL_DIR to the registered model's version folder
    # (azureml-models/<model name>/<version>); the model folder "model/" sits inside it,
    # where Model.get_model_path("model") also finds it.
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; start the service with 'amldebug attach', "
                           "which places model/ as a registered model (see amldebug.json)")
    model_path = os.path.join(model_dir, "model", "model.json")
    with open(model_path, encoding="utf-8") as f:
        weights = json.load(f)
    coefficients = [float(c) for c in weights["coefficients"]]
    intercept = float(weights["intercept"])
    model = {"coefficients": coefficients, "intercept": intercept}
    logging.info("loaded a linear model with %d coefficients from %s", len(coefficients), model_path)


def predict(row):
    """The model's prediction for one row of features."""
    total = model["intercept"]
    for weight, value in zip(model["coefficients"], row):
        total += weight * value
    return total


def run(raw_data):
    """Called for each request: {"data": [[feature, ...], ...]} -> {"predictions": [...]}."""
    data = json.loads(raw_data)["data"]
    predictions = []
    for number, row in enumerate(data):
        if len(row) != len(model["coefficients"]):
            raise ValueError(f"row {number} has {len(row)} features; the model expects "
                             f"{len(model['coefficients'])}")
        prediction = predict(row)
        predictions.append(prediction)
    return {"predictions": predictions}
