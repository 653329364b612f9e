"""Golden plans: ``tests/golden/<app>.plan.json`` and ``.plan.txt`` for every ``fixtures/apps/<app>``.

Compared byte for byte; regenerate with ``UPDATE_GOLDEN=1 pytest -m golden``
(``make golden``) and review the diff in the commit.  Plans are made without
a cache, so statuses are all "miss" with the no-history reason; the only
volatile text (the absolute project path, should it ever appear) is scrubbed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.config import load_config
from builder.plan import analyze, make_plan
from builder.plan.render.json import plan_document
from builder.plan.render.text import render_plan

GOLDEN = Path(__file__).resolve().parent
APPS = GOLDEN.parents[1] / "fixtures" / "apps"
APP_NAMES = sorted(p.name for p in APPS.iterdir() if (p / "cerebrium.toml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _scrub(text: str, project: Path) -> str:
    return text.replace(str(project.resolve()), "<project>")


def _render(name: str) -> dict[str, str]:
    project = APPS / name
    plan = make_plan(load_config(project))
    analysis = analyze(plan, None)
    document = json.dumps(plan_document(plan, analysis), indent=2, ensure_ascii=False) + "\n"
    return {"plan.json": _scrub(document, project), "plan.txt": _scrub(render_plan(plan, analysis) + "\n", project)}


@pytest.mark.golden
@pytest.mark.parametrize("name", APP_NAMES)
def test_golden_plan(name: str) -> None:
    for suffix, text in _render(name).items():
        path = GOLDEN / f"{name}.{suffix}"
        if UPDATE:
            path.write_text(text, encoding="utf-8")
            continue
        assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 pytest -m golden"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} differs (UPDATE_GOLDEN=1 to regenerate)"


@pytest.mark.golden
def test_every_golden_plan_has_a_fixture() -> None:
    stale = {p.name.split(".plan.")[0] for p in GOLDEN.glob("*.plan.*")} - set(APP_NAMES)
    assert stale == set(), f"golden files without fixtures/apps/<name>: {sorted(stale)}"
