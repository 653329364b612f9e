"""`builder build` served by the warm server against the real engine(s): same events, same exit codes.

The child the server forks for each command opens its own gRPC channel and
session after the fork; these tests prove that works on every engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"


def _build(app: Path, env: dict[str, str], cache: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "build",
            str(app),
            "--progress",
            "json",
            "--cache-dir",
            str(cache),
            "--ca-bundle",
            CA,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, events


def _served(directory: Path) -> list[str]:
    return [ln for log in directory.glob("s-*.log") for ln in log.read_text().splitlines() if "] pid " in ln]


def test_served_builds_rebuild_cached_and_report_failures(
    app_build_basic: Path, engine_target: EngineTarget, engine_env: dict[str, str], tmp_path: Path
) -> None:
    server_dir = tmp_path / "srv"
    server_dir.mkdir(mode=0o700)
    env = {
        **{k: v for k, v in engine_env.items() if not k.startswith("BUILDER_SERVER")},
        "BUILDER_SERVER": "auto",
        "BUILDER_SERVER_DIR": str(server_dir),
    }
    cache = tmp_path / "cache"
    try:
        started = subprocess.run(
            [sys.executable, "-m", "builder", "server", "start"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert started.returncode == 0, started.stderr
        first, _ = _build(app_build_basic, env, cache)
        assert first.returncode == 0, first.stderr[-2000:]
        again, events = _build(app_build_basic, env, cache)
        assert again.returncode == 0, again.stderr[-2000:]
        steps = [e for e in events if e["event"] == "step"]
        assert steps and all(e["cached"] for e in steps), steps
        assert events[-1]["event"] == "done" and events[-1]["mismatches"] == []

        toml = app_build_basic / "cerebrium.toml"
        nonce = uuid.uuid4().hex
        toml.write_text(
            toml.read_text().replace("shell_commands = [", f'shell_commands = ["echo boom-{nonce}; exit 3", ')
        )
        failed, events = _build(app_build_basic, env, cache)
        assert failed.returncode == 1
        assert f"boom-{nonce}" in failed.stderr and "step shell failed" in failed.stderr
        assert events[-1]["event"] == "error" and events[-1]["id"] == "shell"
        assert len(_served(server_dir)) == 3
        # A served command that planned names its project for the next spare, which walks it ahead.
        hints = list(server_dir.glob("s-*.hint.json"))
        assert len(hints) == 1
        hint = json.loads(hints[0].read_text())
        assert hint["project"] == str(app_build_basic.resolve())
        assert hint["rules"][2] == ["cerebrium.toml"]
        assert any("(spare)" in line for line in _served(server_dir)[1:])
    finally:
        subprocess.run(
            [sys.executable, "-m", "builder", "server", "stop"], env=env, capture_output=True, check=False, timeout=60
        )
    assert os.environ.get("BUILDER_SERVER") == "off"  # the rest of the suite stays in-process
