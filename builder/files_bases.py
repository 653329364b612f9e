"""Where the files bases are remembered, and which way a build copies its files (see ``builder.plan.files_base``).

Kept in the step cache's directory, per app (file names are digests of the app name):

* ``files-bases/<app>/<tag>.json``: a base (its image, parent key, dest and files);
* ``files-bases/<app>/current``: the tag of the latest base;
* ``files-bases/<app>/routes.json``: for each files step key built, the base image it was built on
  (``""``: copied whole), so a key built before is built the same way again and BuildKit's cache
  agrees with the plan's prediction (a hit stays a hit, whatever base came later).

Every failure here means "copy the files whole" plus, at most, a note: never a failed build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.diagnostics import Diagnostic
from builder.plan.files_base import MIN_FILES, FilesBase, FilesChanges, base_image, changes_onto
from builder.plan.model import Plan, StepKind

#: Base records kept per app (older ones are removed; their images stay in the engine's store).
KEEP_BASES = 4
#: Route records kept per app.
KEEP_ROUTES = 256


@dataclass(frozen=True, slots=True)
class FilesRoute:
    """How this build copies its files: ``changes`` onto a base, or whole (then ``export`` names the new base)."""

    changes: FilesChanges | None = None
    export: str | None = None
    parent: str = ""
    note: Diagnostic | None = None


def _folder(store: Any, app: str) -> Path | None:
    root = getattr(store, "path", None)
    if root is None:
        return None
    return Path(root) / "files-bases" / hashlib.sha256(app.encode("utf-8")).hexdigest()[:32]


def _tag(image: str) -> str:
    return image.rpartition(":")[2]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _load(folder: Path, image: str) -> FilesBase | None:
    base = FilesBase.from_json(_read_json(folder / f"{_tag(image)}.json"))
    return base if base is not None and base.image == image else None


def choose_route(plan: Plan, store: Any, image_exists: Any) -> FilesRoute:
    """The route for ``plan``'s files step; ``image_exists(ref)`` asks the engine (None: unknown).

    A files key built before is built the way it was (its recorded base, or whole).  A new key goes
    onto the current base when that base was built on the same dependencies and the change is small;
    otherwise the files are copied whole and kept as the new base.
    """
    step = plan.get(StepKind.FILES)
    folder = _folder(store, plan.app)
    if step is None or folder is None or len(step.inputs.manifest) <= MIN_FILES:
        return FilesRoute()
    manifest, dest = step.inputs.manifest, step.inputs.dest
    parent = plan.step(step.parents[-1]).key if step.parents else ""
    new_base = base_image(plan.app, parent, dest, manifest.digest)
    routes = _read_json(folder / "routes.json")
    recorded = routes.get(step.key) if isinstance(routes, dict) else None
    if isinstance(recorded, str) and recorded:
        base = _load(folder, recorded)
        changes = changes_onto(base, manifest, parent, dest) if base is not None else None
        if changes is not None and image_exists(base.image):  # type: ignore[union-attr]
            return FilesRoute(changes, None, parent)
        note = "the files base this state was built on is gone from the engine: files copied whole"
        return FilesRoute(None, new_base, parent, Diagnostic("note", "files", note))
    current = (folder / "current").read_text(encoding="utf-8").strip() if (folder / "current").is_file() else ""
    base = _load(folder, current) if current and recorded is None else None
    if base is not None and base.image == new_base:
        return FilesRoute(None, None, parent)  # these files are the base: built whole, and kept already
    changes = changes_onto(base, manifest, parent, dest) if base is not None else None
    if changes is not None:
        if image_exists(changes.base.image):
            return FilesRoute(changes, None, parent, Diagnostic("note", "files", changes.phrase()))
        note = "the engine no longer has the files base (pruned?): files copied whole, kept as a new base"
        return FilesRoute(None, new_base, parent, Diagnostic("note", "files", note))
    return FilesRoute(None, None if image_exists(new_base) else new_base, parent)


def record_route(plan: Plan, store: Any, route: FilesRoute, warnings: list[Diagnostic]) -> None:
    """After a build: remember the base it made (if any), the current base and how its files key was built."""
    step = plan.get(StepKind.FILES)
    folder = _folder(store, plan.app)
    if step is None or folder is None or len(step.inputs.manifest) <= MIN_FILES:
        return
    try:
        used = route.changes.base.image if route.changes is not None else ""
        if route.changes is None:
            image = base_image(plan.app, route.parent, step.inputs.dest, step.inputs.manifest.digest)
            if not (folder / f"{_tag(image)}.json").is_file():
                _write_json(
                    folder / f"{_tag(image)}.json",
                    FilesBase(image, route.parent, step.inputs.dest, step.inputs.manifest).to_json(),
                )
            (folder / "current").write_text(image + "\n", encoding="utf-8")
            _trim(folder, image)
        routes = _read_json(folder / "routes.json")
        routes = routes if isinstance(routes, dict) else {}
        if routes.get(step.key) != used:
            routes.pop(step.key, None)
            routes[step.key] = used
            while len(routes) > KEEP_ROUTES:
                routes.pop(next(iter(routes)))
            _write_json(folder / "routes.json", routes)
    except OSError as exc:
        warnings.append(Diagnostic("warning", "cache", f"could not record the files base ({exc.strerror or exc})"))


def _trim(folder: Path, keep: str) -> None:
    records = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    records = [p for p in records if p.name != "routes.json"]
    for old in records[KEEP_BASES:]:
        if old.name != f"{_tag(keep)}.json":
            with contextlib.suppress(OSError):
                old.unlink()
