"""Layers only import downward and no module imports itself round a circle (function-local imports count).

The layers are those of docs/architecture.md, bottom to top. A new module
goes into the layer whose modules it uses; this test names any that is not
placed yet.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "mgbayes"

#: Bottom to top. A module may import modules of its own layer (without a circle) and of the layers below.
LAYERS = [
    ("foundations", {"errors", "constants", "backend", "files", "resources", "parallel"}),
    ("physics", {"elements", "circuits", "kinetics", "drift", "derived", "expressions", "priors", "units"}),
    ("data", {"data", "io", "validation", "kk"}),
    ("hypotheses and models", {"hypotheses", "observations", "simulate", "fitting"}),
    ("sampling", {"cache", "chains", "sampler", "diagnostics", "inference"}),
    ("tables", {"report"}),
    ("comparison", {"psis", "compare", "forecast", "sensitivity"}),
    ("study file", {"studyfile"}),
    ("fits", {"fits"}),
    ("many cells", {"cells"}),
    ("figures and outputs", {"plots", "outputs"}),
    ("run", {"study"}),
    ("simulation studies", {"sbc", "calibrate", "design"}),
    ("entry points", {"demo", "api", "cli"}),
]
LAYER = {module: k for k, (_, modules) in enumerate(LAYERS) for module in modules}


def _module(path):
    """``mgbayes/io/mpr.py`` → ``io``; ``mgbayes/study.py`` → ``study``; the package's ``__init__`` → None."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return None if parts == ("__init__",) else parts[0]


def _package(path):
    """Dotted package of a file (``mgbayes`` or ``mgbayes.io``)."""
    return ".".join(("mgbayes", *path.relative_to(PACKAGE).parent.parts))


def _targets(node, path, modules):
    """The mgbayes modules an import statement names (the package's lazy ``__init__`` is left out)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = _package(path).split(".")
            package = package[:len(package) - node.level + 1]
            base = ".".join([*package, *([base] if base else [])])
        names = [base] + [f"{base}.{a.name}" for a in node.names]
    out = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "mgbayes" and len(parts) > 1 and parts[1] in modules:
            out.add(parts[1])
    return out


def import_graph():
    """``{module: {imported module: [line, ...]}}`` over every import statement, function-local ones included."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module(p) for p in files} - {None}
    graph = {m: {} for m in modules}
    for path in files:
        source = _module(path)
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, path, modules) - {source}:
                    graph[source].setdefault(target, []).append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return graph


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open":
                return stack[stack.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_every_module_has_a_layer():
    missing = sorted(set(import_graph()) - set(LAYER))
    assert not missing, f"modules {missing} are in no layer: add them to LAYERS in tests/test_layers.py"


def test_no_module_imports_a_layer_above_it():
    graph = import_graph()
    upward = [f"{m} ({LAYERS[LAYER[m]][0]}) imports {t} ({LAYERS[LAYER[t]][0]}) at {', '.join(where)}"
              for m, targets in graph.items() for t, where in targets.items()
              if m in LAYER and t in LAYER and LAYER[t] > LAYER[m]]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_circle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("source, expected", [
    ("from . import study\n", {"study"}),
    ("def f():\n    from .study import load_data\n", {"study"}),
    ("import mgbayes.plots as p\n", {"plots"}),
    ("from . import __version__\n", set()),
])
def test_the_checker_sees_function_local_and_absolute_imports(source, expected):
    path = PACKAGE / "cells.py"
    tree = ast.parse(source)
    modules = set(LAYER)
    found = set().union(*(_targets(n, path, modules) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))))
    assert found == expected
    assert _cycle({"a": {"b": []}, "b": {"a": []}}) in (["a", "b", "a"], ["b", "a", "b"])
