"""Golden Dockerfile exports: ``tests/golden/<app>.export.txt`` for every ``fixtures/apps/<app>``.

One file per app holds what ``builder dockerfile -o DIR`` writes: the Dockerfile, the
``.dockerignore`` and every generated file under ``.builder/`` in full, except the step
scripts, which are the same files of ``builder/recipes/scripts`` for every app and are listed
by sha256.  Compared byte for byte; regenerate with ``UPDATE_GOLDEN=1 pytest -m golden``
(``make golden``) and review the diff.  The matching LLB goldens are ``<app>.llb.digests``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from builder.config import load_config
from builder.engines.dockerfile_export import SCRIPTS_DIR, render_dockerfile
from builder.plan import make_plan

GOLDEN = Path(__file__).resolve().parent
APPS = GOLDEN.parents[1] / "fixtures" / "apps"
APP_NAMES = sorted(p.name for p in APPS.iterdir() if (p / "cerebrium.toml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def render(name: str) -> str:
    export = render_dockerfile(make_plan(load_config(APPS / name)))
    parts = [f"=== Dockerfile\n{export.dockerfile}", f"=== .dockerignore\n{export.dockerignore}"]
    for path, text in export.files:
        if path.startswith(SCRIPTS_DIR + "/"):
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            parts.append(f"=== {path} sha256:{digest} ({len(text)} characters)\n")
        else:
            parts.append(f"=== {path}\n{text}" + ("" if text.endswith("\n") else "\n"))
    return "".join(parts)


@pytest.mark.golden
@pytest.mark.parametrize("name", APP_NAMES)
def test_golden_dockerfile_export(name: str) -> None:
    path = GOLDEN / f"{name}.export.txt"
    text = render(name)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 pytest -m golden"
    assert path.read_text(encoding="utf-8") == text, f"{path.name} differs (UPDATE_GOLDEN=1 to regenerate)"


@pytest.mark.golden
def test_every_golden_export_has_a_fixture() -> None:
    stale = {p.name.removesuffix(".export.txt") for p in GOLDEN.glob("*.export.txt")} - set(APP_NAMES)
    assert stale == set(), f"golden exports without fixtures/apps/<name>: {sorted(stale)}"
