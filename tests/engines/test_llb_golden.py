"""Golden LLB digests: ``tests/golden/<app>.llb.digests`` for every ``fixtures/apps/<app>``.

One line per plan step: ``<step> <vertex digest> <plan key> <vertex name>``, for
the chained layout (BuildKit 0.8) and the MergeOp layout (newer engines), plus
the digest of the whole definition.  A changed digest means a changed cache
key on the engine: review it.  Regenerate with ``UPDATE_GOLDEN=1 pytest -m golden``.

A vertex whose digest changed while its plan key stayed the same means builder
now builds that step differently without saying so: the engine would rebuild
it while ``builder plan`` predicts a hit.  That fails here (regenerating too)
until the kind's revision in ``builder/plan/recipes.py`` is bumped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from builder.config import load_config
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.errors import EngineUnsupported
from builder.plan import make_plan

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"
APP_NAMES = sorted(p.name for p in APPS.iterdir() if (p / "cerebrium.toml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
LAYOUTS = (
    ("chain", ConvertOptions(merge=False)),
    ("merge", ConvertOptions(merge=True)),
)


def render(name: str) -> str:
    plan = make_plan(load_config(APPS / name))
    lines = []
    for layout, options in LAYOUTS:
        try:
            converted = convert_plan(plan, options)
        except EngineUnsupported as exc:
            lines.append(f"{layout} unsupported: {exc.message}")
            continue
        names = converted.definition.names()
        total = hashlib.sha256(converted.definition.to_bytes()).hexdigest()
        lines.append(f"{layout} definition sha256:{total}")
        keys = plan.keys
        lines.extend(
            f"{layout} {step.value} {digest} {keys[step.value]} {names[digest]}"
            for step, digest in converted.step_digests
        )
    return "\n".join(lines) + "\n"


def _vertices(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(layout, step): (vertex digest, plan key)}`` from a rendered golden."""
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 4)
        if len(parts) >= 4 and parts[1] != "definition" and parts[3].startswith("sha256:"):
            out[(parts[0], parts[1])] = (parts[2], parts[3])
    return out


def unannounced_recipe_changes(old: str, new: str) -> list[str]:
    """Steps whose vertex changed while their plan key did not (see the module docstring)."""
    before = _vertices(old)
    return sorted({
        step
        for (layout, step), (digest, key) in _vertices(new).items()
        if (layout, step) in before and before[(layout, step)][1] == key and before[(layout, step)][0] != digest
    })


def test_a_changed_vertex_under_an_unchanged_key_is_caught() -> None:
    old = "chain pip sha256:aaa sha256:k1 [pip] x\nchain files sha256:bbb sha256:k2 [files] y\n"
    assert unannounced_recipe_changes(old, old) == []
    assert unannounced_recipe_changes(old, old.replace("sha256:aaa", "sha256:ccc")) == ["pip"]
    bumped = old.replace("sha256:aaa sha256:k1", "sha256:ccc sha256:k9")
    assert unannounced_recipe_changes(old, bumped) == []


@pytest.mark.golden
@pytest.mark.parametrize("name", APP_NAMES)
def test_golden_llb_digests(name: str) -> None:
    path = GOLDEN / f"{name}.llb.digests"
    text = render(name)
    if path.exists():
        changed = unannounced_recipe_changes(path.read_text(encoding="utf-8"), text)
        assert not changed, (
            f"{name}: the LLB of {', '.join(changed)} changed but the plan key did not: bump "
            f"RECIPES[{', '.join(changed)}] in builder/plan/recipes.py so plans predict the rebuild"
        )
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 pytest -m golden"
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} differs (UPDATE_GOLDEN=1 to regenerate)"
    )
