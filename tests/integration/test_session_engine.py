"""Our session against the real engine: local:// context in, local/tar exports and secrets out."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from builder.engines.buildkit._pb import control_pb2, ops_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.session import (
    CA_BUNDLE_SECRET_ID,
    DirectoryOutput,
    FileSendProvider,
    FileSyncProvider,
    SecretsProvider,
    Session,
    SyncedDir,
    TarballOutput,
    walk_directory,
)
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.engines.buildkit.session.server import Implementation
from builder.plan.model import FileEntry, FileManifest

IMAGE = "docker-image://docker.io/library/debian:bookworm-slim"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Graph:
    """A minimal LLB builder: add ops in order, then take the Definition."""

    def __init__(self) -> None:
        self.ops: list[bytes] = []

    def add(self, op: ops_pb2.Op) -> str:
        data = op.SerializeToString(deterministic=True)
        self.ops.append(data)
        return _digest(data)

    def definition(self, final: str) -> ops_pb2.Definition:
        self.add(ops_pb2.Op(inputs=[ops_pb2.Input(digest=final, index=0)]))
        definition = ops_pb2.Definition()
        getattr(definition, "def").extend(self.ops)
        return definition


def _copy_into_scratch(graph: Graph, source: str, src: str = "/") -> str:
    copy = ops_pb2.FileActionCopy(
        src=src,
        dest="/",
        mode=-1,
        dirCopyContents=True,
        createDestPath=True,
        allowWildcard=True,
        allowEmptyWildcard=True,
        timestamp=-1,
    )
    action = ops_pb2.FileAction(input=-1, secondaryInput=0, output=0, copy=copy)
    return graph.add(ops_pb2.Op(inputs=[ops_pb2.Input(digest=source, index=0)], file=ops_pb2.FileOp(actions=[action])))


def context_definition() -> ops_pb2.Definition:
    graph = Graph()
    local = graph.add(
        ops_pb2.Op(source=ops_pb2.SourceOp(identifier="local://context", attrs={"local.sharedkeyhint": "context"}))
    )
    return graph.definition(_copy_into_scratch(graph, local))


def solve(engine: EngineClient, session: Session, definition: ops_pb2.Definition, exporter: str) -> None:
    request = control_pb2.SolveRequest(
        Ref=f"builder-test-{uuid.uuid4().hex}", Definition=definition, Session=session.id, Exporter=exporter
    )
    engine.control.Solve(request, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.bin").write_bytes(os.urandom(3 * 32 * 1024 + 17))
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "ünïcødé.txt").write_text("utf-8 name\n")
    (root / "empty-dir").mkdir()
    os.symlink("pkg/sub/data.bin", root / "data-link")
    return root


def content(root: Path) -> dict[str, tuple[object, ...]]:
    """Path → (kind, permission bits, bytes or link target); ownership and times are the engine's."""
    out: dict[str, tuple[object, ...]] = {}
    for entry in walk_directory(root):
        full = root / entry.relpath
        if entry.is_symlink:
            out[entry.relpath] = ("link", os.readlink(full))
        elif entry.is_dir:
            out[entry.relpath] = ("dir", stat.S_IMODE(full.lstat().st_mode))
        else:
            out[entry.relpath] = ("file", stat.S_IMODE(full.lstat().st_mode), full.read_bytes())
    return out


SessionOpener = Callable[..., Session]


def openers(engine: EngineClient, impl: Implementation) -> dict[str, SessionOpener]:
    ways: dict[str, SessionOpener] = {"control": lambda *a: Session.start(engine.control, *a, implementation=impl)}
    if engine.kind == "dockerd":
        ways["docker-session"] = lambda *a: Session.start_upgraded(
            lambda headers: engine.open_raw_stream("/session", headers), *a, implementation=impl
        )
    return ways


@pytest.mark.parametrize("impl", ["h2", "grpcio"])
@pytest.mark.parametrize("transport", ["control", "docker-session"])
def test_context_round_trip_and_incremental_resend(
    engine: EngineClient, project: Path, tmp_path: Path, transport: str, impl: Implementation
) -> None:
    ways = openers(engine, impl)
    if transport not in ways:
        pytest.skip(f"{transport} exists only on dockerd")
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    for round_ in ("first", "second"):
        out = DirectoryOutput(tmp_path / f"out-{round_}")
        with ways[transport](files, FileSendProvider(out)) as session:
            solve(engine, session, context_definition(), "local")
        assert out.done
        assert content(out.path) == content(project)
    first, second = files.transfers
    assert sorted(first.requested) == ["pkg/__init__.py", "pkg/sub/data.bin", "run.sh", "ünïcødé.txt"]
    assert second.requested == []  # same shared key: the engine kept its copy and asked for nothing
    assert second.bytes_sent == 0


def test_changed_file_is_the_only_one_resent(engine: EngineClient, project: Path, tmp_path: Path) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with Session.start(engine.control, files, FileSendProvider(DirectoryOutput(tmp_path / "a"))) as session:
        solve(engine, session, context_definition(), "local")
    (project / "run.sh").write_text("#!/bin/sh\necho changed\n")
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    out = DirectoryOutput(tmp_path / "b")
    with Session.start(engine.control, files, FileSendProvider(out)) as session:
        solve(engine, session, context_definition(), "local")
    assert files.transfers[-1].requested == ["run.sh"]
    assert (out.path / "run.sh").read_text() == "#!/bin/sh\necho changed\n"


def test_tar_export_arrives_as_one_file(engine: EngineClient, project: Path, tmp_path: Path) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    out = TarballOutput(tmp_path / "export.tar")
    with Session.open(engine, files, FileSendProvider(out)) as session:  # dockerd: /session, else Control.Session
        solve(engine, session, context_definition(), "tar")
    assert out.done
    with tarfile.open(out.path) as tar:
        members = {m.name.strip("/").removeprefix("./"): m for m in tar.getmembers()}
        data = tar.extractfile(members["pkg/sub/data.bin"])
        assert data is not None
        assert data.read() == (project / "pkg" / "sub" / "data.bin").read_bytes()
        assert members["data-link"].issym() and members["data-link"].linkname == "pkg/sub/data.bin"
        assert members["run.sh"].mode & 0o777 == 0o755
    assert {n for n in members if n} == set(content(project))


def test_secret_mount_reaches_the_step_and_not_the_result(engine: EngineClient, tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\n" + uuid.uuid4().hex.encode() + b"\n-----END CERTIFICATE-----\n"
    (tmp_path / "ca.pem").write_bytes(pem)
    secrets = SecretsProvider.with_ca_bundle(tmp_path / "ca.pem")
    graph = Graph()
    image = graph.add(ops_pb2.Op(source=ops_pb2.SourceOp(identifier=IMAGE)))
    # The token makes the step new: a secret's bytes are not part of the step's cache key.
    script = (
        f": {uuid.uuid4().hex}; mkdir -p /res"
        " && sha256sum < /run/secrets/ca.pem > /res/sum && ls /run/secrets > /res/listing"
    )
    run = graph.add(
        ops_pb2.Op(
            inputs=[ops_pb2.Input(digest=image, index=0)],
            exec=ops_pb2.ExecOp(
                meta=ops_pb2.Meta(args=["/bin/sh", "-c", script], env=[PATH_ENV], cwd="/"),
                mounts=[
                    ops_pb2.Mount(input=0, dest="/", output=0),
                    ops_pb2.Mount(
                        input=-1,
                        dest="/run/secrets/ca.pem",
                        output=-1,
                        mountType=ops_pb2.SECRET,
                        secretOpt=ops_pb2.SecretOpt(ID=CA_BUNDLE_SECRET_ID, mode=0o444),
                    ),
                ],
                network=ops_pb2.NONE,
            ),
        )
    )

    def copy(src: str, base: int) -> ops_pb2.FileAction:
        spec = ops_pb2.FileActionCopy(
            src=src, dest=src, mode=-1, createDestPath=True, allowEmptyWildcard=True, timestamp=-1
        )
        return ops_pb2.FileAction(input=base, secondaryInput=0, output=-1 if base == -1 else 0, copy=spec)

    # scratch + /res (the step's findings) + /run (where the secret was mounted)
    picked = graph.add(
        ops_pb2.Op(
            inputs=[ops_pb2.Input(digest=run, index=0)],
            file=ops_pb2.FileOp(actions=[copy("/res", -1), copy("/run", 1)]),
        )
    )
    definition = graph.definition(picked)
    out = DirectoryOutput(tmp_path / "out")
    with Session.start(engine.control, secrets, FileSendProvider(out)) as session:
        solve(engine, session, definition, "local")
    assert secrets.requested == [CA_BUNDLE_SECRET_ID]
    expected = hashlib.sha256(pem).hexdigest()
    assert (out.path / "res" / "sum").read_text().split()[0] == expected
    assert (out.path / "res" / "listing").read_text().split() == ["ca.pem"]
    # The secret was a mount for the step only: the copied /run holds at most an empty mount point.
    leftover = out.path / "run" / "secrets" / "ca.pem"
    assert not leftover.exists() or leftover.stat().st_size == 0
    assert all(pem not in p.read_bytes() for p in out.path.rglob("*") if p.is_file())


def test_unknown_local_name_fails_the_solve_clearly(engine: EngineClient, tmp_path: Path) -> None:
    files = FileSyncProvider({"other": SyncedDir(tmp_path, ())})
    with Session.start(engine.control, files) as session, pytest.raises(grpc.RpcError) as info:
        solve(engine, session, context_definition(), "")
    assert "context" in info.value.details()  # type: ignore[attr-defined]


def _solve_with_status(engine: EngineClient, session: Session) -> dict[str, bool]:
    """Solve the context copy and return vertex name → cached."""
    ref = f"builder-test-{uuid.uuid4().hex}"
    seen: dict[str, bool] = {}

    def read() -> None:
        for update in engine.control.Status(control_pb2.StatusRequest(Ref=ref), timeout=120):
            for vertex in update.vertexes:
                seen[vertex.name] = vertex.cached

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    engine.control.Solve(
        control_pb2.SolveRequest(Ref=ref, Definition=context_definition(), Session=session.id), timeout=300
    )
    reader.join(30)
    return seen


def test_plan_manifest_cache_follows_content_not_mtime_or_mode(engine: EngineClient, tmp_path: Path) -> None:
    """With the plan's manifest, the copy step is cached unless content (or exec bit) changes."""
    root = tmp_path / "app"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text(f"# {uuid.uuid4().hex}\n")
    manifest = FileManifest.of([FileEntry("src/main.py", "file", 35, "blake3:x")])

    def build() -> tuple[tuple[str, ...], bool]:
        files = FileSyncProvider({"context": synced_dir_for_manifest(root, manifest)})
        with Session.start(engine.control, files) as session:
            cached = _solve_with_status(engine, session)
        return tuple(files.transfers[-1].requested), cached["copy / /"]

    assert build() == (("src/main.py",), False)
    assert build() == ((), True)
    os.utime(root / "src" / "main.py", ns=(1, 1))
    (root / "src" / "main.py").chmod(0o600)  # the plan says "file": sent as 0644 anyway
    assert build() == (("src/main.py",), True)  # re-sent (mtime changed) but same content: still cached
    (root / "src" / "main.py").write_text(f"# {uuid.uuid4().hex}\n")  # same size, new content
    assert build() == (("src/main.py",), False)


def test_session_survives_a_long_step(engine: EngineClient, tmp_path: Path) -> None:
    """Health checks (every second on BuildKit 0.8) keep the session alive through a 12 s step."""
    graph = Graph()
    image = graph.add(ops_pb2.Op(source=ops_pb2.SourceOp(identifier=IMAGE)))
    script = f": {uuid.uuid4().hex}; sleep 12; mkdir -p /res && echo done > /res/marker"
    run = graph.add(
        ops_pb2.Op(
            inputs=[ops_pb2.Input(digest=image, index=0)],
            exec=ops_pb2.ExecOp(
                meta=ops_pb2.Meta(args=["/bin/sh", "-c", script], env=[PATH_ENV], cwd="/"),
                mounts=[ops_pb2.Mount(input=0, dest="/", output=0)],
                network=ops_pb2.NONE,
            ),
        )
    )
    out = DirectoryOutput(tmp_path / "out")
    with Session.start(engine.control, FileSendProvider(out)) as session:
        solve(engine, session, graph.definition(_copy_into_scratch(graph, run, "/res")), "local")
        assert session.failure is None
    assert session.health.checks >= 1  # the engine really was checking on us meanwhile
    assert (out.path / "marker").read_text() == "done\n"
