"""Build secret ids as the plan holds them: names only, never values.

A build secret (``builder build --secret id=NAME,src=FILE``) is mounted at
``/run/secrets/NAME`` in every step that runs the user's or an installer's
commands (:data:`SECRET_STEPS`).  Its id is an input of those steps, so adding
or removing a secret changes their keys; its value is not (changing a token
does not rebuild anything: ``builder build --rerun STEP`` does).

>>> secret_ids(["token", "pip_index_url", "token"])
('pip_index_url', 'token')
>>> secret_path("token")
'/run/secrets/token'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from builder.plan.codec import OMIT_DEFAULT
from builder.plan.model import StepKind

#: Where build secrets are mounted, one file per id.
SECRETS_DIR = "/run/secrets"
#: The steps a build secret is mounted in (the ones that run commands that may fetch something).
SECRET_STEPS = frozenset({StepKind.PRE_BUILD, StepKind.APT, StepKind.CONDA, StepKind.PIP, StepKind.SHELL})
#: A file name any shell, Dockerfile and BuildKit accept as is: no path separator, no leading dot or dash.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Ids builder serves its own secrets under (the CA bundle, index credentials taken out of URLs).
RESERVED_PREFIX = "builder-"
RESERVED = frozenset({"ca-bundle"})


def check_secret_id(text: str) -> str:
    """``text`` when it is a usable secret id, else ValueError saying what is wrong."""
    if not _ID.fullmatch(text):
        raise ValueError(
            f"secret id {text!r} is not 1-64 letters, digits, '_', '.' or '-' starting with a letter or digit"
        )
    if text in RESERVED or text.startswith(RESERVED_PREFIX):
        raise ValueError(f"secret id {text!r} is reserved for builder's own secrets (ca-bundle, builder-*)")
    return text


def secret_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """The canonical form of a set of ids: each checked, sorted, without duplicates."""
    return tuple(sorted({check_secret_id(i) for i in ids}))


def secret_path(secret_id: str) -> str:
    """Where the secret ``secret_id`` is mounted in a step."""
    return f"{SECRETS_DIR}/{secret_id}"


def secrets_field() -> Any:
    """The ``secrets`` field of a step's inputs: the build secret ids mounted in the step.

    Left out of the plan JSON and the key while empty (a plan without secrets keeps its keys)."""
    return dataclasses.field(default=(), metadata=OMIT_DEFAULT)


def check_plan_ids(ids: tuple[str, ...], what: str = "step") -> None:
    """Validate ids read back from a plan (a plan file is input: an id becomes a mount path)."""
    for secret_id in ids:
        try:
            check_secret_id(secret_id)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
