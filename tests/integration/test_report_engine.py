"""`builder report` over builds made on the real engine(s), checked against what each build did.

One app (build-basic, with a pip set new to the engine) is built eight times with known changes:
first build, unchanged, a pip pin, a source file, a scaling-only edit, a base image change, the
base tag moved to another image (re-tagged), unchanged again.  Every count, cause, time, size and
accuracy figure of the report is then recomputed from the BuildResults and compared, and the
changes' causes are checked by name.  The HTML page of the same history is rendered in headless
chromium (tests/integration/browser.py): screenshot pixels and SVG sizes prove the charts drew.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import builder
from builder.api import build
from builder.cli import main
from builder.reports.html import render_html
from tests.integration.browser import count_colour, measure_page, screenshot
from tests.integration.conftest import EngineTarget
from tests.integration.test_build import make_unique

CA = "/etc/ssl/certs/ca-certificates.crt"
SOURCE = "debian:bookworm-slim"


@dataclass
class History:
    cache: Path
    results: list[Any]
    labels: list[str]
    base_ids: list[str]


def docker(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=True, timeout=300)
    return done.stdout.strip()


def make_base(env: dict[str, str], tag: str, marker: str) -> str:
    """A local image ``tag``: the source image plus one small file (a distinct image ID per marker)."""
    name = f"builder-report-{uuid.uuid4().hex[:8]}"
    docker(env, "run", "--name", name, SOURCE, "sh", "-c", f"echo {marker} > /etc/builder-report-marker")
    try:
        docker(env, "commit", name, tag)
    finally:
        subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True, check=False)
    return docker(env, "image", "inspect", "--format", "{{.Id}}", tag)


def set_toml(app: Path, old: str, new: str) -> None:
    toml = app / "cerebrium.toml"
    text = toml.read_text()
    assert old in text, old
    toml.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def history(
    engine_target: EngineTarget, engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> History:
    """Eight builds of one app with known changes, recorded in a fresh cache."""
    root = tmp_path_factory.mktemp(f"report-{engine_target.name}")
    app = root / "app"
    subprocess.run(["cp", "-r", str(Path(__file__).parents[2] / "fixtures/apps/build-basic"), str(app)], check=True)
    make_unique(app)
    # Every file this run writes is new to the engine: BuildKit reuses a file op whose inputs have the same
    # *content* as an earlier run's, which would turn this run's known misses into hits.
    nonce = uuid.uuid4().hex
    toml = app / "cerebrium.toml"
    toml.write_text(f"# run {nonce}\n" + toml.read_text())
    cache = root / "cache"
    tag = f"builder-report-test/base:{uuid.uuid4().hex[:10]}"
    results: list[Any] = []
    labels: list[str] = []
    base_ids: list[str] = []

    def run(label: str) -> None:
        result, _, _ = build(app, engine=engine_target.address, tls=engine_target.tls, cache_dir=cache, ca_bundle=CA)
        results.append(result)
        labels.append(label)

    run("first")
    run("unchanged")
    requirements = app / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("six==1.16.0", "six==1.17.0"))
    run("pip pin")
    with (app / "main.py").open("a") as f:
        f.write(f"\n# a source edit {nonce}\n")
    run("source file")
    toml.write_text(toml.read_text() + "\n[cerebrium.scaling]\nmin_replicas = 2\n")
    run("scaling only")
    base_ids.append(make_base(engine_env, tag, "one"))
    set_toml(app, "use_uv = true", f'use_uv = true\ndocker_base_image_url = "{tag}"')
    run("base change")
    base_ids.append(make_base(engine_env, tag, "two"))  # the same tag now names another image
    run("base re-tagged")
    run("unchanged again")
    docker(engine_env, "image", "rm", "-f", tag, *base_ids)
    return History(cache, results, labels, base_ids)


def observed(result: Any) -> dict[str, str]:
    return {s.step: ("hit" if s.cached else "miss") for s in result.steps}


def causes_of(report: dict[str, Any], index: int, step: str) -> list[str]:
    """The cause names the report's build ``index`` (0 = first) gives ``step``."""
    build_record = report["recent"][len(report["recent"]) - 1 - index]
    for miss in build_record["misses"]:
        if miss["step"] == step:
            return list(miss["causes"])
    return []


@pytest.mark.remote  # the tls engine runs it too: the base image's ID asked over TLS
def test_report_matches_what_the_builds_did(history: History) -> None:
    data = builder.report(cache_dir=history.cache).to_json()
    results = history.results
    assert data["schema"] == 1 and data["builds"] == len(results) == 8
    (app,) = data["apps"]
    assert app["app"] == "build-basic" and app["builds"] == 8

    # Every per-step figure, recomputed from the engine's outcomes.
    durations: dict[str, float] = {}  # key -> seconds recorded when the cache first saw it
    expect: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"builds": 0, "hits": 0, "misses": 0, "spent": 0.0, "saved": 0.0, "bytes": 0}
    )
    for result in results:
        for s in result.steps:
            row = expect[s.step]
            row["builds"] += 1
            row["spent"] += s.seconds
            if s.cached:
                row["hits"] += 1
                row["saved"] += durations.get(s.key, 0.0)
            else:
                row["misses"] += 1
                row["bytes"] += s.size_bytes
        for s in result.steps:
            durations.setdefault(s.key, s.seconds)
    by_step = {s["step"]: s for s in app["steps"]}
    assert set(by_step) == set(expect)
    for step, row in expect.items():
        got = by_step[step]
        assert (got["builds"], got["hits"], got["misses"]) == (row["builds"], row["hits"], row["misses"]), step
        assert got["hit_rate"] == round(row["hits"] / row["builds"], 4)
        assert got["seconds_spent"] == pytest.approx(row["spent"], abs=0.01), step
        assert got["seconds_saved"] == pytest.approx(row["saved"], abs=0.01), step
        assert got["bytes_added"] == row["bytes"], step

    # Real layer sizes: every exec or file layer that ran added bytes (the pip layer holds six).
    for result in results:
        for s in result.steps:
            if not s.cached and s.step in ("python", "apt", "pip", "files", "shell", "config"):
                assert s.size_bytes > 0, (s.step, result)
    assert by_step["pip"]["bytes_added"] > 10_000

    # What each change did, as the builds observed it.
    obs = [observed(r) for r in results]
    assert set(obs[1].values()) == {"hit"}
    assert [k for k, v in obs[2].items() if v == "miss"] == ["pip", "files", "shell", "config"]
    assert [k for k, v in obs[3].items() if v == "miss"] == ["files", "shell", "config"]
    assert [k for k, v in obs[4].items() if v == "miss"] == ["config"]
    assert all(v == "miss" for k, v in obs[5].items() if k != "base")
    assert all(v == "miss" for k, v in obs[6].items() if k != "base")
    assert set(obs[7].values()) == {"hit"}

    # Causes, named as the plan names them.
    assert causes_of(data, 2, "pip") == ["cerebrium.dependencies.pip.six"]
    assert causes_of(data, 2, "files") == ["requirements.txt"]  # the project ships its requirements file too
    assert causes_of(data, 2, "shell") == ["parent changed"]
    assert causes_of(data, 3, "files") == ["main.py"]
    assert causes_of(data, 4, "config") == ["cerebrium.scaling.min_replicas"]
    assert causes_of(data, 5, "python") == ["parent changed"]
    assert causes_of(data, 6, "python") == ["base image re-tagged"]
    assert causes_of(data, 6, "shell") == ["base image re-tagged"]

    # The cause ranking: seconds lost recomputed from the builds (a miss's seconds split over its causes).
    lost: dict[str, float] = defaultdict(float)
    misses: dict[str, int] = defaultdict(int)
    for i, result in enumerate(results):
        for s in result.steps:
            if not s.cached:
                names = causes_of(data, i, s.step)
                for name in names:
                    lost[name] += s.seconds / len(names)
                    misses[name] += 1
    ranked = {c["name"]: c for c in data["causes"]}
    assert set(ranked) == set(lost)
    for name, seconds in lost.items():
        assert ranked[name]["seconds_lost"] == pytest.approx(seconds, abs=0.01), name
        assert ranked[name]["misses"] == misses[name], name
    assert [c["seconds_lost"] for c in data["causes"]] == sorted(
        (c["seconds_lost"] for c in data["causes"]), reverse=True
    )
    assert ranked["parent changed"]["via"].keys() >= {"files", "base"}  # the nearest changed ancestor

    # Prediction accuracy: every prediction of every build, and the disagreements listed.
    pairs = [
        (i, s.step, s.predicted, "hit" if s.cached else "miss")
        for i, r in enumerate(results)
        for s in r.steps
        if s.predicted in ("hit", "miss")
    ]
    wrong = [p for p in pairs if p[2] != p[3]]
    acc = data["accuracy"]
    assert acc["predictions"] == len(pairs) == 8 * len(results[0].steps)
    assert acc["correct"] == len(pairs) - len(wrong)
    assert acc["disagreements_total"] == len(wrong)
    listed = sorted((d["step"], d["predicted"], d["observed"]) for d in acc["disagreements"])
    assert listed == sorted((p[1], p[2], p[3]) for p in wrong)
    # The re-tag is invisible to the plan: every step after base was predicted to hit and rebuilt.
    assert {(p[1], p[2]) for p in wrong if p[0] == 6} == {(s, "hit") for s in obs[6] if s != "base"}

    # Trend: 8 builds within minutes → one point per build.
    assert data["trend"]["by"] == "builds"
    assert [b["builds"] for b in data["trend"]["buckets"]] == [1] * 8
    assert data["trend"]["buckets"][1]["hit_rate"] == 1.0


def test_cli_formats_and_filters(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--cache-dir", str(history.cache), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = builder.report(cache_dir=history.cache).to_json()
    printed.pop("generated_at"), api.pop("generated_at")
    assert printed == api
    assert main(["report", "--cache-dir", str(history.cache), "--app", "nope", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["builds"] == 0
    engine = history.results[0].engine.split(" (")[0]
    assert builder.report(cache_dir=history.cache, engine=engine)["builds"] == 8
    assert builder.report(cache_dir=history.cache, engine="no-such-engine")["builds"] == 0
    assert builder.report(cache_dir=history.cache, since="1h")["builds"] == 8
    assert builder.report(cache_dir=history.cache, since="2999-01-01")["builds"] == 0
    assert main(["report", "--cache-dir", str(history.cache)]) == 0
    text = capsys.readouterr().out
    assert "cerebrium.dependencies.pip.six" in text and "base image re-tagged" in text


def test_html_page_renders_its_charts_in_chromium(history: History, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert main(["report", "--cache-dir", str(history.cache), "--format", "html", "-o", str(page)]) == 0
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "src=" not in html
    assert html == render_html(builder.report(cache_dir=history.cache).to_json())

    sizes = measure_page(page, tmp_path / "measure")
    charts = {c["id"]: c for c in sizes["charts"]}
    assert set(charts) == {"chart-hit-rate", "chart-causes"}
    for chart in charts.values():
        assert chart["width"] >= 600 and chart["height"] >= 100, chart
    assert charts["chart-hit-rate"]["series"] == 7  # one line per step, each with a length on screen
    assert all(length > 100 for length in charts["chart-hit-rate"]["series_widths"])
    assert charts["chart-causes"]["bars"] >= 4
    assert all(w > 0 for w in charts["chart-causes"]["bar_widths"])
    assert sizes["end_labels"] == 7 and sizes["recent_rows"] == 8

    png = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    assert count_colour(png, (0xD5, 0x5E, 0x00)) > 500  # the cause bars' orange was painted
    assert count_colour(png, (0x00, 0x72, 0xB2)) > 100  # the first step's line
