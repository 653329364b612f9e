"""Start-up cost: importing the package and building the CLI parser load no engine or graph library.

``builder --help`` / ``builder validate`` must not pay for grpc, protobuf, h2 or
networkx; grpc, protobuf and h2 load only when a command talks to an engine, and
networkx (the plan's step DAG, ``builder.plan.graph``) only when a command plans —
the warm server imports it once for all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def _project(app: Path) -> Path:
    (app / "localpkg").mkdir(parents=True)
    (app / "localpkg" / "setup.py").write_text("from setuptools import setup\nsetup(name='localpkg')\n")
    (app / "main.py").write_text("print('hi')\n")
    (app / "requirements.txt").write_text("requests==2.32.3\n-e ./localpkg\n")
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "lazy"\npython_version = "3.11"\ninclude = ["*"]\n'
        'shell_commands = ["echo done"]\n\n[cerebrium.dependencies.apt]\ncurl = "latest"\n\n'
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )
    return app


def test_validating_a_project_loads_no_engine_client(tmp_path: Path) -> None:
    """validate runs every engine-free check plan makes (so it plans, with networkx), never gRPC."""
    app = _project(tmp_path / "app")
    probe = f"from builder.cli import main\nassert main(['validate', {str(app)!r}]) == 0\n"
    loaded = _loaded_after(probe)
    assert "grpc" not in loaded and "networkx" in loaded


def test_planning_orders_steps_with_the_networkx_graph(tmp_path: Path) -> None:
    """make_plan (through plan_project) builds the step DAG with networkx, also with a pip ⇠ files source edge."""
    app = _project(tmp_path / "app")
    probe = (
        "from builder.api import plan_project\n"
        f"plan, _, _ = plan_project({str(app)!r}, cache_dir={str(tmp_path / 'cache')!r}, record=False)\n"
        "assert plan.step('pip').sources == (plan.step('files').id,), plan.step('pip').refs\n"
        "assert [s.id.value for s in plan.steps] == "
        "['base', 'python', 'apt', 'pip', 'runtime', 'files', 'shell', 'config'], plan.ids\n"
    )
    assert "networkx" in _loaded_after(probe)


#: All a served command's client may add to what the interpreter loaded at start: itself and C modules.
CLIENT_MODULES = {
    "__future__",
    "_signal",
    "_socket",
    "zlib",
    "builder",
    "builder._version",
    "builder._launch",
    "builder.server",
    "builder.server.paths",
    "builder.server.client",
}


def test_served_client_imports_only_itself_and_c_modules(tmp_path: Path) -> None:
    """Every module the client imports is paid on every served command (collections.abc alone was ~4 ms)."""
    probe = (
        "import sys\nbefore = set(sys.modules)\nimport builder._launch, builder.server.client\n"
        "from builder.server.paths import enabled, server_dir, fingerprint\n"
        "env = {'BUILDER_SERVER_DIR': sys.argv[1]}\nenabled(env); server_dir(env); fingerprint(env)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True)
    added = set(done.stdout.split())
    assert added <= CLIENT_MODULES, sorted(added - CLIENT_MODULES)
    assert {"builder.server.client", "builder.server.paths"} <= added
