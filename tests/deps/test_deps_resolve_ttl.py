"""Never a stale ``latest``: unpinned pip specs resolve through the resolution cache with a TTL.

A PEP 503 index on 127.0.0.1 gains a release between plans: within the TTL
the stored resolution answers; after it (``BUILDER_RESOLVE_TTL=0``) the next
plan pins the new release and predicts the pip rebuild with that reason;
``--offline`` reuses the last resolution, ``--refresh`` asks the index now.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from builder.api import plan_project
from builder.cli import main
from tests.integration.local_index import LocalIndex, write_wheel


def _pip_lines(plan: object) -> list[str]:
    text = plan.step("pip").inputs.requirements_txt  # type: ignore[attr-defined]
    return [line for line in text.splitlines() if not line.startswith("--")]


def test_a_new_release_is_planned_after_the_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"ttlpkg{uuid.uuid4().hex[:8]}"
    served = tmp_path / "served"
    cache = tmp_path / "cache"
    with LocalIndex(served) as index:
        write_wheel(served / "files", name, "1.0", "VALUE = 1\n")
        app = tmp_path / "app"
        app.mkdir()
        (app / "main.py").write_text("print('x')\n")
        (app / "requirements.txt").write_text(f"--index-url {index.url('simple/')}\n{name}\n")
        (app / "cerebrium.toml").write_text(
            '[cerebrium.deployment]\nname = "ttl"\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
        )

        def plan(**kwargs: bool) -> tuple[list[str], str | None]:
            found, analysis, _ = plan_project(app, cache_dir=cache, **kwargs)
            return _pip_lines(found), analysis.status("pip").reason

        assert plan(resolve=True)[0] == [f"{name}==1.0"]
        write_wheel(served / "files", name, "1.1", "VALUE = 2\n")
        assert plan(resolve=True)[0] == [f"{name}==1.0"]  # within the TTL: the stored resolution
        monkeypatch.setenv("BUILDER_RESOLVE_TTL", "0")
        lines, reason = plan(resolve=True)
        assert lines == [f"{name}==1.1"]
        assert reason is not None and "1.1" in reason, reason
        _, _, diagnostics = plan_project(app, cache_dir=cache, offline=True)
        assert f"{name} latest → 1.1" in [d.message for d in diagnostics if d.level == "note"]
        write_wheel(served / "files", name, "1.2", "VALUE = 3\n")
        monkeypatch.setenv("BUILDER_RESOLVE_TTL", "3600")
        assert plan(offline=True)[0] == [f"{name}==1.1"]  # the last resolution, whatever the index has
        assert plan(refresh=True)[0] == [f"{name}==1.2"]  # asked now, within the TTL
        assert main(["plan", str(app), "--cache-dir", str(cache), "--offline", "--format", "json"]) == 0


def test_offline_without_a_stored_resolution_plans_the_specs_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('x')\n")
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "off"\n[cerebrium.dependencies.pip]\nnumpy = "latest"\n'
    )
    assert main(["plan", str(app), "--cache-dir", str(tmp_path / "cache"), "--offline"]) == 0
    err = capsys.readouterr().err
    assert "no earlier resolution" in err and "offline" in err


def test_resolving_names_apt_and_conda_packages_it_leaves_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('x')\n")
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "al"\n[cerebrium.dependencies.apt]\n'
        'curl = "latest"\nffmpeg = "7:5.1.6-0+deb12u1"\n'
        '[cerebrium.dependencies.conda]\nnumpy = "latest"\ncuda = ">=11.7"\n'
    )
    assert main(["plan", str(app), "--cache-dir", str(tmp_path / "cache"), "--offline"]) == 0
    err = capsys.readouterr().err
    assert "apt packages without a version (curl) are not re-resolved" in err
    assert "conda packages without a version (numpy) are not re-resolved" in err


def test_plans_resolve_by_default_and_fall_back_when_the_index_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BUILDER_RESOLVE", raising=False)  # the default a user gets (tests/conftest turns it off)
    name = f"defpkg{uuid.uuid4().hex[:8]}"
    served = tmp_path / "served"
    cache = tmp_path / "cache"
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('x')\n")
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "def"\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )

    def plan(**kwargs: object) -> tuple[list[str], str | None, list[str]]:
        found, analysis, diags = plan_project(app, cache_dir=kwargs.pop("cache", cache), **kwargs)  # type: ignore[arg-type]
        return _pip_lines(found), analysis.status("pip").reason, [f"{d.level}: {d.message}" for d in diags]

    with LocalIndex(served) as index:
        write_wheel(served / "files", name, "1.0", "VALUE = 1\n")
        (app / "requirements.txt").write_text(f"--index-url {index.url('simple/')}\n{name}\n")
        assert plan()[0] == [f"{name}==1.0"]  # no flag: resolved
        write_wheel(served / "files", name, "1.1", "VALUE = 2\n")
        assert plan()[0] == [f"{name}==1.0"]  # within the TTL
        monkeypatch.setenv("BUILDER_RESOLVE_TTL", "0")
        lines, reason, diags = plan()
        assert lines == [f"{name}==1.1"]
        assert reason is not None and "1.1" in reason, reason
        assert f"note: {name} latest → 1.1" in diags
        # the opt-outs plan the spec as written, without asking the index
        assert plan(resolve=False)[0] == [name]
        monkeypatch.setenv("BUILDER_RESOLVE", "off")
        assert plan()[0] == [name]
        assert plan(refresh=True)[0] == [f"{name}==1.1"]  # an explicit --refresh still resolves
        monkeypatch.delenv("BUILDER_RESOLVE")
        assert main(["plan", str(app), "--cache-dir", str(cache), "--no-resolve", "--format", "json"]) == 0
        assert f"{name}==" not in capsys.readouterr().out
    # the index is gone: the last resolution answers, with a warning; with none, the specs as written
    lines, _, diags = plan()
    assert lines == [f"{name}==1.1"]
    assert any(d.startswith("warning: could not ask the package index") for d in diags), diags
    lines, _, diags = plan(cache=tmp_path / "other-cache")
    assert lines == [name]
    assert any(d.startswith("warning: could not resolve pip requirements") for d in diags), diags
    assert main(["plan", str(app), "--cache-dir", str(tmp_path / "other-cache")]) == 0
    assert "could not resolve pip requirements" in capsys.readouterr().err
