"""Predictions are per engine, and a failed build records what completed — on dockerd 20.10 and dockerd 26.

One step cache serves both engines, as on a developer machine that switches ``--engine``: a step
built on dockerd 20.10 is a miss for dockerd 26 (the reason names the engine it was built on), and
building there observes exactly the predicted misses.  A shell step that fails leaves the steps
before it recorded; the CLI prints their predicted/observed table, and the next plan predicts them.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from builder.api import build, plan_project
from builder.cli import main
from builder.errors import SolveFailed
from tests.integration.targets import ENGINE_DIR, EngineTarget, read_env

CA = "/etc/ssl/certs/ca-certificates.crt"


def _engine(name: str) -> EngineTarget:
    path = ENGINE_DIR / name / "env"
    if not path.is_file():
        pytest.fail(f"no {name} engine: run `ENGINE={name} scripts/engine-up` (make engine-up starts both)")
    return EngineTarget(name, read_env(path))


def _app(root: Path, name: str, shell: str) -> Path:
    """A small app whose files (a random token) and shell step no other test shares."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")
    (root / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "{name}"\npython_version = "3.11"\ninclude = ["*"]\n'
        f"shell_commands = [{shell!r}]\n\n"
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n'
    )
    return root


def _statuses(path: Path, cache: Path, engine: EngineTarget) -> dict[str, tuple[str, str]]:
    _plan, analysis, _ = plan_project(path, cache_dir=cache, engine=engine.address, record=False)
    assert analysis.predicted_for is not None
    return {s.id.value: (s.status, s.reason) for s in analysis.steps}


def test_a_step_built_on_another_engine_is_a_miss_that_says_so(tmp_path: Path) -> None:
    old, new = _engine("dockerd20"), _engine("dockerd26")
    cache = tmp_path / "cache"
    name = f"engine-scope-{uuid.uuid4().hex[:8]}"
    # dockerd 26 builds one revision (its base and python steps are then recorded for it) ...
    first = _app(tmp_path / "v1", name, "echo one > /tmp/one")
    build(first, engine=new.address, cache_dir=cache, ca_bundle=CA)
    # ... dockerd 20.10 the next one (new files, new shell command)
    app = _app(tmp_path / "v2", name, "echo two > /tmp/two")
    build(app, engine=old.address, cache_dir=cache, ca_bundle=CA)

    on_old = _statuses(app, cache, old)
    assert {s for s, _ in on_old.values()} == {"hit"}
    _plan, analysis, _ = plan_project(app, cache_dir=cache, engine=new.address, record=False)
    assert analysis.predicted_for is not None and analysis.predicted_for["engine"]["id"].startswith("dockerd:")
    assert "dockerd 26" in analysis.predicted_for["note"]
    status = {s.id.value: s for s in analysis.steps}
    assert status["base"].status == "hit" and status["python"].status == "hit"
    for step in ("files", "shell", "config"):
        assert status[step].status == "miss", step
        assert "built on dockerd 20.10" in status[step].reason and "not on this engine" in status[step].reason
        assert status[step].causes[0].name == "built on another engine"

    result, built, _ = build(app, engine=new.address, cache_dir=cache, ca_bundle=CA)
    assert [m.step for m in result.mismatches] == []
    assert {s.step: s.cached for s in result.steps} == {s.id.value: s.status == "hit" for s in built.steps}
    assert {s for s, _ in _statuses(app, cache, new).values()} == {"hit"}
    assert {s for s, _ in _statuses(app, cache, old).values()} == {"hit"}  # still recorded for dockerd 20.10


def test_a_failed_build_records_the_steps_that_completed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _engine("dockerd26")
    cache = tmp_path / "cache"
    name = f"engine-fail-{uuid.uuid4().hex[:8]}"
    app = _app(tmp_path / "app", name, "echo failing on purpose && exit 3")
    args = ["build", str(app), "--engine", target.address, "--cache-dir", str(cache), "--ca-bundle", CA]
    assert main([*args, "--progress", "plain"]) == 1
    err = capsys.readouterr().err
    assert "step(s) completed before it and are recorded" in err
    lines = err[err.index("step         predicted  observed") :].splitlines()[1:]
    rows = [line.split()[0] for line in lines if re.match(r"^\w+ +(hit|miss|-) +(cached|built) ", line)]
    assert "files" in rows and "shell" not in rows  # the failed step is not among the completed ones

    before = _statuses(app, cache, target)
    assert before["files"][0] == "hit" and before["shell"][0] == "miss"
    with pytest.raises(SolveFailed) as failed:  # the same failure again: the completed steps come from the cache
        build(app, engine=target.address, cache_dir=cache, ca_bundle=CA)
    completed = {s.step: s for s in failed.value.completed}
    assert completed["files"].cached and completed["files"].predicted == "hit"

    toml = app / "cerebrium.toml"
    toml.write_text(toml.read_text().replace("&& exit 3", "> /tmp/fixed"))
    _plan, analysis, _ = plan_project(app, cache_dir=cache, engine=target.address, record=False)
    predicted = {s.id.value: s.status for s in analysis.steps}
    assert predicted["files"] == "hit" and predicted["shell"] == "miss"
    result, _, _ = build(app, engine=target.address, cache_dir=cache, ca_bundle=CA)
    assert result.mismatches == ()
    assert result.step("files").cached and not result.step("shell").cached
