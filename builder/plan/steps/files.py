"""``files``: the project files selected by include/exclude, copied to ``dest``.

Inputs: ``manifest`` (see ``builder.plan.model.FileManifest``: path, type,
size and digest of every selected file, sorted; its Merkle digest is what the
key hashes) and ``dest`` (``/app``; ``/cortex`` for the default runtime).  Executable bits and symlinks are kept;
``cerebrium.toml`` is never included (it lives in the ``config`` step).
The files become several chained layers when there are many of them
(``builder.plan.file_layers``); the key covers the manifest, the layering
follows from it.  Files that look like secrets (``.env``, keys, credentials) are shipped as
selected, with a warning naming them (see ``builder.plan.secrets``).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.context import APP_DIR, PlanContext
from builder.plan.file_layers import split_layers
from builder.plan.model import FileManifest, StepKind
from builder.plan.secrets import secrets_warning

KIND = StepKind.FILES


@dataclass(frozen=True, slots=True)
class Inputs:
    manifest: FileManifest
    dest: str = APP_DIR


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    manifest = ctx.files().manifest
    found = secrets_warning(ctx.config, (entry.path for entry in manifest.entries))
    if found is not None:
        ctx.notes.append(found)
    return Inputs(manifest, ctx.app_dir) if manifest.entries else None


def summary(value: Inputs) -> str:
    n = len(value.manifest)
    layers = len(split_layers(value.manifest))
    chained = f" in {layers} layers" if layers > 1 else ""
    return f"{n} file{'s' if n != 1 else ''}, {_size(value.manifest.total_size)} → {value.dest}{chained}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"
