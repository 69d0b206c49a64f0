"""Hot patch of a live entry script: swap the ``__code__`` of functions whose bodies changed.

Runs inside the scoring worker (the image's Python, 3.8+), on the module the server loaded
as ``entry_module`` (not in sys.modules; reached through the user functions'
``__globals__``). A save qualifies only when it changes nothing but the bodies of top-level
functions other than init(): the module's globals (the loaded model) stay, nothing is
imported and init() does not run again. Re-executing the module in place is no option:
inference_schema refuses a second definition of the same schema in one process.

:func:`plan` is pure (old source, new source -> the code objects to swap, or why not);
:func:`apply` does the swap. Functions that merely moved are swapped too, or their
breakpoints would land on the old lines.
"""

import ast

FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
KEEP = "init"  # its body runs once per worker: a change to it needs a fresh worker


class Declined(Exception):
    """The save cannot be patched (the message says why); a full reload serves it."""


def _dump(node, lines=False):
    return ast.dump(node, include_attributes=lines)


def _head(node):
    """A function definition without its body: name, arguments, decorators, annotations."""
    fields = dict((name, getattr(node, name)) for name in node._fields if name != "body")
    return _dump(type(node)(body=[], **fields))


def _holds_code(node):
    """Whether a module-level statement makes code objects that outlive its execution
    (a class's methods, a lambda); only their line numbers matter once it has run."""
    return any(isinstance(n, FUNCTION_DEFS + (ast.ClassDef, ast.Lambda))
               for child in ast.iter_child_nodes(node) for n in ast.walk(child))


def _top_level(tree):
    names = []
    for node in tree.body:
        if isinstance(node, FUNCTION_DEFS + (ast.ClassDef,)):
            names.append(node.name)
    return names


def plan(old_source, new_source, filename):
    """The changed and moved top-level functions of ``new_source``, as
    ``(changed names, {name: code object})``; raises :class:`Declined` when only a fresh
    worker can serve the save."""
    try:
        old = ast.parse(old_source, filename)
        new = ast.parse(new_source, filename)
    except SyntaxError as exc:
        raise Declined("syntax error: %s" % exc.msg)
    if len(old.body) != len(new.body):
        raise Declined("statements were added or removed")
    names = _top_level(new)
    if len(set(names)) != len(names):
        raise Declined("a name is defined twice")
    changed, moved = [], []
    for before, after in zip(old.body, new.body):
        if type(before) is not type(after):
            raise Declined("statements were added, removed or reordered")
        if isinstance(after, FUNCTION_DEFS):
            if before.name != after.name:
                raise Declined("%s() was renamed to %s()" % (before.name, after.name))
            if _head(before) != _head(after):
                raise Declined("the signature or decorators of %s() changed" % after.name)
            if _dump(before) != _dump(after):
                if after.name == KEEP:
                    raise Declined("init() changed")
                changed.append(after.name)
            elif _dump(before, True) != _dump(after, True):
                moved.append(after.name)
        elif _dump(before) != _dump(after):
            what = "class %s" % after.name if isinstance(after, ast.ClassDef) else "module-level code"
            raise Declined("%s changed (line %d)" % (what, after.lineno))
        elif _dump(before, True) != _dump(after, True) and _holds_code(after):
            # Its code objects (methods, lambdas) keep the old lines: breakpoints would land wrong.
            what = "class %s" % after.name if isinstance(after, ast.ClassDef) else "module-level code that makes functions"
            raise Declined("%s moved (line %d)" % (what, after.lineno))
    if not changed:
        raise Declined("no function body changed")
    module = compile(new_source, filename, "exec", dont_inherit=True)
    codes = {}
    for const in module.co_consts:
        if hasattr(const, "co_name") and const.co_name in changed + moved:
            codes[const.co_name] = const
    missing = [name for name in changed + moved if name not in codes]
    if missing:
        raise Declined("no code found for %s()" % missing[0])
    return changed, codes


def target(value, name, filename):
    """The function object behind a global (decorators followed through ``__wrapped__``)
    whose code is ``name`` from ``filename``, or None."""
    seen = set()
    while value is not None and id(value) not in seen:
        seen.add(id(value))
        code = getattr(value, "__code__", None)
        if code is not None and code.co_name == name and code.co_filename == filename:
            return value
        value = getattr(value, "__wrapped__", None)
    return None


def apply(module_globals, codes, filename):
    """Swap the code of each function in ``codes``; all or nothing."""
    swaps = []
    for name, code in codes.items():
        function = target(module_globals.get(name), name, filename)
        if function is None:
            raise Declined("%s is not a plain function of the entry script" % name)
        if len(function.__code__.co_freevars) != len(code.co_freevars):
            raise Declined("%s() closes over other variables now" % name)
        swaps.append((function, code))
    for function, code in swaps:
        function.__code__ = code
