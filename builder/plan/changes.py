"""Field-level descriptions of how a step's inputs changed (for reasons and diffs).

Works on the JSON form of inputs so it can compare a plan with one read back
from history.  Each describer returns short human phrases, e.g.
``torch ==2.0.0 → ==2.1.0`` or ``3 changed, 1 added (main.py, utils.py, …)``.

>>> describe("pip", {"requirements_txt": "torch==2.0.0\\n"}, {"requirements_txt": "torch==2.1.0\\n"})
('torch ==2.0.0 → ==2.1.0',)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from builder.plan.file_layers import rebuild_phrase, rebuild_phrase_same_paths
from builder.plan.model import FileManifest

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.DOTALL)
_MAX_NAMES = 3

Describer = Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]


def describe(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Phrases describing ``old → new`` inputs of a step of ``kind`` (empty when equal)."""
    if old == new:
        return ()
    special = _DESCRIBERS.get(kind)
    phrases = special(old, new) if special else []
    handled = _HANDLED.get(kind, ())
    phrases.extend(_generic(old, new, skip=handled))
    return tuple(phrases) or ("inputs changed",)


def _generic(old: Mapping[str, Any], new: Mapping[str, Any], *, skip: Iterable[str] = ()) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key in skip or old.get(key) == new.get(key):
            continue
        out.append(f"{key} {_short(old.get(key))} → {_short(new.get(key))}")
    return out


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, dict) and "digest" in value and "files" in value:
        return f"{value.get('count', len(value['files']))} files"
    text = value if isinstance(value, str) else ("none" if value is None else _compact(value))
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _split_requirement(line: str) -> tuple[str, str]:
    line = line.strip()
    if line.startswith("-"):
        opt, _, rest = line.partition(" ")
        return (opt if opt in ("--index-url", "--extra-index-url", "--find-links") else line), rest
    match = _NAME.match(line)
    if not match:
        return line, ""
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).strip()


def compare_requirements(
    old_lines: Iterable[str], new_lines: Iterable[str], split: Callable[[str], tuple[str, str]] = _split_requirement
) -> list[str]:
    """``name old → new``, ``+name spec``, ``-name`` phrases for two requirement lists."""
    old = _by_name(old_lines, split)
    new = _by_name(new_lines, split)
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"-{name}")
        elif name not in old:
            out.append(f"+{name}{_spec(new[name])}")
        elif old[name] != new[name]:
            out.append(f"{name} {old[name] or '(any)'} → {new[name] or '(any)'}")
    return out


def _spec(spec: str) -> str:
    return f" {spec}" if spec else ""


def _by_name(lines: Iterable[str], split: Callable[[str], tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            name, spec = split(line)
            out[name] = (out[name] + ", " + spec) if name in out else spec
    return out


def changed_paths(old: Iterable[Sequence[Any]], new: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    """``{"modified", "added", "removed"}``: sorted paths between two lists of manifest entries.

    Entries are ``[path, type, size, digest]`` (JSON lists or ``FileEntry`` tuples); a path is
    modified when its type, size or digest differs.
    """
    before = {f[0]: tuple(f[1:4]) for f in old}
    after = {f[0]: tuple(f[1:4]) for f in new}
    return {
        "modified": sorted(p for p, v in after.items() if p in before and before[p] != v),
        "added": sorted(p for p in after if p not in before),
        "removed": sorted(p for p in before if p not in after),
    }


def compare_manifests(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> str | None:
    """``3 changed, 1 added, 1 removed (main.py, utils.py, …)`` or None when equal."""
    old_rows, new_rows = (old or {}).get("files", ()), (new or {}).get("files", ())
    try:  # only the rows that differ are looked at one by one (set difference at C level)
        old_set, new_set = set(map(tuple, old_rows)), set(map(tuple, new_rows))
        old_rows, new_rows = old_set - new_set, new_set - old_set
    except TypeError:  # an unhashable row (a foreign plan): compare them all
        pass
    before = {f[0]: f for f in old_rows}
    after = {f[0]: f for f in new_rows}
    common = set(before) & set(after)
    changed = sorted(p for p in common if list(before[p][2:]) != list(after[p][2:]))  # size or digest
    modes = sorted(p for p in common if list(before[p][2:]) == list(after[p][2:]) and before[p][1] != after[p][1])
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    parts = [(len(changed), "changed"), (len(modes), "mode changed"), (len(added), "added"), (len(removed), "removed")]
    counts = ", ".join(f"{n} {word}" for n, word in parts if n)
    if not counts:
        return None
    names = (changed + modes + added + removed)[:_MAX_NAMES]
    more = ", …" if len(changed) + len(modes) + len(added) + len(removed) > _MAX_NAMES else ""
    return f"{counts} ({', '.join(names)}{more})"


def _lines(value: Any) -> list[str]:
    return str(value or "").splitlines()


def _pip(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = compare_requirements(_lines(old.get("requirements_txt")), _lines(new.get("requirements_txt")))
    cons = compare_requirements(_lines(old.get("constraints_txt")), _lines(new.get("constraints_txt")))
    out.extend(f"constraint {c}" for c in cons)
    if old.get("installer") != new.get("installer"):
        out.append(f"installer {old.get('installer')} → {new.get('installer')}")
    old_local = (old.get("local") or {}).get("manifest")
    new_local = (new.get("local") or {}).get("manifest")
    files = compare_manifests(old_local, new_local)
    if files:
        out.append(f"local requirement files: {files}")
    return out


def _apt(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return compare_requirements(old.get("packages", ()), new.get("packages", ()), split=_split_apt)


def _split_apt(arg: str) -> tuple[str, str]:
    name, _, version = arg.partition("=")
    return name, f"={version}" if version else ""


def _conda(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = compare_requirements(old.get("specs", ()), new.get("specs", ()))
    if old.get("lock") != new.get("lock"):
        out.append("conda lock file changed")
    return out


def _commands(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    before, after = list(old.get("commands", ())), list(new.get("commands", ()))
    if before == after:
        return []
    if sorted(before) == sorted(after):
        return ["commands reordered"]
    removed = [c for c in before if c not in after]
    added = [c for c in after if c not in before]
    return [f"-$ {_short(c)}" for c in removed] + [f"+$ {_short(c)}" for c in added]


def _files(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    text = compare_manifests(old.get("manifest"), new.get("manifest"))
    out = [text] if text else []
    layers = _layers(old.get("manifest"), new.get("manifest"))
    if layers:
        out.append(layers)
    return out


def _layers(old: Any, new: Any) -> str | None:
    """Which of the files step's layers changed (see builder.plan.file_layers), when there are several."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping) and "files" in old and "files" in new):
        return None
    try:
        old_rows, new_rows = old["files"], new["files"]
        if len(old_rows) == len(new_rows) and list(map(_FIRST, old_rows)) == list(map(_FIRST, new_rows)):
            changed = {n[0] for o, n in zip(old_rows, new_rows, strict=True) if o != n}  # same paths, same order
            return rebuild_phrase_same_paths(FileManifest.from_json(new), changed)
        return rebuild_phrase(FileManifest.from_json(old), FileManifest.from_json(new))
    except (KeyError, TypeError, ValueError, IndexError):  # a recorded plan of an older or foreign form
        return None


_FIRST = itemgetter(0)


def _dockerfile(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    if old.get("dockerfile") != new.get("dockerfile"):
        out.append(f"{new.get('path', 'Dockerfile')} edited")
    ctx = compare_manifests(old.get("context"), new.get("context"))
    if ctx:
        out.append(f"context: {ctx}")
    return out


def _config(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    before, after = old.get("image", {}), new.get("image", {})
    old_labels, new_labels = before.get("labels", {}), after.get("labels", {})
    for key in sorted(set(old_labels) | set(new_labels)):
        if key.startswith("dev.builder.plan."):
            continue
        if old_labels.get(key) != new_labels.get(key):
            label = key.removeprefix("ai.cerebrium.")
            out.append(f"{label} {old_labels.get(key) or '(unset)'} → {new_labels.get(key) or '(unset)'}")
    rest = {k: v for k, v in before.items() if k != "labels"}
    rest_new = {k: v for k, v in after.items() if k != "labels"}
    out.extend(_generic(rest, rest_new))
    if old.get("toml_text") != new.get("toml_text") and not out:
        out.append(f"{new.get('toml_path', 'cerebrium.toml')} edited (no setting changed)")
    return out


def short_digest(digest: Any) -> str:
    """``sha256:`` and the first 12 hex digits (``none`` for a missing digest)."""
    if not isinstance(digest, str) or ":" not in digest:
        return "none"
    algorithm, _, hex_digits = digest.partition(":")
    return f"{algorithm}:{hex_digits[:12]}"


def _base(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """A re-tag (same reference, another digest) in words; other changes are left to the generic phrases."""
    image = new.get("image")
    if old.get("image") != image or old.get("layers") == new.get("layers"):
        return []
    before, after = old.get("digest"), new.get("digest")
    if before is None and old.get("layers") is None:
        return [f"{image} resolved to {short_digest(after)} (was keyed by the tag as written)"]
    if before == after:  # known by its layers only (an engine's image store without a registry digest)
        before, after = old.get("layers"), new.get("layers")
    return [f"{image} re-tagged: {short_digest(before)} → {short_digest(after)}"]


_DESCRIBERS: dict[str, Describer] = {
    "base": _base,
    "pip": _pip,
    "apt": _apt,
    "conda": _conda,
    "pre_build": _commands,
    "shell": _commands,
    "files": _files,
    "dockerfile": _dockerfile,
    "config": _config,
}
# ``runtime`` needs no describer: ``version 1.0 → 1.1`` and ``digest … → …`` say it.
_HANDLED: dict[str, tuple[str, ...]] = {
    "base": ("digest", "layers"),
    "pip": ("requirements_txt", "constraints_txt", "installer", "local", "cache_mounts"),
    "apt": ("packages",),
    "conda": ("specs", "lock"),
    "pre_build": ("commands",),
    "shell": ("commands",),
    "files": ("manifest",),
    "dockerfile": ("dockerfile", "context"),
    "config": ("image", "toml_text"),
}
