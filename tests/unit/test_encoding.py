"""Environment files as users save them (sources/encoding.py, read through sources.read_environment):
a BOM, a coding line, Windows code pages, CRLF; what is not UTF-8 is named in the environment's notes."""

import codecs

import pytest

from amldebug.errors import UsageError
from amldebug.sources import read_environment, read_setup
from amldebug.sources.encoding import DecodeError, decode
from amldebug.sources.envfile import Reader

WESTERN = "# Paquets nécessaires (café, naïve) : coût 5 €\nsix==1.16.0\nidna\n"
JAPANESE = "# 必要なパッケージ\nsix==1.16.0  # 互換性のため\nidna\n"


@pytest.mark.parametrize("bom, codec, name", [
    (codecs.BOM_UTF8, "utf-8", None),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),  # begins with the UTF-16 LE mark: not read as UTF-16
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
])
def test_a_byte_order_mark_decides(tmp_path, bom, codec, name):
    path = tmp_path / "requirements.txt"
    path.write_bytes(bom + WESTERN.encode(codec))

    env = read_environment(path)

    assert env.pip == ("six==1.16.0", "idna")
    if name is None:
        assert env.notes == ()
    else:
        assert env.notes == (f"'{path}' read as {name} (not UTF-8; by its byte order mark)",)


def test_a_coding_line_decides(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(("# -*- coding: cp1252 -*-\n" + WESTERN).encode("cp1252"))

    env = read_environment(path)

    assert env.pip == ("six==1.16.0", "idna")
    assert env.notes == (f"'{path}' read as cp1252 (not UTF-8; as its coding line says)",)
    assert decode(("#!/bin/sh\n# vim: set fileencoding=shift_jis :\n" + JAPANESE).encode("shift_jis")).encoding \
        == "shift_jis"  # the second line counts too, as in pip


def test_cp1252_is_detected_and_named(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(WESTERN.encode("cp1252"))

    env = read_environment(path)

    assert env.pip == ("six==1.16.0", "idna")
    assert env.notes == (f"'{path}' read as cp1252 (not UTF-8; guessed; a first line "
                         "'# -*- coding: cp1252 -*-' makes it certain)",)
    assert decode(WESTERN.encode("cp1252")).text == WESTERN


def test_shift_jis_is_detected_and_named(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(JAPANESE.encode("cp932"))

    env = read_environment(path)

    assert env.pip == ("six==1.16.0", "idna")
    assert env.notes == (f"'{path}' read as cp932 (Shift-JIS) (not UTF-8; guessed; a first line "
                         "'# -*- coding: cp932 -*-' makes it certain)",)
    assert decode(JAPANESE.encode("cp932")).text == JAPANESE


@pytest.mark.parametrize("text, codec, expected", [
    ("# Abhängigkeiten für das Modell, Größe\nsix\n", "cp1252", "cp1252"),
    ("# Übersicht\nsix\n", "cp1252", "cp1252"),  # 'Ü' is a half-width katakana in Shift-JIS: a tie, cp1252's
    ("# Dependencias del modelo: año, niño\nsix\n", "cp1252", "cp1252"),
    ("# モデルの依存関係です。\nnumpy==1.26.4  # 数値計算\n", "cp932", "cp932"),
    ("# ｻﾝﾌﾟﾙ 半角カナ\nsix\n", "cp932", "cp932"),
    ("# 機械学習\nsix\n", "cp932", "cp932"),
])
def test_the_code_page_that_reads_as_text_wins(text, codec, expected):
    decoded = decode(text.encode(codec))
    assert (decoded.encoding, decoded.how, decoded.text) == (expected, "detected", text)


def test_utf8_comes_before_the_locale_and_a_single_byte_locale_reads_the_rest():
    assert decode(WESTERN.encode("utf-8"), preferred="latin-1").encoding == "utf-8"
    decoded = decode(WESTERN.replace(" €", "").encode("latin-1"), preferred="ISO-8859-1")
    assert (decoded.encoding, decoded.how) == ("iso8859-1", "locale")
    assert decoded.note("r.txt") == "'r.txt' read as iso8859-1 (not UTF-8; the locale's encoding)"


def test_crlf_requirements_and_continuations(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"# comment\r\nsix==1.16.0 \\\r\n    --hash=sha256:abc\r\nidna\r\n")

    env = read_environment(path)

    assert env.pip == ("six==1.16.0 --hash=sha256:abc", "idna")
    assert env.notes == ()


def test_crlf_and_cp1252_conda_files(tmp_path):
    path = tmp_path / "conda.yml"
    text = ("name: modèle\r\nchannels:\r\n  - conda-forge\r\ndependencies:\r\n  - python=3.11\r\n"
            "  - numpy=1.26  # café\r\n  - pip:\r\n    - six==1.16.0\r\n")
    path.write_bytes(text.encode("cp1252"))

    env = read_environment(path)

    assert (env.conda, env.pip, env.channels) == (("python=3.11", "numpy=1.26"), ("six==1.16.0",), ("conda-forge",))
    assert env.notes == (f"'{path}' read as cp1252 (not UTF-8; guessed; a first line "
                         "'# -*- coding: cp1252 -*-' makes it certain)",)


def test_crlf_and_shift_jis_v2_environment_and_its_conda_file(tmp_path):
    conda = tmp_path / "conda.yaml"
    conda.write_bytes("# 推論用の環境\r\ndependencies:\r\n  - python=3.11\r\n  - pip:\r\n    - six\r\n".encode("cp932"))
    environment = tmp_path / "environment.yml"
    environment.write_bytes("$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\r\n"
                            "name: 推論\r\nimage: mcr.microsoft.com/azureml/minimal-py311-inference:latest\r\n"
                            "conda_file: conda.yaml\r\n".encode("cp932"))

    setup = read_setup(environment)

    assert setup.base_image == "mcr.microsoft.com/azureml/minimal-py311-inference:latest"
    assert setup.environment.pip == ("six",)
    assert setup.notes[0].startswith(f"'{environment}' read as cp932 (Shift-JIS)")
    assert setup.environment.notes[0].startswith(f"'{conda}' read as cp932 (Shift-JIS)")
    assert read_environment(environment).pip == ("six",)


def test_crlf_v2_deployment(tmp_path):
    from amldebug.sources.deployment import read_deployment

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n")
    (tmp_path / "model.pkl").write_bytes(b"0")
    (tmp_path / "conda.yml").write_bytes(b"dependencies:\r\n  - pip:\r\n    - six\r\n")
    path = tmp_path / "deployment.yml"
    path.write_bytes(b"$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\r\n"
                     b"name: blue\r\nendpoint_name: e\r\nmodel:\r\n  path: model.pkl\r\ncode_configuration:\r\n"
                     b"  code: src\r\n  scoring_script: score.py\r\nenvironment:\r\n  image: base:1\r\n"
                     b"  conda_file: conda.yml\r\n")

    setup = read_deployment(path)

    assert (setup.name, setup.entry_script, setup.environment.pip, setup.notes) == ("blue", "score.py", ("six",), ())


def test_an_included_file_is_named_once(tmp_path):
    (tmp_path / "base.txt").write_bytes("# café\nidna\n".encode("cp1252"))
    path = tmp_path / "requirements.txt"
    path.write_bytes("-r base.txt\n# naïve\nsix\n".encode("cp1252"))

    env = read_environment(path)

    assert env.pip == ("idna", "six")
    assert [note.split(" read as ")[0] for note in env.notes] == [f"'{path}'", f"'{tmp_path / 'base.txt'}'"]


def test_what_no_encoding_reads_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"six\n# \x81\x8d\x90\x9d\xfd\n")

    with pytest.raises(UsageError) as caught:
        read_environment(path)

    assert str(caught.value) == (f"{path}:2: byte 0x81 is not UTF-8, and the text reads as neither cp1252 nor "
                                 "cp932; save the file as UTF-8, or name its encoding in a first line "
                                 "'# -*- coding: NAME -*-'")


def test_a_wrong_or_unknown_coding_line_is_refused_with_its_line():
    with pytest.raises(DecodeError) as caught:
        decode("# coding: ascii\nsix  # café\n".encode("utf-8"))
    assert caught.value.line == 2 and "not ascii text, although its coding line says so" in str(caught.value)
    with pytest.raises(DecodeError) as caught:
        decode(b"#!/bin/sh\n# coding: klingon\nsix\n")
    assert caught.value.line == 2 and "names 'klingon', which is not an encoding Python knows" in str(caught.value)


def test_the_reader_keeps_utf8_files_unnoted(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text(JAPANESE, encoding="utf-8")
    reader = Reader()
    reader.read_file(path)
    assert (reader.lines, reader.notes) == (["six==1.16.0", "idna"], [])


def test_check_reads_a_cp1252_file(tmp_path):
    from amldebug.check import check_environment

    path = tmp_path / "requirements.txt"
    path.write_bytes("# café\nazureml-inference-server-http\n".encode("cp1252"))
    assert check_environment(path).ok


def test_an_inference_configuration_written_by_windows_powershell_is_read(tmp_path):
    """Windows PowerShell 5's '>' and Out-File write UTF-16 LE with a BOM."""
    from amldebug.sources.azureml import read_inference_config

    (tmp_path / "score.py").write_text("def init():\n    pass\n")
    (tmp_path / "env.yml").write_bytes(b"dependencies:\r\n  - pip:\r\n    - six\r\n")
    path = tmp_path / "inferenceconfig.json"
    path.write_bytes(codecs.BOM_UTF16_LE + '{\r\n  "entryScript": "score.py",\r\n  "condaFile": "env.yml"\r\n}\r\n'
                     .encode("utf-16-le"))

    setup = read_inference_config(path)

    assert (setup.entry_script, setup.environment.pip) == ("score.py", ("six",))
    assert setup.notes == (f"'{path}' read as utf-16 (not UTF-8; by its byte order mark)",)
