"""``builder lock``: writes exact pins, records the input digest, reuses the resolution cache."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from builder.cli import main
from builder.cli.commands import lock as lock_cmd
from builder.config import load_config
from builder.deps import resolve_dependencies
from builder.deps.lock import MemoryResolutionStore
from builder.deps.lock.files import CONDA_LOCK, PIP_LOCK, pip_input_digest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "deps"


def _helpers() -> Any:
    spec = importlib.util.spec_from_file_location(
        "deps_helpers_cli", FIXTURES.parents[1] / "tests/deps/deps_helpers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


helpers = _helpers()


@pytest.fixture
def shared_store(monkeypatch: pytest.MonkeyPatch) -> MemoryResolutionStore:
    """One in-memory resolution store for every `builder lock` run in the test."""
    store = MemoryResolutionStore()
    monkeypatch.setattr(lock_cmd, "open_store", lambda cache_dir: store)
    return store


class SubprocessSpy:
    """Counts subprocess.run calls while still running them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        self.real = subprocess.run
        monkeypatch.setattr(subprocess, "run", self)

    def __call__(self, argv: list[str], **kwargs: Any) -> Any:
        self.calls.append(list(argv))
        return self.real(argv, **kwargs)


def test_lock_writes_exact_pins_offline(
    tmp_path: Path,
    shared_store: MemoryResolutionStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    spy = SubprocessSpy(monkeypatch)
    assert main(["lock", str(project)]) == 0
    text = (project / PIP_LOCK).read_text()
    assert [ln for ln in text.splitlines() if not ln.startswith(("#", "-"))] == ["alpha==1.1", "beta==2.5"]
    assert "(2 pins, resolved with uv)" in capsys.readouterr().out
    config = load_config(project)
    declared = resolve_dependencies(config, use_lock=False).pip
    assert declared is not None
    assert f"# input-digest: {pip_input_digest(declared, '3.12')}" in text
    assert len(spy.calls) == 1

    # Second run: same inputs, answered from the resolution cache without any subprocess.
    assert main(["lock", str(project)]) == 0
    assert "from the resolution cache" in capsys.readouterr().out
    assert len(spy.calls) == 1
    assert (project / PIP_LOCK).read_text() == text

    deps = resolve_dependencies(config)
    assert deps.pip is not None and deps.pip.locked and deps.notes == ()


def test_changed_inputs_resolve_again_and_stale_lock_is_noted(
    tmp_path: Path, shared_store: MemoryResolutionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    assert main(["lock", str(project)]) == 0
    (project / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nalpha==1.0\n")
    deps = resolve_dependencies(load_config(project))
    assert deps.notes == ("pip lock is out of date (run builder lock)",)
    spy = SubprocessSpy(monkeypatch)
    assert main(["lock", str(project)]) == 0
    assert len(spy.calls) == 1
    assert "alpha==1.0\n" in (project / PIP_LOCK).read_text()
    assert resolve_dependencies(load_config(project)).notes == ()


def test_output_and_hashes(tmp_path: Path, shared_store: MemoryResolutionStore) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    out = tmp_path / "elsewhere.txt"
    assert main(["lock", str(project), "--output", str(out), "--generate-hashes"]) == 0
    text = out.read_text()
    assert text.count("--hash=sha256:") == 2
    assert not (project / PIP_LOCK).exists()


def test_lock_errors_exit_2_without_traceback(
    tmp_path: Path, shared_store: MemoryResolutionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    (project / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nalpha>=7\n")
    assert main(["lock", str(project)]) == 2
    err = capsys.readouterr().err
    assert "error: uv pip compile failed" in err and "Traceback" not in err


def test_bad_dependency_file_exit_2(
    tmp_path: Path, shared_store: MemoryResolutionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    (project / "requirements.txt").write_text("six\nx; rm -rf /\n")
    assert main(["lock", str(project)]) == 2
    assert "requirements.txt:2: cerebrium.dependencies.paths.pip: invalid requirement" in capsys.readouterr().err


def test_from_uv_lock(tmp_path: Path, shared_store: MemoryResolutionStore, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "uvproject"
    shutil.copytree(FIXTURES / "uvproject", project)
    assert main(["lock", str(project), "--from-uv-lock"]) == 0
    assert "(2 pins, from uv.lock)" in capsys.readouterr().out
    assert "idna==3.20\nsix==1.17.0\n" in (project / "requirements.txt").read_text()
    deps = resolve_dependencies(load_config(project))
    assert deps.pip is not None and deps.pip.locked
    assert [r.line for r in deps.pip.requirements] == ["idna==3.20", "six==1.17.0"]


def test_conda_lock_with_a_local_channel(
    tmp_path: Path,
    shared_store: MemoryResolutionStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = helpers.load_channel_module()
    channel = module.build_channel(tmp_path / "channel", module.DEFAULT_PACKAGES)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conda_pkglist.txt").write_text(f"-c {channel.as_uri()}\ngamma\n")
    (project / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "c"\n\n[cerebrium.dependencies.paths]\nconda = "conda_pkglist.txt"\n'
    )
    monkeypatch.setattr(shutil, "which", lambda exe, **kw: None)  # no conda executable: rattler solves
    assert main(["lock", str(project)]) == 0
    assert "(3 packages, solved with rattler)" in capsys.readouterr().out
    assert "name: gamma" in (project / CONDA_LOCK).read_text()
    deps = resolve_dependencies(load_config(project))
    assert deps.conda is not None and deps.conda.lock_file == CONDA_LOCK
    assert main(["lock", str(project)]) == 0
    assert "from the resolution cache" in capsys.readouterr().out


def test_unreachable_conda_channel_fails_fast(
    tmp_path: Path,
    shared_store: MemoryResolutionStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conda_pkglist.txt").write_text("-c http://127.0.0.1:9/chan\ngamma\n")
    (project / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "c"\n\n[cerebrium.dependencies.paths]\nconda = "conda_pkglist.txt"\n'
    )
    monkeypatch.setattr(shutil, "which", lambda exe, **kw: None)
    assert main(["lock", str(project)]) == 2
    assert "could not fetch conda repodata" in capsys.readouterr().err


def test_open_store_falls_back_to_memory_or_uses_the_cache(tmp_path: Path) -> None:
    store = lock_cmd.open_store(tmp_path / "cache")
    store.put("k", {"v": 1})
    assert store.get("k") == {"v": 1}


def test_resolution_cache_persists_between_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = helpers.make_wheel_project(tmp_path / "proj")
    assert main(["lock", str(project), "--cache-dir", str(tmp_path / "c")]) == 0
    spy = SubprocessSpy(monkeypatch)
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(tmp_path / "c"))
    assert main(["lock", str(project)]) == 0
    assert spy.calls == []


@pytest.mark.network
def test_lock_unpinned_fixture_against_pypi(
    tmp_path: Path, shared_store: MemoryResolutionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "unpinned"
    shutil.copytree(FIXTURES / "unpinned", project)
    assert main(["lock", str(project)]) == 0
    pins = [ln for ln in (project / PIP_LOCK).read_text().splitlines() if not ln.startswith("#")]
    assert {p.split("==")[0] for p in pins} == {"charset-normalizer", "idna", "six"}
    assert all("==" in p for p in pins)
    spy = SubprocessSpy(monkeypatch)
    assert main(["lock", str(project)]) == 0
    assert spy.calls == []


def test_lock_with_unusable_cache_dir_warns_and_still_runs(tmp_path, capsys):
    """An unusable --cache-dir degrades to an in-memory store: a warning, never an internal error."""
    from builder.cli import main

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    project = tmp_path / "app"
    project.mkdir()
    (project / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "a"\n')
    code = main(["lock", str(project), "--cache-dir", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 0
    assert "unusable" in err
    assert "internal error" not in err
