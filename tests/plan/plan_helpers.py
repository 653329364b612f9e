"""Helpers for plan tests: write small projects, plan them, compare keys per step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from builder.config import load_config
from builder.plan import Plan, make_plan
from builder.plan.protocols import StatSource

CHAIN = ("base", "python", "pre_build", "apt", "conda", "pip", "files", "shell", "config")

FULL_TOML = """\
[cerebrium.deployment]
name = "inv"
python_version = "3.11"
disable_auth = false
include = ["*"]
exclude = [".*"]
shell_commands = ["echo done"]
pre_build_commands = ["echo pre"]
docker_base_image_url = "debian:bookworm-slim"
use_uv = false
deployment_initialization_timeout = 600

[cerebrium.runtime.custom]
port = 8000
entrypoint = ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
healthcheck_endpoint = "/health"
readycheck_endpoint = "/ready"

[cerebrium.hardware]
cpu = 2
memory = 4.0
compute = "CPU"
gpu_count = 0
provider = "aws"
region = "us-east-1"

[cerebrium.scaling]
min_replicas = 0
max_replicas = 2
replica_concurrency = 10
response_grace_period = 3600
cooldown = 1800
scaling_metric = "concurrency_utilization"
scaling_target = 100
evaluation_interval = 30
load_balancing = ""
roll_out_duration_seconds = 0

[cerebrium.dependencies.pip]
torch = "==2.0.0"
numpy = "latest"

[cerebrium.dependencies.apt]
ffmpeg = "latest"

[cerebrium.dependencies.conda]
cudatoolkit = "11.7"
"""

FULL_FILES: dict[str, str] = {
    "main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
    "utils.py": "def f():\n    return 1\n",
    "run.sh": "#!/bin/sh\necho run\n",
    "data/x.txt": "x\n",
    ".env": "SECRET=1\n",
    ".git/config": "[core]\n",
    "src/.cache/blob": "cache\n",
}


def write_project(
    root: Path, toml: str, files: Mapping[str, str] = FULL_FILES, *, executable: tuple[str, ...] = ("run.sh",)
) -> Path:
    """Create ``root`` with cerebrium.toml and ``files`` (``executable`` get mode 0755)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cerebrium.toml").write_text(toml)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, 0o755 if rel in executable else 0o644)
    return root


def plan_of(root: Path, *, stat_source: StatSource | None = None) -> Plan:
    return make_plan(load_config(root), stat_source=stat_source)


def keys_of(root: Path) -> dict[str, str]:
    return plan_of(root).keys


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> set[str]:
    """Step ids whose key differs, or that exist on one side only."""
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def from_step(step: str, chain: tuple[str, ...] = CHAIN) -> set[str]:
    """``step`` and every step after it in ``chain``."""
    return set(chain[chain.index(step) :])
