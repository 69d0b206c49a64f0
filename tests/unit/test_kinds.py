"""One module decides an input file's kind (sources/kinds.py): every reader, --env, --deployment
and check agree on it."""

import pytest

from amldebug.sources.kinds import Kind, kind_of, v2_name

SCHEMAS = "https://azuremlschemas.azureedge.net/latest"


@pytest.mark.parametrize("name, text, kind", [
    ("requirements.txt", "six\n", Kind.REQUIREMENTS),
    ("requirements.txt", "dependencies:\n  - six\n", Kind.REQUIREMENTS),  # .txt is pip's, whatever it says
    ("requirements.in", "six\n", Kind.REQUIREMENTS),
    ("environment", "name: x\ndependencies:\n  - pip\n", Kind.CONDA),  # no suffix: by its dependencies key
    ("conda.yml", "dependencies:\n  - pip\n", Kind.CONDA),
    ("conda.yaml", "name: x\nchannels: [conda-forge]\ndependencies: [numpy]\n", Kind.CONDA),
    ("conda.yml", "", Kind.CONDA),  # its reader says what it lacks
    ("inferenceconfig.json", '{"entryScript": "score.py"}', Kind.V1_INFERENCE),
    ("ic.yml", "entryScript: score.py\n", Kind.V1_INFERENCE),
    ("azureml_environment.json", '{"python": {}}', Kind.V1_ENVIRONMENT),
    ("other.json", '{"name": "x"}', Kind.V1_ENVIRONMENT),  # its reader names the keys it lacks
    ("env.yaml", "python:\n  userManagedDependencies: false\n", Kind.V1_ENVIRONMENT),
    ("env.yaml", "environmentVariables:\n  A: b\n", Kind.V1_ENVIRONMENT),
    ("blue.yml", f"$schema: {SCHEMAS}/managedOnlineDeployment.schema.json\nname: blue\n", Kind.V2_DEPLOYMENT),
    ("k8s.yml", f"$schema: {SCHEMAS}/kubernetesOnlineDeployment.schema.json\n", Kind.V2_DEPLOYMENT),
    ("blue.yml", "name: blue\nendpoint_name: e\nmodel: azureml:m:1\n", Kind.V2_DEPLOYMENT),
    ("blue.yml", "code_configuration:\n  code: src\n", Kind.V2_DEPLOYMENT),
    ("env.yml", f"$schema: {SCHEMAS}/environment.schema.json\nimage: x\n", Kind.V2_ENVIRONMENT),
    ("env.yml", "name: e\nimage: x\nconda_file: conda.yml\n", Kind.V2_ENVIRONMENT),
    ("env.yml", "image: x\ndependencies:\n  - pip\n", Kind.CONDA),  # a conda file that names an image
    ("endpoint.yml", f"$schema: {SCHEMAS}/managedOnlineEndpoint.schema.json\nname: e\n", Kind.V2_OTHER),
    ("model.yml", f"$schema: {SCHEMAS}/model.schema.json\n", Kind.V2_OTHER),
    ("other.yml", "$schema: https://json.schemastore.org/other.json\ndependencies: []\n", Kind.CONDA),
])
def test_kind_of(tmp_path, name, text, kind):
    path = tmp_path / name
    path.write_text(text)
    assert kind_of(path) is kind
    assert kind_of(tmp_path / "elsewhere" / name, text) is kind  # the text, when read already
    assert kind.is_azureml == kind.name.startswith(("V1_", "V2_")) and kind.is_v2 == kind.name.startswith("V2_")


def test_v2_names_for_messages(tmp_path):
    names = {"endpoint.yml": f"$schema: {SCHEMAS}/managedOnlineEndpoint.schema.json\n",
             "batch.yml": f"$schema: {SCHEMAS}/batchDeployment.schema.json\n",
             "blue.yml": f"$schema: {SCHEMAS}/managedOnlineDeployment.schema.json\n",
             "conda.yml": "dependencies: []\n", "ic.json": '{"entryScript": "score.py"}'}
    for name, text in names.items():
        (tmp_path / name).write_text(text)
    assert {name: v2_name(tmp_path / name) for name in names} == {
        "endpoint.yml": "managed online endpoint", "batch.yml": "batch deployment", "blue.yml": "deployment",
        "conda.yml": None, "ic.json": None}


def test_unreadable_or_missing_files_are_judged_by_their_name(tmp_path):
    bad = b"\x81\x8d\x90\x9d\xfd"  # neither UTF-8 nor a code page amldebug detects
    for name in ("ic.json", "conda.yml", "requirements.txt", "environment"):
        (tmp_path / name).write_bytes(bad)
    assert [kind_of(tmp_path / name) for name in ("ic.json", "conda.yml", "requirements.txt", "environment")] == [
        Kind.V1_INFERENCE, Kind.CONDA, Kind.REQUIREMENTS, Kind.REQUIREMENTS]
    assert kind_of(tmp_path / "missing.yml") is Kind.CONDA and v2_name(tmp_path / "missing.yml") is None


def test_files_saved_on_windows_are_judged_by_their_text(tmp_path):
    path = tmp_path / "deployment.yml"
    path.write_bytes(f"# 推論\r\n$schema: {SCHEMAS}/managedOnlineDeployment.schema.json\r\n".encode("cp932"))
    assert kind_of(path) is Kind.V2_DEPLOYMENT
    path = tmp_path / "ic.yml"
    path.write_bytes("# modèle\r\nentryScript: score.py\r\n".encode("utf-16"))
    assert kind_of(path) is Kind.V1_INFERENCE
