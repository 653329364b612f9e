"""Canonical bytes and keys: order-free maps, typed values, fixed floats, Merkle parents."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.plan.canonical import canonical_bytes
from builder.plan.keys import KEY_SCHEME_VERSION, step_key
from builder.plan.model import CacheMount, FileEntry, FileManifest, StepKind

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.randoms())
def test_map_order_never_matters(mapping: dict, rnd) -> None:  # type: ignore[no-untyped-def,type-arg]
    items = list(mapping.items())
    rnd.shuffle(items)
    assert canonical_bytes(dict(items)) == canonical_bytes(mapping)


def test_values_are_typed() -> None:
    assert len({canonical_bytes(v) for v in (1, "1", True, 1.0, None, [1])}) == 6


def test_floats_have_one_fixed_form() -> None:
    assert canonical_bytes(0.1 + 0.2) == canonical_bytes(0.3)
    assert canonical_bytes(4.0) == b'{"$float":"4.000000000"}'
    with pytest.raises(ValueError):
        canonical_bytes(math.nan)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_bytes({"x": object()})
    with pytest.raises(TypeError):
        canonical_bytes({1: "x"})


@dataclass(frozen=True, slots=True)
class _Inputs:
    name: str
    pairs: tuple[tuple[str, str], ...]
    mounts: tuple[CacheMount, ...]
    manifest: FileManifest


def test_dataclasses_encode_pairs_as_maps_and_manifests_as_digests() -> None:
    manifest = FileManifest.of([FileEntry("a", "file", 1, "blake3:00")])
    value = _Inputs("n", (("b", "2"), ("a", "1")), (CacheMount("/c", "id"),), manifest)
    text = canonical_bytes(value).decode()
    assert '"pairs":{"a":"1","b":"2"}' in text
    assert f'"manifest":{{"$manifest":"{manifest.digest}"}}' in text
    assert '"mounts":[{"id":"id","sharing":"shared","target":"/c"}]' in text


def test_manifest_digest_covers_path_type_and_content() -> None:
    base = FileManifest.of([FileEntry("a", "file", 1, "blake3:00")])
    for other in (
        FileEntry("b", "file", 1, "blake3:00"),
        FileEntry("a", "exec", 1, "blake3:00"),
        FileEntry("a", "symlink", 1, "blake3:00"),
        FileEntry("a", "file", 1, "blake3:01"),
    ):
        assert FileManifest.of([other]).digest != base.digest
    assert FileManifest.of([]).digest != base.digest


def test_manifest_encoding_is_unambiguous() -> None:
    """Newlines in names or link targets cannot make two different manifests collide."""
    one = FileManifest.of([FileEntry("a", "symlink", 9, "t\nb\0file"), FileEntry("c", "file", 1, "blake3:00")])
    two = FileManifest.of([FileEntry("a", "symlink", 1, "t"), FileEntry("b", "file", 1, "x")])
    three = FileManifest.of([FileEntry("a\nb", "file", 1, "blake3:00")])
    four = FileManifest.of([FileEntry("a", "file", 1, "blake3:00"), FileEntry("b", "file", 1, "blake3:00")])
    assert len({one.digest, two.digest, three.digest, four.digest}) == 4


def test_manifest_order_does_not_matter() -> None:
    a, b = FileEntry("a", "file", 1, "blake3:00"), FileEntry("b", "file", 1, "blake3:11")
    assert FileManifest.of([a, b]) == FileManifest.of([b, a])


def test_key_depends_on_kind_inputs_and_parents_but_not_parent_order() -> None:
    k = step_key(StepKind.PIP, b"{}", [(StepKind.BASE, "sha256:1"), (StepKind.APT, "sha256:2")])
    assert k == step_key(StepKind.PIP, b"{}", [(StepKind.APT, "sha256:2"), (StepKind.BASE, "sha256:1")])
    assert k != step_key(StepKind.APT, b"{}", [(StepKind.BASE, "sha256:1"), (StepKind.APT, "sha256:2")])
    assert k != step_key(StepKind.PIP, b"{ }", [(StepKind.BASE, "sha256:1"), (StepKind.APT, "sha256:2")])
    assert k != step_key(StepKind.PIP, b"{}", [(StepKind.BASE, "sha256:1")])
    assert k != step_key(StepKind.PIP, b"{}", [(StepKind.BASE, "sha256:1"), (StepKind.APT, "sha256:3")])


def test_key_parts_cannot_run_into_each_other() -> None:
    assert step_key(StepKind.BASE, b"ab", [(StepKind.PYTHON, "c")]) != step_key(
        StepKind.BASE, b"a", [(StepKind.PYTHON, "bc")]
    )


def test_scheme_version_is_an_int() -> None:
    assert isinstance(KEY_SCHEME_VERSION, int) and KEY_SCHEME_VERSION >= 1
