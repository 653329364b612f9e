"""The stable JSON form of ``builder plan --format json``.

Schema (every field always present, except ``predicted_for``)::

    {
      "app": str,                       # deployment name
      "steps": [                        # build order (topological)
        {
          "id": str,                    # step id == kind: base | python | pre_build | apt | conda
                                        #   | pip | files | shell | dockerfile | config
          "kind": str,                  # same as id (one step per kind)
          "key": "sha256:<hex>",        # cache key (Merkle: own inputs + parent keys)
          "parents": [str],             # layer parents' ids (the step is built on them)
          "status": "hit" | "miss",     # hit: key recorded as built in the step cache
          "reason": str,                # why it misses ("pip: torch ==2.0.0 → ==2.1.0",
                                        #   "parent changed (pip)", ...) or "cached"
          "inputs": {...},              # the step's inputs (see builder.plan.steps.<kind>)
          "estimated_seconds": float | null   # 0.0 for hits; null when unknown
        }
      ],
      "predicted_for": {                # `builder plan`/`build`: whose cache the hits are predicted from
        "engine": {"id": str, "description": str} | null,   # null: no engine reachable
        "note": str,                    # the same in words
        "cache_from": [str]             # shared caches read (--cache-from)
      }
    }

A hit's ``reason`` is "cached" (this engine built it, or found it cached) or "hit: shared cache REF"
(the step records that travel with a ``--cache-from`` cache name it).

Inputs by kind (full field docs in each ``builder/plan/steps/<kind>.py``):
``base`` {image, platform}; ``python`` {version, strategy, venv, cache_scope};
``pre_build``/``shell`` {commands, script ("bash": the list runs as one
bash script with set -e), workdir}; ``apt`` {packages,
no_install_recommends, cache_mounts}; ``conda`` {specs, channels, prefix,
lock, cache_mounts}; ``pip`` {installer, requirements_txt, constraints_txt,
locked, venv, cache_mounts, pinned, local: null | {ref: {step: "files", use:
"source"}, paths, manifest}}; ``files`` {manifest, dest}; ``dockerfile``
{path, dockerfile, context, build_args}; ``config`` {image: {entrypoint, cmd,
exposed_ports, healthcheck, working_dir, env, path_prepend, labels},
toml_path, toml_text}.  A manifest is ``{"digest", "count", "files":
[[path, "file"|"exec"|"symlink", size, "blake3:<hex>" | link target]]}``; a
cache mount is ``{"target", "id", "sharing"}``.

The ``files`` step's manifest is a **summary** (a 100,000-file project's full
manifest is 11 MB of JSON)::

    {"digest": "sha256:<hex>",          # the Merkle digest its key hashes
     "count": int, "bytes": int,        # number of files, sum of their sizes
     "changed": null | {"modified": [paths], "added": [paths], "removed": [paths]},
     "layers": [{"label": str, "count": int}]}   # the chained layers, bottom first

``changed`` compares with the plan last recorded for the app, when the
analysis read it (something misses); it is null when there is none or
every step is cached.  ``layers`` are the layers the files are copied in
(``builder.plan.file_layers``: one below 2,049 files); an edit copies its
layer and those above it again.  ``builder plan --format json --files`` adds
``"files": [[path, type, size, digest], ...]``, the full manifest.  Other
manifests (pip's local requirement files, the dockerfile context) are
always full.

The pip ⇠ files source edge (local/``-e`` requirements) is ``inputs.local.ref``.
:meth:`builder.plan.model.Plan.from_json` reads this document back (status,
reason and estimates are ignored), which is what ``builder build --plan`` uses.
A plan with a summary-only files manifest is completed there from the project
on disk, and refused when the project's files no longer match its digest.

The history of builds is reported by ``builder report --format json``; its schema is documented
in ``builder/reports/__init__.py``.
"""

from __future__ import annotations

from typing import Any

from builder.plan.analyze import Analysis
from builder.plan.changes import changed_paths
from builder.plan.file_layers import split_layers
from builder.plan.model import FileManifest, Plan, Step, StepKind


def plan_document(plan: Plan, analysis: Analysis, *, files: bool = False) -> dict[str, Any]:
    """The documented JSON document (a dict; the CLI dumps it).

    The files step's manifest is a summary unless ``files`` (``builder plan --files``) asks for every entry.
    """
    steps = []
    for step in plan.steps:
        status = analysis.status(step.id)
        steps.append(
            {
                "id": step.id.value,
                "kind": step.kind.value,
                "key": step.key,
                "parents": [p.value for p in step.parents],
                "status": status.status,
                "reason": status.reason,
                "inputs": _files_inputs(step, analysis, files) if step.id is StepKind.FILES else step.inputs_json(),
                "estimated_seconds": status.estimated_seconds,
            }
        )
    document: dict[str, Any] = {"app": plan.app, "steps": steps}
    if analysis.predicted_for is not None:
        document["predicted_for"] = dict(analysis.predicted_for)
    return document


def _files_inputs(step: Step, analysis: Analysis, full: bool) -> dict[str, Any]:
    """The files step's inputs with the manifest summarised (no per-file encoding unless ``full``)."""
    manifest: FileManifest = step.inputs.manifest
    summary: dict[str, Any] = {
        "digest": manifest.digest,
        "count": len(manifest),
        "bytes": manifest.total_size,
        "changed": _changed(step, analysis),
        "layers": [layer.to_json() for layer in split_layers(manifest)],
    }
    if full:
        summary["files"] = [list(e) for e in manifest.entries]
    return {"manifest": summary, "dest": step.inputs.dest}


def _changed(step: Step, analysis: Analysis) -> dict[str, list[str]] | None:
    """Paths changed since the plan the analysis compared with (None when it compared with none)."""
    previous = analysis.previous
    if previous is None:
        return None
    before = next((s for s in previous.get("steps", ()) if s.get("id") == step.id.value), None)
    if before is None:
        return None
    if before.get("key") == step.key:
        return {"modified": [], "added": [], "removed": []}
    try:
        return changed_paths(before["inputs"]["manifest"]["files"], step.inputs.manifest.entries)
    except (KeyError, TypeError, ValueError, IndexError):  # a recorded plan of an older or foreign form
        return None


def diff_document(diff: Any) -> dict[str, Any]:
    """``builder diff --format json``: ``{"old_app", "new_app", "cause", "changes": [...]}``."""
    return {
        "old_app": diff.old_app,
        "new_app": diff.new_app,
        "cause": diff.cause.value if diff.cause else None,
        "config_only": diff.config_only,
        "changes": [
            {
                "id": c.id.value,
                "change": c.change,
                "reason": c.reason,
                "details": list(c.details),
                "old_key": c.old_key,
                "new_key": c.new_key,
            }
            for c in diff.changes
        ],
    }
