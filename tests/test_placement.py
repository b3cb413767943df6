"""Expert placement: hand-checked costs, ILP optimality and guarantees, baselines, reports."""

import itertools
import json

import numpy as np
import pytest

from optimizers.placement import (
    Cluster,
    Placement,
    PlacementProblem,
    evaluate_placement,
    greedy,
    highs_available,
    local_search,
    optimize_placement,
    round_robin,
    solve_hierarchical,
    solve_ilp,
)
from optimizers.placement.exact import solve_exact
from workloads.routing import RoutingTrace, synthetic_routing


def _swap_trace() -> RoutingTrace:
    """Top-1, 2 layers, 4 experts: 0->1, 1->0, 2->3, 3->2, ten tokens each."""
    first = np.repeat([0, 1, 2, 3], 10)
    second = np.repeat([1, 0, 3, 2], 10)
    return RoutingTrace(np.stack([first, second], axis=1), experts=4)


def _brute_force(problem: PlacementProblem, cluster: Cluster) -> float:
    """Best cost over all balanced placements (tiny problems only)."""
    cap = problem.experts // cluster.gpus
    rows = sorted({p for p in itertools.permutations(np.repeat(np.arange(cluster.gpus), cap))})
    best = np.inf
    for combo in itertools.product(rows, repeat=problem.layers):
        best = min(best, problem.hop_cost(np.array(combo), cluster))
    return best


# ------------------------------------------------------------------------- hand-checked cases
def test_cluster_costs_and_validation():
    c = Cluster(nodes=2, gpus_per_node=2)
    assert c.gpus == 4
    assert c.cost_matrix().tolist() == [[0, 1, 2, 2], [1, 0, 2, 2], [2, 2, 0, 1], [2, 2, 1, 0]]
    for kw, field in [({"nodes": 0}, "nodes"), ({"gpus_per_node": 1.5}, "gpus_per_node"),
                      ({"intra_node_cost": 0}, "intra_node_cost"), ({"inter_node_cost": 0.5}, "inter_node_cost")]:
        with pytest.raises(ValueError, match=field):
            Cluster(**kw)


def test_swap_instance_round_robin_vs_ilp_by_hand():
    tr, cl = _swap_trace(), Cluster(nodes=1, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    rr = round_robin(2, 4, cl)
    # round robin keeps e on GPU e % 2, and every pair (0,1), (2,3) straddles the two GPUs
    assert problem.hop_cost(rr.gpu_of, cl) == 1.0
    m = evaluate_placement(rr, tr, hidden_bytes=100.0)
    assert (m.cross_gpu_hops_per_token_layer, m.inter_node_hops_per_token_layer) == (1.0, 0.0)
    assert m.all_to_all_bytes_per_layer == 40 * 100.0
    res = solve_ilp(problem, cl, time_limit_s=20)
    assert res.objective == 0.0 and res.status == "optimal" and res.best_bound == 0.0
    assert res.placement.is_balanced()
    m = evaluate_placement(res.placement, tr, hidden_bytes=100.0)
    assert m.cross_gpu_hops_per_token_layer == 0.0 and m.all_to_all_bytes_per_layer == 0.0


def test_two_level_costs_by_hand():
    # 3 tokens, top-1, experts on GPUs 0..3 (nodes {0,1}, {2,3}): 0->1 intra, 0->2 inter, 0->0 local
    tr = RoutingTrace(np.array([[0, 1], [0, 2], [0, 0]]), experts=4)
    cl = Cluster(nodes=2, gpus_per_node=2)
    m = evaluate_placement(Placement(np.array([[0, 1, 2, 3], [0, 1, 2, 3]]), cl), tr, hidden_bytes=1.0)
    assert m.cross_gpu_hops_per_token_layer == pytest.approx(2 / 3)
    assert m.inter_node_hops_per_token_layer == pytest.approx(1 / 3)
    assert m.hop_cost_per_token_layer == pytest.approx((1 + 2 + 0) / 3)
    assert m.inter_node_bytes_per_layer == 1.0


def test_top2_home_rule_by_hand():
    # one token: layer 0 picks (0, 1), layer 1 picks (2, 3); home = GPU of expert 0 of layer 0
    tr = RoutingTrace(np.array([[[0, 1], [2, 3]]]), experts=4)
    cl = Cluster(nodes=1, gpus_per_node=2)
    pl = Placement(np.array([[0, 1, 0, 1], [0, 1, 0, 1]]), cl)
    m = evaluate_placement(pl, tr)
    assert m.cross_gpu_hops_per_token_layer == 1.0  # copy to expert 2 stays, copy to expert 3 leaves
    assert PlacementProblem.from_trace(tr).hop_cost(pl.gpu_of, cl) == 1.0


def test_trace_and_edge_costs_agree():
    tr = synthetic_routing(300, 4, 8, 2, affinity=0.6, seed=2)
    cl = Cluster(nodes=2, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    for pl in (round_robin(4, 8, cl), greedy(problem, cl), local_search(problem, cl)):
        assert pl.is_balanced()
        assert problem.hop_cost(pl.gpu_of, cl) == pytest.approx(
            evaluate_placement(pl, tr).hop_cost_per_token_layer)


# ------------------------------------------------------------------------------ optimality
@pytest.mark.parametrize("formulation", ["pairs", "tight", "exflow"])
def test_formulations_reach_the_brute_force_optimum(formulation):
    tr = synthetic_routing(120, 3, 4, 2, affinity=0.7, seed=5)
    cl = Cluster(nodes=2, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    best = _brute_force(problem, cl)
    res = solve_ilp(problem, cl, formulation=formulation, time_limit_s=20, warm_start="greedy")
    assert res.objective == pytest.approx(best)
    assert res.placement.is_balanced()
    assert res.best_bound is not None and res.best_bound <= best + 1e-9
    assert solve_exact(problem, cl).is_balanced()
    assert problem.hop_cost(solve_exact(problem, cl).gpu_of, cl) == pytest.approx(best)


def test_two_experts_per_gpu_matches_brute_force():
    tr = synthetic_routing(100, 3, 4, 1, affinity=0.5, seed=1)
    cl = Cluster(nodes=1, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    res = solve_ilp(problem, cl, time_limit_s=20)
    assert res.objective == pytest.approx(_brute_force(problem, cl))
    assert res.placement.experts_per_gpu().tolist() == [[2, 2]] * 3


@pytest.mark.skipif(not highs_available(), reason="needs highspy")
def test_pairs_on_highs_and_pure_cbc_agree_with_exact_dp():
    tr = synthetic_routing(300, 4, 8, 2, affinity=0.9, seed=0)
    cl = Cluster(nodes=2, gpus_per_node=4)
    problem = PlacementProblem.from_trace(tr)
    exact = problem.hop_cost(solve_exact(problem, cl).gpu_of, cl)
    assert exact < problem.hop_cost(greedy(problem, cl).gpu_of, cl) - 0.1  # the start is far off
    for solver, sub in (("highs", "highs"), ("cbc", "cbc")):
        res = solve_ilp(problem, cl, solver=solver, subsolver=sub, time_limit_s=30, warm_start="greedy")
        assert res.status == "optimal"
        assert res.objective == pytest.approx(exact)
        assert res.best_bound == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize(("affinity", "seed"), [(0.0, 0), (0.5, 1), (0.9, 2)])
def test_ilp_never_worse_than_round_robin_or_greedy(affinity, seed):
    tr = synthetic_routing(300, 4, 8, 2, affinity=affinity, seed=seed)
    cl = Cluster(nodes=2, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    res = solve_ilp(problem, cl, time_limit_s=10, gap_rel=0.01)
    assert res.placement.is_balanced()
    assert res.objective <= problem.hop_cost(round_robin(4, 8, cl).gpu_of, cl) + 1e-12
    assert res.objective <= problem.hop_cost(greedy(problem, cl).gpu_of, cl) + 1e-12


def test_hierarchical_is_balanced_and_no_worse_than_local_search():
    tr = synthetic_routing(300, 3, 8, 2, affinity=0.9, seed=3)
    cl = Cluster(nodes=2, gpus_per_node=2)
    problem = PlacementProblem.from_trace(tr)
    res = solve_hierarchical(problem, cl, time_limit_s=20)
    assert res.status == "hierarchical" and len(res.stages) == 3
    assert res.placement.is_balanced()
    assert res.objective <= problem.hop_cost(local_search(problem, cl, restarts=20).gpu_of, cl) + 1e-12
    assert res.best_bound <= res.objective


# ----------------------------------------------------------------------------- end to end
def test_strong_affinity_drops_cross_gpu_routing():
    tr = synthetic_routing(800, 4, 8, 1, affinity=1.0, seed=0)
    rep = optimize_placement(tr, Cluster(nodes=1, gpus_per_node=4), time_limit_s=20)
    assert rep.metrics["ilp"].cross_gpu_hops_per_token_layer == 0.0
    assert rep.metrics["round_robin"].cross_gpu_hops_per_token_layer > 0.6
    assert rep.reduction("ilp", "cross_gpu_hops_per_token_layer") == 1.0
    assert not rep.nothing_to_gain and "cuts hop cost by 100.0%" in rep.summary()


def test_no_affinity_means_nothing_to_gain():
    tr = synthetic_routing(2000, 4, 8, 2, affinity=0.0, seed=0)
    rep = optimize_placement(tr, Cluster(nodes=2, gpus_per_node=2), time_limit_s=10, gap_rel=0.01)
    assert abs(rep.reduction()) < 0.03 and rep.nothing_to_gain
    assert "Nothing to gain" in rep.summary()
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["nothing_to_gain"] is True and d["trace"]["tokens_eval"] == 500
    assert set(d["metrics"]) == {"round_robin", "greedy", "local_search", "ilp"}  # no DP: 2 experts/GPU


# ------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_name_the_field():
    tr = synthetic_routing(50, 2, 6, 1, affinity=0.0, seed=0)
    problem = PlacementProblem.from_trace(tr)
    cl = Cluster(nodes=1, gpus_per_node=4)
    with pytest.raises(ValueError, match="experts: 6 experts per layer is not divisible by gpus=4"):
        solve_ilp(problem, cl)
    with pytest.raises(ValueError, match="divisible"):
        round_robin(2, 6, cl)
    ok = Cluster(nodes=1, gpus_per_node=2)
    for kw, field in [({"solver": "gurobi"}, "solver"), ({"formulation": "x"}, "formulation"),
                      ({"time_limit_s": 0}, "time_limit_s"), ({"threads": 0}, "threads"),
                      ({"gap_rel": 1.0}, "gap_rel"), ({"warm_start": "best"}, "warm_start"),
                      ({"subsolver": "cplex"}, "subsolver")]:
        with pytest.raises(ValueError, match=field):
            solve_ilp(problem, ok, **kw)
    with pytest.raises(ValueError, match="placement: shape"):
        evaluate_placement(round_robin(3, 6, ok), tr)
    with pytest.raises(ValueError, match="holdout"):
        optimize_placement(tr, ok, holdout=1.0)
    with pytest.raises(ValueError, match="min_count"):
        PlacementProblem.from_trace(tr, min_count=0)
    with pytest.raises(ValueError, match="experts == gpus"):
        solve_exact(problem, ok)
    with pytest.raises(ValueError, match="gpu_of"):
        Placement(np.array([[0, 5]]), ok)
