"""A separate process hammering one cache directory (run by test_cache_robustness).

Usage: python cache_worker.py CACHE_DIR WORKER_ID ITERATIONS [GO_FILE]
       python cache_worker.py CACHE_DIR WORKER_ID forever      (until killed)

Prints ``ready`` after its first round of writes, and at the end one JSON
line {"warnings": [...], "keys": [...]}.  Exits 1 on any exception.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cache import StepRecord, open_cache


def record(key: str, app: str, i: int) -> StepRecord:
    now = time.time()
    return StepRecord(
        key=key,
        kind="pip",
        step_id="pip",
        app=app,
        engine="buildkit",
        inputs_manifest={"i": i, "pad": "x" * (i % 5) * 1000},
        result_digest=f"sha256:{i:064x}",
        duration_s=float(i),
        size_bytes=i * 1000,
        created_at=now,
        last_used_at=now,
    )


def round_of_work(c, worker: str, i: int) -> str:  # type: ignore[no-untyped-def]
    key = f"{worker}-{i:05d}"
    c.steps.record_step(record(key, f"app-{worker}", i))
    assert c.steps.is_built(key), key
    c.steps.touch(f"{worker}-{max(0, i - 1):05d}")
    plan = {"app": "shared", "by": worker, "i": i, "steps": [{"id": "pip", "key": key}]}
    c.steps.record_plan("shared", plan)
    c.steps.record_plan(f"app-{worker}", {"app": worker, "i": i, "steps": [{"id": "pip", "key": key}]})
    assert c.steps.last_plan(f"app-{worker}")["i"] == i
    # A stat batch large enough to be stored as a value file (> 32 KiB).
    keys = [(f"/proj-{worker}/src/f{j}.py", j, i, j) for j in range(400)]
    c.stats.get_digests(keys)
    c.stats.put_digests({k: f"blake3:{i:08d}{j:056d}" for j, k in enumerate(keys)})
    c.resolutions.put(f"lock-{worker}", {"i": i, "pins": [f"pkg{j}==1.{i}" for j in range(50)]})
    got = c.resolutions.get(f"lock-{worker}")
    assert got is not None and got["i"] == i
    for other in c.steps.ls(app="app-w0"):
        assert other.key.startswith("w0-")
        break
    return key


def main() -> int:
    cache_dir, worker, iterations = sys.argv[1], sys.argv[2], sys.argv[3]
    go = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    while go is not None and not go.exists():
        time.sleep(0.005)
    keys: list[str] = []
    warnings: list[str] = []
    forever = iterations == "forever"
    i = 0
    while forever or i < int(iterations):
        with open_cache(cache_dir) as c:  # reopen often: opening must be concurrency-safe too
            for _ in range(5):
                keys.append(round_of_work(c, worker, i))
                i += 1
                if i == 5:
                    print("ready", flush=True)
            warnings.extend(c.warnings)
    print(json.dumps({"warnings": warnings, "keys": keys, "pid": os.getpid()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
