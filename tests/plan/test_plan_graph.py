"""The step graph: contraction of empty steps, source edges, order."""

from __future__ import annotations

import networkx as nx
import pytest

from builder.errors import PlanError
from builder.plan.graph import build_graph, layer_order, layer_parents, source_refs
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
