"""Kimi K2 on 128 H200 with PD disaggregation and large EP (LMSYS blog, 2025-07-17), against
:mod:`genz.moe_cluster`: a deployment the model was not calibrated on (another model, another GPU).

    python -m validation.reproductions.kimi_k2_h200

Setups (``docs/layouts/kimi-k2-ome-128xh200.yaml``, read here; the published facts in
validation/published/moe/sglang_deepseek_v3.json ``follow_ups``), from the OME runtime the blog deploys
with (sgl-project/ome ``kimi-k2-pd-rt.yaml``):

* Model ``kimi-k2`` (HF config: DeepSeek-V3's architecture with 64 heads, 384 routed experts and one
  dense layer), FP8 weights as released, BF16 KV cache (assumption: SGLang's default ``auto``).
* Cluster: 16 nodes of 8 H200, modelled as DGX H200 (``hwmodels/data/clusters/dgx-h200``: NVLink 4 and
  one 400 Gb/s NIC per GPU; assumption, the blog names no NICs).
* Prefill pool: 4 nodes, DP32 attention, EP32 over DeepEP normal kernels, no redundant experts, TBO,
  16,384 tokens per GPU (``--chunked-prefill-size 524288`` over 32 ranks), 2,000-token inputs.
* Decode pool: 12 nodes, DP96 attention, EP96 over DeepEP low-latency kernels, 96 redundant experts,
  TBO, 480 requests per GPU (``--cuda-graph-bs 480``; the blog's "decode batch size 480") at KV length
  2,050 (2,000 input tokens and half of the 100 output tokens).
* Routing: uniform (EPLB was on; the model has no routing statistics of these runs).

Nothing here is fitted: the one calibrated number of the MoE cluster model (the overlap efficiency of
two-batch overlap) was solved on SGLang's DeepSeek-V3 decode ablation on H100
(:mod:`validation.reproductions.sglang_deepseek_v3`), and every other number comes from the data
files' own sources.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from genz.moe_cluster import PoolLayout, predict_cluster
from genz.moe_cluster.layout import load_layout
from genz.operators import build_table
from genz.runtime import load_runtime
from genz.shapes import prefill
from hwmodels.clusters import load_cluster
from hwmodels.registry import load_device
from validation.reproductions.common import describe_pool, format_rows
from workloads import Precision, load_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "validation" / "published" / "moe" / "sglang_deepseek_v3.json"
#: the deployment as a layout file users run with ``genz predict --layout`` (one copy of the setup)
LAYOUT = load_layout(ROOT / "docs" / "layouts" / "kimi-k2-ome-128xh200.yaml")
MODEL, CLUSTER, PRECISION = LAYOUT.model, LAYOUT.cluster, LAYOUT.precision
PREFILL, DECODE = LAYOUT.prefill, LAYOUT.decode
GPU_HOUR_USD = 2.3  # the blog's own price for its cost figure ("H200 $2.3 / hour")


def _published() -> dict:
    return {k: v["value"] for k, v in json.loads(DATA.read_text())["follow_ups"].items()}


def pool(p: PoolLayout):
    """The predicted pool (throughput, step, memory, time split) of ``p`` on the K2 cluster."""
    other = "decode" if p.role == "prefill" else "prefill"
    return predict_cluster(replace(LAYOUT, **{other: None}, **{p.role: p})).pools[p.role]


def prefill_roofline_per_gpu(context: int = 2000) -> float:
    """Input tokens/s one GPU could prefill at its dense FP8 peak with nothing else in the way: the
    model's FLOPs per token of a ``context``-token prompt over ``peak_flops['fp8']`` (an upper bound no
    real prefill reaches; attention runs in BF16 at half that rate)."""
    table = build_table(load_model(MODEL), prefill(1, context), Precision.parse(PRECISION), tp=1,
                        runtime=load_runtime("sglang"))
    flops_per_token = float(table.total_flops()[0]) / context
    gpu = load_device(load_cluster(CLUSTER).gpu)
    return gpu.spec.peak_flops["fp8"] / flops_per_token


def rows() -> list[tuple[str, float | None, float, str]]:
    """(figure, published, model, note) for every comparison."""
    pub = _published()
    gpn = load_cluster(CLUSTER).gpus_per_node
    d, p = pool(DECODE), pool(PREFILL)
    dec_gpu = d.tokens_per_s_per_node / gpn
    pre_gpu = p.tokens_per_s_per_node / gpn
    gpus = (DECODE.nodes + PREFILL.nodes) * gpn
    cost = gpus * GPU_HOUR_USD / (dec_gpu * DECODE.nodes * gpn * 3600) * 1e6
    return [
        ("decode, output tok/s per GPU (384k / 96)", pub["k2_decode_per_gpu"], dec_gpu,
         f"step {d.step_s * 1e3:.0f} ms at {DECODE.batch_per_gpu} req/GPU; {d.fit_message()}"),
        ("decode, cluster output tok/s", pub["k2_decode_cluster"], dec_gpu * DECODE.nodes * gpn,
         f"{DECODE.nodes} decode nodes"),
        ("cost per 1M output tokens, USD ($2.3/GPU-h)", pub["k2_cost_per_million_output"], cost,
         f"{gpus} GPUs over the decode throughput"),
        ("prefill, input tok/s per GPU (896k / 32)", pub["k2_prefill_per_gpu"], pre_gpu,
         "not comparable: see the FP8 roofline row"),
        ("prefill FP8 roofline, tok/s per GPU (bound)", None, prefill_roofline_per_gpu(),
         "peak FP8 FLOP/s over FLOPs per token at 2K"),
    ]


def breakdown() -> str:
    return "\n".join(describe_pool(layout.role, pool(layout)) for layout in (PREFILL, DECODE))


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    print(format_rows(rows()))
    print()
    print(breakdown())
    share = _published()["k2_prefill_per_gpu"] / prefill_roofline_per_gpu()
    print(f"\nThe 896k prefill figure is {share:.0%} of the FP8 roofline of the 32 prefill GPUs (attention in BF16 "
          "makes it tighter still), so it cannot be that pool's sustained throughput; the blog does not say how "
          "it was measured. It is shown, not scored.")


if __name__ == "__main__":
    main()
