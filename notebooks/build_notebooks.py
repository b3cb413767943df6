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

import genz
from genz.sweep import sweep
from hwmodels.registry import load_device
from interfaces.reports import build_report
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
best = ok.sort_values("req_per_s_per_device", ascending=False).groupby("hardware").head(1).set_index("hardware")
best[["tp", "batch", "ttft_s", "tpot_s", "req_per_s", "devices"]]"""),
    ("code", """# the same sweep as a report: heatmap (pick a group in its menu) and throughput-latency Pareto front
report = build_report("sweep", {"rows": df})
report.sections[1].figure"""),
    ("md", """The sweep runs each batch as one group that arrives together; real traffic arrives one
request at a time and waits in a queue. The serving simulation checks the pick under that load."""),
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
    s = run(hw, b["tp"], cap).summary
    rows.append({"hardware": hw, "tp": int(b["tp"]), "devices": int(b["devices"]), "capacity_rps": cap,
                 "ttft_p99_s": s.ttft_s.p99, "tpot_p99_s": s.tpot_s.p99,
                 "replica_power_w": s.energy_j / s.duration_s, "j_per_output_token": s.energy_per_output_token_j})
replica = pd.DataFrame(rows).set_index("hardware")
replica"""),
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
    ("code", """from optimizers.capacity import (SimulationSettings, hardware_catalog, make_candidates, parse_demand,
                                 plan_capacity)

plan12 = plan_capacity(parse_demand(f"chatbot={forecast['peak_rps'].iloc[-1]}"),
                       make_candidates(CANDIDATES, tp=[2], disaggregated=False), hardware_catalog(CANDIDATES),
                       settings=SimulationSettings(MODEL, precision=PRECISION, num_requests=80, confirm_requests=150))
print(*plan12.summary_lines(), sep="\\n")"""),
    ("code", """plan_report = build_report("plan", plan12.to_payload())
plan_report.sections[0].figure"""),
    ("md", """## Conclusion

Both answers rest on each GPU's profile: the H200's is measured, the H100's is transferred from it
(no GPU runs at its ideal datasheet roofline, which used to make the H100 look faster than the H200),
and a GPU without the precision's dtype (the A100 has no fp8) drops out of the sweep with the reason.
The cell below states the result from this run's numbers."""),
    ("code", """bases = {hw: load_device(hw).profile.basis for hw in replica.index}
print(f"profiles: {bases}; skipped: {sorted({s[1] for s in res.skipped})}")
print(f"per-replica method, month 12: {cheapest['hardware']} with {int(cheapest['devices'])} devices "
      f"at ${cheapest['usd_per_month']:,.0f}/month")
print("capacity planner, month 12:", plan12.summary_lines()[0])"""),
]

LOWBIT = [
    ("md", """# GPU versus FPGA versus LUT Tensor Core for a low-bit model

Weight-only quantization makes decode cheaper on every device, but not equally: a GPU dequantizes
to its tensor-core width, FlightLLM (FPGA'24) streams low-bit weights through DSP chains, and the
LUT Tensor Core (ISCA'25) multiplies by table lookup per weight bit. Here LLaMA-2-7B decodes one
sequence (FlightLLM's setting: batch 1, 128 prompt tokens, 512 generated) at several precisions on
each family that is installed."""),
    ("code", """import pandas as pd
import plotly.express as px

import genz
from hwmodels.registry import load_device
from hwmodels.spec import list_gpus

MODEL = "llama-2-7b"
PRECISIONS = ["bf16", "int8", "w4a8", "w2a8", "1.58-bit"]


from hwmodels.registry import families as device_families

fam = device_families()
families = {"GPU": [g for g in ("a100-80gb-sxm", "h100-sxm") if g in list_gpus()],
            "FPGA (FlightLLM)": sorted({load_device(n).name for n in fam["flightllm"].names()}),
            "LUT Tensor Core": sorted({load_device(n).name for n in fam["luttc"].names()})}
print(families)"""),
    ("code", """rows = []
for family, names in families.items():
    for hw in names:
        for prec in PRECISIONS:
            try:
                p = genz.predict(MODEL, hw, batch=1, prompt=128, output=512, precision=prec)
            except ValueError as exc:  # a device that cannot run this precision says why
                rows.append({"family": family, "hardware": hw, "precision": prec, "note": str(exc)[:90]})
                continue
            # batch-1 decode is memory-bound (LUT variants differ little there); a 64 x 1024 prefill is
            # compute-bound, where the LUT tiles' throughput shows
            big = genz.predict(MODEL, hw, batch=64, prompt=1024, output=128, precision=prec)
            rows.append({"family": family, "hardware": hw, "precision": prec, "decode_tok_s": p.decode_tok_s,
                         "prefill_tok_s_b64": 64 * 1024 / big.ttft_s, "j_per_token": p.energy_per_token_j,
                         "power_w": p.power_w, "fits": p.fits, "note": ""})
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
    ("code", """u280 = ran[ran["hardware"].str.contains("u280")]
print(u280[["hardware", "precision", "decode_tok_s", "power_w"]].round(1).to_string(index=False))
print("paper: about 55 tok/s at about 45 W")"""),
    ("code", """# where the time goes on the fastest low-bit configuration: the roofline of every operator
from interfaces.reports import build_report

fastest = ran[ran["precision"] != "bf16"].sort_values("decode_tok_s").iloc[-1]
pred = genz.predict(MODEL, fastest["hardware"], batch=1, prompt=128, output=512, precision=fastest["precision"])
report = build_report("predict", {"prediction": pred.to_dict()})
print(report.title, *report.notes, sep="\\n")
report.sections[0].figure"""),
    ("md", """## Conclusion

The cell below states this run's answer from the table: the fastest decode, the least energy per
token, and where the LUT Tensor Core variants (on the 80 GB A100 and the H100) pull ahead of their
base GPU: in compute-bound prefill at low bit widths, not in batch-1 decode, which all of them do at
memory bandwidth."""),
    ("code", """lowbit = ran[ran["precision"].isin(["w2a8", "1.58-bit"])]
f, e = ran.loc[ran["decode_tok_s"].idxmax()], ran.loc[ran["j_per_token"].idxmin()]
print(f"fastest decode: {f['hardware']} {f['precision']} at {f['decode_tok_s']:.0f} tok/s; least energy: "
      f"{e['hardware']} {e['precision']} at {e['j_per_token']:.3f} J/token")
pre = lowbit.pivot_table(index="hardware", columns="precision", values="prefill_tok_s_b64")
print("prefill tok/s at batch 64 x 1024 (low bit):")
print(pre.round(0).to_string())"""),
]

PLACEMENT = [
    ("md", """# MoE expert placement, end to end

Tokens of a mixture-of-experts model hop between GPUs when consecutive layers send them to experts
on different devices. ExFlow (IPDPS'24) places experts so that frequent layer-to-layer expert pairs
share a GPU, by integer programming over a routing trace. This notebook: routing trace -> placement
problem -> baselines and ILP -> how many token copies still cross devices -> what that does to a
serving step of Mixtral-8x7B across nodes (the engine's all-to-all takes the remote fraction)."""),
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
methods = {"round_robin": round_robin(LAYERS, EXPERTS, cluster), "greedy": greedy(problem, cluster),
           "local_search": local_search(problem, cluster)}
methods["ilp"] = solve_ilp(problem, cluster, solver="highs", time_limit_s=3.0, warm_start=methods["local_search"])
summary = pd.DataFrame({name: {"hop cost per token": problem.hop_cost(getattr(m, "placement", m).gpu_of, cluster)}
                        for name, m in methods.items()}).T
summary"""),
    ("code", """from interfaces.reports import build_report
from interfaces.reports.formats import placement_payload

payload = placement_payload(problem, cluster, methods, baseline="round_robin", model=f"mixtral-like, {LAYERS} MoE layers")
report = build_report("placement", payload)
print(report.numbers)
report.sections[1].figure"""),
    ("md", """## From placement to step time

The share of dispatched token copies whose expert is not on the token's home GPU (the GPU of its
previous layer's top expert) is what the all-to-all has to move. The engine takes it as
`ep_remote_fraction`; round robin on uniform traffic moves (G - 1) / G of them."""),
    ("code", """def remote_fraction(gpu_of, ids):
    home = gpu_of[np.arange(LAYERS - 1)[None, :], ids[:, :-1, 0]]   # (tokens, layers-1)
    dest = gpu_of[np.arange(1, LAYERS)[None, :, None], ids[:, 1:, :]]  # (tokens, layers-1, k)
    return float((dest != home[:, :, None]).mean())


from genz.stepcost import EngineStepCost

fractions = {name: remote_fraction(getattr(m, "placement", m).gpu_of, trace.expert_ids) for name, m in methods.items()}
rows = []
for name, f in fractions.items():
    # Mixtral-8x7B, expert parallel over 8 H100s in 4 nodes of 2: one continuous-batching iteration
    cost = EngineStepCost("mixtral-8x7b", "h100", ep=8, gpus_per_node=2, ep_remote_fraction=f)
    t, e = cost.step(((512, 0),) * 8, (1024,) * 64)
    rows.append({"placement": name, "remote_fraction": f, "step_ms": 1e3 * t, "step_j": e})
steps = pd.DataFrame(rows).set_index("placement")
steps.round(3)"""),
    ("md", """## Conclusion

The cell below states this run's result: the placement with the fewest cross-GPU hops and how much
shorter it makes one serving step than round robin (the all-to-all share of the step bounds the gain)."""),
    ("code", """base, best = steps.loc["round_robin", "step_ms"], steps["step_ms"].min()
hops = summary["hop cost per token"]
print(f"fewest hops: {hops.idxmin()} ({hops.min():.2f} vs round robin {hops['round_robin']:.2f} per token); "
      f"best step: {steps['step_ms'].idxmin()}, {best:.2f} ms vs round robin {base:.2f} ms "
      f"({(base - best) / base:.1%} faster)")"""),
]

VALIDATION = [
    ("md", """# Validation against real H200 measurements

`validation/data/h200-2026-11-28` holds kernels (GEMM, attention, memory copies) and whole-decoder
forward passes measured on one H200 (see its README). Every row is predicted with the engine and the
shipped H200 calibration profile, then drawn against what was measured. The profile was fitted on
part of these rows, so the rows the fit did not see are the honest test; the run-to-run noise of the
measurements (about 1 % for decode graphs) is the floor no model can beat."""),
    ("code", """import pandas as pd

import genz
from hwmodels.registry import load_device
from interfaces.reports import build_report, validation_payload
from validation.dataset import load_dataset
from workloads import Precision, load_model

DATASET = "h200-2026-11-28"
ds = load_dataset(DATASET)
print(ds.device_name, ds.runs, {k: len(getattr(ds, k)) for k in ("gemm", "attention", "e2e")})"""),
    ("code", """from validation.report import validate

result = validate(DATASET)  # the shipped calibration profile of the dataset's GPU
payload = validation_payload(result)
print(f"{len(result.rows)} rows with profile {result.profile}; {int((~result.rows['seen_by_fit']).sum())} unseen by the fit")"""),
    ("code", """report = build_report("validate", payload)
for label, value in report.numbers:
    print(f"{label:>28}: {value}")
report.sections[0].figure"""),
    ("code", """# error per group (file, phase, model, dtype, timing) against the goals validation.report sets
report.tables[0][1]"""),
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

from interfaces.reports import report_file, write_result

with tempfile.TemporaryDirectory() as d:
    path = write_result("validate", payload, Path(d) / "validation.json")
    page = Path(d) / "validation.html"
    report_file(path, page)
    print(page.name, f"{page.stat().st_size / 1e6:.1f} MB")"""),
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
