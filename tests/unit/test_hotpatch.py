"""The hot patch (payload/hotpatch.py) on an entry script loaded the way the scoring server
loads it: ``spec_from_file_location("entry_module", ...)``, not registered in sys.modules."""

import importlib.util
import sys
import textwrap

import pytest

from amldebug.payload import hotpatch

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
