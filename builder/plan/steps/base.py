"""``base``: the base image (``docker_base_image_url``), normalised, and what its tag pointed at.

Inputs: ``image`` (fully qualified reference, see ``builder.plan.images``) and
``platform`` (always ``linux/amd64`` for now).  Every other layer sits on it,
so a change here invalidates every step.  Left out when a Dockerfile is used
(its ``FROM`` lines are part of the ``dockerfile`` step).

When the reference was resolved before planning (``builder.base_image``, at the
edge: planning itself does no I/O), ``digest`` is the manifest digest the tag
pointed at, pinned in the LLB source and the Dockerfile export, and ``layers`` is
the ChainID of the image's layers.  The key then covers ``layers`` and
``platform`` only, not the reference's text: dockerd's BuildKit keys an image
source by its layers' ChainID, so the same image under another name or tag is
the same cache entry (and a re-tag to other layers rebuilds everything).
Unresolved inputs (no digest known) are keyed by the reference as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.plan.context import PlanContext
from builder.plan.images import normalize_image
from builder.plan.model import StepKind

KIND = StepKind.BASE


@dataclass(frozen=True, slots=True)
class Inputs:
    image: str
    platform: str = "linux/amd64"
    digest: str | None = None  # manifest digest the tag pointed at when planned
    layers: str | None = None  # ChainID of the image's layers (what the engine caches the source by)

    def to_json(self) -> dict[str, Any]:
        """The plan JSON form: unresolved inputs keep their two fields (and their keys)."""
        out: dict[str, Any] = {"image": self.image, "platform": self.platform}
        if self.digest is not None:
            out["digest"] = self.digest
        if self.layers is not None:
            out["layers"] = self.layers
        return out

    def key_json(self) -> dict[str, Any]:
        """What the key covers: the layers when known (not the name), else the reference."""
        if self.layers is not None:
            return {"layers": self.layers, "platform": self.platform}
        return self.to_json()

    @property
    def pinned(self) -> str:
        """The reference the engine is given: ``name:tag@digest`` when resolved, else ``image``."""
        if self.digest is None or "@" in self.image:
            return self.image
        return f"{self.image}@{self.digest}"


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    image = normalize_image(ctx.config.deployment.docker_base_image_url)
    found = ctx.base
    if found is not None and found.reference == image:
        return Inputs(image, digest=found.digest, layers=found.layers)
    return Inputs(image)


def summary(value: Inputs) -> str:
    return value.pinned
