"""The stable JSON form of ``builder plan --format json``.

Schema (every field always present)::

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
      ]
    }

Inputs by kind (full field docs in each ``builder/plan/steps/<kind>.py``):
``base`` {image, platform}; ``python`` {version, strategy, venv};
``pre_build``/``shell`` {commands, shell, workdir}; ``apt`` {packages,
no_install_recommends, cache_mounts}; ``conda`` {specs, channels, prefix,
lock, cache_mounts}; ``pip`` {installer, requirements_txt, constraints_txt,
locked, venv, cache_mounts, local: null | {ref: {step: "files", use:
"source"}, paths, manifest}}; ``files`` {manifest, dest}; ``dockerfile``
{path, dockerfile, context, build_args}; ``config`` {image: {entrypoint, cmd,
exposed_ports, healthcheck, working_dir, env, path_prepend, labels},
toml_path, toml_text}.  A manifest is ``{"digest", "count", "files":
[[path, "file"|"exec"|"symlink", size, "blake3:<hex>" | link target]]}``; a
cache mount is ``{"target", "id", "sharing"}``.

The pip ⇠ files source edge (local/``-e`` requirements) is ``inputs.local.ref``.
:meth:`builder.plan.model.Plan.from_json` reads this document back (status,
reason and estimates are ignored), which is what ``builder build --plan`` uses.

The history of builds is reported by ``builder report --format json``; its schema is documented
in ``builder/reports/__init__.py``.
"""

from __future__ import annotations

from typing import Any

from builder.plan.analyze import Analysis
from builder.plan.model import Plan


def plan_document(plan: Plan, analysis: Analysis) -> dict[str, Any]:
    """The documented JSON document (a dict; the CLI dumps it)."""
    steps = []
    for step in plan.steps:
        status = analysis.status(step.id)
        steps.append({
            "id": step.id.value,
            "kind": step.kind.value,
            "key": step.key,
            "parents": [p.value for p in step.parents],
            "status": status.status,
            "reason": status.reason,
            "inputs": step.inputs_json(),
            "estimated_seconds": status.estimated_seconds,
        })
    return {"app": plan.app, "steps": steps}


def diff_document(diff: Any) -> dict[str, Any]:
    """``builder diff --format json``: ``{"old_app", "new_app", "cause", "changes": [...]}``."""
    return {
        "old_app": diff.old_app,
        "new_app": diff.new_app,
        "cause": diff.cause.value if diff.cause else None,
        "config_only": diff.config_only,
        "changes": [
            {"id": c.id.value, "change": c.change, "reason": c.reason, "details": list(c.details),
             "old_key": c.old_key, "new_key": c.new_key}
            for c in diff.changes
        ],
    }
