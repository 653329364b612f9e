"""Keys are the same in every process and unmoved by reorder/comment/whitespace edits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_helpers import FULL_TOML, keys_of, write_project

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = """
import json, sys
from builder.config import load_config
from builder.plan import make_plan
print(json.dumps(make_plan(load_config(sys.argv[1])).keys))
"""


def _keys_in_subprocess(project: Path, seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(project)], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_keys_equal_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", FULL_TOML)
    first = _keys_in_subprocess(project, "1")
    second = _keys_in_subprocess(project, "4242")
    assert first == second
    assert first == keys_of(project)
    assert len(first) == 9


def test_keys_do_not_depend_on_the_project_location(tmp_path: Path) -> None:
    a = keys_of(write_project(tmp_path / "a", FULL_TOML))
    b = keys_of(write_project(tmp_path / "deeper" / "b", FULL_TOML))
    assert a == b


PIP_ENTRIES = [
    ("torch", "==2.0.0"),
    ("numpy", "latest"),
    ("pandas", ">=1.5.0"),
    ("requests", "2.31.0"),
    ("fastapi", ""),
    ("uvicorn", "*"),
]
APT_ENTRIES = [("ffmpeg", "latest"), ("curl", "latest"), ("git", "")]


def _toml(
    pip: list[tuple[str, str]], apt: list[tuple[str, str]], order: list[int], comments: list[bool], spaces: list[int]
) -> str:
    sections = {
        "deployment": '[cerebrium.deployment]\nname = "prop"\npython_version = "3.11"\n',
        "hardware": "[cerebrium.hardware]\ncpu = 2\nmemory = 4.0\n",
        "pip": "[cerebrium.dependencies.pip]\n"
        + "".join(
            f'{n}{" " * s} = "{v}"' + ("  # why" if c else "") + "\n"
            for (n, v), c, s in zip(pip, comments, spaces, strict=False)
        ),
        "apt": "[cerebrium.dependencies.apt]\n" + "".join(f'{n} = "{v}"\n' for n, v in apt),
    }
    names = list(sections)
    return "\n".join("# section\n" * comments[i % len(comments)] + sections[names[i]] for i in order)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pip=st.permutations(PIP_ENTRIES),
    apt=st.permutations(APT_ENTRIES),
    order=st.permutations(range(4)),
    comments=st.lists(st.booleans(), min_size=6, max_size=6),
    spaces=st.lists(st.integers(0, 3), min_size=6, max_size=6),
)
def test_reorder_comment_whitespace_edits_keep_layer_keys(
    tmp_path_factory,
    pip,
    apt,
    order,
    comments,  # type: ignore[no-untyped-def]
    spaces,
) -> None:
    root = tmp_path_factory.mktemp("prop")
    reference = keys_of(
        write_project(
            root / "ref", _toml(PIP_ENTRIES, APT_ENTRIES, [0, 1, 2, 3], [False] * 6, [0] * 6), {"main.py": "x\n"}
        )
    )
    edited = keys_of(write_project(root / "edit", _toml(pip, apt, order, comments, spaces), {"main.py": "x\n"}))
    layer = {k: v for k, v in reference.items() if k != "config"}
    assert {k: v for k, v in edited.items() if k != "config"} == layer


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.permutations(["six==1.16.0", "idna>=3.4", "requests[socks]==2.31.0", "# a comment", ""]),
    pad=st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=5, max_size=5),
)
def test_requirements_file_reorder_and_comments_keep_the_pip_key(tmp_path_factory, lines, pad) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("req")
    toml = (
        '[cerebrium.deployment]\nname = "r"\nexclude = [".*", "requirements.txt"]\n'
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )
    ref = keys_of(
        write_project(
            root / "a", toml, {"main.py": "", "requirements.txt": "six==1.16.0\nidna>=3.4\nrequests[socks]==2.31.0\n"}
        )
    )
    text = "".join(p + ln + p + "\n" for ln, p in zip(lines, pad, strict=True))
    assert keys_of(write_project(root / "b", toml, {"main.py": "", "requirements.txt": text})) == ref
