"""How many bytes each step that ran added to the engine: read from ``Control.DiskUsage``.

BuildKit keeps one cache record per snapshot a vertex produced; its ``Size`` is
that snapshot's own disk usage (the layer's diff), and its ``Description`` says
which op made it: ``mount / from exec <argv joined by spaces>`` for an exec's
root mount, the vertex name (``llb.customname``) for file and merge ops, and
``pulled from <ref>`` for image layers fetched from a registry.  Both dockerd
20.10 (BuildKit 0.8) and dockerd 26 (BuildKit 0.13) describe records that way.

BuildKit 0.8 calls every file op's record ``fileop target``, so a file-op step is
matched by the record it sits on: its parent step's.  A step that ran is matched
to a record created during this build with its description, preferring one on top
of its parent step's record, finished (immutable), newest; the base step is
credited with the layers pulled during this build.  One
``DiskUsage`` call per build, and only when a step ran: a fully cached build
asks nothing.  Sizes are best effort: a record the engine cannot match gives 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from builder.engines.buildkit.convert import Converted
from builder.engines.buildkit.progress import StepObservation, timestamp_seconds
from builder.plan.model import StepKind

_EXEC_PREFIX = "mount / from exec "
_FILEOP_08 = "fileop target"
_PULLED_PREFIX = "pulled from "
#: Records of the pulled base image count when created this long before the build started (clock skew).
_SKEW_S = 5.0


@dataclass(frozen=True, slots=True)
class _Expect:
    description: str
    file_op: bool  # BuildKit 0.8 describes every file op's record as "fileop target"
    parent: StepKind | None


def expected_descriptions(converted: Converted, parents: Mapping[StepKind, StepKind | None]) -> dict[StepKind, _Expect]:
    """What the cache record each step's main vertex creates is called, and the step it sits on."""
    names = converted.definition.names()
    out: dict[StepKind, _Expect] = {}
    for step, digest in converted.step_digests:
        if step is StepKind.BASE:
            continue
        try:
            op = converted.definition.op(digest)
        except KeyError:
            continue
        kind = op.WhichOneof("op")
        if kind == "exec":
            out[step] = _Expect(_EXEC_PREFIX + " ".join(op.exec.meta.args), False, parents.get(step))
        elif digest in names:
            out[step] = _Expect(names[digest], kind == "file", parents.get(step))
    return out


@dataclass(frozen=True, slots=True)
class _Record:
    id: str
    description: str
    size: int
    created: float
    mutable: bool
    parents: tuple[str, ...]


def _records(raw: Iterable[object]) -> list[_Record]:
    out = []
    for r in raw:
        parents = tuple(str(p) for p in getattr(r, "Parents", ()) or ())
        parent = str(getattr(r, "Parent", "") or "")
        out.append(
            _Record(
                str(getattr(r, "ID", "")),
                str(getattr(r, "Description", "")),
                max(int(getattr(r, "Size", 0) or 0), 0),
                timestamp_seconds(getattr(r, "CreatedAt", None)) or 0.0,
                bool(getattr(r, "Mutable", False)),
                parents or ((parent,) if parent else ()),
            )
        )
    return out


def match_sizes(
    raw_records: Iterable[object],
    expected: Mapping[StepKind, _Expect],
    ran: Iterable[StepKind],
    started_at: float,
) -> dict[StepKind, int]:
    """Bytes per step that ran, from DiskUsage records (UsageRecord messages or look-alikes).

    A step's record was created during this build and carries its description; among several
    (another build running the same command), the finished one on top of the step's parent wins.
    """
    records = _records(raw_records)
    fresh = [r for r in records if r.created >= started_at - _SKEW_S]
    by_description: dict[str, list[_Record]] = {}
    for r in records:
        by_description.setdefault(r.description, []).append(r)
    out: dict[StepKind, int] = {}
    for step in ran:
        if step is StepKind.BASE:
            out[step] = sum(r.size for r in fresh if r.description.startswith(_PULLED_PREFIX))
            continue
        want = expected.get(step)
        if want is None:
            continue
        names = {want.description, _FILEOP_08} if want.file_op else {want.description}
        candidates = [r for r in fresh if r.description in names]
        parent = expected.get(want.parent) if want.parent is not None else None
        parent_ids = (
            {r.id for r in by_description.get(parent.description, ())}
            if parent is not None and not parent.file_op
            else set()
        )
        if parent_ids:
            on_parent = [r for r in candidates if set(r.parents) & parent_ids]
            candidates = on_parent or ([] if want.file_op else candidates)
        elif want.file_op:
            candidates = [r for r in candidates if r.description == want.description]
        if candidates:
            out[step] = min(candidates, key=lambda r: (r.mutable, -r.created)).size
    return out


def layer_sizes(
    control: object,
    converted: Converted,
    observed: Mapping[StepKind, StepObservation],
    started_at: float,
    parents: Mapping[StepKind, StepKind | None],
) -> dict[StepKind, int]:
    """Ask the engine (``control``: a Control stub) for the size of every step that ran; {} on failure."""
    ran = [step for step, seen in observed.items() if not seen.cached]
    if not ran:
        return {}
    from builder.engines.buildkit._pb import control_pb2

    try:
        response = control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=30)  # type: ignore[attr-defined]
    except Exception:
        return {}
    return match_sizes(response.record, expected_descriptions(converted, parents), ran, started_at)
