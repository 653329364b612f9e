"""Which way a build copies its files: onto the recorded files base, or whole (then kept as the new base)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.config import load_config
from builder.files_bases import choose_route, record_route
from builder.plan.files_base import base_image
from builder.plan.make import make_plan
from builder.plan.model import Plan, StepKind

TOML = '[cerebrium.deployment]\nname = "bases"\npython_version = "3.11"\ninclude = ["*"]\nexclude = [".*"]\n'


@dataclass
class Store:
    """What the routes need of the cache: its directory."""

    path: Path


def _project(root: Path, count: int = 2100) -> Path:
    root.mkdir()
    (root / "cerebrium.toml").write_text(TOML)
    (root / "main.py").write_text("print('x')\n")
    for i in range(count):
        sub = root / "data" / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"{i}\n")
    return root


def _plan(root: Path) -> Plan:
    return make_plan(load_config(root))


def test_whole_then_onto_the_base_then_the_same_way_again(tmp_path: Path) -> None:
    root, store = _project(tmp_path / "p"), Store(tmp_path / "cache")
    kept: set[str] = set()
    first = _plan(root)
    route = choose_route(first, store, lambda ref: ref in kept)
    files = first.get(StepKind.FILES)
    assert files is not None and route.changes is None and route.note is None
    assert route.export == base_image("bases", route.parent, files.inputs.dest, files.inputs.manifest.digest)
    kept.add(route.export)  # the engine made it
    record_route(first, store, route, [])

    (root / "data" / "d00" / "f0000.txt").write_text("edited\n")
    (root / "data" / "d20" / "f2000.txt").unlink()
    second = _plan(root)
    onto = choose_route(second, store, lambda ref: ref in kept)
    assert onto.changes is not None and onto.export is None
    assert [e.path for e in onto.changes.copy.entries] == ["data/d00/f0000.txt"]
    assert onto.changes.remove == ("data/d00/f0000.txt", "data/d20/f2000.txt")
    assert onto.note is not None and "2 changed files copied onto the files as last built whole" in onto.note.message
    record_route(second, store, onto, [])

    # a whole copy of other files becomes the current base ...
    for d in ("d05", "d06"):
        (root / "data" / d).rename(root / d)
    third = _plan(root)
    whole = choose_route(third, store, lambda ref: ref in kept)
    assert whole.changes is None and whole.export is not None  # 400 paths changed: above 10% of 2,101
    kept.add(whole.export)
    record_route(third, store, whole, [])
    # ... yet the second state, built onto the first base, is built that way again (the plan predicts a hit)
    for d in ("d05", "d06"):
        (root / d).rename(root / "data" / d)
    again = choose_route(second, store, lambda ref: ref in kept)
    assert again.changes == onto.changes


def test_a_lost_base_means_a_whole_copy_and_a_note(tmp_path: Path) -> None:
    root, store = _project(tmp_path / "p"), Store(tmp_path / "cache")
    first = _plan(root)
    route = choose_route(first, store, lambda ref: False)
    record_route(first, store, route, [])
    (root / "main.py").write_text("print('edited')\n")
    lost = choose_route(_plan(root), store, lambda ref: False)
    assert lost.changes is None and lost.export is not None
    assert lost.note is not None and "no longer has the files base" in lost.note.message


def test_small_projects_and_no_cache_copy_whole_without_a_base(tmp_path: Path) -> None:
    small = _plan(_project(tmp_path / "small", count=10))
    route = choose_route(small, Store(tmp_path / "cache"), lambda ref: True)
    assert route.changes is None and route.export is None
    record_route(small, Store(tmp_path / "cache"), route, [])
    assert not (tmp_path / "cache").exists()
    big = _plan(_project(tmp_path / "big"))
    assert choose_route(big, object(), lambda ref: True).export is None  # a store without a directory
