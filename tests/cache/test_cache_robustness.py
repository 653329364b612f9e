"""The cache under stress: concurrent processes, SIGKILL mid-write, unusable and damaged stores.

The contract: nothing but ``CacheUnavailable`` ever escapes ``open_cache``,
and nothing at all escapes the cache methods; damage is repaired (with a
warning) or degrades the run to "no cache" (with one warning).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cache_helpers import make_record, plan

from cache import CacheUnavailable, open_cache
from cache.store import REPAIR_MARKER, STORE_DIRNAME

WORKER = Path(__file__).with_name("cache_worker.py")


def _spawn(cache_dir: Path, worker: str, iterations: str, go: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), str(cache_dir), worker, iterations]
    if go is not None:
        args.append(str(go))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _db_file(cache_dir: Path) -> Path:
    return cache_dir / STORE_DIRNAME / "cache.db"


def _integrity(cache_dir: Path) -> str:
    with sqlite3.connect(_db_file(cache_dir)) as con:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])


def _assert_usable(cache_dir: Path) -> None:
    """A fresh open reads and writes without errors or warnings."""
    with open_cache(cache_dir) as c:
        c.steps.record_step(make_record("after"))
        c.steps.record_plan("after", plan("after", "after"))
        assert c.steps.is_built("after")
        assert c.steps.last_plan("after") == plan("after", "after")
        c.summary()
        assert not c.degraded, c.warnings


# -- several processes at once ----------------------------------------------


def test_concurrent_processes_never_fail_or_corrupt(tmp_path: Path) -> None:
    cache_dir, go = tmp_path / "cache", tmp_path / "go"
    workers = [f"w{i}" for i in range(6)]
    procs = {w: _spawn(cache_dir, w, "20", go) for w in workers}
    go.touch()  # start together, for maximal overlap
    results = {}
    for w, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{w} failed:\n{err}"
        results[w] = json.loads(out.strip().splitlines()[-1])
    assert all(r["warnings"] == [] for r in results.values()), results
    assert _integrity(cache_dir) == "ok"
    with open_cache(cache_dir) as c:
        for w, r in results.items():
            assert len(r["keys"]) == 20
            assert all(c.steps.is_built(k) for k in r["keys"]), w
            last = c.steps.last_plan(f"app-{w}")
            assert last is not None and last["i"] == 19
            assert c.resolutions.get(f"lock-{w}") == {"i": 19, "pins": [f"pkg{j}==1.19" for j in range(50)]}
            assert c.stats.get_digests([(f"/proj-{w}/src/f7.py", 7, 19, 7)]) == [f"blake3:{19:08d}{7:056d}"]
        shared = c.steps.history("shared", limit=100)
        assert 1 <= len(shared) <= 50
        assert {p.plan_json["by"] for p in shared} <= set(workers)
        stats = c.summary()
        assert stats.steps == 6 * 20
        assert stats.plans == len(shared) + 6 * len(c.steps.history("app-w0", limit=100))
        assert c.warnings == ()
    _assert_usable(cache_dir)


# -- SIGKILL in the middle of writes -----------------------------------------


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
def test_sigkill_mid_write_leaves_a_usable_cache(tmp_path: Path, delay: float) -> None:
    cache_dir = tmp_path / "cache"
    for round_ in range(2):  # the second kill hits a store that already has data
        proc = _spawn(cache_dir, f"k{round_}", "forever")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    assert _integrity(cache_dir) == "ok"
    with open_cache(cache_dir) as c:
        assert c.warnings == ()
        records = list(c.steps.ls())
        assert len(records) >= 10  # each killed worker got at least one round in
        for app in c.steps.apps():
            for p in c.steps.history(app, limit=100):
                assert p.app == app
        for w in ("k0", "k1"):
            digests = c.stats.get_digests([(f"/proj-{w}/src/f{j}.py", j, 0, j) for j in range(400)])
            assert len(digests) == 400
    _assert_usable(cache_dir)


# -- unusable directories -----------------------------------------------------


def test_cache_dir_under_a_regular_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheUnavailable) as info:
        open_cache(blocker / "cache")
    message = str(info.value)
    assert str(blocker / "cache") in message
    assert "Not a directory" in message
    assert "--cache-dir or BUILDER_CACHE_DIR" in message


def test_cache_dir_that_is_a_regular_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache should be")
    with pytest.raises(CacheUnavailable, match="unusable"):
        open_cache(blocker)
    assert blocker.read_text() == "a file where the cache should be"  # never destroyed


def test_store_directory_replaced_by_a_file_is_repaired(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / STORE_DIRNAME).write_bytes(b"junk")
    with open_cache(cache_dir) as c:
        assert len(c.warnings) == 1 and "moved it to" in c.warnings[0]
        c.steps.record_step(make_record("k"))
        assert c.steps.is_built("k")


# -- damaged databases ----------------------------------------------------------


def _populate(cache_dir: Path, n: int = 300) -> None:
    with open_cache(cache_dir) as c:
        for i in range(n):
            c.steps.record_step(make_record(f"k{i:04d}"))
        c.steps.record_plan("a", plan("a", "k0001"))


def test_garbage_database_is_moved_aside_with_one_warning(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    _populate(cache_dir)
    _db_file(cache_dir).write_bytes(os.urandom(64 * 1024))
    with open_cache(cache_dir) as c:
        assert len(c.warnings) == 1
        assert "damaged" in c.warnings[0] and "started empty" in c.warnings[0]
        assert not c.steps.is_built("k0001")  # history is gone, planning goes on without it
        assert not c.degraded
    aside = [p.name for p in cache_dir.iterdir() if p.name.startswith(f"{STORE_DIRNAME}.damaged-")]
    assert len(aside) == 1
    _assert_usable(cache_dir)


@pytest.mark.parametrize("offset", [0, 100, 4096, 20_000, 60_000, 90_000, 106_000])
def test_garbage_inside_the_database_never_crashes(tmp_path: Path, offset: int) -> None:
    cache_dir = tmp_path / "cache"
    _populate(cache_dir)
    db = _db_file(cache_dir)
    with db.open("r+b") as f:
        f.seek(offset)
        f.write(os.urandom(8192))
    # Whatever the damage, every call either works, misses, or degrades with one warning.
    with open_cache(cache_dir) as c:
        c.steps.is_built("k0001")
        c.steps.last_plan("a")
        list(c.steps.ls())
        c.steps.record_step(make_record("new"))
        c.steps.record_plan("a", plan("a", "new"))
        c.stats.get_digests([("/p/a", 1, 1, 1)])
        c.stats.put_digests({("/p/a", 1, 1, 1): "d"})
        c.resolutions.put("r", {"v": 1})
        c.resolutions.get("r")
        c.summary()
        c.prune(max_bytes=10**9)
        assert len(c.warnings) <= 2  # at most: a repair at open, and one degradation
    _assert_usable(cache_dir)  # the next run repairs what this run found


def test_damage_found_mid_run_degrades_then_next_open_repairs(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    _populate(cache_dir)
    with open_cache(cache_dir) as c:
        c.close()  # drop the connection so the next access reopens the (now damaged) file
        _db_file(cache_dir).write_bytes(os.urandom(64 * 1024))
        assert not c.steps.is_built("k0001")
        assert c.steps.last_plan("a") is None
        c.steps.record_step(make_record("ignored"))  # dropped, not raised
        assert c.degraded
        assert len(c.warnings) == 1 and "damaged" in c.warnings[0]
    assert (cache_dir / REPAIR_MARKER).exists()
    with open_cache(cache_dir) as c:
        assert len(c.warnings) == 1 and "earlier run" in c.warnings[0]
    assert not (cache_dir / REPAIR_MARKER).exists()
    _assert_usable(cache_dir)


@pytest.mark.parametrize("name", ["cache.db-wal", "cache.db-shm"])
def test_garbage_wal_or_shm_files_are_harmless(tmp_path: Path, name: str) -> None:
    cache_dir = tmp_path / "cache"
    _populate(cache_dir)
    (cache_dir / STORE_DIRNAME / name).write_bytes(os.urandom(40_000))
    with open_cache(cache_dir) as c:
        c.steps.is_built("k0001")
        c.steps.record_step(make_record("x"))
    _assert_usable(cache_dir)


def test_empty_database_file_is_a_fresh_cache(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    _populate(cache_dir)
    _db_file(cache_dir).write_bytes(b"")
    _assert_usable(cache_dir)


# -- a directory the user really cannot write -------------------------------------

_PROBE = """
import json, sys
from cache import CacheUnavailable, open_cache
try:
    with open_cache(sys.argv[1]) as c:
        print(json.dumps({"opened": True, "warnings": list(c.warnings)}))
except CacheUnavailable as exc:
    print(json.dumps({"opened": False, "error": str(exc)}))
"""


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter as the unprivileged user ``nobody`` (via util-linux setpriv)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    repo = str(Path(__file__).resolve().parents[2])
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": repo, "HOME": "/nonexistent", "BUILDER_RESOLVE": "off"}
    command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False, cwd="/")
    if done.returncode != 0 and "cache" not in done.stderr:
        pytest.skip(f"cannot run as an unprivileged user: {done.stderr.strip()[-200:]}")
    return done


@pytest.mark.parametrize("populated", [False, True])
def test_directory_without_write_permission_is_unavailable(tmp_path: Path, populated: bool) -> None:
    tmp_path.chmod(0o755)  # let the unprivileged user reach it, but not write in it
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o755)
    if populated:
        _populate(cache_dir, 20)
    done = _as_nobody("-c", _PROBE, str(cache_dir))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"opened": False, "error": result["error"]}
    assert "Permission denied" in result["error"] and str(cache_dir) in result["error"]
