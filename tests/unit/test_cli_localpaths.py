"""Container paths in printed logs become local files (a click in a terminal or VS Code opens them)."""

from amldebug.cli.localpaths import container_to_local, local_path_mapper, map_paths
from amldebug.core.options import Runtime
from amldebug.core.spec import ServiceSpec

PAIRS = [("/var/azureml-app/azureml-models/clf/1/model.pkl", "/home/u/models/model.pkl"),
         ("/var/azureml-app/sample", "/home/u/ws/sample")]


def test_a_traceback_line_names_the_local_file():
    line = '  File "/var/azureml-app/sample/mypkg/features.py", line 4, in scale_all'
    assert map_paths(line, PAIRS) == '  File "/home/u/ws/sample/mypkg/features.py", line 4, in scale_all'


def test_a_path_that_only_starts_like_the_code_folder_is_kept():
    text = "/var/azureml-app/sample2/score.py and /var/azureml-app/samples"
    assert map_paths(text, PAIRS) == text


def test_the_folder_itself_the_model_and_file_line_forms():
    text = ("cd /var/azureml-app/sample; /var/azureml-app/sample/score.py:12: error: x; "
            "open('/var/azureml-app/azureml-models/clf/1/model.pkl')")
    assert map_paths(text, PAIRS) == ("cd /home/u/ws/sample; /home/u/ws/sample/score.py:12: error: x; "
                                      "open('/home/u/models/model.pkl')")


def test_the_pairs_come_from_the_container_layout(tmp_path):
    (tmp_path / "sample").mkdir()
    model = tmp_path / "models" / "clf.pkl"
    model.parent.mkdir()
    model.write_text("x")
    spec = ServiceSpec(name="clf", source_dir=str(tmp_path / "sample"), entry_script="score.py", image="score:1",
                       model_dir=str(model), model_name="clf", model_version="3")
    assert dict(container_to_local(spec)) == {
        "/var/azureml-app/sample": str(tmp_path / "sample"),
        "/var/azureml-app/azureml-models/clf/3/clf.pkl": str(model)}
    local = local_path_mapper(spec)
    assert local('File "/var/azureml-app/sample/score.py", line 3') == f'File "{tmp_path}/sample/score.py", line 3'
    process = spec.replace(runtime=Runtime.PROCESS)
    assert container_to_local(process) == [] and local_path_mapper(process)("/var/azureml-app/sample") == \
        "/var/azureml-app/sample"


def test_every_model_of_several_is_mapped(tmp_path):
    (tmp_path / "sample").mkdir()
    first, second = tmp_path / "a.pkl", tmp_path / "b"
    first.write_text("x")
    second.mkdir()
    spec = ServiceSpec(name="two", source_dir=str(tmp_path / "sample"), entry_script="score.py", image="score:1",
                       model_dir=str(first), model_name="first", model_version="1",
                       extra_models=((str(second), "second", "3"),))
    local = local_path_mapper(spec)
    assert local("/var/azureml-app/azureml-models/second/3/b/w.json") == f"{second}/w.json"
    assert local("/var/azureml-app/azureml-models/first/1/a.pkl") == str(first)
