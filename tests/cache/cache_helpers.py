"""Helpers shared by the cache tests (imported by module name; tests/ has no packages)."""

from __future__ import annotations

from typing import Any

from cache import StepRecord


class FakeClock:
    """A clock the test moves by hand (LRU order must not depend on timing)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_record(key: str, *, app: str = "app", duration: float = 3.0, used: float = 0.0, size: int = 10) -> StepRecord:
    """A StepRecord with the given key and defaults elsewhere."""
    return StepRecord(
        key=key,
        kind="pip",
        step_id="pip",
        app=app,
        engine="buildkit",
        inputs_manifest={"k": key},
        result_digest=None,
        duration_s=duration,
        size_bytes=size,
        created_at=used,
        last_used_at=used,
    )


def plan(app: str, *keys: str) -> dict[str, Any]:
    """A minimal plan JSON naming these step keys."""
    return {"app": app, "steps": [{"id": f"s{i}", "key": k} for i, k in enumerate(keys)]}
