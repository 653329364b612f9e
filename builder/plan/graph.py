"""The step graph, built in one place from typed references.

Nodes are :class:`~builder.plan.model.StepKind` members.  Every edge runs
from a dependency to its dependent and carries ``use``:

* ``"layer"`` — the chain: a step is built on its parent's filesystem and
  its key includes the parent's key;
* ``"source"`` — the step reads *source files* of another step (pip ⇠
  files for local/``-e`` requirements): shown in the plan, but not a key
  parent (the digest of those files is in the reader's own inputs), so it
  may point "forwards" along the chain without making the layer graph cyclic.

Empty steps are removed and their children re-attached to their parents.

>>> g = build_graph({StepKind.BASE: 1, StepKind.FILES: 1, StepKind.CONFIG: 1}, order=tuple(StepKind))
>>> [k.value for k in layer_order(g)], [p.value for p in layer_parents(g, StepKind.CONFIG)]
(['base', 'files', 'config'], ['files'])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from builder.errors import PlanError
from builder.plan.model import StepKind, StepRef

if TYPE_CHECKING:
    import networkx as nx


def build_graph(present: Mapping[StepKind, Any], *, order: Iterable[StepKind],
                sources: Mapping[StepKind, Iterable[StepRef]] | None = None) -> nx.DiGraph:
    """The DiGraph of the default chain ``order`` with the non-present kinds contracted away."""
    import networkx as nx  # imported here: it costs ~0.15 s, and only planning needs it
    chain = list(order)
    graph = nx.DiGraph()
    graph.add_nodes_from(chain)
    graph.add_edges_from(itertools.pairwise(chain), use="layer")
    for kind in chain:
        if kind in present:
            continue
        parents = list(graph.predecessors(kind))
        children = list(graph.successors(kind))
        graph.remove_node(kind)
        graph.add_edges_from(((p, c) for p in parents for c in children), use="layer")
    for kind, refs in (sources or {}).items():
        for ref in refs:
            if ref.step not in graph:
                raise PlanError(f"step {kind.value} reads sources of {ref.step.value}, which is not in the plan")
            graph.add_edge(ref.step, kind, use=ref.use)
    if not nx.is_directed_acyclic_graph(_layers(graph)):
        raise PlanError("the step graph has a cycle")
    return graph


def _layers(graph: nx.DiGraph) -> nx.DiGraph:
    import networkx as nx
    return nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v]["use"] == "layer")


def layer_order(graph: nx.DiGraph) -> list[StepKind]:
    """Build order: a topological order of the layer edges, ties broken by chain position."""
    import networkx as nx
    return list(nx.lexicographical_topological_sort(_layers(graph), key=lambda k: k.position))


def layer_parents(graph: nx.DiGraph, kind: StepKind) -> tuple[StepKind, ...]:
    """The layer parents of ``kind`` in chain order."""
    return tuple(sorted((p for p in graph.predecessors(kind) if graph[p][kind]["use"] == "layer"),
                        key=lambda k: k.position))


def source_refs(graph: nx.DiGraph, kind: StepKind) -> tuple[StepRef, ...]:
    """The non-layer references of ``kind`` (e.g. pip ⇠ files)."""
    return tuple(sorted(StepRef(p, graph[p][kind]["use"]) for p in graph.predecessors(kind)
                        if graph[p][kind]["use"] != "layer"))
