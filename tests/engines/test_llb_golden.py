"""Golden LLB digests: ``tests/golden/<app>.llb.digests`` for every ``fixtures/apps/<app>``.

One line per plan step: ``<step> <vertex digest> op=<own op> own=<own key> <vertex name>``,
for the chained layout (BuildKit 0.8) and the MergeOp layout (newer engines),
plus the digest of the whole definition.  A changed digest means a changed
cache key on the engine: review it.  Regenerate with ``UPDATE_GOLDEN=1 pytest -m golden``.

``op`` digests the step's own op with its inputs left out, ``own`` is the
step's key with its parents left out (scheme, kind, recipe revision, inputs).
An op that changed under an unchanged ``own`` key means builder now builds the
step differently without saying so: the engine would rebuild it while
``builder plan`` predicts a hit.  That fails here (regenerating too) until the
kind's revision in ``builder/plan/recipes.py`` is bumped.  Comparing the steps'
own parts, not whole keys, means a bumped step does not hide a change below it.
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
from builder.plan.canonical import canonical_bytes
from builder.plan.keys import step_key

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
        for step, digest in converted.step_digests:
            op = converted.definition.op(digest)
            del op.inputs[:]
            own_op = hashlib.sha256(op.SerializeToString(deterministic=True)).hexdigest()[:16]
            inputs = plan.step(step).inputs
            own_key = step_key(step, canonical_bytes(inputs), ()).removeprefix("sha256:")[:16]
            lines.append(f"{layout} {step.value} {digest} op={own_op} own={own_key} {names[digest]}")
    return "\n".join(lines) + "\n"


def _own_parts(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(layout, step): (own op digest, own key)}`` from a rendered golden."""
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 5)
        if len(parts) >= 5 and parts[3].startswith("op=") and parts[4].startswith("own="):
            out[(parts[0], parts[1])] = (parts[3], parts[4])
    return out


def unannounced_recipe_changes(old: str, new: str) -> list[str]:
    """Steps whose own op changed while their own key did not (see the module docstring)."""
    before = _own_parts(old)
    return sorted(
        {
            step
            for (layout, step), (op, own) in _own_parts(new).items()
            if (layout, step) in before and before[(layout, step)][1] == own and before[(layout, step)][0] != op
        }
    )


def test_a_changed_op_under_an_unchanged_key_is_caught() -> None:
    old = "chain pip sha256:v1 op=aaa own=k1 [pip] x\nchain files sha256:v2 op=bbb own=k2 [files] y\n"
    assert unannounced_recipe_changes(old, old) == []
    assert unannounced_recipe_changes(old, old.replace("op=aaa", "op=ccc")) == ["pip"]
    assert unannounced_recipe_changes(old, old.replace("op=aaa own=k1", "op=ccc own=k9")) == []
    # a parent's change alone moves a vertex digest, not the step's own op: nothing to bump
    assert unannounced_recipe_changes(old, old.replace("sha256:v2", "sha256:v3")) == []


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
    assert path.read_text(encoding="utf-8") == text, f"{path.name} differs (UPDATE_GOLDEN=1 to regenerate)"
