"""Write the example notebooks (outputs cleared) from the cell sources below.

Run ``python notebooks/build_notebooks.py`` after editing; the tests execute the .ipynb files top to
bottom (tests/test_notebooks.py). Each notebook uses only data shipped with the project and is
sized to finish in well under a minute on a 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

CAPACITY = [
    ("md", """# Capacity planning for a chat service

A chat product expects its traffic to grow. How many accelerators, of which kind, does it need each
month to keep its latency objectives, and what does that cost in money and power?

1. **Traffic forecast**: peak requests per second per month (an assumption you replace with yours).
2. **Per-replica capacity**: sweep batch size and tensor parallelism with the analytical engine,
   keep configurations that fit and meet the SLO, pick the most requests/s per device.
3. **Check under load**: replay Poisson traffic through the serving simulation (continuous batching,
   paged KV cache) at rising rates; the capacity of a replica is the highest rate whose SLO
   attainment stays >= 95 %.
4. **Plan**: replicas, devices, cost and power per month."""),
    ("code", """import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genz.sweep import sweep
from hwmodels.registry import load_device
from interfaces.reports import build_report
from optimizers.capacity import (
    SimulationSettings,
    hardware_catalog,
    make_candidates,
    parse_demand,
    plan_capacity,
)
from workloads.usecases import get_use_case

use_case = get_use_case("chatbot")  # GenZ's chat lengths; SLOs are documented assumptions
MODEL, PRECISION = "llama-3-70b", "fp8"
CANDIDATES = ["a100", "h100", "h200"]  # devices with a price per hour in their spec files
use_case"""),
    ("md", "## 1. Traffic forecast (assumption: 4 req/s at the busiest hour in month 1, +25 % a month)"),
    ("code", """months = np.arange(1, 13)
peak_rps = 4.0 * 1.25 ** (months - 1)
mean_over_peak = 0.35  # assumption: the average hour carries 35 % of the peak hour's traffic
forecast = pd.DataFrame({"month": months, "peak_rps": peak_rps.round(2),
                         "requests_per_day": (peak_rps * mean_over_peak * 86400).round(-3)})
forecast.head(12).T"""),
    ("md", "## 2. Per-replica capacity from a sweep"),
    ("code", """res = sweep([MODEL], CANDIDATES, batch=[1, 2, 4, 8, 16, 32, 64, 128, 256], prompt=[use_case.prompt_tokens],
            output=[use_case.output_tokens], precision=[PRECISION], tp=[1, 2, 4, 8])
df = res.frame
ok = df[df["fits"] & (df["ttft_s"] <= use_case.ttft_slo_s) & (df["tpot_s"] <= use_case.tpot_slo_s)].copy()
ok["req_per_s"] = ok["throughput_tok_s"] / ok["output"]
ok["req_per_s_per_device"] = ok["req_per_s"] / ok["devices"]
# the best batch of every (hardware, tp) that meets the SLO: the candidates the simulation will load
best = ok.sort_values("req_per_s_per_device", ascending=False).groupby(["hardware", "tp"]).head(1)
best = best.sort_values(["hardware", "tp"]).set_index("hardware")
best[["tp", "batch", "ttft_s", "tpot_s", "req_per_s", "devices"]]"""),
    ("code", """# the same sweep as a report: heatmap (pick a group in its menu) and throughput-latency Pareto front
report = build_report("sweep", {"rows": df})
report.sections[1].figure"""),
    ("md", """The sweep runs each batch as one group that arrives together; real traffic arrives one
request at a time and waits in a queue, and a long prompt's prefill delays everyone's first token. So
the sweep only screens: every (hardware, tp) it keeps is loaded with Poisson traffic in the serving
simulation, and the one with the most requests/s per device *under load* is each GPU's replica."""),
    ("code", """from genz.serving import SLO, ContinuousBatching, Scenario, simulate
from genz.stepcost import EngineStepCost


def run(hw, tp, rate, n=300):
    sc = Scenario(cost=EngineStepCost(MODEL, hw, PRECISION, tp=int(tp)), scheduler=ContinuousBatching(),
                  replicas=1, workload=use_case.workload(rate_per_s=rate, num_requests=n),
                  slo=SLO.from_use_case(use_case), seed=0)
    return simulate(sc)


def capacity(hw, tp, start):
    \"\"\"Highest Poisson rate (req/s) with SLO attainment >= 95 % on one replica (bisection).\"\"\"
    lo, hi = 0.0, start * 4
    for _ in range(7):
        mid = (lo + hi) / 2
        s = run(hw, tp, mid).summary
        good = not s.saturated and s.slo_attainment >= 0.95
        lo, hi = (mid, hi) if good else (lo, mid)
    return lo


rows = []
for hw, b in best.iterrows():
    cap = capacity(hw, b["tp"], b["req_per_s"])
    row = {"hardware": hw, "tp": int(b["tp"]), "devices": int(b["devices"]), "sweep_rps": b["req_per_s"],
           "capacity_rps": cap, "capacity_per_device": cap / b["devices"]}
    if cap > 0:  # 0: no rate tried met the SLO under load
        s = run(hw, b["tp"], cap).summary
        row |= {"ttft_p99_s": s.ttft_s.p99, "tpot_p99_s": s.tpot_s.p99,
                "replica_power_w": s.energy_j / s.duration_s, "j_per_output_token": s.energy_per_output_token_j}
    rows.append(row)
loaded = pd.DataFrame(rows)
replica = loaded.sort_values("capacity_per_device", ascending=False).groupby("hardware").head(1).set_index("hardware")
loaded.round(3)"""),
    ("code", """replica.round(3)  # each GPU's replica: the tp with the most requests/s per device under load"""),
    ("md", "## 3. Plan: replicas, devices, money and power per month (replicas run at <= 80 % of capacity)"),
    ("code", """HEADROOM = 0.8
plan = []
for hw, r in replica.iterrows():
    price = load_device(hw).price_per_hour_usd
    for m, rps, per_day in zip(forecast["month"], forecast["peak_rps"], forecast["requests_per_day"], strict=True):
        reps = math.ceil(rps / (HEADROOM * r["capacity_rps"])) if r["capacity_rps"] > 0 else math.nan
        dev = reps * r["devices"]
        kwh = per_day * 30 * use_case.output_tokens * r["j_per_output_token"] / 3.6e6
        plan.append({"month": m, "hardware": hw, "replicas": reps, "devices": dev,
                     "usd_per_month": dev * price * 730 if price else math.nan,
                     "peak_power_kw": reps * r["replica_power_w"] / 1e3, "energy_kwh_per_month": kwh})
plan = pd.DataFrame(plan)
plan.pivot(index="month", columns="hardware", values="devices")"""),
    ("code", """fig = go.Figure()
for hw, g in plan.groupby("hardware"):
    fig.add_trace(go.Scatter(x=g["month"], y=g["usd_per_month"], mode="lines+markers", name=hw))
fig.update_layout(template="plotly_white", title=f"Cost per month of serving {MODEL} ({PRECISION}) for chat",
                  xaxis_title="month", yaxis_title="USD per month (list price per hour x 730 h)")
fig"""),
    ("code", """cheapest = plan[plan["month"] == 12].sort_values("usd_per_month").iloc[0]
assert cheapest["devices"] >= 1
print(f"month 12: {cheapest['hardware']} with {int(cheapest['devices'])} devices, "
      f"${cheapest['usd_per_month']:,.0f}/month, {cheapest['peak_power_kw']:.1f} kW at peak")"""),
    ("md", """## 4. The same question for the capacity planner

`optimizers.capacity` does steps 2-4 in one call: it measures every candidate's capacity with the
serving simulation, picks the cheapest mix with a mixed-integer program (pools may mix hardware),
and confirms the plan by simulating it. Here: month 12's peak."""),
    ("code", """plan12 = plan_capacity(parse_demand(f"chatbot={forecast['peak_rps'].iloc[-1]}"),
                       make_candidates(CANDIDATES, tp=[2], disaggregated=False), hardware_catalog(CANDIDATES),
                       settings=SimulationSettings(MODEL, precision=PRECISION, num_requests=80,
                                                   confirm_requests=150))
print(*plan12.summary_lines(), sep="\\n")"""),
    ("code", """build_report("plan", plan12.to_payload()).sections[0].figure"""),
    ("md", """## Conclusion

Both answers rest on each GPU's profile: the H200's is measured, the H100's is transferred from it
(no GPU runs at its ideal datasheet roofline, which used to make the H100 look faster than the H200),
and a GPU without the precision's dtype (the A100 has no fp8) drops out of the sweep with the reason.
The cell below states the result from this run's numbers."""),
    ("code", """bases = {hw: load_device(hw).profile.basis for hw in replica.index}
sweep_pick = ok.sort_values("req_per_s_per_device", ascending=False).groupby("hardware").head(1).set_index("hardware")
misled = [f"{hw} tp{int(sweep_pick.loc[hw, 'tp'])} (sweep's pick) holds {loaded[(loaded.hardware == hw) & (loaded.tp == sweep_pick.loc[hw, 'tp'])].capacity_per_device.iloc[0]:.2f} req/s per device under load, "
          f"tp{int(r['tp'])} holds {r['capacity_per_device']:.2f}"
          for hw, r in replica.iterrows() if sweep_pick.loc[hw, "tp"] != r["tp"]]
planner_usd = plan12.solution.cost_usd_per_hour * 730
print(f"Profiles: {bases}; left out: {sorted({s[1] for s in res.skipped})} (no {PRECISION}).")
print(f"Per-replica method, month 12 ({forecast['peak_rps'].iloc[-1]:.1f} req/s at peak): {cheapest['hardware']} "
      f"tp{int(replica.loc[cheapest['hardware'], 'tp'])}, {int(cheapest['devices'])} devices, "
      f"${cheapest['usd_per_month']:,.0f}/month, {cheapest['peak_power_kw']:.1f} kW at peak.")
print(f"Capacity planner, month 12: {sum(plan12.solution.gpus.values())} GPUs, ${planner_usd:,.0f}/month "
      f"({plan12.summary_lines()[0].split(': ', 1)[1]}).")
print("The static sweep alone would have misjudged:", "; ".join(misled) if misled else "nothing (its picks held under load).")
gap = (cheapest["usd_per_month"] - planner_usd) / planner_usd
pool = plan12.deployment[0]
mine = loaded[(loaded.hardware == load_device(pool["hardware"]).name) & (loaded.tp == pool["tp"])]
print(f"The per-replica method costs {gap:+.0%} against the planner. It keeps {1 - HEADROOM:.0%} headroom and asks "
      f"95 % SLO attainment; the planner fills replicas to a capacity measured at "
      f"{plan12.settings.min_slo_attainment:.0%} attainment and confirms it with a longer run (above).")
if len(mine):
    print(f"The same replica ({pool['hardware']} tp{pool['tp']}): {mine.capacity_rps.iloc[0]:.2f} req/s here "
          f"(ContinuousBatching() defaults), {pool['capacity_rps_per_unit']:.2f} req/s in the planner (its serving "
          f"defaults): the two differ by more than the attainment rule, so quote the planner's confirmed run.")"""),
]

LOWBIT = [
    ("md", """# GPU versus FPGA versus LUT Tensor Core for a low-bit model

Weight-only quantization makes decode cheaper on every device, but not equally: a GPU dequantizes
to its tensor-core width, FlightLLM (FPGA'24) streams low-bit weights through DSP chains, and the
LUT Tensor Core (ISCA'25) multiplies by table lookup per weight bit. Here LLaMA-2-7B decodes one
sequence (FlightLLM's setting: batch 1, 128 prompt tokens, 512 generated) at several precisions on
two GPUs, the two FlightLLM FPGAs and the LUT Tensor Core variants. The LUT variants are built on an
A100-80GB and an H100 (their tables say so), so each sits beside its own base GPU: what the LUT unit
adds is the difference in the same row of memory and bandwidth."""),
    ("code", """import pandas as pd
import plotly.express as px

import genz
from hwmodels.flightllm import check_weight_bits, fpga_names
from hwmodels.luttc import lut_gpu_names
from hwmodels.registry import load_device
from workloads import Precision

MODEL = "llama-2-7b"
PRECISIONS = ["bf16", "int8", "w4a8", "w2a8", "1.58-bit"]
families = {"GPU": ["a100-80gb-sxm", "h100-sxm"],
            "FPGA (FlightLLM)": sorted({load_device(n).name for n in fpga_names()}),
            "LUT Tensor Core": sorted({load_device(n).name for n in lut_gpu_names()})}
for family, names in families.items():
    for n in names:
        d = load_device(n)
        runs = d.describe() if hasattr(d, "describe") else "CUDA kernels (the engine's runtime)"
        print(f"{family:>17}: {n:<14} {d.memory_bytes / 1e9:6.1f} GB  {runs}")"""),
    ("code", """rows = []
for family, names in families.items():
    for hw in names:
        for prec in PRECISIONS:
            try:
                p = genz.predict(MODEL, hw, batch=1, prompt=128, output=512, precision=prec)
            except ValueError as exc:  # a device that cannot run this precision says why
                rows.append({"family": family, "hardware": hw, "precision": prec, "note": str(exc)[:90]})
                continue
            if not p.fits:  # a configuration that does not fit has no latency
                rows.append({"family": family, "hardware": hw, "precision": prec, "fits": False,
                             "note": p.fit_message()})
                continue
            note = ""
            if family.startswith("FPGA") and check_weight_bits(Precision.parse(prec).weight_bits) != Precision.parse(prec).weight_bits:
                note = "FlightLLM quantizes wider weights to INT8: runs as int8"
            # batch-1 decode is memory-bound (LUT variants differ little there); a 64 x 1024 prefill is
            # compute-bound, where the LUT tiles' throughput shows
            big = genz.predict(MODEL, hw, batch=64, prompt=1024, output=128, precision=prec)
            rows.append({"family": family, "hardware": hw, "precision": prec, "decode_tok_s": p.decode_tok_s,
                         "prefill_tok_s_b64": 64 * 1024 / big.ttft_s if big.fits else float("nan"),
                         "j_per_token": p.energy_per_token_j, "power_w": p.power_w, "fits": p.fits, "note": note})
table = pd.DataFrame(rows)
table.round(3)"""),
    ("code", """ran = table.dropna(subset=["decode_tok_s"])
fig = px.scatter(ran, x="j_per_token", y="decode_tok_s", color="family", symbol="precision", hover_name="hardware",
                 log_x=True, log_y=True, template="plotly_white",
                 labels={"j_per_token": "energy per generated token (J)", "decode_tok_s": "decode tokens/s (batch 1)"},
                 title=f"{MODEL}: speed against energy per token")
fig"""),
    ("md", """FlightLLM's paper reports about 55 tokens/s at about 45 W for LLaMA-2-7B decode on the Alveo
U280 (Figure 1, **[paper]**, see `docs/reference-results.md`). The model's number for the
U280 at the closest precision is printed below when the FPGA family is installed."""),
    ("code", """u280 = ran[ran["hardware"] == "u280"]
print(u280[["hardware", "precision", "decode_tok_s", "power_w", "note"]].round(1).to_string(index=False))
print("paper: about 55 tok/s at about 45 W")"""),
    ("code", """# where the time goes on the fastest low-bit configuration: the roofline of every operator
from interfaces.reports import build_report

fastest = ran[ran["precision"] != "bf16"].sort_values("decode_tok_s").iloc[-1]
pred = genz.predict(MODEL, fastest["hardware"], batch=1, prompt=128, output=512, precision=fastest["precision"])
report = build_report("predict", {"prediction": pred.to_dict()})
print(report.title, *report.notes, sep="\\n")
report.sections[0].figure"""),
    ("md", """## Conclusion

Stated from this run's numbers: the fastest device at each precision, what each LUT variant gains over
its own base GPU (little in batch-1 decode, which every device does at memory bandwidth; more in a
compute-bound batch-64 prefill at low bit widths), and where the FPGA stands on speed and energy. None of the FPGA or LUT figures has a
measured error band (their basis is the paper's model); the GPUs' profiles say what they rest on."""),
    ("code", """speed = ran.pivot_table(index="precision", columns="hardware", values="decode_tok_s").reindex(PRECISIONS)
prefill = ran.pivot_table(index="precision", columns="hardware", values="prefill_tok_s_b64").reindex(PRECISIONS)
for prec in PRECISIONS:
    row = speed.loc[prec].dropna()
    top = ", ".join(row[row >= 0.995 * row.max()].sort_values(ascending=False).index)  # within 0.5 %: a tie
    print(f"{prec:>8}: fastest {top} at {row.max():.0f} tok/s")
low = [p for p in PRECISIONS if p in ("w2a8", "1.58-bit")]
for lut in families["LUT Tensor Core"]:
    base = load_device(lut).base.name  # the GPU the LUT variant is built on
    gains = ", ".join(f"{p} {speed.loc[p, lut] / speed.loc[p, base] - 1:+.1%}" for p in low)
    pre = ", ".join(f"{p} {prefill.loc[p, lut] / prefill.loc[p, base] - 1:+.0%}" for p in low)
    print(f"{lut} over {base}: decode {gains}; prefill (64 x 1024) {pre}")
energy = ran.loc[ran.groupby("family")["j_per_token"].idxmin()]
for _, r in energy.iterrows():
    print(f"least energy per token, {r['family']}: {r['hardware']} {r['precision']} {r['j_per_token']:.2f} J "
          f"({r['decode_tok_s']:.0f} tok/s at {r['power_w']:.0f} W)")
best_u280 = u280["decode_tok_s"].max()
print(f"U280 model at its best precision: {best_u280:.0f} tok/s against the paper's about 55 "
      f"({best_u280 / 55 - 1:+.0%}); the model's FPGAs are slower per sequence than either GPU and, at "
      f"batch 1, {'use less' if energy.set_index('family').loc['FPGA (FlightLLM)', 'j_per_token'] < energy.set_index('family').loc['GPU', 'j_per_token'] else 'do not use less'} energy per token than the best GPU row.")"""),
]

PLACEMENT = [
    ("md", """# MoE expert placement, end to end

Tokens of a mixture-of-experts model hop between GPUs when consecutive layers send them to experts
on different devices. ExFlow (IPDPS'24) places experts so that frequent layer-to-layer expert pairs
share a GPU, by integer programming over a routing trace. This notebook: routing trace -> placement
problem -> baselines and ILP -> how many token copies still cross devices -> what that does to a
serving step of Mixtral-8x7B across nodes (the engine's all-to-all moves each placement's
intra-node and inter-node copies over their own links)."""),
    ("code", """import numpy as np
import pandas as pd

from optimizers.placement.baselines import greedy, local_search, round_robin
from optimizers.placement.ilp import solve_ilp
from optimizers.placement.problem import Cluster, PlacementProblem
from workloads.routing import synthetic_routing

# a synthetic trace with inter-layer affinity (shipped generator; a real trace is a .npy or CSV file)
LAYERS, EXPERTS, TOP_K = 4, 8, 2  # 4 of Mixtral's 32 MoE layers keep the ILP small for this demo
trace = synthetic_routing(tokens=1000, layers=LAYERS, experts=EXPERTS, top_k=TOP_K, affinity=0.7, seed=0)
trace.expert_ids.shape"""),
    ("code", """cluster = Cluster(nodes=2, gpus_per_node=2)  # 4 GPUs, 2 experts of each layer per GPU
problem = PlacementProblem.from_trace(trace)
methods = {"round_robin": round_robin(LAYERS, EXPERTS, cluster), "greedy": greedy(problem, cluster)}
methods["local_search"] = local_search(problem, cluster)
methods["ilp"] = solve_ilp(problem, cluster, solver="highs", time_limit_s=3.0, warm_start=methods["local_search"])
print(f"ILP: {methods['ilp'].status}, objective {methods['ilp'].objective:.3f}, bound {methods['ilp'].best_bound:.3f}")
summary = pd.DataFrame({name: {"hop cost per token": problem.hop_cost(getattr(m, "placement", m).gpu_of, cluster)}
                        for name, m in methods.items()}).T
summary"""),
    ("code", """from interfaces.reports import build_report
from interfaces.reports.formats import placement_payload

payload = placement_payload(problem, cluster, methods, baseline="round_robin",
                            model=f"mixtral-like, {LAYERS} MoE layers")
report = build_report("placement", payload)
print(report.numbers)
report.sections[1].figure"""),
    ("md", """## From placement to step time

The token copies that leave their home GPU (the GPU of the previous layer's top expert) are what
the all-to-all moves: those that stay in the node go over NVLink, those that leave it over the
network, each at its own bandwidth. The engine takes them, with the busiest GPU's load, as an
`EPTraffic` (`genz/ep_traffic.py`; `genz simulate --placement` does the same from a `genz place`
file), one all-to-all per layer as in ExFlow."""),
    ("code", """from genz.ep_traffic import traffic_from_placement
from genz.stepcost import EngineStepCost
from optimizers.placement.report import evaluate_placement


def traffic(name, placement):
    # the placement's hops per token and layer and its load imbalance, as genz place reports them
    metrics = evaluate_placement(placement, trace, method=name).to_dict()
    return traffic_from_placement({"cluster": placement.cluster.to_dict(), "methods": {name: metrics}}, name)


rows = []
for name, m in methods.items():
    # Mixtral-8x7B, expert parallel over the 4 H100s of the cluster above (2 nodes of 2, 2 experts
    # per GPU): one continuous-batching iteration
    tr = traffic(name, getattr(m, "placement", m))
    cost = EngineStepCost("mixtral-8x7b", "h100", ep=cluster.gpus, ep_traffic=tr)
    t, e = cost.step(((512, 0),) * 8, (1024,) * 64)
    rows.append({"placement": name, "intra_node_copies": tr.intra_node_copies,
                 "inter_node_copies": tr.inter_node_copies, "imbalance": tr.load_imbalance,
                 "step_ms": 1e3 * t, "step_j": e})
steps = pd.DataFrame(rows).set_index("placement")
steps.round(3)"""),
    ("md", """## Conclusion

Stated from this run's numbers: how much traffic the best placement keeps on the token's GPU, and
what that is worth in one serving step. The step moves less than the hop cost because the
all-to-all is only part of the step (attention and the expert GEMMs do not change)."""),
    ("code", """base, best = steps.loc["round_robin"], steps.loc[steps["step_ms"].idxmin()]
hop = summary["hop cost per token"]
print(f"Best placement: {steps['step_ms'].idxmin()} (ILP {methods['ilp'].status}). Hop cost per token "
      f"{hop.min():.3f} against round robin's {hop['round_robin']:.3f} ({1 - hop.min() / hop['round_robin']:.0%} less); "
      f"copies leaving the node {best['inter_node_copies']:.2f} per token and layer instead of "
      f"{base['inter_node_copies']:.2f}.")
print(f"Mixtral-8x7B step on 4 H100s in 2 nodes: {best['step_ms']:.2f} ms against {base['step_ms']:.2f} ms "
      f"({1 - best['step_ms'] / base['step_ms']:.1%} faster), {best['step_j']:.1f} J against {base['step_j']:.1f} J.")"""),
]

VALIDATION = [
    ("md", """# Validation against real H200 measurements

`validation/data/h200-2026-11-28` holds kernels (GEMM, attention, memory copies) and whole-decoder
forward passes measured on one H200 (see its README). Every row is predicted with the engine and the
shipped H200 calibration profile, then drawn against what was measured. The profile was fitted on
part of these rows, so the rows the fit did not see are the honest test; the run-to-run noise of the
measurements (about 1 % for decode graphs) is the floor no model can beat."""),
    ("code", """from interfaces.reports import build_report, validation_payload
from validation.dataset import load_dataset
from validation.report import validate

DATASET = "h200-2026-11-28"
ds = load_dataset(DATASET)
print(ds.device_name, ds.runs, {k: len(getattr(ds, k)) for k in ("gemm", "attention", "e2e")})"""),
    ("code", """result = validate(DATASET)  # the shipped calibration profile of the dataset's GPU
payload = validation_payload(result)
print(f"{len(result.rows)} rows with profile {result.profile}; {int((~result.rows['seen_by_fit']).sum())} unseen by the fit")"""),
    ("code", """report = build_report("validate", payload)
for label, value in report.numbers:
    print(f"{label:>28}: {value}")
report.sections[0].figure"""),
    ("code", """# error per group (file, phase, model, dtype, timing), and the goals when validation.report set them
goals = report.tables[0][1]
goals"""),
    ("code", """# rows the calibration did not see
rows = payload["rows"]
unseen = rows[~rows["seen_by_fit"].astype(bool)]
print(build_report("validate", {"rows": unseen}).numbers[:3])
unseen_errors = unseen.groupby(["file", "model", "phase"])["err_time_pct"].describe()
unseen_errors = unseen_errors[["count", "mean", "50%", "max"]].round(1)
unseen_errors"""),
    ("code", """# the same result as a results file and a self-contained page, as `genz report validate` writes it
import tempfile
from pathlib import Path

from interfaces.reports import load_results, write_result
from interfaces.reports.html import write_html

with tempfile.TemporaryDirectory() as d:
    path = write_result("validate", payload, Path(d) / "validation.json")
    page = write_html(build_report(*load_results(path)), Path(d) / "validation.html", source=path.name,
                      shared_plotlyjs=True)  # `genz report --shared-plotlyjs`: one plotly.min.js for all pages
    print(page.name, f"{page.stat().st_size / 1e6:.2f} MB beside plotly.min.js "
          f"{(page.parent / 'plotly.min.js').stat().st_size / 1e6:.1f} MB")"""),
    ("md", """## Conclusion

Stated from this run's numbers: the error on every row, on the rows the fit did not see (the honest
figure), the goals, and the worst group a user should distrust."""),
    ("code", """allrows, held = dict(report.numbers), dict(build_report("validate", {"rows": unseen}).numbers)
worst = unseen_errors.sort_values("mean").iloc[-1]
print(f"{allrows['rows']} rows: mean absolute error {allrows['mean absolute error']} "
      f"(within 10 %: {allrows['within 10 %']}); goals met: {int(goals['passed'].sum())} of {len(goals)}.")
print(f"{held['rows']} rows unseen by the fit: mean absolute error {held['mean absolute error']}, "
      f"median {held['median absolute error']}.")
print(f"Worst unseen group: {' '.join(map(str, unseen_errors['mean'].idxmax()))}, mean {worst['mean']:.1f} % "
      f"over {int(worst['count'])} rows (max {worst['max']:.1f} %): the figure to quote for that kind of run.")"""),
]

NOTEBOOKS = {
    "01-capacity-planning-chat.ipynb": CAPACITY,
    "02-gpu-fpga-lut-low-bit.ipynb": LOWBIT,
    "03-moe-expert-placement.ipynb": PLACEMENT,
    "04-validation-h200.ipynb": VALIDATION,
}


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same files
        cell.id = f"cell-{i:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
