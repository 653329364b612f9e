"""resolve_dependencies(): inline vs paths, both-given conflicts, lock files and notes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from deps_helpers import make_config

from builder.config.model import SourceMap
from builder.deps import PIP_LOCK_STALE, canonical_bytes, resolve_dependencies
from builder.deps.lock.files import PIP_LOCK, pip_input_digest, render_pip_lock
from builder.deps.pip import pip_set_from_inline
from builder.errors import DependencyError


def test_empty_config_gives_no_sets(tmp_path: Path) -> None:
    deps = resolve_dependencies(make_config(tmp_path))
    assert (deps.pip, deps.apt, deps.conda, deps.notes) == (None, None, None, ())


def test_inline_tables(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, pip={"Torch": "2.0.0", "numpy": "latest"}, apt={"ffmpeg": "latest"}, conda={"cuda": ">=11.7"}
    )
    deps = resolve_dependencies(config)
    assert deps.pip is not None and [r.line for r in deps.pip.requirements] == ["numpy", "torch==2.0.0"]
    assert deps.apt is not None and deps.apt.args() == ("ffmpeg",)
    assert deps.conda is not None and [s.spec for s in deps.conda.specs] == ["cuda >=11.7"]
    assert not deps.pip.locked


def test_paths_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\n-e ./lib\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "pkglist.txt").write_text("curl\n")
    (tmp_path / "conda_pkglist.txt").write_text("numpy\n")
    config = make_config(
        tmp_path, paths={"pip": "requirements.txt", "apt": "pkglist.txt", "conda": "conda_pkglist.txt"}
    )
    deps = resolve_dependencies(config)
    assert deps.pip is not None and deps.pip.source == "requirements.txt"
    assert deps.pip.local_paths == ("lib",)
    assert deps.apt is not None and deps.apt.source == "pkglist.txt"
    assert deps.conda is not None and deps.conda.source == "conda_pkglist.txt"


@pytest.mark.parametrize(
    ("manager", "table"), [("pip", {"six": "latest"}), ("apt", {"curl": "latest"}), ("conda", {"numpy": "latest"})]
)
def test_inline_and_paths_for_the_same_manager_is_an_error(tmp_path: Path, manager: str, table: dict[str, str]) -> None:
    (tmp_path / "deps.txt").write_text("")
    config = make_config(tmp_path, paths={manager: "deps.txt"}, **{manager: table})  # type: ignore[arg-type]
    config = replace(config, source_map=SourceMap("cerebrium.toml", ((f"cerebrium.dependencies.{manager}", 7),)))
    with pytest.raises(DependencyError) as info:
        resolve_dependencies(config)
    assert f"cerebrium.dependencies.{manager}" in info.value.message
    assert f"cerebrium.dependencies.paths.{manager}" in info.value.message
    assert info.value.line == 7 and info.value.file == "cerebrium.toml"


def test_empty_inline_table_with_paths_is_fine(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    deps = resolve_dependencies(make_config(tmp_path, pip={}, paths={"pip": "requirements.txt"}))
    assert deps.pip is not None


def test_paths_escape_is_rejected_before_reading(tmp_path: Path) -> None:
    config = make_config(tmp_path / "p", paths={"apt": "../../etc/passwd"})
    with pytest.raises(DependencyError, match="leaves the project") as info:
        resolve_dependencies(config)
    assert info.value.key_path == "cerebrium.dependencies.paths.apt"


def _write_lock(config_dir: Path, pip: dict[str, str], pins: str, python: str = "3.12") -> None:
    declared = pip_set_from_inline(tuple(sorted(pip.items())), project_dir=config_dir)
    locked = replace(
        pip_set_from_inline(
            tuple(sorted((n, v) for n, v in (p.split("==") for p in pins.split()))), project_dir=config_dir
        )
    )
    text = render_pip_lock(locked, input_digest=pip_input_digest(declared, python), python_version=python)
    (config_dir / "cerebrium.lock").mkdir(exist_ok=True)
    (config_dir / PIP_LOCK).write_text(text)


def test_matching_lock_is_used(tmp_path: Path) -> None:
    _write_lock(tmp_path, {"alpha": "latest"}, "alpha==1.1 beta==2.5")
    deps = resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}))
    assert deps.pip is not None and deps.pip.locked
    assert [r.line for r in deps.pip.requirements] == ["alpha==1.1", "beta==2.5"]
    assert deps.pip.source == PIP_LOCK
    assert deps.notes == ()


def test_use_lock_false_ignores_the_lock(tmp_path: Path) -> None:
    _write_lock(tmp_path, {"alpha": "latest"}, "alpha==1.1")
    deps = resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}), use_lock=False)
    assert deps.pip is not None and not deps.pip.locked


@pytest.mark.parametrize(
    ("pip", "python"),
    [({"alpha": ">=1"}, "3.12"), ({"alpha": "latest", "gamma": "1"}, "3.12"), ({"alpha": "latest"}, "3.11")],
)
def test_stale_lock_adds_a_note_and_uses_the_specs(tmp_path: Path, pip: dict[str, str], python: str) -> None:
    _write_lock(tmp_path, {"alpha": "latest"}, "alpha==1.1")
    deps = resolve_dependencies(make_config(tmp_path, pip=pip, python_version=python))
    assert deps.pip is not None and not deps.pip.locked
    assert deps.notes == (PIP_LOCK_STALE,)


def test_lock_matches_across_equivalent_spellings(tmp_path: Path) -> None:
    _write_lock(tmp_path, {"Alpha": "*"}, "alpha==1.1")
    deps = resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}))
    assert deps.pip is not None and deps.pip.locked


def test_lock_without_header_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.lock").mkdir()
    (tmp_path / PIP_LOCK).write_text("alpha==1.0\n")
    with pytest.raises(DependencyError, match="input-digest") as info:
        resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}))
    assert info.value.file == PIP_LOCK


def test_locked_and_unlocked_sets_hash_differently(tmp_path: Path) -> None:
    _write_lock(tmp_path, {"alpha": "latest"}, "alpha==1.1")
    locked = resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}))
    unlocked = resolve_dependencies(make_config(tmp_path, pip={"alpha": "latest"}), use_lock=False)
    assert canonical_bytes(locked.pip) != canonical_bytes(unlocked.pip)  # type: ignore[arg-type]
