"""Golden LLB digests: ``tests/golden/<app>.llb.digests`` for every ``fixtures/apps/<app>``.

One line per plan step: ``<step> <vertex digest> <vertex name>``, for the
chained layout (BuildKit 0.8) and the MergeOp layout (newer engines), plus
the digest of the whole definition.  A changed digest means a changed cache
key on the engine: review it.  Regenerate with ``UPDATE_GOLDEN=1 pytest -m golden``.
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
        lines.extend(
            f"{layout} {step.value} {digest} {names[digest]}"
            for step, digest in converted.step_digests
        )
    return "\n".join(lines) + "\n"


@pytest.mark.golden
@pytest.mark.parametrize("name", APP_NAMES)
def test_golden_llb_digests(name: str) -> None:
    path = GOLDEN / f"{name}.llb.digests"
    text = render(name)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 pytest -m golden"
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} differs (UPDATE_GOLDEN=1 to regenerate)"
    )
