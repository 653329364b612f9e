"""Import contract: builder.plan never imports grpc, protobuf, diskcache, cache, builder.engines or subprocess."""

from __future__ import annotations

import ast
from pathlib import Path

BANNED = (
    "grpc",
    "google.protobuf",
    "diskcache",
    "cache",
    "builder.engines",
    "builder.api",
    "builder.cli",
    "builder.history",
    "builder.revisions",
    "builder.server",
    "subprocess",
)
PLAN_DIR = Path(__file__).resolve().parents[2] / "builder" / "plan"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _banned(name: str) -> bool:
    return any(name == b or name.startswith(b + ".") for b in BANNED)


def test_plan_code_imports_nothing_banned() -> None:
    files = sorted(PLAN_DIR.rglob("*.py"))
    assert len(files) > 20
    offenders = {f"{p.relative_to(PLAN_DIR)}: {n}" for p in files for n in _imports(p) if _banned(n)}
    assert offenders == set()


def test_the_checker_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import grpc\nfrom cache.stat import StatCache\nfrom builder.engines import x\n")
    assert [n for n in _imports(bad) if _banned(n)] == ["grpc", "cache.stat", "builder.engines"]
