"""Project-file selection: include/exclude rules, links, modes, stat-cache reuse, errors."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from builder.errors import PlanError
from builder.plan.fileset import FileRules, select_files
from builder.plan.protocols import MemoryStatSource
from tests.privileges import run_python, traversable_tmp_dir

TREE = {
    "main.py": "m",
    "cerebrium.toml": "[cerebrium.deployment]\n",
    "pkg/a.py": "a",
    "pkg/sub/b.py": "b",
    "pkg/data.json": "{}",
    "docs/readme.md": "r",
    ".env": "s",
    ".git/HEAD": "h",
    "pkg/.hidden/x.py": "x",
    "pkg/.secret": "y",
    "logs/run.log": "l",
}


def make_tree(root: Path, tree: dict[str, str] = TREE) -> Path:
    for rel, text in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def paths(root: Path, include: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = (".*",)) -> list[str]:
    return [e.path for e in select_files(root, FileRules(include, exclude)).manifest]


NON_DOT = ["docs/readme.md", "logs/run.log", "main.py", "pkg/a.py", "pkg/data.json", "pkg/sub/b.py"]

RULES = [
    (("*",), (".*",), NON_DOT),
    (("./*",), (".*",), NON_DOT),
    ((".",), (".*",), NON_DOT),
    (("pkg/",), (".*",), ["pkg/a.py", "pkg/data.json", "pkg/sub/b.py"]),
    (("./pkg/",), (".*",), ["pkg/a.py", "pkg/data.json", "pkg/sub/b.py"]),
    (("pkg",), (".*",), ["pkg/a.py", "pkg/data.json", "pkg/sub/b.py"]),
    (("*.py",), (".*",), ["main.py", "pkg/a.py", "pkg/sub/b.py"]),
    (("pkg/*.py",), (".*",), ["pkg/a.py", "pkg/sub/b.py"]),
    (("main.py", "docs/"), (".*",), ["docs/readme.md", "main.py"]),
    (("*",), (".*", "*.log"), [p for p in NON_DOT if not p.endswith(".log")]),
    (("*",), (".*", "logs/"), [p for p in NON_DOT if not p.startswith("logs/")]),
    (("*",), (".*", "sub"), [p for p in NON_DOT if "/sub/" not in p]),
    (("*",), (".*", "pkg/sub/*"), [p for p in NON_DOT if "/sub/" not in p]),
    (("*",), (".*", "*.py"), ["docs/readme.md", "logs/run.log", "pkg/data.json"]),
    (("*",), (), sorted([*NON_DOT, ".env", ".git/HEAD", "pkg/.hidden/x.py", "pkg/.secret"])),
    (("pkg/",), ("*.py",), ["pkg/.secret", "pkg/data.json"]),
    ((), (".*",), []),
]


@pytest.mark.parametrize(("include", "exclude", "expected"), RULES, ids=[f"{i}-{e}" for i, e, _ in RULES])
def test_rules_select(tmp_path: Path, include: tuple[str, ...], exclude: tuple[str, ...], expected: list[str]) -> None:
    assert paths(make_tree(tmp_path), include, exclude) == expected


def test_dot_pattern_drops_dot_dirs_at_any_depth(tmp_path: Path) -> None:
    selected = paths(make_tree(tmp_path))
    assert not any(part.startswith(".") for p in selected for part in p.split("/"))


def test_config_file_is_never_a_project_file(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert "cerebrium.toml" not in paths(tmp_path, ("*",), ())
    (tmp_path / "pkg" / "cerebrium.toml").write_text("nested is an ordinary file")
    assert "pkg/cerebrium.toml" in paths(tmp_path)


def test_entries_carry_type_size_and_blake3_digest(tmp_path: Path) -> None:
    make_tree(tmp_path, {"run.sh": "#!/bin/sh\n", "a.txt": "hello"})
    os.chmod(tmp_path / "run.sh", 0o755)
    os.symlink("a.txt", tmp_path / "link")
    entries = {e.path: e for e in select_files(tmp_path, FileRules()).manifest}
    assert entries["run.sh"].type == "exec"
    assert entries["a.txt"].type == "file"
    assert entries["a.txt"].size == 5
    assert entries["a.txt"].digest == "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
    assert entries["link"] == ("link", "symlink", 5, "a.txt")


def test_symlinked_directory_is_not_followed(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.txt": "s"})
    project = make_tree(tmp_path / "proj", {"main.py": "m"})
    os.symlink(outside, project / "escape")
    entries = {e.path: e for e in select_files(project, FileRules()).manifest}
    assert set(entries) == {"escape", "main.py"}
    assert entries["escape"].type == "symlink"


def test_symlinks_are_recorded_by_target_text(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": "1", "b": "1"})
    os.symlink("a", tmp_path / "l")
    first = select_files(tmp_path, FileRules()).manifest.digest
    os.unlink(tmp_path / "l")
    os.symlink("b", tmp_path / "l")
    assert select_files(tmp_path, FileRules()).manifest.digest != first


def test_special_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    make_tree(tmp_path, {"main.py": "m"})
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        selection = select_files(tmp_path, FileRules())
    finally:
        sock.close()
    assert [e.path for e in selection.manifest] == ["main.py"]
    assert sorted(selection.skipped) == ["pipe", "sock"]
    assert len(selection.notes) == 1 and "2 special file(s)" in selection.notes[0].message


def test_stat_source_avoids_rereading_unchanged_files(tmp_path: Path) -> None:
    make_tree(tmp_path)
    old = 1_600_000_000_000_000_000
    for dirpath, _, names in os.walk(tmp_path):
        for name in names:
            os.utime(os.path.join(dirpath, name), ns=(old, old))
    source = MemoryStatSource()
    first = select_files(tmp_path, FileRules(), stat_source=source)
    second = select_files(tmp_path, FileRules(), stat_source=source)
    assert first.hashed == len(NON_DOT) and first.remembered == 0
    assert second.hashed == 0 and second.remembered == len(NON_DOT)
    assert first.manifest == second.manifest
    (tmp_path / "main.py").write_text("changed")  # new mtime and size
    third = select_files(tmp_path, FileRules(), stat_source=source)
    assert third.hashed == 1
    assert third.manifest != first.manifest


def test_recently_modified_files_are_not_remembered(tmp_path: Path) -> None:
    """A file written within the racy window could change again within the same mtime tick."""
    make_tree(tmp_path, {"fresh.py": "a"})
    source = MemoryStatSource()
    select_files(tmp_path, FileRules(), stat_source=source)
    assert select_files(tmp_path, FileRules(), stat_source=source).hashed == 1


def test_root_bound_stat_source_gets_relative_paths(tmp_path: Path) -> None:
    class Rooted(MemoryStatSource):
        root = "bound"

    make_tree(tmp_path, {"a.py": "a"})
    os.utime(tmp_path / "a.py", ns=(10**18, 10**18))
    source = Rooted()
    select_files(tmp_path, FileRules(), stat_source=source)
    assert [k[0] for k in source._d] == ["a.py"]


def test_bulk_lookup_of_wrong_length_is_an_error(tmp_path: Path) -> None:
    class Broken(MemoryStatSource):
        def get_digests(self, keys):  # type: ignore[no-untyped-def]
            return []

    make_tree(tmp_path, {"a.py": "a"})
    with pytest.raises(PlanError, match="different number"):
        select_files(tmp_path, FileRules(), stat_source=Broken())


_SELECT_AS_USER = """
import json, sys
from pathlib import Path
from builder.errors import PlanError
from builder.plan.fileset import FileRules, select_files
rules = FileRules(*(tuple(json.loads(arg)) for arg in sys.argv[2:]))
try:
    selection = select_files(Path(sys.argv[1]), rules)
except PlanError as exc:
    print(json.dumps({"error": str(exc), "hint": exc.hint}))
else:
    print(json.dumps({"paths": [e.path for e in selection.manifest]}))
"""


def _select_as_user(root: Path, *patterns: tuple[str, ...]) -> dict[str, object]:
    """select_files(root, FileRules(*patterns)) as an unprivileged user: ``{"error", "hint"}`` or ``{"paths"}``.

    Root reads everything whatever the mode bits, so permission tests cannot run in-process as root.
    """
    done = run_python(_SELECT_AS_USER, str(root), *(json.dumps(p) for p in patterns))
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_unreadable_file_is_a_plan_error_naming_it() -> None:
    with traversable_tmp_dir() as root:
        make_tree(root, {"secret.py": "s", "open.py": "o"})
        os.chmod(root / "secret.py", 0)
        result = _select_as_user(root)
    assert "secret.py" in str(result.get("error")), result
    assert "exclude" in str(result["hint"] or "")


def test_unreadable_directory_is_a_plan_error_naming_it() -> None:
    with traversable_tmp_dir() as root:
        make_tree(root, {"locked/a.py": "a", "open.py": "o"})
        os.chmod(root / "locked", 0)
        refused = _select_as_user(root)
        excluded = _select_as_user(root, ("*",), (".*", "locked"))
    assert "locked" in str(refused.get("error")), refused
    assert excluded == {"paths": ["open.py"]}


def test_missing_project_directory(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot be read"):
        select_files(tmp_path / "nope", FileRules())


def test_non_utf8_file_name_is_an_error(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "a"})
    try:
        with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.py"), "w") as handle:
            handle.write("x")
    except OSError:
        pytest.skip("file system refuses non-UTF-8 names")
    with pytest.raises(PlanError, match="not valid UTF-8"):
        select_files(tmp_path, FileRules())


def test_large_and_empty_files_hash_like_small_ones(tmp_path: Path) -> None:
    import blake3

    big = os.urandom(3 << 20)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "empty").write_bytes(b"")
    entries = {e.path: e for e in select_files(tmp_path, FileRules()).manifest}
    assert entries["big.bin"] == ("big.bin", "file", len(big), "blake3:" + blake3.blake3(big).hexdigest())
    assert entries["empty"] == ("empty", "file", 0, "blake3:" + blake3.blake3(b"").hexdigest())


def test_a_large_project_remembers_new_digests_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above REMEMBER_ALWAYS files, one edited file is hashed again next time instead of rewriting the
    stat cache; enough edited files (or bytes) are remembered together.  A small project remembers each."""
    from builder.plan import fileset

    monkeypatch.setattr(fileset, "REMEMBER_ALWAYS", 5)
    monkeypatch.setattr(fileset, "REMEMBER_FILES", 3)
    old = 1_000_000_000  # long ago: not "racy"
    for i in range(8):
        (tmp_path / f"f{i}.txt").write_text(f"{i}\n")
        os.utime(tmp_path / f"f{i}.txt", ns=(old, old))
    stats = MemoryStatSource()
    rules = FileRules(("*",), ())
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 8  # the first walk: all remembered
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 0

    def edit(*names: str) -> None:
        for name in names:
            (tmp_path / name).write_text(f"edited {name}\n")
            os.utime(tmp_path / name, ns=(old + 1, old + 1))

    edit("f0.txt")
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 1
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 1  # not remembered: hashed again
    edit("f1.txt", "f2.txt")
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 3  # three: remembered together
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 0
    monkeypatch.setattr(fileset, "REMEMBER_ALWAYS", 100)
    edit("f3.txt")
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 1
    assert select_files(tmp_path, rules, stat_source=stats).hashed == 0  # a small project: remembered at once
