"""Miss causes as names a person can act on: config key paths, file paths, and a few fixed phrases.

The analysis says *why* a step misses in one human line (``pip: torch ==2.0.0 → ==2.1.0``);
``builder report`` needs the same reason as a stable name to count and rank over many
builds.  :func:`input_causes` turns a step's old and new inputs (their JSON form) into
:class:`Cause` values:

- ``setting``: a config key path, e.g. ``cerebrium.dependencies.pip.torch`` or
  ``cerebrium.scaling.min_replicas``;
- ``file``: a project file path, e.g. ``src/app.py`` (at most :data:`MAX_FILES` per step,
  then one ``… N more files`` entry);
- fixed phrases for the rest: ``parent changed``, ``builder upgrade``, ``first build``,
  ``new step``, ``evicted from cache``, and the two that only a build can observe,
  ``base image re-tagged`` and ``engine cache pruned``.

>>> input_causes("pip", {"requirements_txt": "torch==2.0\\n"}, {"requirements_txt": "torch==2.1\\n"})
(Cause(kind='setting', name='cerebrium.dependencies.pip.torch', via=None),)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from builder.plan.changes import compare_requirements

CauseKind = Literal[
    "setting", "file", "parent", "builder_upgrade", "first_build", "new_step", "evicted", "base_retag", "engine_cache"
]

#: Files named per step change; more become one ``… N more files`` cause (a 10,000-file edit stays small).
MAX_FILES = 20

PARENT_CHANGED = "parent changed"
BUILDER_UPGRADE = "builder upgrade"
FIRST_BUILD = "first build"
NEW_STEP = "new step"
EVICTED = "evicted from cache"
BASE_RETAGGED = "base image re-tagged"
ENGINE_PRUNED = "engine cache pruned"
OTHER_ENGINE = "built on another engine"


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason a step missed.  ``via`` names the changed ancestor step for ``parent changed``."""

    kind: CauseKind
    name: str
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "name"}`` plus ``"via"`` when set."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.via is not None:
            out["via"] = self.via
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cause:
        """Inverse of :meth:`to_json` (ValueError/KeyError/TypeError when malformed)."""
        via = data.get("via")
        return cls(str(data["kind"]), str(data["name"]), None if via is None else str(via))  # type: ignore[arg-type]


def parent_changed(via: str | None) -> Cause:
    return Cause("parent", PARENT_CHANGED, via)


def fixed(kind: CauseKind, name: str) -> Cause:
    return Cause(kind, name)


def input_causes(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Cause, ...]:
    """The causes of a change of a ``kind`` step's own inputs from ``old`` to ``new`` (JSON forms)."""
    namer = _NAMERS.get(kind, _section(f"cerebrium.{kind}"))
    found = namer(old, new)
    seen: dict[tuple[str, str], Cause] = {}
    for cause in found:
        seen.setdefault((cause.kind, cause.name), cause)
    return tuple(seen.values()) or (Cause("setting", f"{kind} inputs"),)


def _setting(name: str) -> Cause:
    return Cause("setting", name)


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if k not in skip and old.get(k) != new.get(k)]


def _section(
    prefix: str, fields: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]:
    """Namer for a step whose changed fields map to key paths (``fields``) or to ``prefix``."""
    table = fields or {}

    def name(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
        return [_setting(table.get(f, prefix)) for f in _changed_fields(old, new, skip)]

    return name


def _requirement_names(
    prefix: str, old_lines: list[str], new_lines: list[str], split: Callable[[str], tuple[str, str]] | None = None
) -> list[Cause]:
    phrases = compare_requirements(old_lines, new_lines, split) if split else compare_requirements(old_lines, new_lines)
    out = []
    for phrase in phrases:
        name = phrase.lstrip("+-").split(" ", 1)[0]
        out.append(_setting(f"{prefix}.{name}" if name and not name.startswith("-") else prefix))
    return out


def _lines(value: Any) -> list[str]:
    return str(value or "").splitlines()


def _manifest_paths(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Cause]:
    """File causes: every path whose entry differs (changed, mode changed, added or removed)."""
    before = {f[0]: list(f[1:]) for f in (old or {}).get("files", ())}
    after = {f[0]: list(f[1:]) for f in (new or {}).get("files", ())}
    paths = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    out = [Cause("file", p) for p in paths[:MAX_FILES]]
    if len(paths) > MAX_FILES:
        out.append(Cause("file", f"… {len(paths) - MAX_FILES} more files"))
    return out


def _pip(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    prefix = "cerebrium.dependencies.pip"
    out = _requirement_names(prefix, _lines(old.get("requirements_txt")), _lines(new.get("requirements_txt")))
    out += _requirement_names(prefix, _lines(old.get("constraints_txt")), _lines(new.get("constraints_txt")))
    if old.get("installer") != new.get("installer"):
        out.append(_setting("cerebrium.deployment.use_uv"))
    out += _manifest_paths((old.get("local") or {}).get("manifest"), (new.get("local") or {}).get("manifest"))
    skip = ("requirements_txt", "constraints_txt", "installer", "local")
    out += [_setting(prefix) for _ in _changed_fields(old, new, skip)]
    return out


def _apt(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    prefix = "cerebrium.dependencies.apt"
    out = _requirement_names(
        prefix,
        list(old.get("packages", ())),
        list(new.get("packages", ())),
        split=lambda a: (a.partition("=")[0], a.partition("=")[2]),
    )
    return out + [_setting(prefix) for _ in _changed_fields(old, new, ("packages",))]


def _conda(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    prefix = "cerebrium.dependencies.conda"
    out = _requirement_names(prefix, list(old.get("specs", ())), list(new.get("specs", ())))
    if old.get("lock") != new.get("lock"):
        out.append(Cause("file", "conda lock file"))
    return out + [_setting(prefix) for _ in _changed_fields(old, new, ("specs", "lock"))]


def _files(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    out = _manifest_paths(old.get("manifest"), new.get("manifest"))
    return out + [_setting("cerebrium.deployment.include") for _ in _changed_fields(old, new, ("manifest",))]


def _dockerfile(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    out = []
    if old.get("dockerfile") != new.get("dockerfile"):
        out.append(Cause("file", str(new.get("path") or "Dockerfile")))
    out += _manifest_paths(old.get("context"), new.get("context"))
    return out + [
        _setting("cerebrium.deployment.dockerfile_path") for _ in _changed_fields(old, new, ("dockerfile", "context"))
    ]


_IMAGE_FIELDS = {
    "entrypoint": "cerebrium.runtime.custom.entrypoint",
    "cmd": "cerebrium.runtime.custom.entrypoint",
    "exposed_ports": "cerebrium.runtime.custom.port",
    "healthcheck": "cerebrium.runtime.custom.healthcheck_endpoint",
}


def _config(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    before, after = old.get("image", {}) or {}, new.get("image", {}) or {}
    old_labels, new_labels = before.get("labels", {}) or {}, after.get("labels", {}) or {}
    out = []
    for key in sorted(set(old_labels) | set(new_labels)):
        if key.startswith("dev.builder.") or old_labels.get(key) == new_labels.get(key):
            continue
        out.append(_setting(key.removeprefix("ai.") if key.startswith("ai.cerebrium.") else f"label {key}"))
    for name in _changed_fields(before, after, ("labels",)):
        out.append(_setting(_IMAGE_FIELDS.get(name, f"cerebrium.runtime.custom ({name})")))
    if not out and old.get("toml_text") != new.get("toml_text"):
        # toml_path is where the file lands in the image; the project file is named by its base name
        out.append(Cause("file", str(new.get("toml_path") or "cerebrium.toml").rsplit("/", 1)[-1]))
    return out


def _base(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    """The same reference now naming other layers is a re-tag; any other change is the setting's."""
    if old.get("image") == new.get("image") and old.get("layers") and old.get("layers") != new.get("layers"):
        return [Cause("base_retag", BASE_RETAGGED)]
    return [_setting("cerebrium.deployment.docker_base_image_url")]


def _commands(key: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]:
    return _section(f"cerebrium.deployment.{key}")


_NAMERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]] = {
    "base": _base,
    "python": _section("cerebrium.deployment.python_version", {"strategy": "cerebrium.deployment.python_version"}),
    "pre_build": _commands("pre_build_commands"),
    "apt": _apt,
    "conda": _conda,
    "pip": _pip,
    "files": _files,
    "shell": _commands("shell_commands"),
    "config": _config,
    "dockerfile": _dockerfile,
}
