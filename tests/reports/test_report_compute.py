"""The report over hand-made build records: every figure worked out by hand, filters, robustness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import builder
from builder.cli import main
from builder.errors import ConfigError
from builder.reports import parse_since
from builder.reports.compute import ReportOptions, compute
from builder.reports.html import render_html
from builder.reports.text import render_text
from cache import BuildLog

DAY = 86400.0
T0 = 1_800_000_000.0


def step(
    sid: str,
    observed: str,
    seconds: float = 0.0,
    *,
    predicted: str | None = None,
    saved: float | None = None,
    size: int = 0,
    causes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": sid,
        "observed": observed,
        "predicted": predicted or observed,
        "seconds": seconds,
        "saved_s": saved,
        "bytes": size,
        "causes": causes or [],
    }


PIN = {"kind": "setting", "name": "cerebrium.dependencies.pip.torch"}
PARENT = {"kind": "parent", "name": "parent changed", "via": "pip"}
FILE = {"kind": "file", "name": "src/app.py"}
FIRST = {"kind": "first_build", "name": "first build"}


def records() -> list[dict[str, Any]]:
    """Three builds of app a (day 0, 0, 2) and one of app b (day 2) on two engines."""
    return [
        {
            "app": "a",
            "at": T0,
            "engine": "dockerd 20.10.24",
            "seconds": 30.0,
            "steps": [
                step("pip", "miss", 20.0, predicted="miss", size=1000, causes=[FIRST]),
                step("files", "miss", 10.0, predicted="miss", size=10, causes=[FIRST]),
            ],
        },
        {
            "app": "a",
            "at": T0 + 60,
            "engine": "dockerd 20.10.24",
            "seconds": 1.0,
            "steps": [
                step("pip", "hit", predicted="hit", saved=20.0),
                step("files", "hit", predicted="hit", saved=10.0),
            ],
        },
        {
            "app": "a",
            "at": T0 + 2 * DAY,
            "engine": "dockerd 26.1.5",
            "seconds": 12.0,
            "steps": [
                step("pip", "miss", 8.0, predicted="miss", size=500, causes=[PIN]),
                step("files", "miss", 4.0, predicted="hit", size=30, causes=[PARENT, FILE]),
            ],
        },
        {
            "app": "b",
            "at": T0 + 2 * DAY + 5,
            "engine": "dockerd 26.1.5",
            "seconds": 3.0,
            "steps": [step("files", "miss", 3.0, predicted="miss", size=7, causes=[FILE])],
        },
    ]


def test_every_figure_by_hand() -> None:
    data = compute(records(), ReportOptions(generated_at=T0 + 3 * DAY))
    assert data["builds"] == 4 and data["first_at"] == T0 and data["last_at"] == T0 + 2 * DAY + 5
    a, b = data["apps"]
    assert a["app"] == "a" and a["builds"] == 3 and a["build_seconds"] == 43.0
    pip, files = a["steps"]
    assert pip == {
        "step": "pip",
        "builds": 3,
        "hits": 1,
        "misses": 2,
        "hit_rate": 0.3333,
        "seconds_spent": 28.0,
        "seconds_saved": 20.0,
        "bytes_added": 1500,
    }
    assert files == {
        "step": "files",
        "builds": 3,
        "hits": 1,
        "misses": 2,
        "hit_rate": 0.3333,
        "seconds_spent": 14.0,
        "seconds_saved": 10.0,
        "bytes_added": 40,
    }
    assert a["totals"] == {
        "steps": 6,
        "hits": 2,
        "misses": 4,
        "hit_rate": 0.3333,
        "seconds_spent": 42.0,
        "seconds_saved": 30.0,
        "bytes_added": 1540,
    }
    assert b["steps"][0]["hit_rate"] == 0.0
    causes = {c["name"]: c for c in data["causes"]}
    assert [c["name"] for c in data["causes"]] == [
        "first build",
        "cerebrium.dependencies.pip.torch",
        "src/app.py",
        "parent changed",
    ]
    assert causes["first build"]["seconds_lost"] == 30.0 and causes["first build"]["misses"] == 2
    assert causes["src/app.py"]["seconds_lost"] == 5.0  # 4 s split with "parent changed", + 3 s of app b
    assert causes["src/app.py"]["apps"] == ["a", "b"] and causes["src/app.py"]["steps"] == {"files": 2}
    assert causes["parent changed"]["seconds_lost"] == 2.0 and causes["parent changed"]["via"] == {"pip": 1}
    acc = data["accuracy"]
    assert (acc["predictions"], acc["correct"], acc["accuracy"]) == (7, 6, 0.8571)
    assert acc["predicted_observed"] == {"hit_hit": 2, "hit_miss": 1, "miss_hit": 0, "miss_miss": 4}
    assert acc["disagreements"] == [
        {
            "app": "a",
            "at": T0 + 2 * DAY,
            "engine": "dockerd 26.1.5",
            "step": "files",
            "predicted": "hit",
            "observed": "miss",
            "causes": ["parent changed", "src/app.py"],
        }
    ]
    trend = data["trend"]
    assert trend["by"] == "day" and [b["label"] for b in trend["buckets"]] == ["2027-01-15", "2027-01-17"]
    assert trend["buckets"][0]["steps"] == {"pip": 0.5, "files": 0.5}
    assert trend["buckets"][1]["hit_rate"] == 0.0 and trend["buckets"][1]["seconds_spent"] == 15.0
    assert [r["at"] for r in data["recent"]] == [T0 + 2 * DAY + 5, T0 + 2 * DAY, T0 + 60, T0]
    assert data["recent"][1]["misses"][1]["causes"] == ["parent changed", "src/app.py"]


def test_filters_and_trend_by_builds() -> None:
    assert compute(records(), ReportOptions(app="b"))["builds"] == 1
    assert compute(records(), ReportOptions(engine="DOCKERD 20"))["builds"] == 2
    assert compute(records(), ReportOptions(since=T0 + DAY))["builds"] == 2
    trend = compute(records(), ReportOptions(trend=3))["trend"]
    assert trend["by"] == "builds" and [b["label"] for b in trend["buckets"]] == ["#1-3", "#4"]
    empty = compute([], ReportOptions())
    assert empty["builds"] == 0 and empty["apps"] == [] and empty["accuracy"]["accuracy"] is None


def test_malformed_records_are_left_out_not_fatal() -> None:
    bad = [
        *records(),
        {"app": "a", "at": T0, "steps": [{"id": "pip", "observed": "miss", "seconds": "slow"}]},
        {"app": "c", "at": T0, "steps": ["nonsense"]},
    ]
    assert compute(bad, ReportOptions())["builds"] == 4


def test_log_round_trip_filters_last_and_torn_lines(tmp_path: Path) -> None:
    log = BuildLog(tmp_path)
    for record in records():
        log.append(record)
    with log.path.open("ab") as f:
        f.write(b'{"app": "a", "at": 1, "sche')  # a torn write
    assert [r["app"] for r in log.read()] == ["a", "a", "a", "b"]
    assert len(log.read(app="a", since=T0 + 1)) == 2
    assert log.last("a")["at"] == T0 + 2 * DAY
    assert log.last("a", engine="dockerd 20.10.24")["at"] == T0 + 60
    assert log.last("zzz") is None
    with pytest.raises(ValueError, match="'app'"):
        log.append({"at": 1.0})


def test_log_drops_the_oldest_half_past_its_bound(tmp_path: Path) -> None:
    log = BuildLog(tmp_path, max_bytes=4000)
    for i in range(100):
        log.append({"app": "a", "at": float(i), "steps": []})
    ats = [r["at"] for r in log.read()]
    assert ats == sorted(ats) and ats[-1] == 99.0 and len(ats) < 100 and log.path.stat().st_size <= 4000


def test_api_cli_and_renderers_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = BuildLog(tmp_path)
    for record in records():
        log.append(record)
    api = builder.report(cache_dir=tmp_path).to_json()
    assert main(["report", "--cache-dir", str(tmp_path), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api.pop("generated_at"), printed.pop("generated_at")
    assert printed == api
    text = render_text(api)
    assert "cerebrium.dependencies.pip.torch" in text and "6 of 7 right (86%)" in text
    out = tmp_path / "r.html"
    assert main(["report", "--cache-dir", str(tmp_path), "--format", "html", "-o", str(out), "--app", "a"]) == 0
    page = out.read_text()
    assert page.count("<svg class='chart'") == 2 and "<script" not in page and "src/app.py" in page


def test_html_escapes_recorded_text() -> None:
    evil = records()
    evil[3]["app"] = "<script>alert(1)</script>"
    evil[3]["steps"][0]["causes"] = [{"kind": "file", "name": "<img src=x onerror=alert(1)>"}]
    page = render_html(compute(evil, ReportOptions()))
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;img src=x" in page


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since"),
        (["--trend", "weekly"], "--trend"),
        (["--trend", "0"], "--trend"),
        (["somewhere/that/does/not/exist"], "cerebrium.toml"),
    ],
)
def test_bad_arguments_exit_2_with_the_option_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["report", "--cache-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_output_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--cache-dir", str(tmp_path), "-o", str(tmp_path / "no" / "dir" / "r.txt")]) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_since_forms() -> None:
    assert parse_since("2d", now=T0) == T0 - 2 * DAY
    assert parse_since("90m", now=T0) == T0 - 5400
    assert parse_since("2027-01-15") == 1_800_000_000.0 - 1_800_000_000.0 % DAY
    assert parse_since(None) is None
    with pytest.raises(ConfigError):
        parse_since("soon")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "app": st.sampled_from(["a", "b"]),
                "at": st.floats(T0, T0 + 10 * DAY),
                "steps": st.lists(
                    st.builds(
                        lambda o, p, s: step("pip", o, s, predicted=p, causes=[PIN] if o == "miss" else []),
                        st.sampled_from(["hit", "miss"]),
                        st.sampled_from(["hit", "miss"]),
                        st.floats(0, 100),
                    ),
                    max_size=3,
                ),
            }
        ),
        max_size=20,
    )
)
def test_counts_always_add_up(builds: list[dict[str, Any]]) -> None:
    builds.sort(key=lambda r: r["at"])
    data = compute(builds, ReportOptions())
    steps = sum(len(b["steps"]) for b in builds)
    assert sum(a["totals"]["steps"] for a in data["apps"]) == steps
    assert sum(a["totals"]["hits"] + a["totals"]["misses"] for a in data["apps"]) == steps
    assert data["accuracy"]["predictions"] == steps
    assert sum(c["misses"] for c in data["causes"]) == sum(a["totals"]["misses"] for a in data["apps"])
    assert sum(b["builds"] for b in data["trend"]["buckets"]) == len(builds)


def test_last_can_skip_records_without_a_field(tmp_path: Path) -> None:
    log = BuildLog(tmp_path)
    log.append({"app": "a", "at": 1.0, "engine": "e", "base_image_id": "sha256:1", "steps": []})
    log.append({"app": "a", "at": 2.0, "engine": "e", "base_image_id": None, "steps": []})
    assert log.last("a")["at"] == 2.0
    assert log.last("a", engine="e", having="base_image_id")["base_image_id"] == "sha256:1"
