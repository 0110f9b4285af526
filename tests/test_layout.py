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
