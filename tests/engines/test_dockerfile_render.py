"""render_dockerfile: one group per step in plan order, same mounts/markers/config, exact .dockerignore."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.api import plan_project
from builder.cli import main
from builder.engines.buildkit.session import CA_BUNDLE_SECRET_ID, PatternSelector
from builder.engines.dockerfile_export import render_dockerfile, render_dockerignore
from builder.plan.model import Plan, StepKind
from tests.conftest import APP_NAMES


def make(path: Path) -> Plan:
    plan, _, _ = plan_project(path, record=False, cache_dir=str(path.parent / "cache"))
    return plan


def groups(dockerfile: str) -> list[tuple[str, str, list[str]]]:
    """(step id, key, instruction lines) per ``# [step] key=`` group."""
    out: list[tuple[str, str, list[str]]] = []
    for line in dockerfile.splitlines():
        m = re.match(r"^# \[(\w+)\] key=(\S+)$", line)
        if m:
            out.append((m.group(1), m.group(2), []))
        elif out and line.strip():
            out[-1][2].append(line)
    return out


def ignore_patterns(text: str) -> tuple[str, ...]:
    return tuple(ln for ln in text.splitlines() if ln and not ln.startswith("#"))


def project_files(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return found


@pytest.mark.parametrize("app_dir", APP_NAMES, indirect=True)
def test_one_group_per_step_in_plan_order(app_dir: Path) -> None:
    plan = make(app_dir)
    rendered = groups(render_dockerfile(plan).dockerfile)
    assert [(g[0], g[1]) for g in rendered] == [(s.id.value, s.key) for s in plan.steps]
    assert all(g[2] for g in rendered), "every group has at least one instruction"


@pytest.mark.parametrize("app_dir", APP_NAMES, indirect=True)
def test_dockerignore_selects_exactly_the_planned_files(app_dir: Path) -> None:
    plan = make(app_dir)
    export = render_dockerfile(plan)
    for rel, text in export.files:  # the generated files are in the context too
        (app_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (app_dir / rel).write_text(text)
    (app_dir / "Dockerfile").write_text(export.dockerfile)
    (app_dir / ".dockerignore").write_text(export.dockerignore)
    selector = PatternSelector(exclude=ignore_patterns(export.dockerignore))
    selected = [p for p in project_files(app_dir) if selector.selects(p)]
    planned = set()
    for step in plan.steps:
        manifest = getattr(step.inputs, "manifest", None) or getattr(step.inputs, "context", None)
        if manifest is not None:
            planned |= {e.path for e in manifest.entries}
    expected = planned | {"cerebrium.toml"} | {rel for rel, _ in export.files}
    assert sorted(selected) == sorted(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.sets(
        st.from_regex(r"\.?[a-z_][a-z0-9_.]{0,6}(/\.?[a-z0-9_*?\[][a-z0-9_.*?\[]{0,5}){0,2}", fullmatch=True),
        max_size=12,
    ),
    st.sets(st.from_regex(r"\.?[a-z_][a-z0-9_.]{0,6}(/\.?[a-z0-9_][a-z0-9_.]{0,5}){0,2}", fullmatch=True), max_size=12),
)
def test_dockerignore_is_exact_for_any_paths(wanted: set[str], others: set[str]) -> None:
    selector = PatternSelector(exclude=ignore_patterns(render_dockerignore(sorted(wanted))))
    universe = wanted | {p for p in others if not any(p.startswith(w + "/") or w.startswith(p + "/") for w in wanted)}
    assert {p for p in universe if selector.selects(p)} == wanted


def run_lines(dockerfile: str) -> dict[str, str]:
    """The step's own RUN instruction (its last: a tools run comes first) of every step group, continuation
    lines joined."""
    out = {}
    for step, _key, lines in groups(dockerfile):
        starts = [i for i, ln in enumerate(lines) if ln.startswith("RUN ")]
        if not starts:
            continue
        parts = []
        for ln in lines[starts[-1] :]:
            parts.append(ln.strip().rstrip("\\").strip())
            if not ln.rstrip().endswith("\\"):
                break
        out[step] = " ".join(parts)
    return out


def run_argv(line: str) -> list[str]:
    """The exec-form argv of a RUN line, with the secrets' wrappers (CA bundle, index credentials) taken off."""
    argv = json.loads(line[line.index("[") :])
    while argv[1].endswith("/secret_env.sh"):
        argv = argv[argv.index("--") + 1 :]
    return argv


def test_install_steps_keep_mounts_markers_and_ca_secret(app_complete: Path) -> None:
    plan = make(app_complete)
    export = render_dockerfile(plan)
    by_step = run_lines(export.dockerfile)
    for kind in (StepKind.APT, StepKind.PIP):
        for mount in plan.step(kind).inputs.cache_mounts:
            assert f"--mount=type=cache,id={mount.id},target={mount.target},sharing={mount.sharing}" in by_step[kind]
        assert f"--mount=type=secret,id={CA_BUNDLE_SECRET_ID}," in by_step[kind]
    argv = run_argv(by_step["pip"])
    assert argv[:3] == ["/bin/sh", "/run/builder/scripts/pip.sh", "uv"]  # complete uses uv
    script = dict(export.files)[".builder/scripts/pip.sh"]
    first_output = next(ln for ln in script.splitlines() if ln.startswith(("echo", 'if [ "$installer"')))
    assert "UV_PIP_INSTALL_STARTED" in first_output


@pytest.mark.parametrize("app_dir", [a for a in APP_NAMES if a != "dockerfile-app"], indirect=True)
def test_scripts_ship_as_files_and_runs_stay_short(app_dir: Path) -> None:
    """A docker build log of the export is readable: no script text inline, each RUN a few hundred bytes."""
    export = render_dockerfile(make(app_dir))
    files = dict(export.files)
    for step, line in run_lines(export.dockerfile).items():
        assert "--mount=type=bind,source=.builder/scripts,target=/run/builder/scripts " in line + " "
        assert "set -e" not in line and len(line) < 1200, (step, len(line))
        for path in re.findall(r"/run/builder/scripts/([\w.]+)", line):
            assert f".builder/scripts/{path}" in files
    assert max(len(ln) for ln in export.dockerfile.splitlines()) < 800


def test_pip_marker_for_pip_installer(app_fastapi_cpu: Path) -> None:
    export = render_dockerfile(make(app_fastapi_cpu))
    argv = run_argv(run_lines(export.dockerfile)["pip"])
    assert argv[1:3] == ["/run/builder/scripts/pip.sh", "pip"]
    assert "PIP_INSTALL_STARTED" in dict(export.files)[".builder/scripts/pip.sh"]


def test_config_instructions(app_fastapi_cpu: Path) -> None:
    plan = make(app_fastapi_cpu)
    image = plan.step("config").inputs.image
    lines = dict(
        groups(render_dockerfile(plan).dockerfile)[-1:][0:1]
        and [("x", groups(render_dockerfile(plan).dockerfile)[-1][2])]
    )["x"]
    assert f"ENTRYPOINT {json.dumps(list(image.entrypoint))}" in lines
    assert not any(ln.startswith("CMD") for ln in lines)  # empty Cmd: ENTRYPOINT already resets it
    assert "EXPOSE 8000/tcp" in lines
    assert "WORKDIR /app" in lines
    assert 'ENV PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' in lines
    assert 'COPY ["cerebrium.toml", "/app/cerebrium.toml"]' in lines
    for name, value in image.labels:
        assert f'LABEL "{name}"="{value}"' in lines
    health = [ln for ln in lines if ln.startswith("HEALTHCHECK")]
    assert health and health[0].endswith(json.dumps(list(image.healthcheck.test[1:])))
    assert "--start-period=600s" in health[0]
    assert not render_dockerfile(plan).dockerfile.startswith("# syntax")


def test_user_dockerfile_is_kept_and_directives_hoisted(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "df"\n[cerebrium.runtime.custom]\nport = 8080\n'
        'dockerfile_path = "build/Dockerfile"\n'
    )
    (app / "build").mkdir()
    (app / "build" / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\nFROM debian:bookworm-slim\nCOPY app.py /srv/\n"
    )
    (app / "app.py").write_text("print(1)\n")
    export = render_dockerfile(make(app))
    lines = export.dockerfile.splitlines()
    assert lines[0] == "# syntax=docker/dockerfile:1"
    assert "FROM debian:bookworm-slim" in lines and "COPY app.py /srv/" in lines
    assert lines.index("COPY app.py /srv/") < lines.index('COPY ["cerebrium.toml", "/app/cerebrium.toml"]')
    assert "!app.py" in export.dockerignore.splitlines()
    assert not any(ln.startswith("ENV PATH=") for ln in lines)  # the user's Dockerfile keeps its PATH


def test_label_and_path_escaping() -> None:
    from builder.engines.dockerfile_export import _json, _quote

    assert _quote('a"b$c\\d') == '"a\\"b\\$c\\\\d"'
    assert json.loads(_json(["$HOME/x"])) == ["\\$HOME/x"]


def test_cli_writes_export(app_paths_files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "dockerfile",
                str(app_paths_files),
                "-o",
                str(app_paths_files),
                "--cache-dir",
                str(app_paths_files.parent / "c"),
            ]
        )
        == 0
    )
    assert (app_paths_files / "Dockerfile").read_text().startswith("# Generated by builder")
    assert (app_paths_files / ".dockerignore").read_text().splitlines()[1] == "*"
    assert (app_paths_files / ".builder" / "pip" / "requirements.txt").is_file()
    assert main(["dockerfile", str(app_paths_files), "--cache-dir", str(app_paths_files.parent / "c")]) == 0
    assert capsys.readouterr().out.startswith("# Generated by builder")


def test_cli_rewrites_its_own_builder_folder_but_not_a_users(app_paths_files: Path) -> None:
    cache = ["--cache-dir", str(app_paths_files.parent / "c")]
    assert main(["dockerfile", str(app_paths_files), "-o", str(app_paths_files), *cache]) == 0
    assert (app_paths_files / ".builder" / "scripts" / "pip.sh").is_file()
    assert main(["dockerfile", str(app_paths_files), "-o", str(app_paths_files), *cache]) == 0  # its own: rewritten
    (app_paths_files / ".builder" / "README.txt").unlink()  # now the folder is not known to be builder's
    (app_paths_files / ".builder" / "scripts" / "pip.sh").write_text("mine\n")
    assert main(["dockerfile", str(app_paths_files), "-o", str(app_paths_files), *cache]) == 2
    assert (app_paths_files / ".builder" / "scripts" / "pip.sh").read_text() == "mine\n"
