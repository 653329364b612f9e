"""The engine's own build cache: how much disk it holds (``DiskUsage``) and freeing it (``Prune``).

Both are BuildKit Control calls, served by buildkitd and by dockerd's ``/grpc`` alike
(dockerd 20.10's BuildKit 0.8 has them; newer fields are left unset on older engines).

Totals follow ``docker system df``: a record's size counts once, shared records (layers
also held by images) are not counted, and a record is reclaimable when nothing uses it.

>>> usage = disk_usage(engine)  # doctest: +SKIP
>>> usage.total, usage.reclaimable  # doctest: +SKIP
(175155416, 175155416)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.errors import engine_errors

#: Vertex names builder gives its file ops start with ``[<step>]``; BuildKit keeps them as descriptions.
_STEP_PREFIX = re.compile(r"^\[(?P<step>[a-z_]+)\] ")
_DU_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One record of the engine's build cache."""

    id: str
    size: int
    record_type: str
    description: str
    in_use: bool
    shared: bool
    last_used_at: float | None
    usage_count: int

    @property
    def step(self) -> str | None:
        """The builder step that made this record, when its description says so."""
        m = _STEP_PREFIX.match(self.description)
        return m.group("step") if m else None

    def to_json(self) -> dict[str, object]:
        """JSON-ready mapping."""
        return {
            "id": self.id,
            "size": self.size,
            "type": self.record_type,
            "step": self.step,
            "description": self.description[:200],
            "in_use": self.in_use,
            "shared": self.shared,
            "last_used_at": self.last_used_at,
            "usage_count": self.usage_count,
        }


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """The engine's build cache: every record plus the totals ``builder engine du`` shows."""

    records: tuple[UsageRecord, ...]

    @property
    def total(self) -> int:
        """Bytes held, shared records left out (they belong to images too), as ``docker system df``."""
        return sum(r.size for r in self.records if not r.shared)

    @property
    def reclaimable(self) -> int:
        """Bytes a prune could free now (records neither shared nor in use)."""
        return sum(r.size for r in self.records if not r.shared and not r.in_use)

    def by_type(self) -> dict[str, tuple[int, int]]:
        """Record type → (count, bytes), largest first."""
        found: dict[str, tuple[int, int]] = {}
        for r in self.records:
            if r.shared:
                continue
            count, size = found.get(r.record_type, (0, 0))
            found[r.record_type] = (count + 1, size + r.size)
        return dict(sorted(found.items(), key=lambda item: (-item[1][1], item[0])))

    def largest(self, n: int = 10) -> list[UsageRecord]:
        """The ``n`` largest records."""
        return sorted(self.records, key=lambda r: (-r.size, r.id))[:n]

    def to_json(self, top: int = 10) -> dict[str, object]:
        """The ``--format json`` output."""
        return {
            "total": self.total,
            "reclaimable": self.reclaimable,
            "records": len(self.records),
            "by_type": {k: {"count": c, "size": s} for k, (c, s) in self.by_type().items()},
            "largest": [r.to_json() for r in self.largest(top)],
        }


def _timestamp(record: control_pb2.UsageRecord, field: str) -> float | None:
    if not record.HasField(field):
        return None
    ts = getattr(record, field)
    return ts.seconds + ts.nanos / 1e9


def _record(r: control_pb2.UsageRecord) -> UsageRecord:
    return UsageRecord(
        id=r.ID,
        size=int(r.Size),
        record_type=r.RecordType or "unknown",
        description=r.Description,
        in_use=r.InUse,
        shared=r.Shared,
        last_used_at=_timestamp(r, "LastUsedAt"),
        usage_count=int(r.UsageCount),
    )


def disk_usage(client: EngineClient) -> DiskUsage:
    """The engine's build cache records (``Control/DiskUsage``)."""
    with engine_errors(str(client.address), "DiskUsage"):
        response = client.control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=_DU_TIMEOUT)
    return DiskUsage(tuple(_record(r) for r in response.record))


@dataclass(frozen=True, slots=True)
class PruneOptions:
    """What ``builder engine prune`` frees: ``keep_bytes`` to keep, records unused for ``older_than_s``, ``all``.

    ``filters`` are BuildKit's prune filters (``id==…``, ``type==regular``, …), all of which must match.
    """

    keep_bytes: int = 0
    older_than_s: float = 0.0
    all: bool = False
    filters: tuple[str, ...] = ()


def prune(
    client: EngineClient, options: PruneOptions, on_record: Callable[[UsageRecord], None] = lambda r: None
) -> list[UsageRecord]:
    """Free build cache (``Control/Prune``), calling ``on_record`` for each record as it goes; return them."""
    request = control_pb2.PruneRequest(
        all=options.all,
        keepBytes=options.keep_bytes,
        keepDuration=int(options.older_than_s * 1e9),
        filter=list(options.filters),
    )
    freed: list[UsageRecord] = []
    with engine_errors(str(client.address), "Prune"):
        for r in client.control.Prune(request, timeout=3600):
            record = _record(r)
            freed.append(record)
            on_record(record)
    return freed


_SIZE = re.compile(r"^\s*(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}
_DURATION = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d|w)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``10GB``, ``512MiB``, ``0`` → bytes; ValueError otherwise."""
    m = _SIZE.match(text)
    unit = (m.group("unit") or "").lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (e.g. 0, 500MB, 10GiB)")
    return int(float(m.group("n")) * _UNITS[unit])


def parse_duration(text: str) -> float:
    """``24h``, ``7d``, ``1h30m`` → seconds; ValueError otherwise."""
    value = text.strip().lower()
    parts = list(_DURATION.finditer(value))
    if not parts or "".join(p.group(0) for p in parts) != value:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 24h, 7d, 1h30m)")
    return sum(float(p.group("n")) * _SECONDS[p.group("unit")] for p in parts)


def human(size: int) -> str:
    """Bytes as docker prints them (decimal units): ``175.2MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{size}B"


def newest_use(records: Iterable[UsageRecord]) -> float | None:
    """The latest last-use time among ``records`` (None when none carries one)."""
    times = [r.last_used_at for r in records if r.last_used_at is not None]
    return max(times) if times else None
