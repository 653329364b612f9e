"""The step graph (a networkx DiGraph): contraction of empty steps, source edges, order, invalidation."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import PlanError
from builder.plan.graph import (
    build_graph,
    layer_ancestors,
    layer_descendants,
    layer_order,
    layer_parents,
    plan_graph,
    source_refs,
)
from builder.plan.model import Plan, Step, StepKind, StepRef

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


def _contracted(
    present: Mapping[StepKind, Any], order: Sequence[StepKind], sources: Mapping[StepKind, Sequence[StepRef]]
) -> nx.DiGraph:
    """An independent reference: the whole chain, then each empty step removed with its parents joined to
    its children (generic contraction, where ``build_graph`` links each step to the nearest present one)."""
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
            if kind not in graph:
                continue
            if ref.step not in graph:
                raise PlanError("not in the plan")
            graph.add_edge(ref.step, kind, use=ref.use)
    layers = nx.subgraph_view(graph, filter_edge=lambda u, v: graph[u][v]["use"] == "layer")
    if not nx.is_directed_acyclic_graph(layers):
        raise PlanError("the step graph has a cycle")
    return graph


KINDS = st.sampled_from(list(StepKind))
REFS = st.builds(StepRef, KINDS, st.sampled_from(["layer", "source"]))


@settings(max_examples=400, deadline=None)
@given(
    order=st.permutations(list(StepKind)),
    present=st.sets(KINDS),
    sources=st.dictionaries(KINDS, st.lists(REFS, max_size=3), max_size=4),
)
def test_build_graph_equals_generic_contraction(
    order: list[StepKind], present: set[StepKind], sources: dict[StepKind, list[StepRef]]
) -> None:
    try:
        expected = _contracted(dict.fromkeys(present), order, sources)
    except PlanError as exc:
        with pytest.raises(PlanError) as raised:
            build_graph(dict.fromkeys(present), order=order, sources=sources)
        assert str(exc) in str(raised.value)
        return
    ours = build_graph(dict.fromkeys(present), order=order, sources=sources)
    assert list(ours.nodes) == list(expected.nodes)
    assert sorted(ours.edges(data="use")) == sorted(expected.edges(data="use"))
    for kind in expected.nodes:
        assert layer_parents(ours, kind) == layer_parents(expected, kind)
        assert source_refs(ours, kind) == source_refs(expected, kind)
    layers = nx.subgraph_view(expected, filter_edge=lambda u, v: expected[u][v]["use"] == "layer")
    reference = list(nx.lexicographical_topological_sort(layers, key=lambda k: k.position))
    assert layer_order(ours) == reference


def test_layer_cycle_is_an_error() -> None:
    with pytest.raises(PlanError, match="^the step graph has a cycle$"):
        build_graph({K.BASE: 1, K.PIP: 1, K.CONFIG: 1}, order=ORDER, sources={K.BASE: [StepRef(K.PIP, "layer")]})


def _plan(*steps: tuple[StepKind, tuple[StepRef, ...]]) -> Plan:
    return Plan("app", tuple(Step(kind, f"sha256:{i}", refs, None) for i, (kind, refs) in enumerate(steps)), 1)


def test_plan_graph_of_a_plan_and_of_its_json_have_the_same_layers() -> None:
    plan = _plan(
        (K.BASE, ()),
        (K.PIP, (StepRef(K.BASE), StepRef(K.FILES, "source"))),
        (K.FILES, (StepRef(K.PIP),)),
        (K.CONFIG, (StepRef(K.FILES),)),
    )
    graph = plan_graph(plan)
    assert graph[K.FILES][K.PIP]["use"] == "source"
    as_json = {
        "app": "app",
        "steps": [{"id": s.id.value, "key": s.key, "parents": [p.value for p in s.parents]} for s in plan.steps],
    }
    from_json = plan_graph(as_json)
    assert layer_order(graph) == layer_order(from_json) == [K.BASE, K.PIP, K.FILES, K.CONFIG]
    assert not from_json.has_edge(K.FILES, K.PIP)  # source references live in the inputs, not in "parents"


def test_ancestors_and_descendants_follow_layer_edges_only() -> None:
    graph = plan_graph(
        _plan(
            (K.BASE, ()),
            (K.PIP, (StepRef(K.BASE), StepRef(K.FILES, "source"))),
            (K.FILES, (StepRef(K.PIP),)),
            (K.SHELL, (StepRef(K.FILES),)),
            (K.CONFIG, (StepRef(K.SHELL),)),
        )
    )
    assert layer_descendants(graph, K.PIP) == {K.FILES, K.SHELL, K.CONFIG}
    assert layer_descendants(graph, K.FILES) == {K.SHELL, K.CONFIG}  # the source edge to pip invalidates nothing
    assert layer_ancestors(graph, K.PIP) == {K.BASE}
    assert layer_ancestors(graph, K.CONFIG) == {K.BASE, K.PIP, K.FILES, K.SHELL}


def test_a_parent_outside_the_plan_is_an_error() -> None:
    with pytest.raises(PlanError, match="built on files, which is not in the plan"):
        plan_graph(_plan((K.BASE, ()), (K.CONFIG, (StepRef(K.FILES),))))


_ORDER_SCRIPT = """
import json, sys
from builder.config import load_config
from builder.plan import make_plan
from builder.plan.graph import layer_order, plan_graph
from builder.plan.render.dot import render_dot
from builder.plan.render.json import plan_document
from builder.plan.analyze import analyze
plan = make_plan(load_config(sys.argv[1]))
analysis = analyze(plan, None)
print(json.dumps({"order": [k.value for k in layer_order(plan_graph(plan))], "keys": plan.keys,
                  "json": plan_document(plan, analysis, files=True), "dot": render_dot(plan, analysis)}))
"""


@pytest.mark.parametrize("app", ["complete", "paths-files"])
def test_order_keys_json_and_dot_are_equal_under_any_hash_seed(app: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    outputs = []
    for seed in ("0", "1", "31337"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repo)}
        done = subprocess.run(
            [sys.executable, "-c", _ORDER_SCRIPT, str(repo / "fixtures" / "apps" / app)],
            env=env,
            capture_output=True,
            check=True,
            cwd=repo,
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    order = json.loads(outputs[0])["order"]
    assert order[0] == "base" and order[-1] == "config" and len(order) == len(set(order)) > 3
