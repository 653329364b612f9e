"""Step keys: Merkle digests over canonical bytes.

``key = sha256(tag, KEY_SCHEME_VERSION, kind, recipe, canonical(inputs), parent keys)``
with every part length-prefixed (no ambiguity between parts) and parent keys
in the fixed chain order of :class:`~builder.plan.model.StepKind`.  Bump
:data:`KEY_SCHEME_VERSION` whenever the meaning of any step's inputs changes,
so old cache records can never be mistaken for new ones; bump the kind's
revision in :mod:`builder.plan.recipes` when builder changes how it carries
out a step with the same inputs.

>>> k = step_key(StepKind.BASE, b'{"image":"x"}', ())
>>> k.startswith("sha256:") and len(k) == 71
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from builder.plan.model import StepKind
from builder.plan.recipes import RECIPES

KEY_SCHEME_VERSION = 2  # 2: the recipe revision of the step's kind is a part
_TAG = b"builder-step-key"


def step_key(kind: StepKind, inputs: bytes, parents: Iterable[tuple[StepKind, str]]) -> str:
    """The key of a step from its canonical input bytes and its parents' (kind, key) pairs."""
    h = hashlib.sha256()
    for part in (_TAG, str(KEY_SCHEME_VERSION).encode(), kind.value.encode(), str(RECIPES[kind]).encode(), inputs):
        _put(h, part)
    ordered = sorted(parents, key=lambda p: p[0].position)
    _put(h, str(len(ordered)).encode())
    for parent_kind, parent_key in ordered:
        _put(h, parent_kind.value.encode())
        _put(h, parent_key.encode())
    return "sha256:" + h.hexdigest()


def _put(h: hashlib._Hash, data: bytes) -> None:
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


def short(key: str, n: int = 12) -> str:
    """The first ``n`` hex digits of a key, for display."""
    return key.split(":", 1)[-1][:n]
