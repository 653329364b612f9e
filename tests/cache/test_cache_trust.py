"""The step cache trusts nothing it reads (issue 20, finding 2).

Reproductions: a pickle planted in the store (as a value, as a key, in a value file) runs nothing; a row
whose ``filename`` points outside the store is neither read nor deleted; no symlink in the cache directory
is followed (``.probe-<pid>``, the lock, the database, value directories); a planted ``Settings`` table
changes nothing; the cache is created 0700 with 0600 files; a cache another user owns or may write is
refused with a clear error unless ``BUILDER_CACHE_SHARED=1`` says it is shared on purpose.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from cache_helpers import make_record

from cache import CacheRefused, CacheUnavailable, StepRecord, open_cache
from cache.steps import step_key
from cache.store import LOCK_NAME, STORE_DIRNAME
from tests.privileges import NOBODY, dropping_privileges, run_python, traversable_tmp_dir

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(
    not dropping_privileges(), reason="making a cache directory another user owns needs root"
)
_MODE_BINARY, _MODE_PICKLE = 2, 4


class _Payload:
    """Unpickling this creates ``marker``: proof that code from the cache ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _big(key: str) -> StepRecord:
    """A record large enough to be stored in a value file rather than in its row."""
    return replace(make_record(key), inputs_manifest={f"file{i}": "0" * 64 for i in range(2000)})


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / STORE_DIRNAME / "cache.db", isolation_level=None)


def _plant_row(
    root: Path,
    key: object,
    *,
    raw: int = 1,
    mode: int = 1,
    filename: str | None = None,
    value: object = None,
    size: int = 0,
) -> None:
    with _db(root) as con:
        con.execute(
            "INSERT OR REPLACE INTO Cache (key, raw, store_time, expire_time, access_time, access_count,"
            " tag, size, mode, filename, value) VALUES (?, ?, 0, NULL, 0, 0, NULL, ?, ?, ?, ?)",
            (key, raw, size, mode, filename, value),
        )


def _exercise(root: Path, key: str) -> None:
    """Everything a command does with a cache: look up, list, summarise, prune, overwrite, clear."""
    with open_cache(root) as c:
        assert c.steps.get(key) is None
        assert not c.steps.is_built(key)
        c.summary()
        c.prune(max_bytes=1)
        c.steps.record_step(make_record(key))
        assert c.steps.is_built(key)
        c.clear()


def test_a_planted_pickle_runs_nothing(tmp_path: Path) -> None:
    root, marker = tmp_path / "cache", tmp_path / "ran"
    open_cache(root).close()
    payload = pickle.dumps(_Payload(marker))
    _plant_row(root, step_key("value"), mode=_MODE_PICKLE, value=payload)  # a pickled value in the row
    _plant_row(root, payload, raw=0, mode=1, value=b"{}")  # a pickled (non-raw) key
    pickled_file = "ab/cd/" + "0" * 28 + ".val"  # a pickled value in a file of the store
    (root / STORE_DIRNAME / "ab" / "cd").mkdir(parents=True)
    (root / STORE_DIRNAME / pickled_file).write_bytes(payload)
    _plant_row(root, step_key("file"), mode=_MODE_PICKLE, filename=pickled_file, size=len(payload))
    for key in ("value", "file"):
        _exercise(root, key)
    assert not marker.exists()
    # The same rows through diskcache's own Disk run the payload: the reproduction is real.
    import diskcache  # type: ignore[import-untyped]

    _plant_row(root, step_key("value"), mode=_MODE_PICKLE, value=payload)
    plain = diskcache.Cache(str(root / STORE_DIRNAME))
    plain.get(step_key("value"))
    plain.close()
    assert marker.exists()


def test_a_filename_row_outside_the_store_is_neither_read_nor_deleted(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    secret = tmp_path / "secret"
    secret.write_text('{"stolen": true}\n')
    open_cache(root).close()
    escapes = [str(secret), "../../secret", "ab/../../../secret", "ab/cd/../../../../secret"]
    for index, name in enumerate(escapes):
        _plant_row(root, step_key(f"k{index}"), mode=_MODE_BINARY, filename=name, size=10)
    for index in range(len(escapes)):
        _exercise(root, f"k{index}")
    assert secret.read_text() == '{"stolen": true}\n'


def test_value_directories_that_are_symlinks_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "cache", tmp_path / "outside"
    with open_cache(root) as c:
        c.steps.record_step(_big("big"))  # stored in a value file, not the row
        assert c.steps.get("big") is not None
    with _db(root) as con:
        (name,) = con.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchone()
    top = root / STORE_DIRNAME / name.split("/")[0]
    top.rename(outside)
    top.symlink_to(outside)  # the same content, now reached through a link
    with open_cache(root) as c:
        assert c.steps.get("big") is None
        c.clear()
    assert (outside / name.split("/", 1)[1]).exists()  # not deleted through the link either


def test_a_probe_or_lock_symlink_is_not_followed(tmp_path: Path) -> None:
    root, victim = tmp_path / "cache", tmp_path / "victim"
    root.mkdir(mode=0o700)
    victim.write_text("precious\n")
    (root / f".probe-{os.getpid()}").symlink_to(victim)
    open_cache(root).close()
    assert victim.read_text() == "precious\n"
    assert not (root / f".probe-{os.getpid()}").exists()
    (root / LOCK_NAME).unlink()
    (root / LOCK_NAME).symlink_to(victim)
    with pytest.raises(CacheUnavailable, match="lock file"):
        open_cache(root)
    assert victim.read_text() == "precious\n"


def test_a_database_that_is_a_symlink_is_moved_aside(tmp_path: Path) -> None:
    root, victim = tmp_path / "cache", tmp_path / "victim.db"
    open_cache(root).close()
    db = root / STORE_DIRNAME / "cache.db"
    db.rename(victim)
    db.symlink_to(victim)
    before = victim.read_bytes()
    with open_cache(root) as c:
        c.steps.record_step(make_record("new"))
        assert any("moved it to" in w for w in c.warnings)
    assert victim.read_bytes() == before
    assert not (root / STORE_DIRNAME / "cache.db").is_symlink()


def test_a_planted_settings_table_changes_nothing(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    with open_cache(root) as c:
        c.steps.record_step(_big("big"))
    with _db(root) as con:
        con.executemany(
            "INSERT OR REPLACE INTO Settings VALUES (?, ?)",
            [
                ("disk__directory", str(elsewhere)),
                ("_directory", str(elsewhere)),
                ("disk_min_file_size", 1),
                ("eviction_policy", "least-recently-used"),
            ],
        )
    with open_cache(root) as c:
        assert c.steps.get("big") is not None
        c.steps.record_step(make_record("small"))
        assert c._store.directory == root / STORE_DIRNAME
    assert not elsewhere.exists()
    with _db(root) as con:  # the small record stayed in its row: the planted minimum file size was ignored
        assert con.execute("SELECT filename FROM Cache WHERE key = ?", (step_key("small"),)).fetchone() == (None,)


def test_the_cache_is_private(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    old = os.umask(0o022)
    try:
        with open_cache(root) as c:
            c.steps.record_step(_big("big"))
            c.steps.record_step(make_record("small"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    entries = list(root.rglob("*"))
    assert any(p.name.endswith(".val") for p in entries) and any(p.name == "cache.db" for p in entries)
    for path in entries:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) & ~expected == 0, f"{path} is {path.stat().st_mode:o}"


def test_an_old_readable_cache_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    open_cache(root).close()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.parametrize(("mode", "refused"), [(0o777, True), (0o1777, False), (0o757, True)])
def test_a_cache_below_a_directory_others_may_write_is_refused(tmp_path: Path, mode: int, refused: bool) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    if refused:
        with pytest.raises(CacheRefused, match="writable by other users.*BUILDER_CACHE_SHARED=1"):
            open_cache(shared / "cache")
        open_cache(shared / "cache", shared=True).close()  # the opt-in
    else:
        open_cache(shared / "cache").close()


def test_a_cache_others_may_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o777)
    with pytest.raises(CacheRefused, match="other users can write it"):
        open_cache(root)
    monkeypatch.setenv("BUILDER_CACHE_SHARED", "1")
    open_cache(root).close()
    assert stat.S_IMODE(root.stat().st_mode) == 0o777  # a shared cache keeps the mode its owner chose


_PLANT = r"""
import os, pickle, sqlite3, sys
from cache import open_cache
root, marker = sys.argv[1], sys.argv[2]
open_cache(root, shared=True).close()  # the other user's own cache, in the shared place
class Payload:
    def __reduce__(self):
        return (os.mkdir, (marker,))
con = sqlite3.connect(os.path.join(root, "v1", "cache.db"), isolation_level=None)
con.execute("INSERT INTO Cache (key, raw, store_time, access_time, size, mode, filename, value)"
            " VALUES ('step/abc', 1, 0, 0, 0, 4, NULL, ?)", (pickle.dumps(Payload()),))
print("planted")
"""


@needs_root
def test_a_cache_planted_by_another_user_is_refused_and_its_pickle_never_runs() -> None:
    with traversable_tmp_dir() as shared:
        volume = shared / "volume"  # a shared CI volume, owned by the other user
        volume.mkdir()
        os.chown(volume, NOBODY, NOBODY)
        root, marker = volume / "cache", shared / "ran"
        done = run_python(_PLANT, str(root), str(marker))
        assert done.returncode == 0 and "planted" in done.stdout, done.stderr
        assert root.stat().st_uid == NOBODY
        with pytest.raises(CacheRefused) as info:
            open_cache(root)
        message = str(info.value)
        assert f"owned by uid {NOBODY}" in message or f"belongs to uid {NOBODY}" in message
        assert "BUILDER_CACHE_SHARED=1" in message
        # The CLI: a plan still runs, and says why it has no history.
        env = {**os.environ, "BUILDER_CACHE_DIR": str(root), "BUILDER_SERVER": "off"}
        env.pop("BUILDER_CACHE_SHARED", None)
        plan = subprocess.run(
            [sys.executable, "-m", "builder", "plan", str(REPO / "fixtures" / "apps" / "minimal")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert plan.returncode == 0, plan.stderr
        assert "is not used: " in plan.stderr and "Traceback" not in plan.stderr
        # Opted in, the cache is used, and still nothing from it runs.
        with open_cache(root, shared=True) as c:
            assert c.steps.get("abc") is None
            c.summary()
        assert not marker.exists()


def test_nothing_in_builder_or_cache_can_unpickle() -> None:
    """No module imports a deserialiser that runs code, and diskcache is only opened through SafeCache."""
    import ast

    offenders = []
    for package in ("builder", "cache"):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                )
                offenders += [
                    f"{path.relative_to(REPO)} imports {n}"
                    for n in names
                    if n.split(".")[0] in ("pickle", "marshal", "shelve", "dill", "cloudpickle")
                ]
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "Cache"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "diskcache"
                    and path.name != "disk.py"
                    and isinstance(getattr(node, "ctx", None), ast.Load)
                    and _called(tree, node)
                ):
                    offenders.append(f"{path.relative_to(REPO)} opens diskcache.Cache directly")
    assert offenders == []


def _called(tree: object, attribute: object) -> bool:
    import ast

    return any(isinstance(n, ast.Call) and n.func is attribute for n in ast.walk(tree))  # type: ignore[arg-type]
