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

:func:`step_graph` builds the graph as a small :class:`StepGraph` (what
``make_plan`` uses: the chain has ten nodes, and importing networkx costs more
than a whole cached build); :func:`build_graph` returns the same graph as a
``networkx.DiGraph``.  :func:`layer_order`, :func:`layer_parents` and
:func:`source_refs` accept either.

>>> g = step_graph({StepKind.BASE: 1, StepKind.FILES: 1, StepKind.CONFIG: 1}, order=tuple(StepKind))
>>> [k.value for k in layer_order(g)], [p.value for p in layer_parents(g, StepKind.CONFIG)]
(['base', 'files', 'config'], ['files'])
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from builder.errors import PlanError
from builder.plan.model import StepKind, StepRef

if TYPE_CHECKING:
    import networkx as nx


class _Graph(Protocol):
    """What the query functions need of a graph: ``StepGraph`` and ``nx.DiGraph`` both have it."""

    @property
    def nodes(self) -> Iterable[StepKind]: ...

    def predecessors(self, n: StepKind) -> Iterator[StepKind]: ...

    def __getitem__(self, n: StepKind) -> Mapping[StepKind, Mapping[str, Any]]: ...


class StepGraph:
    """A directed graph of step kinds whose edges carry ``use`` (no networkx).

    Nodes and edges keep insertion order, and adding an existing edge updates
    its ``use`` in place, as in networkx, so :meth:`to_networkx` gives exactly
    the ``DiGraph`` the same sequence of networkx calls would.  ``graph[u][v]``
    is ``{"use": ...}`` like networkx's adjacency view.
    """

    __slots__ = ("_edges", "_nodes")

    def __init__(self) -> None:
        self._nodes: dict[StepKind, None] = {}
        self._edges: dict[tuple[StepKind, StepKind], dict[str, Any]] = {}

    def add_node(self, n: StepKind) -> None:
        self._nodes.setdefault(n, None)

    def add_edge(self, u: StepKind, v: StepKind, use: str) -> None:
        self.add_node(u)
        self.add_node(v)
        self._edges.setdefault((u, v), {})["use"] = use

    def remove_node(self, n: StepKind) -> None:
        del self._nodes[n]
        for edge in [e for e in self._edges if n in e]:
            del self._edges[edge]

    @property
    def nodes(self) -> tuple[StepKind, ...]:
        return tuple(self._nodes)

    def edges(self) -> list[tuple[StepKind, StepKind, str]]:
        """``(u, v, use)`` for every edge, in networkx's order (by source node, then insertion)."""
        return [(u, v, data["use"]) for n in self._nodes for (u, v), data in self._edges.items() if u == n]

    def __contains__(self, n: object) -> bool:
        return n in self._nodes

    def has_edge(self, u: StepKind, v: StepKind) -> bool:
        return (u, v) in self._edges

    def predecessors(self, n: StepKind) -> Iterator[StepKind]:
        return (u for u, v in self._edges if v == n)

    def successors(self, n: StepKind) -> Iterator[StepKind]:
        return (v for u, v in self._edges if u == n)

    def __getitem__(self, n: StepKind) -> dict[StepKind, dict[str, Any]]:
        if n not in self._nodes:
            raise KeyError(n)
        return {v: data for (u, v), data in self._edges.items() if u == n}

    def to_networkx(self) -> nx.DiGraph:
        """The same graph as a ``networkx.DiGraph`` (edge attribute ``use``)."""
        import networkx as nx  # here only: importing it costs ~0.15-0.25 s, planning does not need it

        graph = nx.DiGraph()
        graph.add_nodes_from(self._nodes)
        graph.add_edges_from((u, v, dict(data)) for (u, v), data in self._edges.items())
        return graph


def step_graph(present: Mapping[StepKind, Any], *, order: Iterable[StepKind],
               sources: Mapping[StepKind, Iterable[StepRef]] | None = None) -> StepGraph:
    """The graph of the default chain ``order`` with the non-present kinds contracted away.

    Raises PlanError when a source reference names a step that is not in the
    graph, or when the layer edges form a cycle.
    """
    chain = list(order)
    graph = StepGraph()
    for kind in chain:
        graph.add_node(kind)
    for u, v in itertools.pairwise(chain):
        graph.add_edge(u, v, "layer")
    for kind in chain:
        if kind in present:
            continue
        parents = list(graph.predecessors(kind))
        children = list(graph.successors(kind))
        graph.remove_node(kind)
        for p, c in itertools.product(parents, children):
            graph.add_edge(p, c, "layer")
    for kind, refs in (sources or {}).items():
        for ref in refs:
            if ref.step not in graph:
                raise PlanError(f"step {kind.value} reads sources of {ref.step.value}, which is not in the plan")
            graph.add_edge(ref.step, kind, ref.use)
    if _layer_order(graph) is None:
        raise PlanError("the step graph has a cycle")
    return graph


def build_graph(present: Mapping[StepKind, Any], *, order: Iterable[StepKind],
                sources: Mapping[StepKind, Iterable[StepRef]] | None = None) -> nx.DiGraph:
    """:func:`step_graph` as a ``networkx.DiGraph`` (imports networkx)."""
    return step_graph(present, order=order, sources=sources).to_networkx()


def _layer_order(graph: _Graph) -> list[StepKind] | None:
    """Kahn's algorithm over the layer edges, smallest chain position first; None on a cycle."""
    waiting = {n: 0 for n in graph.nodes}
    children: dict[StepKind, list[StepKind]] = {n: [] for n in waiting}
    for v in waiting:
        for u in graph.predecessors(v):
            if graph[u][v]["use"] == "layer":
                waiting[v] += 1
                children[u].append(v)
    ready = [(n.position, n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    done: list[StepKind] = []
    while ready:
        _, n = heapq.heappop(ready)
        done.append(n)
        for c in children[n]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (c.position, c))
    return done if len(done) == len(waiting) else None


def layer_order(graph: StepGraph | nx.DiGraph) -> list[StepKind]:
    """Build order: a topological order of the layer edges, ties broken by chain position."""
    done = _layer_order(graph)
    if done is None:
        raise PlanError("the step graph has a cycle")
    return done


def layer_parents(graph: StepGraph | nx.DiGraph, kind: StepKind) -> tuple[StepKind, ...]:
    """The layer parents of ``kind`` in chain order."""
    return tuple(sorted((p for p in graph.predecessors(kind) if graph[p][kind]["use"] == "layer"),
                        key=lambda k: k.position))


def source_refs(graph: StepGraph | nx.DiGraph, kind: StepKind) -> tuple[StepRef, ...]:
    """The non-layer references of ``kind`` (e.g. pip ⇠ files)."""
    return tuple(sorted(StepRef(p, graph[p][kind]["use"]) for p in graph.predecessors(kind)
                        if graph[p][kind]["use"] != "layer"))
