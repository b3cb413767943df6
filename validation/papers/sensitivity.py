"""How much the reproduced figures move when an assumed parameter changes.

Each entry changes one number the papers do not give (or give only for another board), recomputes
that paper's figures and reports the largest change of a model value and the worst error after
the change. ``sensitivity_report()`` prints the table.
"""

from __future__ import annotations

import dataclasses

from hwmodels.flightllm import FlightLLM, load_fpga_spec, load_mechanisms
from hwmodels.luttc import load_parts
from validation.papers import flightllm, luttc
from validation.papers.figures import Figure


def _fpga(board: str, mech=None, **changes) -> FlightLLM:
    return FlightLLM(dataclasses.replace(load_fpga_spec(board), **changes), None, mech)


def _parts(area: dict | None = None, energy: dict | None = None):
    p = load_parts()
    return dataclasses.replace(p, area={**p.area, **(area or {})}, energy={**p.energy, **(energy or {})})


def _cases():
    mech = load_mechanisms()
    p = load_parts()
    yield "FlightLLM", "U280 core_efficiency", "0.7", lambda: flightllm.figures(u280=_fpga("u280", core_efficiency=0.7))
    yield "FlightLLM", "U280 core_efficiency", "0.9", lambda: flightllm.figures(u280=_fpga("u280", core_efficiency=0.9))
    yield "FlightLLM", "VHK158 HBM bandwidth", "819.2 GiB/s (artifact reading)", lambda: flightllm.figures(
        vhk158=_fpga("vhk158", hbm_bandwidth=819.2 * 2**30))
    for v in (1.0, 4.0):
        m = dataclasses.replace(mech, sfu_flops_per_lane_cycle=v)
        yield "FlightLLM", "sfu_flops_per_lane_cycle", f"{v:g}", lambda m=m: flightllm.figures(
            u280=_fpga("u280", m), vhk158=_fpga("vhk158", m))
    m1 = dataclasses.replace(mech, kv_cache_reads=1)
    yield "FlightLLM", "kv_cache_reads", "1", lambda: flightllm.figures(u280=_fpga("u280", m1), vhk158=_fpga("vhk158", m1))
    for k, v in (("gemm_efficiency_a100", 0.48), ("gemm_efficiency_a100", 0.58), ("gemm_efficiency_h100", 0.34),
                 ("gemm_efficiency_h100", 0.44), ("attention_score_passes", 4), ("attention_score_passes", 8)):
        yield "LUT Tensor Core", k, f"{v:g}", lambda k=k, v=v: luttc.figures({k: v})
    yield "LUT Tensor Core", "part area reg_bit", "x1.5", lambda: luttc.figures(
        parts=_parts(area={"reg_bit": 1.5 * p.area["reg_bit"]}))
    yield "LUT Tensor Core", "part area mux_bit", "x1.5", lambda: luttc.figures(
        parts=_parts(area={"mux_bit": 1.5 * p.area["mux_bit"]}))
    yield "LUT Tensor Core", "part energy mux_bit and reg_bit", "x1.5", lambda: luttc.figures(
        parts=_parts(energy={"mux_bit": 1.5 * p.energy["mux_bit"], "reg_bit": 1.5 * p.energy["reg_bit"]}))


def sensitivity() -> list[dict]:
    """One row per changed assumption: largest change of a figure's model value (%), how many
    figures moved by more than 0.5 %, and the worst error against the paper after the change."""
    base: dict[str, dict[str, Figure]] = {
        "FlightLLM": {f.name: f for f in flightllm.figures()},
        "LUT Tensor Core": {f.name: f for f in luttc.figures()},
    }
    rows = []
    for paper, name, setting, run in _cases():
        figs = run()
        ref = base[paper]
        change = {f.name: 100.0 * (f.model_value / ref[f.name].model_value - 1.0) for f in figs}
        worst = max(figs, key=lambda f: abs(f.error_pct))
        top = max(change, key=lambda n: abs(change[n]))
        rows.append({"paper": paper, "assumption": name, "setting": setting,
                     "max_change_pct": change[top], "most_moved": top,
                     "figures_moved": sum(abs(c) > 0.5 for c in change.values()),
                     "worst_error_pct": worst.error_pct, "worst_figure": worst.name})
    return rows


def sensitivity_report() -> str:
    lines = [f"{'paper':<16} {'assumption':<34} {'setting':<30} {'max move':>9} {'moved':>6} "
             f"{'worst error':>12}  most moved figure"]
    for r in sensitivity():
        lines.append(f"{r['paper']:<16} {r['assumption']:<34} {r['setting']:<30} {r['max_change_pct']:>+8.1f}% "
                     f"{r['figures_moved']:>6} {r['worst_error_pct']:>+11.1f}%  {r['most_moved']}")
    return "\n".join(lines)
