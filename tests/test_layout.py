"""The package's layout rules, checked on the source: one model, one folder (an architecture is named
only in its folder, the two re-exporting ``__init__.py`` files and at most one other module), and
``hfmagic.hub`` imports nothing from the models."""

import ast
import re
from pathlib import Path

import pytest

from tiny_configs import HFMAGIC_MODELS

PACKAGE = Path(__file__).resolve().parent.parent / "hfmagic"
REEXPORTS = {PACKAGE / "__init__.py", PACKAGE / "models" / "__init__.py"}


def _names_in_code(path: Path) -> set[str]:
    """Identifiers, attribute names, imported names and words of string constants, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.split(".")[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names.update(re.findall(r"[\w-]+", node.value))
    return names


@pytest.mark.parametrize("model_type", list(HFMAGIC_MODELS))
def test_an_architecture_is_named_in_its_folder_only(model_type):
    config_class, model_class = HFMAGIC_MODELS[model_type]
    folder = PACKAGE / "models" / model_class.__module__.split(".")[2]
    names = {model_type, config_class.__name__, model_class.__name__, *getattr(config_class, "card_classes", {}).values()}
    outside = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if folder not in path.parents and path not in REEXPORTS and names & _names_in_code(path)
    ]
    assert len(outside) <= 1, f"{sorted(names)} are named outside {folder.name}/ in {outside}"


def test_hub_imports_nothing_from_the_models():
    tree = ast.parse((PACKAGE / "hub.py").read_text())
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [m for m in modules if m.startswith(("models", "hfmagic.models")) or m == "hfmagic"], modules
