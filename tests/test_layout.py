"""The package's layering, read from the source (ast), not by importing it: ``striate.models``
holds networks only and imports no trainer, dataset or command-line module."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "striate"
FORBIDDEN_FOR_MODELS = ("striate.train", "striate.data", "striate.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str = None):
    """Every module path an import statement in the file names (function-level ones included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                yield f"{module}.{alias.name}", node.lineno


def test_models_import_no_trainer_dataset_or_command_line():
    files = sorted((PACKAGE / "models").glob("*.py"))
    assert len(files) > 10
    offending = [f"{path.name}:{line} imports {target}" for path in files for target, line in _imports(path)
                 if any(target == f or target.startswith(f + ".") for f in FORBIDDEN_FOR_MODELS)]
    assert offending == []


def test_the_rule_sees_relative_and_function_level_imports():
    # the walker must catch `from ..train import fit` inside a function of a models file
    source = "def f():\n    from ..train.loop import fit\n    import striate.data\n    from . import nn\n"
    found = [t for t, _ in _imports(PACKAGE / "models" / "probe.py", source)]
    assert found == ["striate.train.loop.fit", "striate.data", "striate.models.nn"]


TOP_FLOOR = ("striate.train", "striate.cli", "striate.models", "striate.data", "striate.metrics")


def _graph():
    """module -> the striate modules it imports (function-level imports included)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for target, _ in _imports(path):
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]  # `from .x import name` -> module x
            if target in files and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_top_floor_has_no_import_cycle():
    # Known and not yet cut: the core (tensor, autograd, nn, ops, optim, serialization) imports
    # the package (`from .. import nn`) whose __init__ imports them all back. Trainers, the command
    # line, models, datasets and metrics must stay out of every cycle.
    cyclic = [c for c in _cycles(_graph()) if any(m.startswith(TOP_FLOOR) for m in c)]
    assert cyclic == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_python_file_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
