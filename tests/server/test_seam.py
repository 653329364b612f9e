"""The warm server reaches the library only through public parameters: it never writes another module's
globals and never reads another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "builder" / "server"


def _offences(source: str, own: str = "builder.server") -> list[str]:
    """``module.name = ...`` for an imported builder/cache module (the child may set ``sys.stdout``, it becomes
    the client's process), and ``module._private`` of a builder module outside ``own``."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name.startswith("_") and not node.module.startswith(own):
                    return [f"from {node.module} import {alias.name}"]
                modules.setdefault(alias.asname or alias.name, f"{node.module}.{alias.name}")
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and modules.get(target.value.id, "").startswith(("builder", "cache"))
            ):
                found.append(f"writes {modules[target.value.id]}.{target.attr}")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            module = modules.get(node.value.id)
            if module is not None and module.startswith("builder") and not module.startswith(own):
                found.append(f"reads {module}.{node.attr}")
    return found


def test_the_server_uses_only_public_names_and_writes_no_other_module() -> None:
    files = sorted(SERVER.glob("*.py"))
    assert len(files) >= 5
    offences = {f"{path.name}: {o}" for path in files for o in _offences(path.read_text())}
    assert offences == set()


def test_the_checker_catches_both_kinds() -> None:
    source = (
        "from builder import api\nfrom builder.plan import fileset\nimport builder.cli as cli\n"
        "fileset.walked_ahead = None\napi._hint_sink = print\nx = api._prepared\ncli.main(['x'])\n"
    )
    assert sorted(_offences(source)) == [
        "reads builder.api._prepared",
        "writes builder.api._hint_sink",
        "writes builder.plan.fileset.walked_ahead",
    ]
    assert _offences("from builder.plan.fileset import _walk\n") == ["from builder.plan.fileset import _walk"]
