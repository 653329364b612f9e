"""The step graph: contraction of empty steps, source edges, order."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import PlanError
from builder.plan.graph import build_graph, layer_order, layer_parents, source_refs, step_graph
from builder.plan.model import StepKind, StepRef

K = StepKind
ORDER = tuple(StepKind)


def test_removed_steps_reattach_children_to_parents() -> None:
    graph = build_graph({K.BASE: 1, K.PIP: 1, K.CONFIG: 1}, order=ORDER)
    assert layer_order(graph) == [K.BASE, K.PIP, K.CONFIG]
    assert layer_parents(graph, K.PIP) == (K.BASE,)
    assert layer_parents(graph, K.BASE) == ()


def test_source_edge_is_kept_but_not_a_layer_parent() -> None:
    present = {K.BASE: 1, K.PIP: 1, K.FILES: 1, K.CONFIG: 1}
    graph = build_graph(present, order=ORDER, sources={K.PIP: [StepRef(K.FILES, "source")]})
    assert graph.has_edge(K.FILES, K.PIP) and graph[K.FILES][K.PIP]["use"] == "source"
    assert layer_parents(graph, K.FILES) == (K.PIP,)
    assert layer_parents(graph, K.PIP) == (K.BASE,)
    assert source_refs(graph, K.PIP) == (StepRef(K.FILES, "source"),)
    assert layer_order(graph) == [K.BASE, K.PIP, K.FILES, K.CONFIG]
    assert not nx.is_directed_acyclic_graph(graph)  # the source edge points forward on purpose


def test_source_to_a_missing_step_is_an_error() -> None:
    with pytest.raises(PlanError, match="not in the plan"):
        build_graph({K.PIP: 1, K.CONFIG: 1}, order=ORDER, sources={K.PIP: [StepRef(K.FILES, "source")]})


def _networkx_graph(present: Mapping[StepKind, Any], order: Sequence[StepKind],
                    sources: Mapping[StepKind, Sequence[StepRef]]) -> nx.DiGraph:
    """The graph built with networkx calls only: the reference ``step_graph`` must match."""
    graph = nx.DiGraph()
    graph.add_nodes_from(order)
    graph.add_edges_from(itertools.pairwise(order), use="layer")
    for kind in order:
        if kind not in present:
            parents, children = list(graph.predecessors(kind)), list(graph.successors(kind))
            graph.remove_node(kind)
            graph.add_edges_from(((p, c) for p in parents for c in children), use="layer")
    for kind, refs in sources.items():
        for ref in refs:
            if ref.step not in graph:
                raise PlanError(f"step {kind.value} reads sources of {ref.step.value}, which is not in the plan")
            graph.add_edge(ref.step, kind, use=ref.use)
    layers = nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v]["use"] == "layer")
    if not nx.is_directed_acyclic_graph(layers):
        raise PlanError("the step graph has a cycle")
    return graph


KINDS = st.sampled_from(list(StepKind))
REFS = st.builds(StepRef, KINDS, st.sampled_from(["layer", "source"]))


@settings(max_examples=400, deadline=None)
@given(order=st.permutations(list(StepKind)), present=st.sets(KINDS),
       sources=st.dictionaries(KINDS, st.lists(REFS, max_size=3), max_size=4))
def test_step_graph_equals_the_networkx_graph(order: list[StepKind], present: set[StepKind],
                                              sources: dict[StepKind, list[StepRef]]) -> None:
    try:
        expected = _networkx_graph(dict.fromkeys(present), order, sources)
    except PlanError as exc:
        with pytest.raises(PlanError) as raised:
            step_graph(dict.fromkeys(present), order=order, sources=sources)
        assert str(raised.value) == str(exc)
        return
    ours = step_graph(dict.fromkeys(present), order=order, sources=sources)
    converted = build_graph(dict.fromkeys(present), order=order, sources=sources)
    assert list(converted.nodes) == list(expected.nodes) == list(ours.nodes)
    assert list(converted.edges(data="use")) == list(expected.edges(data="use")) == ours.edges()
    for kind in expected.nodes:
        assert list(converted.predecessors(kind)) == list(expected.predecessors(kind))
        assert list(ours.predecessors(kind)) == list(expected.predecessors(kind))
        assert layer_parents(ours, kind) == layer_parents(expected, kind)
        assert source_refs(ours, kind) == source_refs(expected, kind)
    layers = nx.subgraph_view(expected, filter_edge=lambda u, v: expected[u][v]["use"] == "layer")
    reference = list(nx.lexicographical_topological_sort(layers, key=lambda k: k.position))
    assert layer_order(ours) == layer_order(expected) == reference


def test_layer_cycle_is_an_error() -> None:
    with pytest.raises(PlanError, match="^the step graph has a cycle$"):
        step_graph({K.BASE: 1, K.PIP: 1, K.CONFIG: 1}, order=ORDER, sources={K.BASE: [StepRef(K.PIP, "layer")]})


def test_make_plan_does_not_import_networkx() -> None:
    probe = ("import sys\nfrom builder.plan.graph import step_graph, layer_order\n"
             "layer_order(step_graph({}, order=[]))\nprint('networkx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
