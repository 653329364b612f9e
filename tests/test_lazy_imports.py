"""Start-up cost: importing the package and building the CLI parser load no engine or graph library.

``builder --help`` / ``builder validate`` must not pay for grpc, protobuf, h2 or
networkx; those load only when a command talks to an engine or builds a plan graph.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("grpc", "google.protobuf", "h2", "networkx", "packaging", "cache")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    return {h for h in HEAVY if h in modules or any(m.startswith(h + ".") for m in modules)}


def test_import_builder_loads_nothing_heavy() -> None:
    assert _loaded_after("import builder") == set()


def test_cli_parser_loads_nothing_heavy() -> None:
    assert _loaded_after("from builder.cli import build_parser\nbuild_parser()") == set()


def test_public_names_still_resolve_lazily() -> None:
    loaded = _loaded_after("import builder\nbuilder.EngineError\nbuilder.load_config")
    assert "grpc" not in loaded and "networkx" not in loaded
