"""The warm server: commands served by it behave exactly like in-process runs.

Each test uses its own private server directory and stops its servers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.server import paths

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "fixtures" / "apps"
INVALID = REPO / "fixtures" / "invalid"


def _env(directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDER_")}
    env.update(
        {
            "BUILDER_SERVER": "auto",
            "BUILDER_RESOLVE": "off",
            "BUILDER_SERVER_DIR": str(directory),
            "BUILDER_SERVER_IDLE": "120",
            **extra,
        }
    )
    return env


def _run(
    args: list[str], env: dict[str, str], cwd: Path | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kw,
    )  # type: ignore[call-overload]


def _served_commands(directory: Path) -> list[str]:
    lines: list[str] = []
    for log in directory.glob("s-*.log"):
        lines += [ln.split(": ", 1)[1] for ln in log.read_text().splitlines() if "] pid " in ln]
    return lines


def _wait_until_no_server(directory: Path, env: dict[str, str], timeout: float = 20.0, stop: bool = False) -> bool:
    """True once no server runs in ``directory``; ``stop``: ask again each time, since a server that a
    command spawned may still be warming up (no socket yet) when the first stop looks for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop:
            _run(["server", "stop"], env)
        if "no server is running" in _run(["server", "status"], env).stderr:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture()
def server_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "srv"
    directory.mkdir(mode=0o700)
    yield directory
    env = _env(directory)
    assert _wait_until_no_server(directory, env, timeout=40.0, stop=True), "a test server did not stop"


@pytest.fixture()
def started(server_dir: Path) -> Path:
    done = _run(["server", "start"], _env(server_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("server: ")
    return server_dir


def _same_as_in_process(args: list[str], directory: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    served = _run(args, _env(directory), cwd=cwd)
    local = _run(args, _env(directory, BUILDER_SERVER="off"), cwd=cwd)
    assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout, local.stderr)
    return served


def test_valid_and_invalid_configs_give_identical_output_and_exit_codes(started: Path) -> None:
    ok = _same_as_in_process(["validate", str(APPS / "complete"), "--format", "json"], started)
    assert ok.returncode == 0 and '"valid": true' in ok.stdout
    bad = _same_as_in_process(["validate", str(INVALID / "alias-conflict")], started)
    assert bad.returncode == 2 and "evaluation_interval" in bad.stderr
    assert _served_commands(started) == [
        f"validate {APPS / 'complete'} --format json",
        f"validate {INVALID / 'alias-conflict'}",
    ]


def test_the_child_uses_the_clients_working_directory_and_environment(started: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache-from-env"
    env = _env(started, BUILDER_CACHE_DIR=str(cache))
    done = _run(["plan", "--format", "json"], env, cwd=APPS / "minimal")
    assert done.returncode == 0, done.stderr
    assert '"app": "minimal"' in done.stdout
    assert cache.is_dir(), "BUILDER_CACHE_DIR from the client's environment was not used"
    assert _served_commands(started) == ["plan --format json"]


def test_output_redirected_to_a_file_arrives_complete(started: Path, tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    with target.open("w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "builder", "schema"],
            env=_env(started),
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    local = _run(["schema"], _env(started, BUILDER_SERVER="off"))
    assert done.returncode == 0
    assert target.read_text() == local.stdout and len(local.stdout) > 1000


def test_the_umask_of_the_client_applies_to_files_the_command_writes(started: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    code = (
        f"import os, sys; os.umask(0o077); sys.argv = ['builder', 'dockerfile', {str(APPS / 'minimal')!r}, "
        f"'--output', {str(out)!r}]; from builder._launch import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(started), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written and all(p.stat().st_mode & 0o077 == 0 for p in written)
    assert _served_commands(started) == [f"dockerfile {APPS / 'minimal'} --output {out}"]


def test_ctrl_c_reaches_the_served_command(started: Path) -> None:
    # An "engine" that accepts connections and never answers: the command blocks until interrupted.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "builder", "engine", "info", "--engine", f"tcp://127.0.0.1:{port}", "--insecure"],
            env=_env(started),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not _served_commands(started) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in held:
            conn.close()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _served_commands(started) == [f"engine info --engine tcp://127.0.0.1:{port} --insecure"]


def test_a_client_killed_mid_command_interrupts_it_and_the_server_carries_on(started: Path) -> None:
    # An "engine" that never answers holds the command; the client then dies without a word.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "builder", "engine", "info", "--engine", f"tcp://127.0.0.1:{port}", "--insecure"],
            env=_env(started),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _served_commands(started) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.kill()
        proc.wait(timeout=10)
        log = next(started.glob("s-*.log"))
        child = int(log.read_text().split("] pid ")[1].split()[0])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the command of a dead client kept running")
    finally:
        listener.close()
    done = _run(["validate", str(APPS / "minimal")], _env(started))
    assert done.returncode == 0, done.stderr
    assert len(_served_commands(started)) == 2


def test_changed_code_is_never_served_by_an_old_server(started: Path) -> None:
    # PYTHON* variables are part of the fingerprint, like a changed source file: another server's socket.
    env = _env(started, PYTHONBUILDERTEST="1")
    assert paths.fingerprint(env) != paths.fingerprint(_env(started))
    done = _run(["validate", str(APPS / "minimal")], env)
    assert done.returncode == 0
    assert _served_commands(started) == []  # ran in-process, then started a server for the new code


def test_first_command_starts_a_server_and_the_next_one_uses_it(server_dir: Path) -> None:
    env = _env(server_dir)
    first = _run(["validate", str(APPS / "minimal")], env)
    assert first.returncode == 0
    assert _run(["server", "start"], env).returncode == 0  # waits for the server the first command spawned
    second = _run(["validate", str(APPS / "minimal")], env)
    assert (second.returncode, second.stdout, second.stderr) == (first.returncode, first.stdout, first.stderr)
    assert _served_commands(server_dir) == [f"validate {APPS / 'minimal'}"]
    status = _run(["server", "status"], env)
    assert status.stdout.count("current") == 1


def test_idle_server_exits(server_dir: Path) -> None:
    env = _env(server_dir, BUILDER_SERVER_IDLE="1")
    assert _run(["server", "start"], env).returncode == 0
    assert _wait_until_no_server(server_dir, env, timeout=15)
    assert not list(server_dir.glob("*.sock"))


def test_off_never_starts_a_server(server_dir: Path) -> None:
    env = _env(server_dir, BUILDER_SERVER="off")
    assert _run(["validate", str(APPS / "minimal")], env).returncode == 0
    time.sleep(0.5)
    assert not list(server_dir.glob("s-*"))
    assert _run(["server", "start"], env).returncode == 1


def test_unsafe_server_directory_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert paths.server_dir({"BUILDER_SERVER_DIR": str(shared)}) is None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    opened = paths.server_dir({"BUILDER_SERVER_DIR": str(private)})
    assert opened is not None and opened.path == str(private)
    opened.close()
    created = tmp_path / "new"
    opened = paths.server_dir({"BUILDER_SERVER_DIR": str(created)})
    assert opened is not None and opened.path == str(created)
    opened.close()
    assert created.stat().st_mode & 0o777 == 0o700


def test_fingerprint_follows_source_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    source = package / "sub" / "mod.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(paths, "_package_dirs", lambda: [str(package)])
    before = paths.fingerprint({})
    assert paths.fingerprint({}) == before
    (package / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"ignored")
    assert paths.fingerprint({}) == before
    source.write_text("x = 22\n")
    assert paths.fingerprint({}) != before
    assert paths.fingerprint({"GRPC_VERBOSITY": "debug"}) != paths.fingerprint({})
    assert paths.fingerprint({"UNRELATED": "1"}) == paths.fingerprint({})


@pytest.mark.parametrize(("value", "on"), [(None, True), ("auto", True), ("off", False), ("0", False), ("NO", False)])
def test_enabled(value: str | None, on: bool) -> None:
    assert paths.enabled({} if value is None else {"BUILDER_SERVER": value}) is on


def test_the_client_side_imports_nothing_heavy() -> None:
    probe = (
        "import sys\nimport builder._launch, builder.server.client, builder.server.paths\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    heavy = ("grpc", "google", "h2", "networkx", "packaging", "cache", "builder.cli", "builder.api", "tomllib")
    assert [m for m in loaded if m.split(".")[0] in heavy or m.startswith(heavy)] == []


def test_request_frames_round_trip() -> None:
    from builder.server.client import decode_request, encode_request

    env = {"A": "1", "B": "x=y", "UNI": "é\udcff", "EMPTY": ""}
    frame = encode_request(["build", "--tag", "a b", "", "ünï"], "/tmp/wd", env, 0o027, "utf-8", "strict")
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_request(frame[4:]) == {
        "cwd": "/tmp/wd",
        "umask": 0o027,
        "encoding": "utf-8",
        "errors": "strict",
        "argv": ["build", "--tag", "a b", "", "ünï"],
        "env": env,
    }
    with pytest.raises(ValueError):
        decode_request(b"other\0/\x000")


def test_files_of_servers_gone_for_a_day_are_removed(tmp_path: Path) -> None:
    import fcntl

    from builder.server.daemon import STALE_AFTER_S, remove_stale

    now = time.time()
    for name in ("old", "recent", "running", "mine"):
        for suffix in (".lock", ".log", ".hint.json"):
            path = tmp_path / f"s-{name}{suffix}"
            path.write_text("1\n")
            if name in ("old", "running", "mine"):
                os.utime(path, (now - 2 * STALE_AFTER_S, now - 2 * STALE_AFTER_S))
    held = os.open(tmp_path / "s-running.lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    directory = paths.open_dir(str(tmp_path), create=False)
    try:
        removed = remove_stale(directory, "s-mine", now=now)
    finally:
        os.close(held)
        directory.close()
    assert removed == ["s-old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"s-{n}{s}" for n in ("recent", "running", "mine") for s in (".lock", ".log", ".hint.json")
    )


def test_a_spare_that_has_the_frame_keeps_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spare that reads the frame and closes its end at once still owns the command: no second child."""
    import selectors

    from builder.server import daemon

    server = daemon.Server(str(tmp_path / "s.sock"), str(tmp_path / "s.lock"), 60.0)
    sleeper = subprocess.Popen(["sleep", "30"])
    ours, theirs = socket.socketpair()
    server.spare = daemon._Spare(sleeper.pid, ours, os.pidfd_open(sleeper.pid), time.monotonic())
    server.selector.register(server.spare.pidfd, selectors.EVENT_READ, ("spare", server.spare))
    real_send_fds = socket.send_fds

    def send_then_peer_closes(sock: socket.socket, buffers: list[bytes], fds: list[int]) -> int:
        sent = real_send_fds(sock, buffers, fds)
        _data, got, _flags, _addr = socket.recv_fds(theirs, 1 << 16, 4)
        for fd in got:
            os.close(fd)
        theirs.close()  # the spare has everything and closed its end before the server's next call
        return sent

    monkeypatch.setattr(daemon.socket, "send_fds", send_then_peer_closes)
    client, conn = socket.socketpair()
    try:
        handed = server._hand_to_spare(conn, b"frame", {"argv": ["--version"]}, [os.dup(0), os.dup(1), os.dup(2)])
        assert handed and server.spare is None and list(server.running) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
        client.close()
        server.selector.close()


def test_a_child_exit_and_its_client_hang_up_in_one_select_batch(tmp_path: Path) -> None:
    """Whichever of the two events comes first retires the command; the other is ignored, not a KeyError."""
    from builder.server import daemon

    for first in ("child", "conn"):
        server = daemon.Server(str(tmp_path / f"{first}.sock"), str(tmp_path / f"{first}.lock"), 60.0)
        child = subprocess.Popen(["true"])
        client, conn = socket.socketpair()
        try:
            server._started(child.pid, conn, os.pidfd_open(child.pid), {"argv": ["validate"]})
            client.close()  # the client hangs up ...
            child_exited = time.monotonic() + 10
            while (
                time.monotonic() < child_exited
                and os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
            ):
                time.sleep(0.01)  # ... and the child exits: both are ready before the server looks
            batch = [key.data for key, _ in server.selector.select(timeout=5)]
            assert sorted(event for event, _entry in batch) == ["child", "conn"]
            batch.sort(key=lambda data: data[0] != first)
            for data in batch:
                server._dispatch(data)
            assert server.running == {}
            assert len(server.selector.get_map()) == 0
        finally:
            client.close()
            server.selector.close()


def test_the_warmed_server_runs_no_thread_and_no_grpc_core_before_it_forks() -> None:
    """Children are forked from the server: a thread (or an initialised gRPC core, whose threads do not
    survive a fork) in it would be half-present in every child."""
    probe = "import os\nfrom builder.server.daemon import warm\nwarm()\nprint(len(os.listdir('/proc/self/task')))\n"
    env = {**os.environ, "GRPC_TRACE": "api", "GRPC_VERBOSITY": "debug"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    assert done.stdout.strip() == "1"
    assert "grpc_init" not in done.stderr


def test_a_server_without_spares_forks_none_ahead(tmp_path: Path) -> None:
    from builder.server import daemon

    server = daemon.Server(str(tmp_path / "s.sock"), str(tmp_path / "s.lock"), 60.0, spares=False)
    try:
        server._ensure_spare()
        assert server.spare is None
    finally:
        server.selector.close()
