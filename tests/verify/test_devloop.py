"""The dev loop's pure parts: what it watches, how it labels and publishes containers, what it prints."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.cli import main
from builder.cli.commands.dev import DevPrinter
from builder.config import load_config
from builder.devloop import (
    DEV_LABEL,
    DEV_OWNER_LABEL,
    DevAppLog,
    DevChange,
    DevFailed,
    DevPlanned,
    DevReady,
    WatchSet,
    changed_paths,
    dev_container_spec,
    dev_tag,
    edit_time,
    engine_host,
    files_tar,
    is_dev_leftover,
)
from builder.engines.docker_api import DockerAPI
from builder.verify import VerifySettings

TOML = """\
[cerebrium.deployment]
name = "watch-me"
python_version = "3.11"
include = ["src/*", "main.py"]
exclude = ["src/skip*"]

[cerebrium.dependencies.paths]
pip = "deps/requirements.txt"

[cerebrium.runtime.custom]
port = 9000
entrypoint = ["python", "main.py"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cerebrium.toml").write_text(TOML)
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "notes.txt").write_text("not selected\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    (tmp_path / "src" / "skipped.py").write_text("x = 2\n")
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "requirements.txt").write_text("six\n")
    return tmp_path


def test_watch_set_is_the_files_selection_plus_config_and_paths_files(project: Path) -> None:
    watch = WatchSet(project, load_config(project))
    snap, selected = watch.snapshot()
    assert selected == {"main.py", "src/app.py"}
    assert set(snap) == {"main.py", "src/app.py", "cerebrium.toml", "deps/requirements.txt"}
    assert watch.extras == ("cerebrium.toml", "deps/requirements.txt")


def test_dockerfile_apps_watch_their_dockerfile(project: Path) -> None:
    (project / "cerebrium.toml").write_text(
        TOML.replace('entrypoint = ["python", "main.py"]', 'dockerfile_path = "./docker/Dockerfile"')
    )
    watch = WatchSet(project, load_config(project))
    assert "docker/Dockerfile" in watch.extras
    snap, _ = watch.snapshot()
    assert snap["docker/Dockerfile"] is None  # missing is watched too: creating it is a change


def test_changes_seen_are_exactly_the_edited_created_and_deleted_paths(project: Path) -> None:
    watch = WatchSet(project, load_config(project))
    before, _ = watch.snapshot()
    (project / "main.py").write_text("print(2)  # longer\n")
    (project / "src" / "new.py").write_text("y = 1\n")
    (project / "src" / "skip-me.py").write_text("excluded\n")
    (project / "notes.txt").write_text("still not selected\n")
    (project / "deps" / "requirements.txt").unlink()
    after, _ = watch.snapshot()
    assert changed_paths(before, after) == ("deps/requirements.txt", "main.py", "src/new.py")
    assert changed_paths(after, after) == ()


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.tuples(st.integers(), st.integers(), st.integers())),
    st.dictionaries(st.text(min_size=1, max_size=5), st.tuples(st.integers(), st.integers(), st.integers())),
)
def test_changed_paths_is_the_symmetric_difference_of_what_differs(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    got = changed_paths(a, b)
    assert list(got) == sorted(got)
    assert set(got) == {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}
    assert changed_paths(b, a) == got


def test_edit_time_is_the_newest_mtime_never_after_it_was_seen(project: Path) -> None:
    os.utime(project / "main.py", (1000, 1000))
    os.utime(project / "src" / "app.py", (2000, 2000))
    assert edit_time(project, ["main.py", "src/app.py"], seen=5000.0) == 2000.0
    assert edit_time(project, ["main.py"], seen=500.0) == 500.0
    assert edit_time(project, ["gone.py"], seen=42.0) == 42.0


def test_container_spec_labels_env_and_published_port() -> None:
    settings = VerifySettings(port=9000, env={"KEY": "value"})
    bridge = dev_container_spec("img:1", settings, app="watch-me", network="bridge", host_port=18000)
    assert bridge["Labels"][DEV_LABEL] == "watch-me" and bridge["Labels"][DEV_OWNER_LABEL].endswith(f":{os.getpid()}")
    assert bridge["ExposedPorts"] == {"9000/tcp": {}}
    assert bridge["HostConfig"]["PortBindings"] == {"9000/tcp": [{"HostPort": "18000"}]}
    assert bridge["Env"] == ["PORT=9000", "KEY=value"] and bridge["HostConfig"]["CapDrop"] == ["ALL"]
    host = dev_container_spec("img:1", settings, app="watch-me", network="host", host_port=18000)
    assert host["HostConfig"]["NetworkMode"] == "host" and "PortBindings" not in host["HostConfig"]


def test_leftovers_are_this_apps_containers_whose_loop_died() -> None:
    def container(app: str, owner: str) -> dict[str, object]:
        return {"Labels": {DEV_LABEL: app, DEV_OWNER_LABEL: owner}}

    alive = {10}.__contains__
    assert is_dev_leftover(container("a", "h:11"), "a", "h", alive)
    assert not is_dev_leftover(container("a", "h:10"), "a", "h", alive)  # its loop still runs
    assert not is_dev_leftover(container("b", "h:11"), "a", "h", alive)  # another app's
    assert not is_dev_leftover(container("a", "other:11"), "a", "h", alive)  # another host's: cannot tell


def test_tag_and_engine_host() -> None:
    assert dev_tag("My_App") == "builder-dev-my_app:latest"
    assert dev_tag("a b/c") == "builder-dev-a-b-c:latest"
    assert engine_host(DockerAPI(path="/run/docker.sock")) == "127.0.0.1"
    assert engine_host(DockerAPI(host="build.example", port=2376)) == "build.example"


def test_files_tar_keeps_modes_and_owns_files_by_root(project: Path) -> None:
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    os.symlink("main.py", project / "link.py")
    with tarfile.open(fileobj=io.BytesIO(files_tar(project, ["src/app.py", "run.sh", "link.py"]))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"src/app.py", "run.sh", "link.py"}
        assert members["run.sh"].mode & 0o111 and members["src/app.py"].uid == 0
        assert members["link.py"].issym() and members["link.py"].linkname == "main.py"
        assert tar.extractfile("src/app.py").read() == b"x = 1\n"  # type: ignore[union-attr]


def test_json_events_have_the_documented_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    printer = DevPrinter(json_mode=True)
    printer(DevChange(("main.py",)))
    printer(DevPlanned("3 of 6 steps rebuild (cause: files)", ("files", "shell", "config"), "files: 1 changed"))
    printer(DevReady("http://127.0.0.1:9000", 1.23456, "img", "c1"))
    printer(DevFailed("build", "step shell failed", ("boom",), "fix it", serving=True))
    printer(DevAppLog("hello"))
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0] == {"event": "change", "paths": ["main.py"]}
    assert events[1]["event"] == "plan" and events[1]["rebuild"] == ["files", "shell", "config"]
    assert events[2] == {
        "event": "ready",
        "url": "http://127.0.0.1:9000",
        "seconds": 1.235,
        "synced": False,
        "image": "img",
    }
    assert events[3]["event"] == "failed" and events[3]["stage"] == "build" and events[3]["message"]
    assert events[4] == {"event": "app", "line": "hello"}


def test_text_failure_says_whether_the_old_app_still_answers(capsys: pytest.CaptureFixture[str]) -> None:
    printer = DevPrinter(json_mode=False)
    printer(
        DevFailed("start", "the app exited with code 1", ("Traceback", "RuntimeError: x"), "see above", serving=True)
    )
    err = capsys.readouterr().err
    assert "start failed: the app exited with code 1" in err and "  | RuntimeError: x" in err
    assert "still answering" in err


def test_cli_rejects_a_bad_port_and_a_bad_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", str(tmp_path), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    (tmp_path / "cerebrium.toml").write_text("[cerebrium.deployment]\nname = 3\n")
    start = time.monotonic()
    assert main(["dev", str(tmp_path), "--engine", "unix:///nonexistent.sock"]) == 2
    assert "name" in capsys.readouterr().err and time.monotonic() - start < 30
