"""launch.json / tasks.json as the user sees them on disk after amldebug writes them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amldebug.errors import ConfigFileError, ConfigLockError
from amldebug.vscode import (
    build_attach_config,
    build_task,
    config_name,
    folder_lock,
    lock_path,
    merge_entry,
    parse_jsonc,
    write_config_files,
)
from amldebug.vscode.entries import PROBLEM_REGEXP
from tests.support.vscode_edit import remove_config, remove_entry, write_config_file

LAUNCH = dict(array_key="configurations", id_key="name", skeleton={"version": "0.2.0", "configurations": []})

# What a user typically has: comments everywhere, their own launch config, trailing commas.
USER_LAUNCH = """\
{
    // Use IntelliSense to learn about possible attributes.
    "version": "0.2.0",
    /* block comment
       over two lines */
    "configurations": [
        {
            "name": "Python: Current File", // inline comment in another entry
            "type": "python",
            "request": "launch",
            "program": "${file}",
            "url": "http://x/*y", /* comment after a // look-alike string */
        },
        // comment inside the array, after the last entry
    ],
}
"""
USER_PYTHON_ENTRY = USER_LAUNCH[USER_LAUNCH.index("        {") : USER_LAUNCH.index("        },") + len("        },")]


def attach(port: int = 5678, service: str = "score") -> dict:
    return build_attach_config(
        name=service, port=port, local_root="${workspaceFolder}/src", remote_root="/var/azureml-app"
    )


def no_temp_files(folder: Path) -> bool:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


@pytest.fixture
def launch_json(tmp_path: Path) -> Path:
    path = tmp_path / ".vscode" / "launch.json"
    path.parent.mkdir()
    path.write_bytes(USER_LAUNCH.encode())
    return path


# --- building entries -------------------------------------------------------


def test_attach_config_is_a_debugpy_attach_entry_found_by_its_name():
    config = build_attach_config(name="score", port=5679, local_root="/src", remote_root="/var/azureml-app")

    assert config == {
        "name": "amldebug: score",
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": "localhost", "port": 5679},
        "pathMappings": [{"localRoot": "/src", "remoteRoot": "/var/azureml-app"}],
        "justMyCode": True,
    }
    assert config_name("score") == config["name"]


def test_attach_config_carries_tasks_and_options_only_when_given():
    config = build_attach_config(
        name="s", port=1, local_root="a", remote_root="b", host="10.0.0.2", just_my_code=False,
        pre_launch_task="amldebug: up s", post_debug_task="amldebug: down s",
    )

    assert config["connect"] == {"host": "10.0.0.2", "port": 1}
    assert config["justMyCode"] is False
    assert config["preLaunchTask"] == "amldebug: up s"
    assert config["postDebugTask"] == "amldebug: down s"


def test_background_task_uses_vscode_problem_matcher_schema():
    task = build_task(label="amldebug: up score", command="amldebug", args=["up", "score"],
                      begins_pattern="^starting", ends_pattern="^ready")

    assert task["label"] == "amldebug: up score"
    assert (task["type"], task["command"], task["args"]) == ("shell", "amldebug", ["up", "score"])
    assert task["isBackground"] is True
    assert task["options"] == {"cwd": "${workspaceFolder}", "env": {"AMLDEBUG_PROGRESS": "plain"}}
    matcher = task["problemMatcher"]
    assert matcher["owner"] == "amldebug"
    assert matcher["background"] == {"activeOnStart": True, "beginsPattern": "^starting", "endsPattern": "^ready"}
    assert matcher["pattern"] == {"regexp": PROBLEM_REGEXP, "file": 1, "line": 2, "severity": 3, "message": 4}


# --- parse_jsonc -------------------------------------------------------------


def test_parse_jsonc_reads_comments_and_trailing_commas_like_vscode():
    assert parse_jsonc(USER_LAUNCH) == {
        "version": "0.2.0",
        "configurations": [
            {"name": "Python: Current File", "type": "python", "request": "launch", "program": "${file}",
             "url": "http://x/*y"},
        ],
    }


def test_slashes_inside_strings_are_not_comments():
    text = '{"url": "http://x/*y", "b": "a//b", "c": "*/", "d": "\\"//"}'

    assert parse_jsonc(text) == {"url": "http://x/*y", "b": "a//b", "c": "*/", "d": '"//'}


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('{"configurations": [ {"name": "x",, } ]}', ":1:35:", "property name"),
        ('{\n  "a": "unterminated\n}', ":2:8:", "unterminated string"),
        ('{\n  "a": 1 /* never closed\n}', ":2:10:", "unterminated /* comment"),
        ("[1,,2]", ":1:4:", "expected a value"),
        ("[,]", ":1:2:", "expected a value"),
        ("{,}", ":1:2:", "property name"),
        ('{"a" 1}', ":1:6:", "':'"),
        ("{'a': 1}", ":1:2:", "property name"),
        ('{"a": 1}}', ":1:9:", "after the end"),
        ('{"a": 1 "b": 2}', ":1:9:", "expected ','"),
        ('{"a": tru}', ":1:7:", "expected a value"),
        ("[01]", ":1:3:", "expected ','"),
        ('["\\x"]', ":1:3:", "invalid escape"),
        ('["tab\there"]', ":1:6:", "control character"),
        ('{"a": [1, 2}', ":1:12:", "expected ','"),
        ("", ":1:1:", "end of the file"),
        ("// only a comment\n", ":2:1:", "end of the file"),
        ("[" * 500, ":1:", "nesting"),
        ("[" + "1" * 5000 + "]", ":1:2:", "number too long"),
    ],
)
def test_invalid_jsonc_names_source_line_and_column(text, where, what):
    with pytest.raises(ConfigFileError) as caught:
        parse_jsonc(text, "launch.json")

    message = str(caught.value)
    assert message.startswith("launch.json" + where), message
    assert what in message
    assert message.endswith("fix the file or move it aside and run again")


# --- writing launch.json -------------------------------------------------------


def test_new_file_is_skeleton_plus_entry(tmp_path):
    path = tmp_path / "project" / ".vscode" / "launch.json"

    assert write_config_file(path, attach(), kind="launch") == path

    text = path.read_text()
    assert json.loads(text) == {"version": "0.2.0", "configurations": [attach()]}
    assert text.startswith('{\n    "version": "0.2.0",\n    "configurations": [\n        {\n')
    assert no_temp_files(path.parent)


def test_merge_keeps_every_user_byte_and_adds_the_entry(launch_json):
    write_config_file(launch_json, attach(), kind="launch")

    text = launch_json.read_text()
    # Everything up to the user's last comment and from the closing bracket on is untouched.
    head = USER_LAUNCH[: USER_LAUNCH.index("\n    ],")]
    assert text.startswith(head)
    assert text.endswith("\n    ],\n}\n")
    assert text.count("// Use IntelliSense") == text.count("/* block comment\n       over two lines */") == 1
    assert USER_PYTHON_ENTRY in text
    parsed = parse_jsonc(text)
    assert parsed["version"] == "0.2.0"
    assert [c["name"] for c in parsed["configurations"]] == ["Python: Current File", "amldebug: score"]
    assert parsed["configurations"][1] == attach()


def test_merging_twice_replaces_the_entry_and_changes_the_port(launch_json):
    write_config_file(launch_json, attach(port=5678), kind="launch")
    write_config_file(launch_json, attach(port=6000), kind="launch")

    text = launch_json.read_text()
    configs = parse_jsonc(text)["configurations"]
    assert [c["name"] for c in configs] == ["Python: Current File", "amldebug: score"]
    assert configs[1]["connect"]["port"] == 6000
    assert text.count('"amldebug: score"') == 1
    assert USER_PYTHON_ENTRY in text


def test_replacement_stays_where_the_entry_was(tmp_path):
    path = tmp_path / "launch.json"
    path.write_text(
        '{\n  "configurations": [\n    {"name": "amldebug: score", "old": true}, // mine\n'
        '    {"name": "after"}\n  ]\n}\n'
    )

    write_config_file(path, attach(port=7000), kind="launch")

    text = path.read_text()
    assert [c["name"] for c in parse_jsonc(text)["configurations"]] == ["amldebug: score", "after"]
    assert parse_jsonc(text)["configurations"][0] == {**attach(port=7000), "old": True}  # the user's key stays
    assert '    {"name": "amldebug: score", "old": true, "type": "debugpy", ' in text  # still one line
    assert "}, // mine\n" in text
    assert text.endswith('    {"name": "after"}\n  ]\n}\n')


def test_other_services_entries_are_kept(launch_json):
    write_config_file(launch_json, attach(service="a"), kind="launch")
    write_config_file(launch_json, attach(service="b"), kind="launch")

    names = [c["name"] for c in parse_jsonc(launch_json.read_text())["configurations"]]
    assert names == ["Python: Current File", "amldebug: a", "amldebug: b"]


@pytest.mark.parametrize(
    "original",
    [
        '{\n\t"configurations": [\n\t\t{"name": "x"}\n\t]\n}\n',
        '{\n  "configurations": [\n    {"name": "x"} // last\n  ]\n}',
        '\ufeff{\n  "configurations": [\n    {"name": "x"},\n  ]\n}',
        '{\n  "configurations": [\n    1, "two", null, {"label": "not a config"}\n  ]\n}',
    ],
)
def test_merge_then_remove_restores_the_users_text_exactly(original):
    merged = merge_entry(original, attach(), **LAUNCH)

    assert parse_jsonc(merged)["configurations"][-1] == attach()
    restored = remove_entry(merged, array_key="configurations", id_key="name", id_value=config_name("score"))
    assert restored == original


@pytest.mark.parametrize(
    ("original", "kept", "after_removal"),
    [
        ('{"configurations": []}', "{", {"configurations": []}),
        ('{"version": "0.2.0", "configurations": [{"name": "x"}]}', '[{"name": "x"}',
         {"version": "0.2.0", "configurations": [{"name": "x"}]}),
        ('{\n  "configurations": [\n    /* nothing yet */\n  ]\n}', "/* nothing yet */", {"configurations": []}),
        ("{}", "{", {"configurations": []}),
        ('{\n  "version": "0.2.0", // no configurations key\n}', "// no configurations key",
         {"version": "0.2.0", "configurations": []}),
        ("// just a comment", "// just a comment", {"version": "0.2.0", "configurations": []}),
    ],
)
def test_merge_into_empty_or_inline_layouts_then_remove(original, kept, after_removal):
    merged = merge_entry(original, attach(), **LAUNCH)

    assert attach() in parse_jsonc(merged)["configurations"]
    assert merged.startswith(original[: original.index(kept) + len(kept)])
    restored = remove_entry(merged, array_key="configurations", id_key="name", id_value=config_name("score"))
    assert parse_jsonc(restored) == after_removal
    assert kept in restored


def test_entry_in_an_inline_array_gets_its_own_lines():
    merged = merge_entry('{"configurations": []}', attach(), **LAUNCH)

    assert merged == '{"configurations": [\n    ' + json.dumps(attach(), indent=4).replace("\n", "\n    ") + "\n]}"


def test_duplicate_array_key_updates_the_one_vscode_reads():
    merged = merge_entry('{"configurations": [{"name": "a"}], "configurations": []}', attach(), **LAUNCH)

    assert parse_jsonc(merged)["configurations"] == [attach()]
    assert merged.startswith('{"configurations": [{"name": "a"}], "configurations": [')


def test_crlf_files_stay_crlf(tmp_path):
    path = tmp_path / "launch.json"
    original = USER_LAUNCH.replace("\n", "\r\n").encode()
    path.write_bytes(original)

    write_config_file(path, attach(), kind="launch")

    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert data.startswith(original[: original.index(b"\r\n    ],")])
    assert attach() in parse_jsonc(data.decode())["configurations"]


def test_missing_array_key_is_added_keeping_the_rest(tmp_path):
    path = tmp_path / "launch.json"
    path.write_text('{\n    "version": "0.2.0", // keep me\n    "compounds": []\n}\n')

    write_config_file(path, attach(), kind="launch")

    text = path.read_text()
    assert text.startswith('{\n    "version": "0.2.0", // keep me\n    "compounds": [],\n    "configurations": [\n')
    assert parse_jsonc(text) == {"version": "0.2.0", "compounds": [], "configurations": [attach()]}


@pytest.mark.parametrize(
    "broken",
    [
        '{\n    "version": "0.2.0",\n    "configurations": [ {"name": "x",, } ]\n}\n',
        '{\n    "version": "0.2.0",\n    "configurations": [ {"name": "x } ]\n}\n',
    ],
)
def test_file_vscode_rejects_raises_and_is_left_byte_identical(tmp_path, broken):
    path = tmp_path / "launch.json"
    path.write_bytes(broken.encode())

    with pytest.raises(ConfigFileError) as caught:
        write_config_file(path, attach(), kind="launch")

    assert f"{path}:3:" in str(caught.value)
    assert path.read_bytes() == broken.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["launch.json"]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ('[{"name": "x"}]', "top level to be an object, found an array"),
        ('{"configurations": "oops"}', '"configurations" must be an array, found a string'),
        ('{"configurations": {"name": "x"}}', '"configurations" must be an array, found an object'),
    ],
)
def test_wrong_shapes_name_the_file_and_key_and_leave_it_alone(tmp_path, content, what):
    path = tmp_path / "launch.json"
    path.write_text(content)

    with pytest.raises(ConfigFileError) as caught:
        write_config_file(path, attach(), kind="launch")

    assert str(path) in str(caught.value)
    assert what in str(caught.value)
    assert path.read_text() == content


def test_strings_that_look_like_comments_survive_a_merge(tmp_path):
    path = tmp_path / "launch.json"
    content = '{"configurations": [{"name": "web", "url": "http://x/*y", "note": "a // b */"}]}'
    path.write_text(content)

    write_config_file(path, attach(), kind="launch")

    configs = parse_jsonc(path.read_text())["configurations"]
    assert configs[0] == {"name": "web", "url": "http://x/*y", "note": "a // b */"}
    assert path.read_text().startswith(content[:-2])


def test_non_utf8_file_is_a_config_error_naming_the_line(tmp_path):
    path = tmp_path / "launch.json"
    path.write_bytes(b'{\n  "name": "caf\xe9"\n}')

    with pytest.raises(ConfigFileError, match=r"launch\.json:2: the file is not UTF-8"):
        write_config_file(path, attach(), kind="launch")


# --- removing ---------------------------------------------------------------


def test_remove_entry_keeps_other_entries_and_comments(launch_json):
    write_config_file(launch_json, attach(service="a"), kind="launch")
    write_config_file(launch_json, attach(service="b"), kind="launch")

    assert remove_config(launch_json, kind="launch", id_value=config_name("a")) is True

    text = launch_json.read_text()
    assert [c["name"] for c in parse_jsonc(text)["configurations"]] == ["Python: Current File", "amldebug: b"]
    assert USER_PYTHON_ENTRY in text
    assert "// comment inside the array, after the last entry\n" in text
    assert remove_config(launch_json, kind="launch", id_value=config_name("b")) is True
    assert launch_json.read_text() == USER_LAUNCH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[\n  {"name": "a"},\n  {"name": "me"},\n  {"name": "c"}\n]', '[\n  {"name": "a"},\n  {"name": "c"}\n]'),
        ('[\n  {"name": "a"},\n  {"name": "me"}\n]', '[\n  {"name": "a"}\n]'),
        ('[\n  {"name": "a"}, // a\n  {"name": "me"}\n]', '[\n  {"name": "a"} // a\n]'),
        ('[{"name": "me"}]', "[]"),
        ('[{"name": "a"}, {"name": "me"}]', '[{"name": "a"}]'),
        ('[\r\n  {"name": "a"},\r\n  {"name": "me"},\r\n  {"name": "c"}\r\n]',
         '[\r\n  {"name": "a"},\r\n  {"name": "c"}\r\n]'),
        ('[{"name": "a"}, {"name": "me"}, {"name": "c"},]', '[{"name": "a"}, {"name": "c"},]'),
    ],
)
def test_remove_entry_takes_its_separating_comma(text, expected):
    document = '{"configurations": ' + text + "}"

    result = remove_entry(document, array_key="configurations", id_key="name", id_value="me")

    assert result == '{"configurations": ' + expected + "}"


def test_remove_entry_leaves_text_unchanged_when_absent():
    assert remove_entry(USER_LAUNCH, array_key="configurations", id_key="name", id_value="nope") == USER_LAUNCH
    assert remove_entry("{}", array_key="configurations", id_key="name", id_value="nope") == "{}"


def test_remove_config_without_a_file_is_a_no_op(tmp_path):
    path = tmp_path / ".vscode" / "launch.json"

    assert remove_config(path, kind="launch", id_value=config_name("score")) is False
    assert not path.parent.exists()


# --- atomic writes ------------------------------------------------------------


def test_failed_replace_leaves_original_and_no_temp_file(launch_json, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)

    with pytest.raises(ConfigFileError, match="Permission denied"):
        write_config_file(launch_json, attach(), kind="launch")

    assert launch_json.read_text() == USER_LAUNCH
    assert sorted(p.name for p in launch_json.parent.iterdir()) == ["launch.json"]


def test_rewrite_keeps_the_file_mode(launch_json):
    launch_json.chmod(0o640)

    write_config_file(launch_json, attach(), kind="launch")

    assert stat.S_IMODE(launch_json.stat().st_mode) == 0o640
    assert sorted(p.name for p in launch_json.parent.iterdir()) == ["launch.json"]


def test_unchanged_content_is_not_rewritten(launch_json):
    write_config_file(launch_json, attach(), kind="launch")
    os.utime(launch_json, ns=(0, 0))

    write_config_file(launch_json, attach(), kind="launch")

    assert launch_json.stat().st_mtime_ns == 0


def test_symlinked_file_is_updated_through_the_link(tmp_path):
    real = tmp_path / "dotfiles" / "launch.json"
    real.parent.mkdir()
    real.write_text(USER_LAUNCH)
    link = tmp_path / "launch.json"
    link.symlink_to(real)

    write_config_file(link, attach(), kind="launch")

    assert link.is_symlink()
    assert attach() in parse_jsonc(real.read_text())["configurations"]


# --- tasks.json -----------------------------------------------------------------


def test_tasks_kind_uses_label_and_version_2(tmp_path):
    path = tmp_path / ".vscode" / "tasks.json"
    up = build_task(label="amldebug: up score", command="amldebug", args=["up"], begins_pattern="b", ends_pattern="e")
    down = build_task(label="amldebug: down score", command="amldebug", args=["down"], begins_pattern="b",
                      ends_pattern="e")

    write_config_file(path, up, kind="tasks")
    write_config_file(path, down, kind="tasks")
    write_config_file(path, {**up, "args": ["up", "--debug-port", "6000"]}, kind="tasks")

    parsed = parse_jsonc(path.read_text())
    assert parsed["version"] == "2.0.0"
    assert [t["label"] for t in parsed["tasks"]] == ["amldebug: up score", "amldebug: down score"]
    assert parsed["tasks"][0]["args"] == ["up", "--debug-port", "6000"]
    assert remove_config(path, kind="tasks", id_value="amldebug: down score") is True
    assert [t["label"] for t in parse_jsonc(path.read_text())["tasks"]] == ["amldebug: up score"]
    assert no_temp_files(path.parent)


# --- keys a user adds to amldebug's own entries ---------------------------------

USER_KEYS_LAUNCH = """\
{
    "version": "0.2.0",
    "configurations": [
        {
            "name": "amldebug: score",
            "type": "debugpy",
            "request": "attach",
            // the user's own settings, kept across rewrites
            "redirectOutput": true,
            "env": {"MY_FLAG": "1"}, /* why: see the wiki */
            "connect": {
                "host": "localhost",
                "port": 5678
            },
            "pathMappings": [{"localRoot": "${workspaceFolder}/src", "remoteRoot": "/var/azureml-app"}],
            "justMyCode": true,
            "postDebugTask": "amldebug: down score"
        }
    ]
}
"""


def test_rewrite_keeps_user_keys_and_comments_in_amldebugs_entry_and_updates_its_own(tmp_path):
    path = tmp_path / "launch.json"
    path.write_text(USER_KEYS_LAUNCH)

    write_config_file(path, attach(port=6000), kind="launch")

    text = path.read_text()
    [config] = parse_jsonc(text)["configurations"]
    assert config["redirectOutput"] is True and config["env"] == {"MY_FLAG": "1"}
    assert config["connect"] == {"host": "localhost", "port": 6000}  # amldebug's key: updated
    assert "postDebugTask" not in config  # amldebug wrote it and no longer does
    assert {k: v for k, v in config.items() if k not in ("redirectOutput", "env")} == attach(port=6000)
    assert '            // the user\'s own settings, kept across rewrites\n' in text
    assert '"env": {"MY_FLAG": "1"}, /* why: see the wiki */\n' in text
    assert '"port": 6000\n' in text and "5678" not in text


def test_a_users_own_task_reference_in_amldebugs_entry_is_kept(tmp_path):
    path = tmp_path / "launch.json"
    path.write_text(USER_KEYS_LAUNCH.replace('"amldebug: down score"', '"my cleanup"'))

    write_config_file(path, attach(), kind="launch")

    [config] = parse_jsonc(path.read_text())["configurations"]
    assert config["postDebugTask"] == "my cleanup"


def test_rewrite_keeps_user_keys_of_amldebugs_task_including_nested_options(tmp_path):
    path = tmp_path / "tasks.json"
    task = build_task(label="amldebug: score", command="python", args=["-m", "amldebug", "attach"],
                      begins_pattern="b", ends_pattern="e")
    write_config_file(path, task, kind="tasks")
    text = path.read_text()
    # What a user adds by hand: an env for the task, a presentation, a dependency, a comment.
    text = text.replace('"AMLDEBUG_PROGRESS": "plain"', '"AMLDEBUG_PROGRESS": "plain",\n'
                        '                    "AZURE_TENANT": "t" // for the bridge')
    text = text.replace('"isBackground": true,', '"isBackground": true,\n            "dependsOn": "build",\n'
                        '            "presentation": {"reveal": "silent"},')
    path.write_text(text)

    write_config_file(path, {**task, "args": ["-m", "amldebug", "attach", "--port", "6000"]}, kind="tasks")

    text = path.read_text()
    [written] = parse_jsonc(text)["tasks"]
    assert written["args"][-2:] == ["--port", "6000"]
    assert written["options"] == {"cwd": "${workspaceFolder}", "env": {"AMLDEBUG_PROGRESS": "plain", "AZURE_TENANT": "t"}}
    assert written["dependsOn"] == "build" and written["presentation"] == {"reveal": "silent"}
    assert '"AZURE_TENANT": "t" // for the bridge\n' in text
    assert written["problemMatcher"] == task["problemMatcher"]


def test_rewrite_with_nothing_new_keeps_the_users_text_byte_for_byte():
    entry = {**attach(), "postDebugTask": "amldebug: down score"}

    assert merge_entry(USER_KEYS_LAUNCH, entry, **LAUNCH) == USER_KEYS_LAUNCH


# --- symlinks -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["launch.json", "tasks.json"])
def test_a_dangling_symlink_is_refused_naming_the_link_its_target_and_the_fix(tmp_path, name):
    folder = tmp_path / "ws" / ".vscode"
    folder.mkdir(parents=True)
    (folder / name).symlink_to("../../elsewhere/" + name)
    entries = {"launch": [attach()], "tasks": [build_task(label="amldebug: score", command="c", args=[],
                                                          begins_pattern="b", ends_pattern="e")]}

    with pytest.raises(ConfigFileError) as caught:
        write_config_files(folder, entries, lock_dir=tmp_path / "locks")

    message = str(caught.value)
    assert f"'{folder / name}' is a symbolic link to '../../elsewhere/{name}'" in message
    assert f"'{tmp_path / 'elsewhere' / name}'" in message and "does not exist" in message
    assert "Remove the link, or make it point at an existing file" in message
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in folder.iterdir()) == [name]  # the other file was not written either


def test_a_symlink_loop_is_refused(tmp_path):
    path = tmp_path / "launch.json"
    path.symlink_to(path)

    with pytest.raises(ConfigFileError, match="loop of symbolic links"):
        write_config_file(path, attach(), kind="launch")


# --- the workspace lock ---------------------------------------------------------


def test_write_config_files_writes_tasks_and_launch_and_leaves_no_lock_in_the_folder(tmp_path):
    folder, locks = tmp_path / ".vscode", tmp_path / "cache" / "locks"
    task = build_task(label="amldebug: score", command="c", args=[], begins_pattern="b", ends_pattern="e")

    written = write_config_files(folder, {"tasks": [task], "launch": [attach()]}, lock_dir=locks)

    assert written == [folder / "tasks.json", folder / "launch.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["launch.json", "tasks.json"]
    assert [p.name for p in locks.iterdir()] == [lock_path(folder, locks).name]


def test_a_lock_held_too_long_is_an_error_naming_the_folder_and_the_holder(tmp_path):
    folder, locks = tmp_path / ".vscode", tmp_path / "locks"

    with folder_lock(folder, locks):  # another run holds it (flock excludes even within a process)
        with pytest.raises(ConfigLockError) as caught:
            write_config_files(folder, {"launch": [attach()]}, lock_dir=locks, timeout=0.2)

    message = str(caught.value)
    assert message.startswith(f"{folder}: another amldebug run (process {os.getpid()}) has been writing")
    assert "more than 0.2 s" in message and "wait for it to finish" in message
    assert not folder.exists()
    write_config_files(folder, {"launch": [attach()]}, lock_dir=locks, timeout=0.2)  # released
    assert (folder / "launch.json").is_file()


def test_the_lock_is_the_same_whichever_path_leads_to_the_folder(tmp_path):
    (tmp_path / "real" / ".vscode").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")

    assert lock_path(tmp_path / "alias" / ".vscode", tmp_path) == lock_path(tmp_path / "real" / ".vscode", tmp_path)
    assert lock_path(tmp_path / "other" / ".vscode", tmp_path) != lock_path(tmp_path / "real" / ".vscode", tmp_path)


def _task_args(spec):
    from amldebug.core.options import task_argv
    from amldebug.vscode.entries import task_options

    return task_argv(task_options(spec))


def test_a_discovered_image_is_not_pinned_in_the_f5_task(tmp_path):
    """F5 in an 'amldebug init' project: attach found a local image (here one amldebug built
    for another project) or fell back to the process runtime. The task must discover again,
    not build the project's watched requirements.txt on a base image that is not here, nor
    pin the process runtime."""
    from amldebug.core.options import Runtime
    from amldebug.core.spec import ServiceSpec

    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(d):\n    return d\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    found = ServiceSpec(name="proj", source_dir=str(tmp_path), entry_script="score.py", workspace=str(tmp_path),
                        image="amldebug-env:0123456789abcdef", env_file=str(tmp_path / "requirements.txt"),
                        base_image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference",
                        image_found=True)
    args = _task_args(found)
    for flag in ("--image", "--env-file", "--base-image", "--runtime"):
        assert flag not in args, args
    fallback = found.replace(image=None, env_file=None, base_image=None, runtime=Runtime.PROCESS)
    assert "--runtime" not in _task_args(fallback)
    chosen = found.replace(image_found=False)  # the same image chosen by the user's files is rebuilt by F5
    assert "--env-file" in _task_args(chosen)
    # the marker survives the label a service is found by later (amldebug vscode, status)
    assert ServiceSpec.from_label(found.to_label()).image_found is True
