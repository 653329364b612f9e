"""LLB layer: deterministic marshalling, protobuf round trips, op validation and caps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.llb import (
    Copy,
    Definition,
    LLBError,
    Mkdir,
    Mkfile,
    Mount,
    Platform,
    Rm,
    State,
    digest_of,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/library/debian:bookworm-slim"


def sample() -> State:
    base = State.image(IMAGE, name="[base] debian")
    files = State.scratch().file(Mkfile("/req.txt", b"six==1.16.0\n"), name="[pip] requirements")
    built = (
        base.env("A", "1")
        .dir("/work")
        .run(
            ["/bin/sh", "-c", "echo hi"],
            name="[pip] run",
            mounts=[
                Mount("/root/.cache/pip", "cache", cache_id="pip", sharing="locked"),
                Mount("/run/req", "bind", files.output, readonly=True),
                Mount("/run/secrets/ca", "secret", secret_id="ca-bundle"),
            ],
        )
    )
    local = State.local("context", [("local.sharedkeyhint", "app")], name="[files] local")
    layer = State.scratch().file(Copy(local.output, "/", "/app"), name="[files] copy")
    merged = State.merge([built, layer], name="[files] merge")
    return merged.file(
        Mkdir("/app"),
        Mkfile("/app/cerebrium.toml", b"x"),
        Rm("/tmp/x"),
        name="[config] toml",
    )


def test_marshal_is_byte_identical_100_times() -> None:
    first = sample().marshal().to_bytes()
    assert all(sample().marshal().to_bytes() == first for _ in range(100))


def test_protobuf_round_trip_is_equal() -> None:
    d = sample().marshal()
    again = Definition.from_pb(ops_pb2.Definition.FromString(d.to_bytes()))
    assert again == d
    assert again.to_bytes() == d.to_bytes()


def test_inputs_come_before_their_users_and_terminal_is_last() -> None:
    d = sample().marshal()
    seen: set[str] = set()
    for data in d.ops:
        op = ops_pb2.Op.FromString(data)
        assert all(i.digest in seen for i in op.inputs)
        seen.add(digest_of(data))
    terminal = ops_pb2.Op.FromString(d.ops[-1])
    assert terminal.WhichOneof("op") is None
    assert terminal.inputs[0].digest == d.digests[-2]


def test_duplicate_ops_are_written_once() -> None:
    a = State.image(IMAGE)
    b = State.image(IMAGE)  # equal by value, a different object
    merged = State.merge([a.run(["true"], name="x"), b.run(["false"], name="y")], name="m")
    d = merged.marshal()
    assert len(d.digests) == len(set(d.digests))
    assert sum(1 for data in d.ops if ops_pb2.Op.FromString(data).WhichOneof("op") == "source") == 1


def test_names_live_in_metadata_not_in_op_bytes() -> None:
    one = State.image(IMAGE).run(["true"], name="[shell] one").marshal()
    two = State.image(IMAGE).run(["true"], name="[shell] two").marshal()
    assert one.ops == two.ops
    assert set(one.names().values()) != set(two.names().values())


def test_states_are_immutable_and_methods_return_new_states() -> None:
    base = State.image(IMAGE)
    changed = base.env("X", "1").dir("/app")
    assert base.get_env("X") is None and base.cwd == "/"
    assert changed.get_env("X") == "1" and changed.cwd == "/app"
    assert changed.env("X", "2").env_vars.count(("X", "2")) == 1


def test_exec_mounts_are_sorted_and_only_root_has_an_output() -> None:
    d = sample().marshal()
    execs = [ops_pb2.Op.FromString(b) for b in d.ops if ops_pb2.Op.FromString(b).WhichOneof("op") == "exec"]
    (op,) = execs
    dests = [m.dest for m in op.exec.mounts]
    assert dests == sorted(dests)
    assert [m.output for m in op.exec.mounts] == [0 if m.dest == "/" else -1 for m in op.exec.mounts]
    cache = next(m for m in op.exec.mounts if m.mountType == ops_pb2.CACHE)
    assert cache.cacheOpt.sharing == ops_pb2.LOCKED and cache.cacheOpt.ID == "pip"
    secret = next(m for m in op.exec.mounts if m.mountType == ops_pb2.SECRET)
    assert secret.input == -1 and secret.secretOpt.ID == "ca-bundle"


def test_file_actions_chain_and_copy_uses_secondary_input() -> None:
    d = sample().marshal()
    files = [ops_pb2.Op.FromString(b) for b in d.ops if ops_pb2.Op.FromString(b).WhichOneof("op") == "file"]
    config = next(op for op in files if len(op.file.actions) == 3)
    n = len(config.inputs)
    assert [a.input for a in config.file.actions] == [0, n, n + 1]
    assert [a.output for a in config.file.actions] == [-1, -1, 0]
    copy = next(op for op in files if op.file.actions[0].WhichOneof("action") == "copy")
    assert copy.file.actions[0].input == -1 and copy.file.actions[0].secondaryInput == 0
    assert copy.file.actions[0].copy.mode == -1 and copy.file.actions[0].copy.timestamp == -1


def test_caps_are_declared_per_op() -> None:
    d = sample().marshal()
    meta = d.op_metadata()
    assert "mergeop" in d.caps()
    for digest, data in zip(d.digests, d.ops, strict=True):
        kind = ops_pb2.Op.FromString(data).WhichOneof("op")
        caps = set(meta[digest].caps)
        expected = {
            "exec": "exec.meta.base",
            "file": "file.base",
            "merge": "mergeop",
            "source": None,
            None: "constraints",
        }[kind]
        if expected:
            assert expected in caps
    secret_exec = next(
        dg for dg, b in zip(d.digests, d.ops, strict=True) if ops_pb2.Op.FromString(b).WhichOneof("op") == "exec"
    )
    assert {"exec.mount.secret", "exec.mount.cache.sharing", "exec.mount.bind"} <= set(meta[secret_exec].caps)


def test_invalid_ops_are_rejected() -> None:
    with pytest.raises(LLBError):
        State.image(IMAGE).run([], name="x")
    with pytest.raises(LLBError):
        State.image(IMAGE).dir("relative")
    with pytest.raises(LLBError):
        State.image(IMAGE).run(["true"], name="x", mounts=[Mount("/c", "cache")])
    with pytest.raises(LLBError):
        State.scratch().marshal()
    with pytest.raises(LLBError):
        Platform.parse("linux")


def test_digests_are_stable_across_hash_seeds() -> None:
    code = "from tests.engines.test_llb import sample; print(sample().marshal().to_bytes().hex())"
    outs = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outs.add(done.stdout.strip())
    assert len(outs) == 1


def test_marshal_with_digests_equals_separate_marshals() -> None:
    from builder.engines.buildkit.llb.state import State

    base = State.image("docker.io/library/debian:bookworm-slim")
    mid = base.run(["/bin/sh", "-c", "echo one"], name="one")
    top = mid.run(["/bin/sh", "-c", "echo two"], name="two")
    elsewhere = base.run(["/bin/sh", "-c", "echo other"], name="other")
    definition, digests = top.marshal_with_digests([base, mid, top, elsewhere])
    assert definition.to_pb().SerializeToString(deterministic=True) == top.marshal().to_pb().SerializeToString(
        deterministic=True
    )
    assert digests == (base.digest(), mid.digest(), top.digest(), elsewhere.digest())
