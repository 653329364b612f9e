"""The plan's step DAG: a ``networkx.DiGraph`` built in one place from typed references.

Nodes are :class:`~builder.plan.model.StepKind` members.  Every edge runs
from a dependency to its dependent and carries ``use``:

* ``"layer"`` — the chain: a step is built on its parent's filesystem and
  its key includes the parent's key;
* ``"source"`` — the step reads *source files* of another step (pip ⇠
  files for local/``-e`` requirements): shown in the plan, but not a key
  parent (the digest of those files is in the reader's own inputs), so it
  may point "forwards" along the chain without making the layer graph cyclic.

:func:`dag` is the only constructor: a node per step (in the order given) and
an edge per :class:`~builder.plan.model.StepRef`.  :func:`build_graph` makes the
graph of a new plan (the default chain with empty steps contracted away, plus
source references); :func:`plan_graph` rebuilds it from a plan or its JSON form.
The graph is a working value, never part of the plan: a plan stays frozen data.

networkx is imported here, at module level, and this module only by the code
that plans (``make_plan``, ``diff_plans``, the DOT renderer).  Importing it costs
0.1-0.3 s, so the warm server imports it once (``builder.server.daemon.WARM_MODULES``);
``validate``, ``schema`` and the thin client never load it.

>>> g = build_graph({StepKind.BASE: 1, StepKind.FILES: 1, StepKind.CONFIG: 1}, order=tuple(StepKind))
>>> [k.value for k in layer_order(g)], [p.value for p in layer_parents(g, StepKind.CONFIG)]
(['base', 'files', 'config'], ['files'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from builder.errors import PlanError
from builder.plan.model import Plan, StepKind, StepRef


def dag(refs: Mapping[StepKind, Iterable[StepRef]]) -> nx.DiGraph:
    """The graph with a node per key of ``refs`` (in its order) and an edge ``ref.step → kind`` per reference.

    A later reference to the same step replaces the ``use`` of an earlier one.
    Raises PlanError when a reference names a step that is not a node, or when
    the layer edges form a cycle.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(refs)
    for kind, kind_refs in refs.items():
        for ref in kind_refs:
            if ref.step not in graph:
                raise PlanError(
                    f"step {kind.value} reads sources of {ref.step.value}, which is not in the plan"
                    if ref.use != "layer"
                    else f"step {kind.value} is built on {ref.step.value}, which is not in the plan"
                )
            graph.add_edge(ref.step, kind, use=ref.use)
    layer_order(graph)  # raises on a cycle
    return graph


def build_graph(
    present: Mapping[StepKind, Any],
    *,
    order: Iterable[StepKind],
    sources: Mapping[StepKind, Iterable[StepRef]] | None = None,
) -> nx.DiGraph:
    """The graph of the chain ``order`` with the kinds not in ``present`` contracted away, plus ``sources``.

    Contracting a chain re-attaches each present step to the nearest present
    step before it.  Raises PlanError as :func:`dag` does.
    """
    refs: dict[StepKind, list[StepRef]] = {}
    previous: StepKind | None = None
    for kind in order:
        if kind in present:
            refs[kind] = [StepRef(previous, "layer")] if previous is not None else []
            previous = kind
    for kind, kind_refs in (sources or {}).items():
        if kind in refs:
            refs[kind].extend(kind_refs)
    return dag(refs)


def plan_graph(plan: Plan | Mapping[str, Any]) -> nx.DiGraph:
    """The graph of ``plan``: its steps' references, or for the JSON form its layer parents."""
    if isinstance(plan, Plan):
        return dag({step.id: step.refs for step in plan.steps})
    return dag(
        {
            StepKind(s["id"]): [StepRef(StepKind(p), "layer") for p in s.get("parents", ())]
            for s in plan.get("steps", ())
        }
    )


def layers(graph: nx.DiGraph) -> nx.DiGraph:
    """A read-only view of ``graph`` with only its layer edges."""
    return nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v]["use"] == "layer")


def layer_order(graph: nx.DiGraph) -> list[StepKind]:
    """Build order: a topological order of the layer edges, ties broken by chain position."""
    try:
        return list(nx.lexicographical_topological_sort(layers(graph), key=lambda k: k.position))
    except nx.NetworkXUnfeasible as exc:
        raise PlanError("the step graph has a cycle") from exc


def layer_parents(graph: nx.DiGraph, kind: StepKind) -> tuple[StepKind, ...]:
    """The layer parents of ``kind`` in chain order."""
    return tuple(sorted(layers(graph).predecessors(kind), key=lambda k: k.position))


def source_refs(graph: nx.DiGraph, kind: StepKind) -> tuple[StepRef, ...]:
    """The non-layer references of ``kind`` (e.g. pip ⇠ files)."""
    return tuple(sorted(StepRef(p, use) for p, _, use in graph.in_edges(kind, data="use") if use != "layer"))


def layer_ancestors(graph: nx.DiGraph, kind: StepKind) -> set[StepKind]:
    """Every step ``kind`` is built on, directly or not (its key depends on all of their keys)."""
    found: set[StepKind] = nx.ancestors(layers(graph), kind)
    return found


def layer_descendants(graph: nx.DiGraph, kind: StepKind) -> set[StepKind]:
    """Every step built on ``kind``, directly or not: what a change of ``kind`` invalidates."""
    found: set[StepKind] = nx.descendants(layers(graph), kind)
    return found
