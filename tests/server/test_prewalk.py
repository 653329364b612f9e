"""The spare's walk ahead: it equals the normal walk; a change since either re-lists just the changed
directories (files changed) or makes it unusable (directories changed), never a stale walk."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.plan import fileset
from builder.plan.fileset import FileRules, scan_directory, select_files, walk
from builder.server import paths, prewalk
from builder.server.prewalk import ServedWalker, WalkAhead, hint_for, read_hint, rules_from_hint

RULES = FileRules(("*",), (".*", "*.log"), ("cerebrium.toml",))


def _project(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "cerebrium.toml").write_text("[cerebrium.deployment]\nname = 'x'\n")
    (root / "main.py").write_text("print('hi')\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "b.txt").write_text("b\n")
    (root / "pkg" / "debug.log").write_text("excluded\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    (root / "link").symlink_to("main.py")
    return root


def _ahead(root: Path, rules: FileRules = RULES) -> WalkAhead:
    ahead = WalkAhead(str(root.resolve()), rules)
    assert ahead.run(threading.Event())
    return ahead


def test_the_walk_ahead_is_the_normal_walk(tmp_path: Path) -> None:
    root = _project(tmp_path)
    walked = _ahead(root).take(str(root.resolve()), RULES)
    assert walked == walk(str(root.resolve()), RULES)


def _hint_file(tmp_path: Path, name: str) -> paths.HintFile:
    """A hint file in a server directory of its own, outside the project."""
    return paths.HintFile(paths.open_dir(str(tmp_path / "server"), create=True), name)


def test_select_files_takes_it_through_the_walker_instead_of_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "p")
    expected = select_files(root, RULES).manifest
    walker = ServedWalker(_hint_file(tmp_path, "hint.json"), _ahead(root))  # the hint lives outside the project

    def no_listing(directory: str, prefix: str) -> list[os.DirEntry[str]]:
        raise AssertionError(f"listed {directory}")

    monkeypatch.setattr(fileset, "scan_directory", no_listing)
    selection = select_files(root, RULES, walker=walker)
    assert selection.manifest.digest == expected.digest
    assert selection.manifest.entries == expected.entries


def _write_same_size(root: Path) -> None:
    (root / "pkg" / "a.py").write_text("a = 2\n")


def _chmod(root: Path) -> None:
    (root / "pkg" / "a.py").chmod(0o700)


def _touch(root: Path) -> None:
    os.utime(root / "pkg" / "sub" / "b.txt", ns=(1, 1))


def _create_deep(root: Path) -> None:
    (root / "pkg" / "sub" / "new.txt").write_text("new\n")


def _delete(root: Path) -> None:
    (root / "main.py").unlink()


def _rename_dir(root: Path) -> None:
    (root / "pkg" / "sub").rename(root / "pkg" / "moved")


def _new_dir(root: Path) -> None:
    (root / "pkg" / "sub" / "fresh").mkdir()


def _replace_symlink(root: Path) -> None:
    (root / "link").unlink()
    (root / "link").symlink_to("run.sh")


def _move_in(root: Path) -> None:
    outside = root.parent / "outside.txt"
    outside.write_text("from elsewhere\n")
    outside.rename(root / "pkg" / "arrived.txt")


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pkg" / "pipe")


def _two_dirs(root: Path) -> None:
    (root / "main.py").write_text("print('changed')\n")
    (root / "pkg" / "sub" / "b.txt").unlink()


#: Changes to files: the walk ahead re-lists the directories holding them.
FILE_CHANGES: list[Callable[[Path], None]] = [
    _write_same_size,
    _chmod,
    _touch,
    _create_deep,
    _delete,
    _replace_symlink,
    _move_in,
    _fifo,
    _two_dirs,
]
#: Changes to directories: the walk ahead is not used.
DIR_CHANGES: list[Callable[[Path], None]] = [_rename_dir, _new_dir]


@pytest.mark.parametrize("change", FILE_CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_a_file_change_after_the_walk_is_relisted_to_the_normal_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[Path], None]
) -> None:
    root = _project(tmp_path / "p")
    base = str(root.resolve())
    ahead = _ahead(root)
    change(root)
    expected = walk(base, RULES)
    listed: list[str] = []

    def counted(directory: str, prefix: str) -> list[os.DirEntry[str]]:
        listed.append(prefix)
        return scan_directory(directory, prefix)

    monkeypatch.setattr(fileset, "scan_directory", counted)
    assert ahead.take(base, RULES) == expected
    assert 1 <= len(listed) <= 2  # the changed directories only, not the project's three


@pytest.mark.parametrize("change", DIR_CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_a_directory_change_after_the_walk_makes_it_unusable(tmp_path: Path, change: Callable[[Path], None]) -> None:
    root = _project(tmp_path / "p")
    ahead = _ahead(root)
    change(root)
    assert ahead.take(str(root.resolve()), RULES) is None


def test_more_changed_directories_than_the_limit_make_it_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "p")
    ahead = _ahead(root)
    monkeypatch.setattr(prewalk, "MAX_RELISTED", 1)
    _two_dirs(root)
    assert ahead.take(str(root.resolve()), RULES) is None


def test_a_hard_linked_file_changed_through_another_path_is_noticed(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    outside = tmp_path / "elsewhere.py"
    os.link(root / "pkg" / "a.py", outside)
    base = str(root.resolve())
    assert _ahead(root).take(base, RULES) is not None  # linked but unchanged: usable
    ahead = _ahead(root)
    outside.write_text("a = 'changed from outside the project'\n")  # no watch on the project sees this
    assert ahead.take(base, RULES) is None


def test_other_rules_or_directory_or_a_second_take_get_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    base = str(root.resolve())
    assert _ahead(root).take(base, FileRules(("*",), (".*",), ("cerebrium.toml",))) is None
    assert _ahead(root).take(base + "-other", RULES) is None
    ahead = _ahead(root)
    assert ahead.take(base, RULES) is not None
    assert ahead.take(base, RULES) is None


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    ahead = _ahead(root)
    monkeypatch.setenv("BUILDER_PREWALK", "off")
    assert ahead.take(str(root.resolve()), RULES) is None


def test_a_command_that_arrives_first_stops_the_walk(tmp_path: Path) -> None:
    root = _project(tmp_path)
    stop = threading.Event()
    stop.set()
    ahead = WalkAhead(str(root.resolve()), RULES)
    assert not ahead.run(stop)
    assert ahead.take(str(root.resolve()), RULES) is None


def test_a_vanished_project_walks_nothing_ahead(tmp_path: Path) -> None:
    ahead = WalkAhead(str(tmp_path / "gone"), RULES)
    assert not ahead.run(threading.Event())


def test_start_walks_in_a_thread_that_finish_joins(tmp_path: Path) -> None:
    root = _project(tmp_path)
    walking = prewalk.start(hint_for(str(root.resolve()), RULES))
    assert walking is not None
    ahead = walking.finish()
    assert not any(t.name == "builder-prewalk" for t in threading.enumerate())  # nothing runs beside the command
    took = ahead.take(str(root.resolve()), RULES)
    assert took is None or took == walk(str(root.resolve()), RULES)  # finished or stopped early; never wrong


def test_the_served_walker_names_the_planned_project_for_the_next_spare(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    hint_file = _hint_file(tmp_path, "s.hint.json")
    base = str(root.resolve())
    walker = ServedWalker(hint_file)
    assert walker.walk(base, RULES) == walk(base, RULES)  # nothing ahead: the normal walk
    assert rules_from_hint(read_hint(hint_file)) == (base, RULES)
    walker = ServedWalker(hint_file, _ahead(root), read_hint(hint_file))
    (root / "pkg" / "late.py").write_text("changed after the walk ahead\n")
    assert walker.walk(base, RULES) == walk(base, RULES)  # the stale walk ahead is not used
    assert read_hint(_hint_file(tmp_path, "missing.json")) == {}


@pytest.mark.parametrize(
    "hint",
    [
        {},
        {"project": "/x"},
        {"project": 3, "rules": [[], [], []]},
        {"project": "/x", "rules": [["*"], []]},
        {"project": "/x", "rules": [["*"], [1], []]},
        {"project": "/x", "rules": "*"},
    ],
)
def test_hints_without_usable_rules_walk_nothing(hint: dict[str, object]) -> None:
    assert rules_from_hint(hint) is None
    assert prewalk.start(hint) is None


_NAMES = st.sampled_from(["a", "b.py", "c.log", ".hidden", "d", "e.txt", "cerebrium.toml"])
_TREES = st.lists(st.tuples(st.lists(_NAMES, min_size=1, max_size=3), st.booleans()), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tree=_TREES,
    include=st.sampled_from([("*",), ("a/*", "*.py"), ("d",)]),
    exclude=st.sampled_from([(".*",), ("*.log", "d/e.txt"), ()]),
)
def test_walk_ahead_equals_the_normal_walk_for_any_tree(
    tmp_path_factory: pytest.TempPathFactory,
    tree: list[tuple[list[str], bool]],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    root = tmp_path_factory.mktemp("tree")
    for parts, executable in tree:
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                continue
            path.write_text("/".join(parts))
        except (FileExistsError, NotADirectoryError):
            continue  # a file already stands where this needs a directory
        if executable:
            path.chmod(0o755)
    rules = FileRules(include, exclude, ("cerebrium.toml",))
    base = str(root.resolve())
    assert _ahead(root, rules).take(base, rules) == walk(base, rules)


def test_more_directories_than_the_watch_budget_walk_nothing_ahead(tmp_path: Path) -> None:
    root = _project(tmp_path)  # root, pkg, pkg/sub: three directories to watch (.git is excluded)
    base = str(root.resolve())
    assert not WalkAhead(base, RULES).run(threading.Event(), budget=2)
    ahead = WalkAhead(base, RULES)
    assert ahead.run(threading.Event(), budget=3)
    assert ahead.take(base, RULES) == walk(base, RULES)


def test_the_budget_is_a_share_of_the_users_watches(tmp_path: Path) -> None:
    limits = tmp_path / "max_user_watches"
    limits.write_text("8192\n")
    assert prewalk.watch_budget(str(limits)) == 2048
    limits.write_text("1048576\n")
    assert prewalk.watch_budget(str(limits)) == prewalk.MAX_WATCHES
    assert prewalk.watch_budget(str(tmp_path / "missing")) == 2048


@pytest.mark.parametrize(
    "rules",
    [RULES, FileRules(("pkg/",), ()), FileRules(("sub",), ()), FileRules(("*.py", "run.sh"), ("a.py",))],
    ids=["everything", "dir-slash", "dir-name", "names"],
)
def test_listing_only_some_directories_finds_what_the_whole_walk_finds_in_them(
    tmp_path: Path, rules: FileRules
) -> None:
    """``walk(only=...)``: the files directly in those directories, exactly as the whole walk has them
    (directory patterns inherited from the parents included)."""
    base = str(_project(tmp_path / "p").resolve())
    whole = walk(base, rules)[0]
    for dirs in ([""], ["pkg"], ["pkg/sub"], ["", "pkg", "pkg/sub"]):
        expected = [f for f in whole if f[0].rpartition("/")[0] in dirs]
        assert sorted(walk(base, rules, only=dirs)[0]) == expected
