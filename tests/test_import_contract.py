"""The import contract of the whole chain, read from the source (``ast``), not from a running interpreter.

Layers import only downwards: ``config → deps → plan → recipes → engines``, then the edges
(history, verify, reports, the dev loop), ``api`` over them, and ``cli``/``server`` on top.
``cache/`` never imports ``builder``.  Third-party clients stay in the layer that owns them
(gRPC/protobuf/h2 in the engines, diskcache in ``cache``).  Only ``builder/cli`` writes to the
terminal; the entry point and the warm server's own log lines are the listed exceptions.
In-container scripts (``builder/recipes/scripts``, ``builder/runtime``) run inside images and
are data, not part of the chain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IN_CONTAINER = ("builder/recipes/scripts/", "builder/runtime/", "builder/engines/buildkit/_pb/")

#: unit → the units it may import (a unit is ``cache`` or the first name under ``builder``).
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "diagnostics": set(),
    "errors": {"diagnostics"},
    "config": {"diagnostics", "errors"},
    "deps": {"config", "diagnostics", "errors"},
    "plan": {"config", "deps", "diagnostics", "errors"},
    "recipes": {"config", "deps", "plan", "diagnostics", "errors"},
    "engines": {"config", "deps", "plan", "recipes", "diagnostics", "errors", "registry"},
    "revisions": {"errors"},
    "runenv": {"errors"},
    "verify_probe": {"errors", "engines"},
    "verify_start": {"errors"},
    "verify": {"config", "engines", "errors", "diagnostics", "verify_probe", "verify_start", "runenv"},
    "engine_connection": {"engines", "errors"},
    "registry": {"errors", "plan"},
    "base_image": {"diagnostics", "engines", "errors", "plan", "registry"},
    "history": {"cache", "config", "diagnostics", "errors", "plan", "reports"},
    "files_bases": {"diagnostics", "plan"},
    "shared_history": {"plan"},
    "reports": {"_version", "api", "cache", "diagnostics", "errors", "plan"},
    "api": {
        "base_image",
        "config",
        "deps",
        "diagnostics",
        "engine_connection",
        "engines",
        "errors",
        "files_bases",
        "history",
        "plan",
        "recipes",
        "registry",
        "revisions",
        "shared_history",
    },
    "devloop": {"api", "config", "deps", "diagnostics", "engines", "errors", "plan", "runenv", "verify"},
    "server": {"cli", "errors", "plan"},
    "cli": {
        "_launch",
        "_version",
        "api",
        "builder",
        "cache",
        "config",
        "deps",
        "devloop",
        "diagnostics",
        "engines",
        "errors",
        "plan",
        "recipes",
        "reports",
        "revisions",
        "runenv",
        "server",
        "verify",
    },
    "_launch": {"cli", "server"},
    "__main__": {"_launch"},
    "__init__": {
        "_version",
        "api",
        "config",
        "devloop",
        "diagnostics",
        "engines",
        "errors",
        "plan",
        "reports",
        "verify",
    },
    "cache": set(),
}

#: third-party module → the units that may import it.
OWNERS = {
    "grpc": {"engines"},
    "google.protobuf": {"engines"},
    "h2": {"engines"},
    "diskcache": {"cache"},
    "pickle": set(),
    "marshal": set(),
    "shelve": set(),
}

#: Files outside builder/cli that write to the terminal, and why.
WRITERS = {
    "builder/_launch.py",  # the entry point reports a failed hand-off before any CLI code runs
    "builder/server/client.py",  # the served client's one-line warning when it falls back to in-process
    "builder/server/daemon.py",  # the server's own log (its stderr is the log file)
}


def _sources() -> Iterator[Path]:
    for top in ("builder", "cache"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(IN_CONTAINER):
                yield path


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "cache":
        return "cache"
    if parts[0] != "builder":
        return None
    return parts[1] if len(parts) > 1 else "builder"


def _own_unit(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return "cache" if rel.parts[0] == "cache" else rel.parts[1]


def _imports(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _writes(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name == "print" or name.startswith(("sys.stdout.", "sys.stderr.")):
                yield node.lineno


def violations(root: Path = ROOT) -> list[str]:
    """Every import or terminal write that breaks the contract, as ``file: what``."""
    found = []
    for path in _sources():
        rel = path.relative_to(root).as_posix()
        unit = _own_unit(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), rel)
        if unit not in ALLOWED:
            found.append(f"{rel}: unit {unit!r} has no place in the contract (add it to ALLOWED)")
            continue
        for name in _imports(tree):
            target = _unit(name)
            if target is not None and target != unit and target not in ALLOWED[unit]:
                found.append(f"{rel}: {unit} imports {name}")
            for owned, owners in OWNERS.items():
                if (name == owned or name.startswith(owned + ".")) and unit not in owners:
                    found.append(f"{rel}: {unit} imports {name} (only {sorted(owners) or 'nobody'})")
        if not rel.startswith("builder/cli/") and rel not in WRITERS:
            found.extend(f"{rel}:{line}: writes to the terminal (only builder/cli prints)" for line in _writes(tree))
    return found


def test_the_chain_keeps_its_import_contract() -> None:
    assert violations() == []


def test_the_contract_covers_every_unit_of_the_code() -> None:
    units = {_own_unit(p) for p in _sources()}
    assert {"config", "deps", "plan", "recipes", "engines", "api", "cli", "server", "cache"} <= units


def test_the_checker_catches_each_kind_of_offence(tmp_path: Path) -> None:
    bad = ast.parse("import grpc\nfrom builder.api import build\nimport pickle\nprint('x')\nsys.stderr.write('y')\n")
    assert list(_imports(bad)) == ["grpc", "builder.api", "pickle"]
    assert list(_writes(bad)) == [4, 5]
    assert "api" not in ALLOWED["plan"] and "grpc" in OWNERS and "plan" not in OWNERS["grpc"]
