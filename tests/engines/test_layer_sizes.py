"""Layer sizes from DiskUsage records: matched by description, through the parent for BuildKit 0.8 file ops."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.engines.buildkit.sizes import _Expect, match_sizes
from builder.plan.model import StepKind


@dataclass
class Stamp:
    seconds: int
    nanos: int = 0


@dataclass
class Rec:
    ID: str
    Description: str
    Size: int
    CreatedAt: Stamp
    Parent: str = ""
    Mutable: bool = False
    Parents: list[str] = field(default_factory=list)


T = 1_000_000
PIP = 'mount / from exec /bin/sh -c install "$@" six==1.17.0'
SHELL = "mount / from exec /bin/sh -c run echo hi"
EXPECT = {
    StepKind.PIP: _Expect(PIP, False, StepKind.APT),
    StepKind.FILES: _Expect("[files] copy 1 project file → /app", True, StepKind.PIP),
    StepKind.SHELL: _Expect(SHELL, False, StepKind.FILES),
    StepKind.CONFIG: _Expect("[config] /app/cerebrium.toml + image config", True, StepKind.SHELL),
}


def test_buildkit_08_records_match_through_parents() -> None:
    records = [
        Rec("old-pip", PIP, 999, Stamp(T - 3600)),  # the same command built an hour ago
        Rec("pip", PIP, 38129, Stamp(T + 2), Parent="apt"),
        Rec("req", "fileop target", 12, Stamp(T + 1)),  # the requirements file: no parent
        Rec("files", "fileop target", 685, Stamp(T + 3), Parent="pip"),
        Rec("other-build", SHELL, 0, Stamp(T + 4), Parent="elsewhere", Mutable=True),
        Rec("shell", SHELL, 46389, Stamp(T + 4), Parent="files"),
        Rec("config", "fileop target", 552, Stamp(T + 5), Parent="shell", Mutable=True),
        Rec("pulled", "pulled from docker.io/library/debian@sha256:abc", 5000, Stamp(T + 1)),
        Rec("pulled-old", "pulled from docker.io/library/python@sha256:def", 7000, Stamp(T - 100)),
    ]
    ran = [StepKind.BASE, StepKind.PIP, StepKind.FILES, StepKind.SHELL, StepKind.CONFIG]
    assert match_sizes(records, EXPECT, ran, float(T)) == {
        StepKind.BASE: 5000,
        StepKind.PIP: 38129,
        StepKind.FILES: 685,
        StepKind.SHELL: 46389,
        StepKind.CONFIG: 552,
    }


def test_buildkit_013_records_carry_the_vertex_name() -> None:
    records = [
        Rec("pip", PIP, 38145, Stamp(T + 2), Parents=["apt"]),
        Rec("files", "[files] copy 1 project file → /app", 685, Stamp(T + 3), Parents=["pip"]),
        Rec(
            "config", "[config] /app/cerebrium.toml + image config", 497, Stamp(T + 5), Parents=["shell"], Mutable=True
        ),
    ]
    sizes = match_sizes(records, EXPECT, [StepKind.FILES, StepKind.CONFIG], float(T))
    assert sizes == {StepKind.FILES: 685, StepKind.CONFIG: 497}


def test_nothing_made_in_this_build_gives_no_size() -> None:
    records = [Rec("pip", PIP, 38129, Stamp(T - 600), Parent="apt")]
    assert match_sizes(records, EXPECT, [StepKind.PIP, StepKind.FILES], float(T)) == {}
