"""The hot patch (payload/worker/hotpatch.py) on an entry script loaded the way the scoring server
loads it: ``spec_from_file_location("entry_module", ...)``, not registered in sys.modules."""

import importlib.util
import re
import sys
import textwrap

import pytest

from amldebug.payload.worker import hotpatch

SCORE = textwrap.dedent('''\
    import functools

    model = None
    LIMIT = 10


    def logged(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **kwargs)
        return wrapper


    def init():
        global model
        model = {"scale": 3}


    @logged
    def run(raw):
        return {"result": raw * model["scale"], "version": "v1"}


    def helper():
        return "helper"
''')


def _load(path):
    spec = importlib.util.spec_from_file_location("entry_module", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


@pytest.fixture
def entry(tmp_path):
    path = tmp_path / "score.py"
    path.write_text(SCORE)
    module = _load(path)
    assert "entry_module" not in sys.modules or sys.modules["entry_module"] is not module
    return path, module


def _patch(path, module, new):
    changed, codes = hotpatch.plan(SCORE, new, str(path))
    # As the worker does: reach the globals through init(), not sys.modules.
    hotpatch.apply(module.init.__globals__, codes, str(path))
    return changed, codes


def test_a_changed_run_body_is_swapped_and_the_model_is_kept(entry):
    path, module = entry
    model = module.model
    new = SCORE.replace('"version": "v1"', '"version": "v2"')
    changed, _ = _patch(path, module, new)
    assert changed == ["run"]
    assert module.run(2) == {"result": 6, "version": "v2"}  # through the decorator: __wrapped__ followed
    assert module.model is model


def test_a_function_that_moved_is_swapped_too(entry):
    path, module = entry
    new = SCORE.replace('    return {"result"', '    raw = raw + 0\n    return {"result"')
    changed, codes = _patch(path, module, new)
    assert changed == ["run"] and set(codes) == {"run", "helper"}
    line = next(n for n, text in enumerate(new.splitlines(), 1) if "def helper" in text)
    assert module.helper.__code__.co_firstlineno == line  # breakpoints land on the new lines


def test_the_new_code_carries_the_file_name_the_debugger_knows(entry):
    path, module = entry
    _patch(path, module, SCORE.replace("v1", "v2"))
    assert module.run.__wrapped__.__code__.co_filename == str(path)


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.replace('"scale": 3', '"scale": 4'), "init() changed"),
    (lambda s: s.replace("LIMIT = 10", "LIMIT = 11"), "module-level code changed"),
    (lambda s: s + "\n\ndef added():\n    return 1\n", "added or removed"),
    (lambda s: s.replace("def helper():", "def helper2():"), "renamed"),
    (lambda s: s.replace("def run(raw):", "def run(raw, extra=None):"), "signature or decorators of run()"),
    (lambda s: s.replace("@logged\n", ""), "signature or decorators of run()"),
    (lambda s: s.replace("import functools", "import functools  # a comment"), "no function body changed"),
    (lambda s: s.replace("    return \"helper\"", "    return \"helper\"  # a comment"), "no function body changed"),
    (lambda s: s + "\n\nclass Model:\n    pass\n", "added or removed"),
    (lambda s: s.replace('"v1"}', '"v1"'), "syntax error"),
])
def test_what_a_patch_cannot_serve_is_declined_with_the_reason(entry, change, reason):
    path, module = entry
    with pytest.raises(hotpatch.Declined, match=reason.replace("(", r"\(").replace(")", r"\)")):
        hotpatch.plan(SCORE, change(SCORE), str(path))


def test_a_changed_class_is_declined(tmp_path):
    source = "class A:\n    def f(self):\n        return 1\n\ndef init():\n    pass\n\ndef run(x):\n    return 1\n"
    with pytest.raises(hotpatch.Declined, match="class A changed"):
        hotpatch.plan(source, source.replace("return 1\n\ndef init", "return 2\n\ndef init"), "score.py")


def test_a_run_edit_that_shifts_later_module_code_is_still_patched():
    """A line added in run() moves what follows it; a statement that has already run and
    made no code (a __main__ block, a constant) does not need a fresh worker for that."""
    source = ("def init():\n    pass\n\ndef run(x):\n    return 1\n\nLIMIT = 3\n\n"
              "if __name__ == '__main__':\n    print(run(1))\n")
    changed, codes = hotpatch.plan(source, source.replace("    return 1\n", "    x = x\n    return 1\n", 1), "score.py")
    assert changed == ["run"] and set(codes) == {"run"}


@pytest.mark.parametrize("later, reason", [
    ("class A:\n    def f(self):\n        return 1\n", "class A moved (line 8)"),
    ("scale = lambda v: v * 2\n", "module-level code that makes functions moved (line 8)"),
])
def test_a_run_edit_that_shifts_later_code_objects_is_declined(later, reason):
    """A class's methods and a lambda keep the lines they were compiled with."""
    source = "def init():\n    pass\n\ndef run(x):\n    return 1\n\n" + later
    with pytest.raises(hotpatch.Declined, match=re.escape(reason)):
        hotpatch.plan(source, source.replace("    return 1\n", "    x = x\n    return 1\n", 1), "score.py")


def test_a_run_edit_that_shifts_a_class_of_attributes_only_is_still_patched():
    source = "def init():\n    pass\n\ndef run(x):\n    return 1\n\nclass Config:\n    LIMIT = 3\n"
    changed, _ = hotpatch.plan(source, source.replace("    return 1\n", "    x = x\n    return 1\n", 1), "score.py")
    assert changed == ["run"]


def test_a_decorator_argument_change_is_declined():
    source = "def init():\n    pass\n\n@schema(1)\ndef run(x):\n    return 1\n"
    with pytest.raises(hotpatch.Declined, match="decorators"):
        hotpatch.plan(source, source.replace("schema(1)", "schema(2)"), "score.py")


def test_a_global_that_is_no_function_of_the_script_is_declined_and_nothing_is_swapped(entry):
    path, module = entry
    new = SCORE.replace('"version": "v1"', '"version": "v2"').replace('return "helper"', 'return "h2"')
    _, codes = hotpatch.plan(SCORE, new, str(path))
    module.helper = len  # rebound at run time to something else
    with pytest.raises(hotpatch.Declined, match="helper is not a plain function"):
        hotpatch.apply(module.init.__globals__, codes, str(path))
    assert module.run(1)["version"] == "v1"  # all or nothing


SCHEMA_SCORE = textwrap.dedent('''\
    from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
    from inference_schema.schema_decorators import input_schema, output_schema


    def init():
        pass


    @input_schema("data", StandardPythonParameterType([1, 2]))
    @output_schema(StandardPythonParameterType({"version": "v1"}))
    def run(data):
        return {"version": "v1", "n": len(data)}
''')


def test_a_run_under_inference_schema_is_patched_without_a_second_import(tmp_path):
    """inference_schema refuses to define a function's schema twice in one process, so the
    module cannot be executed again; its wrapt proxies lead to the function through
    __wrapped__."""
    path = tmp_path / "score_schema.py"
    path.write_text(SCHEMA_SCORE)
    module = _load(path)
    with pytest.raises(Exception, match="schema already defined"):
        _load(path)  # what re-executing the module in place would meet
    new = SCHEMA_SCORE.replace('return {"version": "v1"', 'return {"version": "v2"')
    changed, codes = hotpatch.plan(SCHEMA_SCORE, new, str(path))
    hotpatch.apply(module.init.__globals__, codes, str(path))
    assert changed == ["run"]
    assert module.run(data=[1, 2, 3]) == {"version": "v2", "n": 3}
