"""Stands in for the azmlinfsrv console script when an environment lacks it."""

import sys

from azureml_inference_server_http.amlserver import run

if __name__ == "__main__":
    sys.exit(run())
