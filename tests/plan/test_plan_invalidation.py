"""Invalidation rules: for each kind of change, exactly the expected step keys change.

Every option of the reference is edited once; the expectation lists the step
ids whose keys must change (all others must keep their keys).  ``config``
changes whenever cerebrium.toml's text changes, because the file itself is
the config step's layer; every other step must be insensitive to edits that
do not change its inputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from plan_helpers import CHAIN, FULL_TOML, changed, from_step, keys_of, plan_of, write_project

CONFIG = {"config"}
FROM_FILES = {"files", "shell", "config"}

# (case id, old text, new text, expected changed steps)
TOML_CASES: list[tuple[str, str, str, set[str]]] = [
    # the app name is the project's identity: its cache mounts (python onwards) live in the app's own scope
    ("name", 'name = "inv"', 'name = "other"', from_step("python")),
    ("python_version", 'python_version = "3.11"', 'python_version = "3.12"', from_step("python")),
    ("disable_auth", "disable_auth = false", "disable_auth = true", CONFIG),
    ("include-same-set", 'include = ["*"]', 'include = ["./*"]', CONFIG),
    ("include-explicit-same-set", 'include = ["*"]', 'include = ["main.py", "utils.py", "run.sh", "data/"]', CONFIG),
    ("include-fewer", 'include = ["*"]', 'include = ["*.py"]', FROM_FILES),
    ("exclude-no-effect", 'exclude = [".*"]', 'exclude = [".*", "*.log"]', CONFIG),
    ("exclude-a-file", 'exclude = [".*"]', 'exclude = [".*", "utils.py"]', FROM_FILES),
    ("exclude-nothing", 'exclude = [".*"]', "exclude = []", FROM_FILES),
    ("shell_commands", 'shell_commands = ["echo done"]', 'shell_commands = ["echo finished"]', {"shell", "config"}),
    ("shell_commands-empty-item", 'shell_commands = ["echo done"]', 'shell_commands = ["echo done", ""]', CONFIG),
    (
        "pre_build_commands",
        'pre_build_commands = ["echo pre"]',
        'pre_build_commands = ["echo other"]',
        from_step("pre_build"),
    ),
    (
        "base-same-image",
        'docker_base_image_url = "debian:bookworm-slim"',
        'docker_base_image_url = "docker.io/library/debian:bookworm-slim"',
        CONFIG,
    ),
    (
        "base-other-image",
        'docker_base_image_url = "debian:bookworm-slim"',
        'docker_base_image_url = "ubuntu:22.04"',
        set(CHAIN),
    ),
    ("use_uv", "use_uv = false", "use_uv = true", from_step("pip")),
    (
        "deployment_initialization_timeout",
        "deployment_initialization_timeout = 600",
        "deployment_initialization_timeout = 300",
        CONFIG,
    ),
    (
        "port",
        'port = 8000\nentrypoint = ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]',
        'port = 8001\nentrypoint = ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8001"]',
        CONFIG,
    ),
    ("entrypoint", '"main:app"', '"server:app"', CONFIG),
    ("healthcheck_endpoint", 'healthcheck_endpoint = "/health"', 'healthcheck_endpoint = "/healthz"', CONFIG),
    ("readycheck_endpoint", 'readycheck_endpoint = "/ready"', 'readycheck_endpoint = "/readyz"', CONFIG),
    ("cpu", "cpu = 2\n", "cpu = 4\n", CONFIG),
    ("memory", "memory = 4.0", "memory = 8.0", CONFIG),
    ("compute", 'compute = "CPU"\ngpu_count = 0', 'compute = "AMPERE_A10"\ngpu_count = 1', CONFIG),
    ("provider", 'provider = "aws"', 'provider = "coreweave"', CONFIG),
    ("region", 'region = "us-east-1"', 'region = "eu-west-2"', CONFIG),
    ("min_replicas", "min_replicas = 0", "min_replicas = 1", CONFIG),
    ("max_replicas", "max_replicas = 2", "max_replicas = 5", CONFIG),
    ("replica_concurrency", "replica_concurrency = 10", "replica_concurrency = 20", CONFIG),
    ("response_grace_period", "response_grace_period = 3600", "response_grace_period = 600", CONFIG),
    ("cooldown", "cooldown = 1800", "cooldown = 60", CONFIG),
    ("scaling_metric", 'scaling_metric = "concurrency_utilization"', 'scaling_metric = "cpu_utilization"', CONFIG),
    ("scaling_target", "scaling_target = 100", "scaling_target = 80", CONFIG),
    ("scaling_buffer", "scaling_target = 100", "scaling_target = 100\nscaling_buffer = 3", CONFIG),
    ("evaluation_interval", "evaluation_interval = 30", "evaluation_interval = 60", CONFIG),
    ("load_balancing", 'load_balancing = ""', 'load_balancing = "min-connections"', CONFIG),
    ("roll_out_duration_seconds", "roll_out_duration_seconds = 0", "roll_out_duration_seconds = 60", CONFIG),
    ("pip-version", 'torch = "==2.0.0"', 'torch = "==2.1.0"', from_step("pip")),
    ("pip-add", 'numpy = "latest"', 'numpy = "latest"\npandas = ">=1.5.0"', from_step("pip")),
    ("pip-reorder", 'torch = "==2.0.0"\nnumpy = "latest"', 'numpy = "latest"\ntorch = "==2.0.0"', CONFIG),
    ("pip-name-case", 'torch = "==2.0.0"', 'Torch = "==2.0.0"', CONFIG),
    ("pip-bare-version", 'torch = "==2.0.0"', 'torch = "2.0.0"', CONFIG),
    ("apt-add", 'ffmpeg = "latest"', 'ffmpeg = "latest"\ncurl = "latest"', from_step("apt")),
    ("conda-version", 'cudatoolkit = "11.7"', 'cudatoolkit = "11.8"', from_step("conda")),
    ("comment-only", "[cerebrium.hardware]", "# resources\n[cerebrium.hardware]  # trailing comment", CONFIG),
    ("whitespace-only", "cpu = 2\n", "cpu   =   2   \n\n\n", CONFIG),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in TOML_CASES], ids=[c[0] for c in TOML_CASES])
def test_config_edit_changes_exactly(tmp_path: Path, old: str, new: str, expected: set[str]) -> None:
    assert old in FULL_TOML
    before = keys_of(write_project(tmp_path / "a", FULL_TOML))
    after = keys_of(write_project(tmp_path / "b", FULL_TOML.replace(old, new, 1)))
    assert changed(before, after) == expected


def test_every_chain_step_is_in_the_full_project(tmp_path: Path) -> None:
    assert tuple(keys_of(write_project(tmp_path, FULL_TOML))) == CHAIN


def test_table_reorder_changes_only_config(tmp_path: Path) -> None:
    head, sep, rest = FULL_TOML.partition("[cerebrium.hardware]")
    hardware, sep2, tail = rest.partition("[cerebrium.scaling]")
    reordered = head + sep2 + tail + "\n" + sep + hardware
    before = keys_of(write_project(tmp_path / "a", FULL_TOML))
    after = keys_of(write_project(tmp_path / "b", reordered))
    assert changed(before, after) == CONFIG


def test_same_build_inputs_in_one_shared_cache_scope_share_every_key_but_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = (
        FULL_TOML.replace('name = "inv"', 'name = "twin"')
        .replace("cpu = 2\n", "cpu = 8\n")
        .replace("max_replicas = 2", "max_replicas = 9")
        .replace("disable_auth = false", "disable_auth = true")
    )
    monkeypatch.setenv("BUILDER_CACHE_SCOPE", "team-ci")
    a = keys_of(write_project(tmp_path / "a", FULL_TOML))
    b = keys_of(write_project(tmp_path / "b", other))
    assert changed(a, b) == CONFIG
    monkeypatch.delenv("BUILDER_CACHE_SCOPE")  # each app in its own scope: nothing with cache mounts is shared
    assert changed(
        keys_of(write_project(tmp_path / "c", FULL_TOML)), keys_of(write_project(tmp_path / "d", other))
    ) == from_step("python")


def _mutate(root: Path, case: str) -> None:
    if case == "edit":
        (root / "main.py").write_text("print('changed')\n")
    elif case == "add":
        (root / "new.py").write_text("x = 1\n")
    elif case == "delete":
        (root / "utils.py").unlink()
    elif case == "chmod":
        os.chmod(root / "utils.py", 0o755)
    elif case == "symlink":
        os.symlink("main.py", root / "link.py")
    elif case == "nested-edit":
        (root / "data" / "x.txt").write_text("y\n")
    elif case == "rename":
        (root / "utils.py").rename(root / "helpers.py")
    elif case == "excluded-dotfile":
        (root / ".env").write_text("SECRET=2\n")
    elif case == "excluded-dot-dir":
        (root / ".git" / "config").write_text("[core]\nbare = false\n")
    elif case == "excluded-nested-dot-dir":
        (root / "src" / ".cache" / "blob").write_text("other\n")
    elif case == "touch-only":
        os.utime(root / "main.py", (1_000_000_000, 1_000_000_000))
    elif case == "empty-dir":
        (root / "empty").mkdir()
    else:
        raise AssertionError(case)


FILE_CASES = [
    ("edit", FROM_FILES),
    ("add", FROM_FILES),
    ("delete", FROM_FILES),
    ("chmod", FROM_FILES),
    ("symlink", FROM_FILES),
    ("nested-edit", FROM_FILES),
    ("rename", FROM_FILES),
    ("excluded-dotfile", set()),
    ("excluded-dot-dir", set()),
    ("excluded-nested-dot-dir", set()),
    ("touch-only", set()),
    ("empty-dir", set()),
]


@pytest.mark.parametrize(("case", "expected"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_project_file_change_changes_exactly(tmp_path: Path, case: str, expected: set[str]) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    before = keys_of(root)
    _mutate(root, case)
    assert changed(before, keys_of(root)) == expected


REQ_TOML = """\
[cerebrium.deployment]
name = "req"
shell_commands = ["echo done"]

[cerebrium.dependencies.paths]
pip = "requirements.txt"
"""
REQ_FILES = {"main.py": "print(1)\n", "requirements.txt": "# pins\nsix==1.16.0\nidna>=3.4\n"}
REQ_CHAIN = ("base", "python", "pip", "runtime", "files", "shell", "config")

REQ_CASES = [
    ("version", "six==1.16.0\nidna>=3.4\n", "six==1.17.0\nidna>=3.4\n", set(REQ_CHAIN[2:])),
    ("reorder", "# pins\nsix==1.16.0\nidna>=3.4\n", "idna>=3.4\nsix==1.16.0\n", FROM_FILES),
    ("comment", "# pins\n", "# pinned on purpose\n\n", FROM_FILES),
    ("whitespace", "six==1.16.0\n", "six == 1.16.0   \n", FROM_FILES),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in REQ_CASES], ids=[c[0] for c in REQ_CASES])
def test_requirements_file_edit(tmp_path: Path, old: str, new: str, expected: set[str]) -> None:
    """The pip key follows the requirement set; the file itself is also a project file."""
    root = write_project(tmp_path / "p", REQ_TOML, REQ_FILES)
    before = keys_of(root)
    text = (root / "requirements.txt").read_text()
    assert old in text
    (root / "requirements.txt").write_text(text.replace(old, new))
    assert changed(before, keys_of(root)) == expected


def test_requirements_comment_edit_changes_nothing_when_file_is_excluded(tmp_path: Path) -> None:
    toml = REQ_TOML.replace('name = "req"', 'name = "req"\nexclude = [".*", "requirements.txt"]')
    root = write_project(tmp_path / "p", toml, REQ_FILES)
    before = keys_of(root)
    (root / "requirements.txt").write_text("idna>=3.4\n# a comment\nsix==1.16.0\n")
    assert changed(before, keys_of(root)) == set()


LOCAL_TOML = """\
[cerebrium.deployment]
name = "local"

[cerebrium.dependencies.paths]
pip = "requirements.txt"
"""
LOCAL_FILES = {
    "main.py": "print(1)\n",
    "requirements.txt": "-e ./mypkg\nsix==1.16.0\n",
    "mypkg/pyproject.toml": "[project]\nname = 'mypkg'\nversion = '0.1'\n",
    "mypkg/mypkg/__init__.py": "X = 1\n",
}


def test_local_requirement_makes_pip_read_only_its_files(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", LOCAL_TOML, LOCAL_FILES)
    plan = plan_of(root)
    pip = plan.step("pip")
    assert [s.value for s in pip.sources] == ["files"]
    assert pip.inputs.local.paths == ("mypkg",)
    assert sorted(e.path for e in pip.inputs.local.manifest) == ["mypkg/mypkg/__init__.py", "mypkg/pyproject.toml"]
    before = plan.keys
    (root / "main.py").write_text("print(2)\n")
    assert changed(before, keys_of(root)) == {"files", "config"}
    after_main = keys_of(root)
    (root / "mypkg" / "mypkg" / "__init__.py").write_text("X = 2\n")
    assert changed(after_main, keys_of(root)) == {"pip", "runtime", "files", "config"}


DOCKER_TOML = """\
[cerebrium.deployment]
name = "docker"
shell_commands = ["echo ignored"]

[cerebrium.runtime.custom]
port = 8000
dockerfile_path = "Dockerfile"
"""


def test_dockerfile_replaces_the_chain(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", DOCKER_TOML, {"Dockerfile": "FROM python:3.12-slim\n", "app.py": "x\n"})
    plan = plan_of(root)
    assert [s.value for s in plan.ids] == ["dockerfile", "config"]
    assert [n.key_path for n in plan.notes] == ["cerebrium.deployment.shell_commands"]
    assert plan.step("dockerfile").parents == ()
    assert [p.value for p in plan.step("config").parents] == ["dockerfile"]
    before = plan.keys
    (root / "Dockerfile").write_text("FROM python:3.11-slim\n")
    assert changed(before, keys_of(root)) == {"dockerfile", "config"}
    mid = keys_of(root)
    (root / "app.py").write_text("y\n")
    assert changed(mid, keys_of(root)) == {"dockerfile", "config"}


def test_empty_steps_are_left_out_and_children_reattached(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", '[cerebrium.deployment]\nname = "tiny"\n', {"main.py": "x\n"})
    plan = plan_of(root)
    assert [s.value for s in plan.ids] == ["base", "python", "runtime", "files", "config"]
    assert [p.value for p in plan.step("runtime").parents] == ["python"]
    assert [p.value for p in plan.step("files").parents] == ["runtime"]
    assert [p.value for p in plan.step("config").parents] == ["files"]


def test_project_without_files_has_no_files_step(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        '[cerebrium.deployment]\nname = "tiny"\n[cerebrium.runtime.custom]\n'
        'port = 8000\nentrypoint = ["python", "-m", "http.server"]\n',
        {},
    )
    assert [s.value for s in plan_of(root).ids] == ["base", "python", "config"]
