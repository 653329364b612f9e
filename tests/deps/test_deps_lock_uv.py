"""uv back-end: real `uv pip compile` against local wheels, the resolution cache, failures."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from deps_helpers import CountingRunner

from builder.deps.lock import MemoryResolutionStore, ResolutionStore
from builder.deps.lock.uv import compile_pip, export_uv_lock, resolution_key
from builder.deps.pip import pip_set_from_file, pip_set_from_inline
from builder.errors import LockError

FIXTURE_UVPROJECT = Path(__file__).resolve().parents[2] / "fixtures" / "deps" / "uvproject"


def test_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(MemoryResolutionStore(), ResolutionStore)


def test_compile_pins_exact_versions_offline(wheel_project: Path) -> None:
    pip_set = pip_set_from_file("requirements.txt", project_dir=wheel_project)
    runner = CountingRunner(subprocess.run)
    locked = compile_pip(
        pip_set, python_version="3.12", store=MemoryResolutionStore(), runner=runner, project_dir=wheel_project
    )
    assert [r.line for r in locked.requirements] == ["alpha==1.1", "beta==2.5"]
    assert locked.locked and locked.no_index and locked.find_links == ("./wheels",)
    argv = runner.calls[0]
    assert argv[1:4] == ["pip", "compile", "-"]
    assert argv[argv.index("--python-version") + 1] == "3.12"
    assert argv[argv.index("--python-platform") + 1] == "x86_64-unknown-linux-gnu"


def test_constraints_are_passed_to_uv(wheel_project: Path) -> None:
    (wheel_project / "c.txt").write_text("beta<2.5\n")
    (wheel_project / "requirements.txt").write_text("--no-index\n--find-links ./wheels\n-c c.txt\nalpha\n")
    pip_set = pip_set_from_file("requirements.txt", project_dir=wheel_project)
    locked = compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore(), project_dir=wheel_project)
    assert [r.line for r in locked.requirements] == ["alpha==1.1", "beta==2.0"]


def test_generate_hashes(wheel_project: Path) -> None:
    pip_set = pip_set_from_file("requirements.txt", project_dir=wheel_project)
    locked = compile_pip(
        pip_set, python_version="3.12", store=MemoryResolutionStore(), generate_hashes=True, project_dir=wheel_project
    )
    assert all(len(r.hashes) == 1 and r.hashes[0].startswith("sha256:") for r in locked.requirements)


def test_second_compile_is_answered_from_the_store(wheel_project: Path) -> None:
    pip_set = pip_set_from_file("requirements.txt", project_dir=wheel_project)
    store = MemoryResolutionStore()
    first = compile_pip(pip_set, python_version="3.12", store=store, project_dir=wheel_project)
    refusing = CountingRunner(None)  # raises if called
    second = compile_pip(pip_set, python_version="3.12", store=store, runner=refusing, project_dir=wheel_project)
    assert second == first and refusing.calls == []


def test_cache_key_covers_python_hashes_and_indexes() -> None:
    base = pip_set_from_inline((("six", "latest"),), project_dir=Path("."))
    keys = {
        resolution_key(base, python_version="3.12", generate_hashes=False),
        resolution_key(base, python_version="3.11", generate_hashes=False),
        resolution_key(base, python_version="3.12", generate_hashes=True),
        resolution_key(replace(base, index_url="https://x.org/simple"), python_version="3.12", generate_hashes=False),
        resolution_key(
            replace(base, extra_index_urls=("https://y.org/simple",)), python_version="3.12", generate_hashes=False
        ),
    }
    assert len(keys) == 5
    respelled = pip_set_from_inline((("Six", "*"),), project_dir=Path("."))
    assert resolution_key(respelled, python_version="3.12", generate_hashes=False) == resolution_key(
        base, python_version="3.12", generate_hashes=False
    )


def test_unreachable_index_is_a_fast_clear_error() -> None:
    pip_set = replace(
        pip_set_from_inline((("six", "latest"),), project_dir=Path(".")), index_url="http://127.0.0.1:9/simple"
    )
    start = time.monotonic()
    with pytest.raises(LockError, match="could not reach the package index") as info:
        compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore(), timeout=60)
    assert time.monotonic() - start < 60  # bounded by the timeout, never a hang
    assert info.value.hint


def test_unresolvable_requirement_is_a_lock_error(wheel_project: Path) -> None:
    (wheel_project / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nalpha>=5\n")
    pip_set = pip_set_from_file("requirements.txt", project_dir=wheel_project)
    with pytest.raises(LockError, match="uv pip compile failed"):
        compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore(), project_dir=wheel_project)


def test_timeout_becomes_lock_error() -> None:
    def slow(argv: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    pip_set = pip_set_from_inline((("six", "latest"),), project_dir=Path("."))
    with pytest.raises(LockError, match="did not finish within 5 s"):
        compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore(), runner=slow, timeout=5)


def test_failed_compile_is_not_cached() -> None:
    def failing(argv: list[str], **kwargs: Any) -> Any:
        return subprocess.CompletedProcess(argv, 2, "", "error: boom")

    store = MemoryResolutionStore()
    pip_set = pip_set_from_inline((("six", "latest"),), project_dir=Path("."))
    with pytest.raises(LockError, match="boom"):
        compile_pip(pip_set, python_version="3.12", store=store, runner=failing)
    assert store.data == {}


def test_export_uv_lock_needs_the_files(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="needs pyproject.toml"):
        export_uv_lock(tmp_path)


def test_export_uv_lock_is_offline() -> None:
    text = export_uv_lock(FIXTURE_UVPROJECT)
    assert sorted(line for line in text.splitlines() if line and not line.startswith("#")) == [
        "idna==3.20",
        "six==1.17.0",
    ]


@pytest.mark.network
def test_compile_against_pypi() -> None:
    pip_set = pip_set_from_inline((("six", "latest"), ("idna", ">=3")), project_dir=Path("."))
    locked = compile_pip(pip_set, python_version="3.12", store=MemoryResolutionStore())
    assert {r.name for r in locked.requirements} == {"idna", "six"}
    assert all(r.specifier.startswith("==") for r in locked.requirements)


def test_cache_key_follows_local_package_metadata(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pyproject.toml").write_text('[project]\nname = "lib"\ndependencies = ["six"]\n')
    (tmp_path / "requirements.txt").write_text("-e ./lib\n")
    pip_set = pip_set_from_file("requirements.txt", project_dir=tmp_path)
    before = resolution_key(pip_set, python_version="3.12", generate_hashes=False, project_dir=tmp_path)
    (tmp_path / "lib" / "pyproject.toml").write_text('[project]\nname = "lib"\ndependencies = ["six", "idna"]\n')
    after = resolution_key(pip_set, python_version="3.12", generate_hashes=False, project_dir=tmp_path)
    assert before != after
