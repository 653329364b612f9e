"""Hypothesis: ``validate`` passes exactly when ``plan`` (without an engine) does, and neither crashes.

Each example is a small project: a cerebrium.toml assembled from good and bad
pieces (names, versions, direct references, duplicates, conda specs, apt
names, paths files that exist or not, dockerfile_path, include/exclude,
use_uv), requirements/pkglist files drawn from good and bad lines, with or
without main.py.  ``check_project`` (what ``builder validate`` runs) and
``plan_project`` (what ``builder plan`` runs) must agree, only BuilderErrors
may be raised, and every error must name a file.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.api import check_project, plan_project
from builder.cli import main
from builder.errors import BuilderError

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}

PIP_INLINE = [
    ("numpy", "latest"),
    ("numpy", "1.26.4"),
    ("NumPy", "latest"),
    ("numpy", ">=1.2,<2"),
    ("numpy", "not a version"),
    ("torch", ">>2"),
    ("Pillow", ""),
    ("pillow", "*"),
    ("requests[socks]", "2.31.0"),
    ("x; rm -rf /", "latest"),
    ("git+https://github.com/huggingface/peft.git", "latest"),
    ("git+https://github.com/o/r.git", "1.0"),
    ("mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl", ""),
    ("numpy\u2028", "latest"),
    ("six", "1.16.0; python_version >= '3.8'"),
    ("six", ">=1; rm"),
    ("https://x.org/a-1.0-py3-none-any.whl", ""),
]
PIP_LINES = [
    "six==1.16.0",
    "Six==1.16.0",
    "six==1.15.0",
    "numpy",
    "not valid ===",
    "-r other.txt",
    "-r missing.txt",
    "--index-url https://u:p@pypi.example.com/simple",
    "--pre",
    "--only-binary :all:",
    "--trusted-host h.org",
    "-U",
    "--frobnicate",
    "git+https://github.com/o/r.git@0123456789abcdef0123456789abcdef01234567#egg=r",
    "pkg @ https://example.com/pkg-1.0-py3-none-any.whl",
    "-e ./localpkg",
    "./missing-dir",
    "# comment",
    "",
    "six==1.16.0 --hash=sha256:" + "a" * 64,
    "six --hash=md5:00",
]
APT = [
    ("ffmpeg", "latest"),
    ("libgl1", ""),
    ("bad name!", "latest"),
    ("curl", "7.88.1-10+deb12u5"),
    ("curl", ">=7"),
    ("--allow-unauthenticated", "latest"),
]
CONDA = [
    ("numpy", "latest"),
    ("cuda", ">=11.7"),
    ("--allow-unauthenticated", "latest"),
    ("numpy\u2028x", ""),
    ("conda-forge::numpy", "1.26.*"),
    ("numpy", "1 2"),
    ("NumPy", "latest"),
]
PKGLIST = ["ffmpeg", "curl=7.88.1-10+deb12u5", "bad!name", "libgl1 libglib2.0-0", ""]
CONDA_LIST = ["numpy >=1.24", "-c conda-forge", "--allow-unauthenticated", "numpy >=1.24", "python 3.11.*", "*"]
# Entries that are valid on their own, so about half the projects are valid and both outcomes are exercised.
GOOD = {
    "pip_inline": [PIP_INLINE[i] for i in (0, 3, 6, 8, 10, 12, 14, 16)],
    "pip_lines": [PIP_LINES[i] for i in (0, 3, 7, 8, 9, 13, 14, 17, 18, 19)],
    "apt": [APT[0], APT[1], APT[3]],
    "pkglist": PKGLIST[:2] + PKGLIST[3:],
    "conda": [CONDA[0], CONDA[1], CONDA[4]],
    "conda_list": CONDA_LIST[:2] + [CONDA_LIST[4]],
}


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def _table(name: str, pairs: list[tuple[str, str]]) -> str:
    return f"[{name}]\n" + "".join(f"{_toml_str(k)} = {_toml_str(v)}\n" for k, v in pairs) if pairs else ""


@st.composite
def projects(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    files: dict[str, str] = {}
    good = draw(st.booleans())
    deployment = ['name = "app"']
    if draw(st.booleans()):
        deployment.append(f"use_uv = {draw(st.sampled_from(['true', 'false']))}")
    include = draw(st.sampled_from([None, "[]", '["*"]', '["main.py"]'] + ([] if good else ['["src/*"]'])))
    if include:
        deployment.append(f"include = {include}")
    exclude = draw(st.sampled_from([None, "[]", '[".*"]'] + ([] if good else ['["main.py"]'])))
    if exclude:
        deployment.append(f"exclude = {exclude}")
    image = draw(
        st.sampled_from(
            [None, '"debian:bookworm-slim"'] + ([] if good else ['"Not A Ref"', '"python:3.11@sha256:xyz"'])
        )
    )
    if image:
        deployment.append(f"docker_base_image_url = {image}")
    parts = ["[cerebrium.deployment]\n" + "\n".join(deployment) + "\n"]
    runtime = draw(st.sampled_from(["default", "entrypoint", "dockerfile"] + ([] if good else ["dockerfile-missing"])))
    if runtime == "entrypoint":
        parts.append('[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "app.py"]\n')
    elif runtime.startswith("dockerfile"):
        parts.append('[cerebrium.runtime.custom]\nport = 8000\ndockerfile_path = "Dockerfile"\n')
        if runtime == "dockerfile":
            files["Dockerfile"] = "FROM debian:bookworm-slim\nCOPY . /app\n"
    if good or draw(st.booleans()):
        files["main.py"] = "print('hi')\n"
    paths = []
    pools = (
        ((GOOD["pip_inline"], GOOD["pip_lines"]), (GOOD["apt"], GOOD["pkglist"]), (GOOD["conda"], GOOD["conda_list"]))
        if good
        else ((PIP_INLINE, PIP_LINES), (APT, PKGLIST), (CONDA, CONDA_LIST))
    )
    for (manager, name), (inline_pool, lines_pool) in zip(
        (("pip", "requirements.txt"), ("apt", "pkglist.txt"), ("conda", "conda_pkglist.txt")), pools, strict=True
    ):
        inline = draw(st.lists(st.sampled_from(inline_pool), max_size=3))
        # TOML forbids the same key twice; keep the first of each spelling.
        inline = list({k: (k, v) for k, v in reversed(inline)}.values())
        parts.append(_table(f"cerebrium.dependencies.{manager}", inline))
        mode = draw(st.sampled_from(["none", "file"] + ([] if good or inline else ["missing"])))
        if good and inline:
            mode = "none"
        if mode != "none":
            paths.append((manager, name))
            if mode == "file":
                files[name] = "\n".join(draw(st.lists(st.sampled_from(lines_pool), max_size=4))) + "\n"
    if paths:
        parts.append(_table("cerebrium.dependencies.paths", paths))
    if draw(st.booleans()):
        files["other.txt"] = "\n".join(draw(st.lists(st.sampled_from(PIP_LINES[:6]), max_size=3))) + "\n"
    return "".join(parts), files


@settings(max_examples=120, **SETTINGS)
@given(projects())
def test_validate_passes_exactly_when_plan_does(case: tuple[str, dict[str, str]]) -> None:
    toml, files = case
    tmp = Path(tempfile.mkdtemp(prefix="builder-agree-"))
    try:
        app = tmp / "app"
        app.mkdir()
        (app / "cerebrium.toml").write_text(toml, encoding="utf-8")
        for rel, text in files.items():
            (app / rel).write_text(text, encoding="utf-8")
        checked = check_project(app)
        for d in checked.errors:
            assert d.file, d  # every problem names a file
        try:
            plan_project(app, cache_dir=tmp / "cache", record=False)
            planned = True
        except BuilderError:
            planned = False
        assert checked.ok == planned, (toml, files, [d.format() for d in checked.errors])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@settings(max_examples=40, **SETTINGS)
@given(projects())
def test_cli_exit_codes_agree_and_nothing_is_a_traceback(case: tuple[str, dict[str, str]]) -> None:
    toml, files = case
    tmp = Path(tempfile.mkdtemp(prefix="builder-agree-"))
    try:
        app = tmp / "app"
        app.mkdir()
        (app / "cerebrium.toml").write_text(toml, encoding="utf-8")
        for rel, text in files.items():
            (app / rel).write_text(text, encoding="utf-8")
        codes = []
        for args in (["validate", str(app)], ["plan", str(app), "--cache-dir", str(tmp / "cache")]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                codes.append(main(args))
            assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()
        assert codes[0] in (0, 2)
        assert codes[0] == codes[1], (toml, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
