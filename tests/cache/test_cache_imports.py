"""Import contract: the ``cache`` package never imports ``builder``."""

from __future__ import annotations

import ast
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parents[2] / "cache"


def _imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_cache_never_imports_builder() -> None:
    files = sorted(CACHE_DIR.rglob("*.py"))
    assert files, "cache package not found"
    offenders = {
        str(f.relative_to(CACHE_DIR)): sorted(
            m for m in _imported_modules(f.read_text()) if m.split(".")[0] == "builder"
        )
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_sees_builder_imports() -> None:
    assert _imported_modules("import builder.plan\nfrom builder import x\nimportlib.import_module('builder')") == {
        "builder.plan",
        "builder",
    }
