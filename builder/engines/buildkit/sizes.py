"""How many bytes each step that ran added to the engine: read from ``Control.DiskUsage``.

BuildKit keeps one cache record per snapshot a vertex produced; its ``Size`` is
that snapshot's own disk usage (the layer's diff), and its ``Description`` says
which op made it: ``mount / from exec <argv joined by spaces>`` for an exec's
root mount, the vertex name (``llb.customname``) for file and merge ops, and
``pulled from <ref>`` for image layers fetched from a registry.  Both dockerd
20.10 (BuildKit 0.8) and dockerd 26 (BuildKit 0.13) describe records that way.

A step that ran is matched to the newest record with exactly its description;
the base step is credited with the layers pulled during this build.  One
``DiskUsage`` call per build, and only when a step ran: a fully cached build
asks nothing.  Sizes are best effort: a record the engine cannot match gives 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from builder.engines.buildkit.convert import Converted
from builder.engines.buildkit.progress import StepObservation, timestamp_seconds
from builder.plan.model import StepKind

_EXEC_PREFIX = "mount / from exec "
_PULLED_PREFIX = "pulled from "
#: Records of the pulled base image count when created this long before the build started (clock skew).
_SKEW_S = 5.0


def expected_descriptions(converted: Converted) -> dict[StepKind, str]:
    """The description BuildKit gives the cache record each step's main vertex creates."""
    names = converted.definition.names()
    out: dict[StepKind, str] = {}
    for step, digest in converted.step_digests:
        if step is StepKind.BASE:
            continue
        try:
            op = converted.definition.op(digest)
        except KeyError:
            continue
        if op.WhichOneof("op") == "exec":
            out[step] = _EXEC_PREFIX + " ".join(op.exec.meta.args)
        elif digest in names:
            out[step] = names[digest]
    return out


def match_sizes(
    records: Iterable[object],
    expected: Mapping[StepKind, str],
    ran: Iterable[StepKind],
    started_at: float,
) -> dict[StepKind, int]:
    """Bytes per step that ran, from DiskUsage ``records`` (UsageRecord messages or look-alikes)."""
    newest: dict[str, tuple[float, int]] = {}
    pulled = 0
    for record in records:
        description = str(getattr(record, "Description", ""))
        size = int(getattr(record, "Size", 0) or 0)
        created = timestamp_seconds(getattr(record, "CreatedAt", None)) or 0.0
        if description.startswith(_PULLED_PREFIX) and created >= started_at - _SKEW_S:
            pulled += max(size, 0)
            continue
        known = newest.get(description)
        if known is None or created > known[0]:
            newest[description] = (created, max(size, 0))
    out: dict[StepKind, int] = {}
    for step in ran:
        if step is StepKind.BASE:
            out[step] = pulled
        elif step in expected and expected[step] in newest:
            out[step] = newest[expected[step]][1]
    return out


def layer_sizes(
    control: object,
    converted: Converted,
    observed: Mapping[StepKind, StepObservation],
    started_at: float,
) -> dict[StepKind, int]:
    """Ask the engine (``control``: a Control stub) for the size of every step that ran; {} on failure."""
    ran = [step for step, seen in observed.items() if not seen.cached]
    if not ran:
        return {}
    from builder.engines.buildkit._pb import control_pb2

    try:
        response = control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=30)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - sizes are a report figure; a build never fails for them
        return {}
    return match_sizes(response.record, expected_descriptions(converted), ran, started_at)
