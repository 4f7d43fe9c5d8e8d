"""The benchmarks and tutorials import only names the library has (a refactor that moves a
function breaks them at once here, not months later when someone runs a benchmark)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "tutorials").glob("*.py"))


def numtrans_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from numtrans... import name`` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "numtrans" or node.module.startswith("numtrans."):
                found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("numtrans")]
    return found


def test_the_scripts_import_numtrans():
    assert sum(bool(numtrans_imports(p)) for p in SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_every_imported_name_exists(path):
    missing = []
    for module, name in numtrans_imports(path):
        mod = importlib.import_module(module)
        if name and not hasattr(mod, name):
            try:  # ``from numtrans.models import hf``: a submodule
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{path.name} imports names that do not exist: {missing}"
