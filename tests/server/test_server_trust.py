"""The warm server trusts nothing another user could have touched (issue 20, finding 1).

Reproductions as root with an unprivileged user (``nobody``) as the attacker: a server directory under a
directory that user owns is refused (the command runs in-process with one warning); a socket that user
listens on receives nothing, not even the request with the environment; a server that names a process
that is not its child cannot make the client signal it; nothing in the directory is opened through a
symlink.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.server import paths
from tests.privileges import NOBODY, dropping_privileges, start_python, traversable_tmp_dir

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "fixtures" / "apps" / "minimal"
SECRET = "s3cr3t-token-for-the-client-only"
needs_root = pytest.mark.skipif(
    not dropping_privileges(), reason="making a directory or socket another user owns needs root"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILDER_", "XDG_RUNTIME_DIR"))}
    env.update(
        {
            "BUILDER_SERVER": "auto",
            "BUILDER_RESOLVE": "off",
            "BUILDER_SERVER_IDLE": "60",
            "CLIENT_TOKEN": SECRET,
            **extra,
        }
    )
    return env


def _launch(args: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    """The ``builder`` console script (client first, in-process when no server takes the command)."""
    return subprocess.run(
        [sys.executable, "-c", "from builder._launch import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kw,
    )  # type: ignore[call-overload]


def _fingerprint(env: dict[str, str]) -> str:
    code = "import os; from builder.server import paths; print(paths.fingerprint(os.environ))"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _stop_servers(env: dict[str, str]) -> None:
    for _ in range(50):
        subprocess.run([sys.executable, "-m", "builder", "server", "stop"], env=env, capture_output=True, check=False)
        status = subprocess.run(
            [sys.executable, "-m", "builder", "server", "status"], env=env, capture_output=True, text=True, check=False
        )
        if "no server is running" in status.stderr:
            return
        time.sleep(0.2)


@pytest.fixture()
def shared_root() -> Iterator[Path]:
    with traversable_tmp_dir() as root:
        yield root


# -- the directory -----------------------------------------------------------------------------------------


@needs_root
def test_a_server_directory_under_a_directory_another_user_owns_is_refused(shared_root: Path) -> None:
    # XDG_RUNTIME_DIR of `su` without `-`: the other user's runtime directory.  The old check looked at
    # `builder/` alone (root's own, mode 0700) and then opened files by name inside a directory that user
    # could swap.
    runtime = shared_root / "run-user"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, NOBODY, NOBODY)
    (runtime / "builder").mkdir(mode=0o700)
    env = _env(XDG_RUNTIME_DIR=str(runtime))
    done = _launch(["validate", str(MINIMAL)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": valid")
    warnings = [line for line in done.stderr.splitlines() if "warm server" in line]
    assert len(warnings) == 1, done.stderr
    assert f"{runtime} belongs to uid {NOBODY}" in warnings[0]
    time.sleep(0.5)  # a spawned server would have made its lock and log by now
    assert list((runtime / "builder").iterdir()) == []
    assert paths.server_dir(env) is None


@pytest.mark.parametrize(("mode", "usable"), [(0o777, False), (0o1777, True), (0o775, False), (0o755, True)])
def test_ancestors_writable_by_others_are_refused_unless_sticky(tmp_path: Path, mode: int, usable: bool) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    os.chown(parent, os.getuid(), os.getgid() + 1 if os.getuid() == 0 else os.getgid())
    parent.chmod(mode)
    opened = paths.server_dir({"BUILDER_SERVER_DIR": str(parent / "srv")})
    if usable or (mode == 0o775 and os.getuid() != 0):  # not root: the group is our own
        assert opened is not None
        opened.close()
    else:
        assert opened is None
        assert "writable by other users" in (paths.check({"BUILDER_SERVER_DIR": str(parent / "srv")}) or "")


def test_the_directory_itself_must_be_private(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    reason = paths.check({"BUILDER_SERVER_DIR": str(loose)})
    assert reason is not None and "mode 0700" in reason
    assert paths.check({"BUILDER_SERVER_DIR": str(tmp_path / "missing")}) is None  # made private when needed


def test_files_in_the_directory_are_never_opened_through_a_symlink(tmp_path: Path) -> None:
    from builder.server.daemon import Server

    srv = tmp_path / "srv"
    srv.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (srv / "s-x.lock").symlink_to(victim)
    (srv / "s-x.hint.json").symlink_to(victim)
    server = Server(str(srv / "s-x.sock"), str(srv / "s-x.lock"), 60.0)
    with pytest.raises(OSError):
        server.acquire()  # the lock is not truncated through the link
    assert server.hint_file.read() is None  # nor is the hint read through it
    server.hint_file.write({"engine": "unix:///x"})  # the hint replaces the link instead of writing through it
    assert victim.read_text() == "precious\n"
    assert not (srv / "s-x.hint.json").is_symlink()
    assert server.hint_file.read() == {"engine": "unix:///x"}
    assert sorted(p.name for p in srv.iterdir()) == ["s-x.hint.json", "s-x.lock"]  # no temporary file left
    server.dir.close()


# -- the socket ---------------------------------------------------------------------------------------------

_FAKE_SERVER = r"""
import os, socket, sys, time
sock_path, record = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sock_path)
os.chmod(sock_path, 0o777)
listener.listen(4)
print("listening", flush=True)
listener.settimeout(60)
conn, _ = listener.accept()
conn.settimeout(5)
got = b""
try:
    while True:
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
        got += data
        if not data:
            break
except OSError:
    pass
with open(record, "wb") as handle:
    handle.write(b"connected\n" + got)
"""


@needs_root
def test_a_socket_another_user_listens_on_gets_no_environment(tmp_path: Path, shared_root: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir(mode=0o700)
    env = _env(BUILDER_SERVER_DIR=str(srv))
    box = shared_root / "box"  # the other user's own directory
    box.mkdir()
    os.chown(box, NOBODY, NOBODY)
    record, planted = box / "record", box / "s.sock"
    fake = start_python(_FAKE_SERVER, str(planted), str(record))
    try:
        assert fake.stdout is not None and fake.stdout.readline().strip() == "listening", fake.communicate()
        assert planted.stat().st_uid == NOBODY
        # The socket moves into root's private directory under the name the client connects to (a bound
        # socket keeps listening under its new name): the client must check who listens, not where.
        planted.rename(srv / f"s-{_fingerprint(env)}.sock")
        done = _launch(["validate", str(MINIMAL)], env)
        fake.wait(timeout=30)
    finally:
        fake.kill()
        _stop_servers(env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": valid")  # ran in-process instead
    assert record.read_bytes() == b"connected\n"  # the fake server was reached and got nothing at all


_NAMING_SERVER = r"""
import os, socket, sys, time
sock_path, victim = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sock_path)
listener.listen(4)
print("listening", flush=True)
conn, _ = listener.accept()
data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
conn.sendall(f"pid {victim}\n".encode())  # a process of the same user that is not this server's child
print("named", flush=True)
time.sleep(60)
"""


def test_signals_reach_only_a_child_of_the_server(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir(mode=0o700)
    env = _env(BUILDER_SERVER_DIR=str(srv))
    victim = subprocess.Popen(["sleep", "120"])
    sock = srv / f"s-{_fingerprint(env)}.sock"
    fake = subprocess.Popen(
        [sys.executable, "-c", _NAMING_SERVER, str(sock), str(victim.pid)], text=True, stdout=subprocess.PIPE
    )
    client = None
    try:
        assert fake.stdout is not None and fake.stdout.readline().strip() == "listening"
        client = subprocess.Popen(
            [sys.executable, "-c", "from builder._launch import main; main()", "validate", str(MINIMAL)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert fake.stdout.readline().strip() == "named"
        time.sleep(0.5)  # the client has read the pid line and waits for the exit line
        client.send_signal(signal.SIGTERM)
        client.wait(timeout=30)
        time.sleep(0.2)
        assert victim.poll() is None, "the client signalled a process the server does not own"
    finally:
        for proc in (victim, fake, client):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_server_of_our_own_user_is_trusted(tmp_path: Path) -> None:
    """The counterpart: our own server's socket passes the same checks the foreign one fails."""
    from builder.server.client import _peer_pid_if_ours

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "s.sock"))
    listener.listen(1)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(tmp_path / "s.sock"))
    try:
        assert _peer_pid_if_ours(client) == os.getpid()
    finally:
        client.close()
        listener.close()


def test_a_symlink_on_the_way_is_resolved_and_the_real_path_checked(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    opened = paths.server_dir({"BUILDER_SERVER_DIR": str(tmp_path / "link")})
    assert opened is not None and opened.path == str(private)
    opened.close()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "srv").mkdir(mode=0o700)
    (tmp_path / "via").symlink_to(shared / "srv")  # a trusted link to a directory others could swap
    assert "writable by other users" in (paths.check({"BUILDER_SERVER_DIR": str(tmp_path / "via")}) or "")
