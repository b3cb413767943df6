"""Capacity planning: inputs, the MIP on hand-computed cases, infeasibility diagnosis, and the
simulation-backed plan (capacities, cache, confirmation, repair)."""

from __future__ import annotations

import json
import math

import pytest

from optimizers.capacity import (
    Candidate,
    CapacityTable,
    Demand,
    HardwareOption,
    InfeasiblePlan,
    Limits,
    SimulationSettings,
    compute_capacities,
    diagnose,
    hardware_catalog,
    make_candidates,
    parse_demand,
    plan_capacity,
    solve_mip,
)

SMALL = "llama-3.2-1b"

# Two GPU types: "x" ($2/GPU-h, 700 W) and "y" ($3/GPU-h, 300 W).
CAT = {"x": HardwareOption("x", 2.0, 700.0), "y": HardwareOption("y", 3.0, 300.0)}
X1 = Candidate("x", 1)   # 1 GPU, 10 req/s
Y2 = Candidate("y", 2)   # 2 GPUs, 25 req/s


# --------------------------------------------------------------------------- inputs
def test_parse_demand_and_errors():
    d = parse_demand("chatbot=20, code=5")
    assert [(x.name, x.rate_per_s) for x in d] == [("chatbot", 20.0), ("code_generation", 5.0)]
    assert d[0].effective_slo.ttft_s == 0.5
    for bad, needle in (("chatbot", "USE_CASE=RATE"), ("chatbot=fast", "number"), ("chatbot=-1", "rate_per_s"),
                        ("", "no use case"), ("chatbot=1,chat=2", "twice"), ("chatbat=1", "did you mean")):
        with pytest.raises(ValueError, match=needle):
            parse_demand(bad)


def test_candidates_gpus_labels_and_configs():
    d = Candidate("h100", 2, mode="disaggregated", prefill_replicas=2, decode_replicas=1, prefill_hardware="a100",
                  prefill_tp=1)
    assert d.gpus_by_hardware() == {"h100": 2, "a100": 2} and d.gpus == 4
    assert d.label == "2x[a100 tp1] prefill + 1x[h100 tp2] decode"
    cfg = d.config()
    assert cfg["prefill_replicas"] == 2 and cfg["prefill_hardware"] == "a100" and cfg["replicas"] == 1
    assert cfg["max_num_seqs"] == 256  # vLLM defaults
    cands = make_candidates(["h100"], tp=(1, 16), pd_ratios=((1, 1), (2, 1)))
    assert [c.label for c in cands] == ["h100 tp1", "1x[h100 tp1] prefill + 1x[h100 tp1] decode",
                                        "2x[h100 tp1] prefill + 1x[h100 tp1] decode"]  # tp16 exceeds a server
    with pytest.raises(ValueError, match="mode"):
        Candidate("h100", mode="split")
    with pytest.raises(ValueError, match="no .hardware, tp, pp. fits"):
        make_candidates(["h100"], tp=(16,))


def test_catalog_prices_and_missing_price():
    cat = hardware_catalog(["h100", "a100"])
    assert cat["h100"].price_per_gpu_hour == 4.75 and cat["h100"].power_per_gpu_w == 700
    assert cat["a100"].price_per_gpu_hour == 2.2  # Splitwise's $17.6 per DGX-A100 hour / 8
    cat = hardware_catalog(["rtx-4090"], prices={"rtx-4090": 0.7}, power_w={"rtx-4090": 400})
    assert cat["rtx-4090"].price_per_gpu_hour == 0.7 and cat["rtx-4090"].power_per_gpu_w == 400
    with pytest.raises(ValueError, match=r"rtx-4090.*--price"):
        hardware_catalog(["rtx-4090"])


def test_limits_validation():
    with pytest.raises(ValueError, match="limits.racks"):
        Limits(racks=0)
    with pytest.raises(ValueError, match="budget"):
        Limits(budget_usd_per_hour=-5)
    assert Limits(power_w=1e4).active() == {"power": 1e4}


# --------------------------------------------------------------------------- the MIP by hand
def test_min_cost_and_min_power_plans():
    # 30 req/s: 3 x X = $6/h, 2100 W; X + Y = $8/h, 1300 W; 2 x Y = $12/h, 1200 W
    sol = solve_mip([X1, Y2], [30.0], [[10.0], [25.0]], CAT, Limits())
    assert sol.units == {(0, 0): 3} and sol.cost_usd_per_hour == pytest.approx(6.0)
    assert sol.power_w == pytest.approx(2100) and sol.gpus == {"x": 3} and sol.servers == {"x": 1} and sol.racks == 1
    pw = solve_mip([X1, Y2], [30.0], [[10.0], [25.0]], CAT, Limits(), objective="power")
    assert pw.units == {(1, 0): 2} and pw.power_w == pytest.approx(1200) and pw.cost_usd_per_hour == pytest.approx(12)
    # a power cap of 1.5 kW rules out 3 x X; the cheapest within it is X + Y
    capped = solve_mip([X1, Y2], [30.0], [[10.0], [25.0]], CAT, Limits(power_w=1500))
    assert capped.units == {(0, 0): 1, (1, 0): 1} and capped.cost_usd_per_hour == pytest.approx(8.0)


def test_whole_servers_and_overhead():
    # 2 GPUs per server: 3 X GPUs need 2 servers; paid whole: 4 x $2 = $8 (then X + Y = $2 + 2 x $3 paid
    # as 2 servers of 2 = $4 + $6 = $10, so 3 X still wins); overhead 100 W per server
    lim = Limits(gpus_per_server=2, charge_whole_servers=True, server_overhead_w=100)
    sol = solve_mip([X1, Y2], [30.0], [[10.0], [25.0]], CAT, lim)
    assert sol.units == {(0, 0): 3} and sol.servers == {"x": 2}
    assert sol.cost_usd_per_hour == pytest.approx(8.0) and sol.power_w == pytest.approx(4 * 700 + 2 * 100)


def test_two_use_cases_get_their_own_pools():
    # use case 0 only on X (10/s), use case 1 on X (2/s) or Y (9/s): 25/s and 8/s
    sol = solve_mip([X1, Y2], [25.0, 8.0], [[10.0, 2.0], [0.0, 9.0]], CAT, Limits())
    # 0: 3 X ($6); 1: 4 X ($8) or 1 Y ($6) -> Y
    assert sol.units == {(0, 0): 3, (1, 1): 1} and sol.cost_usd_per_hour == pytest.approx(12.0)


def test_diagnose_names_the_binding_limit():
    caps = [[10.0], [25.0]]
    lim = Limits(budget_usd_per_hour=5.0)
    assert not solve_mip([X1, Y2], [30.0], caps, CAT, lim).feasible
    why = diagnose([X1, Y2], [30.0], caps, CAT, lim, ["chat"])
    assert why["binding"] == ["budget"] and why["needed"]["budget"] == pytest.approx(6.0)
    assert "budget binds" in why["message"] and "$6.00/h" in why["message"] and "$5.00/h" in why["message"]
    # racks: 1 rack of 1 server of 2 GPUs holds 2 X (20 req/s) or 1 Y (25 req/s): 30 req/s needs 2 racks
    lim = Limits(racks=1, gpus_per_server=2, servers_per_rack=1)
    why = diagnose([X1, Y2], [30.0], caps, CAT, lim, ["chat"])
    assert why["binding"] == ["racks"] and why["needed"]["racks"] == 2
    # $7/h and 1.5 kW: lifting either one alone gives a plan (3 X at 2.1 kW, or X + Y at $8/h): both bind
    lim = Limits(budget_usd_per_hour=7.0, power_w=1500)
    why = diagnose([X1, Y2], [30.0], caps, CAT, lim, ["chat"])
    assert why["binding"] == ["budget", "power"] and why["needed"] == pytest.approx({"budget": 8.0, "power": 2100})
    # $5/h and 1 kW: lifting one alone is not enough (3 X costs $6; 2 Y draw 1.2 kW); together they bind
    lim = Limits(budget_usd_per_hour=5.0, power_w=1000)
    why = diagnose([X1, Y2], [30.0], caps, CAT, lim, ["chat"])
    assert set(why["binding"]) == {"budget", "power"} and "bind together" in why["message"]


def test_diagnose_names_use_cases_no_candidate_serves():
    why = diagnose([X1, Y2], [5.0], [[0.0], [0.0]], CAT, Limits(), ["code_generation"],
                   reasons=[["model does not fit"], ["SLO unattainable: TTFT"]])
    assert why["binding"] == ["slo"]
    assert "code_generation" in why["message"] and "x tp1: model does not fit" in why["message"]


def test_plan_from_a_given_capacity_table_and_infeasible_plan():
    demands = [Demand("chatbot", 30.0)]
    table = CapacityTable([X1, Y2], demands, [[10.0], [25.0]], [[""], [""]], [[{}], [{}]])
    plan = plan_capacity(demands, [X1, Y2], CAT, capacities=table, confirm=False)
    assert plan.feasible and plan.solution.cost_usd_per_hour == pytest.approx(6.0)
    (row,) = plan.deployment
    assert row["units"] == 3 and row["gpus"] == 3 and row["rate_share_per_s"] == pytest.approx(30.0)
    assert row["utilization"] == pytest.approx(1.0)
    p = plan.to_payload()
    assert p["totals"]["cost_usd_per_hour"] == pytest.approx(6.0)
    # 30 req/s x 128 output tokens x 3600 s per hour = 13.824 M tokens; $6 / 13.824 = $0.434 per million
    assert p["totals"]["cost_per_million_output_tokens_usd"] == pytest.approx(6.0 / 13.824)
    json.dumps(p)  # JSON-ready
    with pytest.raises(InfeasiblePlan, match="budget binds") as exc:
        plan_capacity(demands, [X1, Y2], CAT, Limits(budget_usd_per_hour=5.0), capacities=table, confirm=False)
    assert exc.value.binding == ["budget"] and exc.value.plan.to_payload()["feasible"] is False
    assert isinstance(exc.value, ValueError)


# --------------------------------------------------------------------------- with the simulation
SETTINGS = SimulationSettings(SMALL, num_requests=60, confirm_requests=150)


def test_capacities_are_cached_and_physical(tmp_path):
    demands = [Demand("chatbot", 4.0)]
    cands = [Candidate("h100", 1), Candidate("h100", 1, mode="disaggregated", prefill_replicas=1)]
    cache = tmp_path / "caps.json"
    t1 = compute_capacities(cands, demands, SETTINGS, cache_path=cache)
    assert t1.cached == 0 and t1.simulations > 0
    colo, dis = t1.rate[0][0], t1.rate[1][0]
    assert colo > 0 and dis > 0
    # the run at the capacity met the SLO, and a unit never beats its own flat-out (offline) throughput
    for i in range(2):
        m = t1.evaluation[i][0]["metrics"]
        assert m["slo_attainment"] >= 0.9 and t1.rate[i][0] <= m["offline_throughput_rps"] + 1e-9
    t2 = compute_capacities(cands, demands, SETTINGS, cache_path=cache)
    assert t2.cached == 2 and t2.simulations == 0 and t2.rate == t1.rate
    assert json.loads(cache.read_text())["genz_capacity_cache"] == 1
    cache.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a capacity cache"):
        compute_capacities(cands, demands, SETTINGS, cache_path=cache)


def test_a_model_that_does_not_fit_has_no_capacity_and_the_plan_says_why():
    demands = [Demand("chatbot", 1.0)]
    cands = [Candidate("rtx-4090", 1)]  # 405B parameters on a 24 GB card
    settings = SimulationSettings("llama-3.1-405b", num_requests=30)
    with pytest.raises(InfeasiblePlan, match="no candidate meets its SLO") as exc:
        plan_capacity(demands, cands, hardware_catalog(["rtx-4090"], prices={"rtx-4090": 0.7}), settings=settings)
    assert exc.value.binding == ["slo"] and "does not fit" in str(exc.value)


def test_plan_end_to_end_is_confirmed_by_simulation():
    demands = [Demand("chatbot", 6.0)]
    cands = make_candidates(["h100"], tp=(1,), disaggregated=False)
    plan = plan_capacity(demands, cands, hardware_catalog(["h100"]), settings=SETTINGS)
    assert plan.feasible and plan.confirmed, plan.summary_lines()
    units = plan.deployment[0]["units"]
    assert units == math.ceil(6.0 / plan.capacities.rate[0][0])
    (c,) = plan.confirmation
    assert c["passed"] and c["slo_attainment"] >= 0.9 and c["requests"] == 150
    assert plan.solution.cost_usd_per_hour == pytest.approx(4.75 * units)


def test_an_overstated_capacity_is_caught_and_repaired():
    demands = [Demand("chatbot", 500.0)]
    cand = Candidate("h100", 1)
    # claim one H100 serves 1000 chat turns per second (it serves about 120 of a 1B model's): the
    # confirming run at 500 req/s misses the SLO
    table = CapacityTable([cand], demands, [[1000.0]], [[""]], [[{}]])
    plan = plan_capacity(demands, [cand], hardware_catalog(["h100"]), settings=SETTINGS, capacities=table,
                         repair_rounds=1)
    assert plan.repairs and plan.repairs[0]["lowered"][0]["factor"] <= 0.9
    assert not plan.confirmation[0]["passed"] or plan.confirmed
    assert plan.capacities.rate[0][0] == 1000.0  # the table keeps the measured value; repairs are listed apart
    if not plan.confirmed:
        assert "missed the SLO" in plan.message
