"""SGLang's DeepSeek-V3 deployment on 12 nodes of 8 H100 (LMSYS blog, 2025-05-05), and DeepSeek's
own profiled configurations on H800, against :mod:`genz.moe_cluster`.

    python -m validation.reproductions.sglang_deepseek_v3

Setups (validation/published/moe/sglang_deepseek_v3.json, deepseek_v3_deployment.json; docs/moe-clusters.md):

* Prefill pool: 4 nodes, DP attention (DP32), dense FFN and LM head DP, EP32 over DeepEP normal
  kernels, 32 redundant experts, two-batch overlap, 16,384 tokens per GPU (= the command's
  ``--chunked-prefill-size 524288`` over 32 ranks; stated for the 4K row, assumed for 1K and 2K).
* Decode pool: 9 nodes, DP72 attention, EP72 over DeepEP low-latency kernels (pure RDMA, the
  version of May 2025), 32 redundant experts, TBO, 256 requests per GPU at KV length 2,000.
* FP8 weights (DeepSeek-V3-0324), BF16 KV cache (assumption: SGLang's default ``auto`` KV dtype);
  nodes modelled as DGX H100 (assumption: the blog names no NICs; ``hwmodels/data/clusters/dgx-h100``).
* Routing: uniform (perfect balance) unless said. The model has no routing statistics of SGLang's
  runs, so the default figures (in-distribution EPLB, with whatever imbalance was left) are compared
  with a perfectly balanced model: the model should come out above them by about the imbalance the
  blog measured (4K: 59,337 with simulated perfect EPLB vs 50,302, x1.18).
* TP16 baseline: 6 groups of 2 nodes, "TP size of 16 and DP attention" read as DP16 attention with
  TP16 MoE (SGLang ``--tp 16 --enable-dp-attention``; DP attention then handed tokens to the MoE by
  all-reducing a zero-filled global buffer and all-reduced the MoE output, ``dp_gather: all_reduce``,
  as ``sglang/srt/layers/dp_attention.py`` ``_dp_gather`` did before its all-gather mode) and as plain
  TP16, no TBO, with the largest
  batch that fits in ``--mem-fraction-static 0.835`` of the GPU (the EP deployment's fraction; the
  baseline's is not published).
* Ablations use the same model, changing one knob. The EPLB figure's setup and routing are not
  published, so EPLB is shown for Zipf skews 0.5 and 1.0 (assumptions, not fitted). The prefill TBO
  gain is compared at 8,192 tokens per GPU, where the blog's vanilla run still fits ("the same token
  count per device"; it runs out of memory at 16,384).

One number is fitted, and only one: the overlap efficiency of two-batch overlap
(:data:`genz.moe_cluster.layout.OVERLAP_EFFICIENCY`), solved so that the decode TBO gain at 256
requests per GPU is the published +25.5 % (``--calibrate`` re-derives it; its row says
"calibration"). Every other row is a figure the fit did not see. The cluster, device and kernel
numbers come from their own sources (see the data files).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from genz.moe_cluster import ClusterLayout, PoolLayout, pool_memory, predict_cluster
from genz.moe_cluster.layout import OVERLAP_EFFICIENCY
from hwmodels.clusters import load_cluster
from hwmodels.registry import load_device
from validation.reproductions.common import describe_pool, format_rows
from workloads import Precision, load_model

DATA = Path(__file__).resolve().parents[1] / "published" / "moe"
MEM_FRACTION = 0.835  # --mem-fraction-static of the decode command (sglang_deepseek_v3.json)

PREFILL = PoolLayout("prefill", nodes=4, ep=32, redundant_experts=32, a2a="normal", batch_per_gpu=16384, context=4096)
DECODE = PoolLayout("decode", nodes=9, ep=72, redundant_experts=32, a2a="low_latency", batch_per_gpu=256, context=2000)


def _published() -> dict:
    d = json.loads((DATA / "sglang_deepseek_v3.json").read_text())
    flat = {}
    for section in ("results", "comparison_deepseek", "ablations"):
        for k, v in d.get(section, {}).items():
            flat[k] = v["value"]
    return flat


def run(pool: PoolLayout, cluster: str = "dgx-h100", routing: dict | None = None) -> object:
    lay = ClusterLayout("deepseek-v3", cluster, precision="fp8", routing=routing or {"kind": "uniform"},
                        **{pool.role: pool})
    return predict_cluster(lay).pools[pool.role]


def tput(pool: PoolLayout, cluster: str = "dgx-h100", routing: dict | None = None) -> float:
    return run(pool, cluster, routing).tokens_per_s_per_node


def tbo_gain(pool: PoolLayout) -> float:
    """Throughput with two-batch overlap over without, less one."""
    return tput(pool) / tput(replace(pool, two_batch_overlap=False)) - 1


def calibrate_overlap(target: float | None = None) -> float:
    """The overlap efficiency at which the decode TBO gain at 256 requests per GPU is ``target``
    (default: the published +25.5 %), by bisection (the gain rises with the efficiency)."""
    target = _published()["tbo_decode_256_tokens"] if target is None else target
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tbo_gain(replace(DECODE, overlap_efficiency=mid)) < target else (lo, mid)
    return (lo + hi) / 2


def max_batch(pool: PoolLayout, cluster: str = "dgx-h100", fraction: float = MEM_FRACTION) -> int:
    """The largest ``batch_per_gpu`` whose memory fits in ``fraction`` of the GPU (0 if none)."""
    model, prec = load_model("deepseek-v3"), Precision.parse("fp8")
    c = load_cluster(cluster)
    cap = fraction * load_device(c.gpu).memory_bytes
    lo, hi = 0, 1 << 20
    while hi - lo > 1:
        mid = (lo + hi) // 2
        fits = pool_memory(model, prec, replace(pool, batch_per_gpu=mid), c.gpus_per_node)["total"] <= cap
        lo, hi = (mid, hi) if fits else (lo, mid)
    return lo


def rows() -> list[tuple[str, float | None, float, str]]:
    """(figure, published, model, note) for every comparison."""
    pub = _published()
    out = []
    for ctx, key in ((1024, "prefill_per_node_1k"), (2048, "prefill_per_node_2k"), (4096, "prefill_per_node_4k")):
        out.append((f"prefill {ctx // 1024}K, tok/s/node (default EPLB)", pub[key], tput(replace(PREFILL, context=ctx)),
                    "model perfectly balanced"))
    out.append(("prefill 4K, simulated perfect EPLB", pub["prefill_per_node_4k_perfect_eplb"], tput(PREFILL),
                "like for like"))
    out.append(("headline input, 2K (52.3k)", pub["headline_prefill_per_node"], tput(replace(PREFILL, context=2048)),
                "model perfectly balanced"))
    out.append(("decode 2K, 256 req/GPU, tok/s/node", pub["decode_per_node_2k"], tput(DECODE), ""))
    # DeepSeek's profiles on H800, perfectly balanced routing (profile-data README)
    out.append(("DeepSeek profile prefill, H800 EP32", pub["prefill_deepseek_profile"], tput(PREFILL, "h800-deepseek"),
                "balanced, like for like"))
    ds_dec = PoolLayout("decode", nodes=16, ep=128, a2a="low_latency", batch_per_gpu=128, context=4096)
    out.append(("DeepSeek profile decode, H800 EP128", pub["decode_deepseek_profile"], tput(ds_dec, "h800-deepseek"),
                "balanced; DeepSeek overlaps by its own 5-stage pipeline"))
    # two-batch overlap
    p8 = replace(PREFILL, batch_per_gpu=8192)
    out.append(("TBO gain, prefill 8K tok/GPU (+27..35 %)", 0.31, tbo_gain(p8), "published: range mid"))
    d_no = replace(DECODE, two_batch_overlap=False)
    out.append(("decode without TBO, 256 req/GPU (17,777)", pub["no_tbo_decode_256_tokens_throughput"], tput(d_no), ""))
    out.append(("TBO gain, decode 256 req/GPU", pub["tbo_decode_256_tokens"], tbo_gain(DECODE),
                "calibration (overlap efficiency)"))
    out.append(("TBO gain, decode 32 req/GPU", pub["tbo_decode_32_tokens"],
                tbo_gain(replace(DECODE, batch_per_gpu=32)), ""))
    for b in (64, 128):  # published: TBO pays off above a threshold between 64 and 128
        out.append((f"TBO gain, decode {b} req/GPU (break-even 64..128)", None,
                    tbo_gain(replace(DECODE, batch_per_gpu=b)), "published: only the threshold"))
    # EPLB (setup unpublished): Zipf skews as stated assumptions
    for s in (0.5, 1.0):
        r = {"kind": "zipf", "skew": s}
        for pool, key in ((PREFILL, "eplb_prefill"), (DECODE, "eplb_decode")):
            gain = tput(pool, routing=r) / tput(replace(pool, eplb=False), routing=r)
            out.append((f"EPLB speedup, {pool.role}, zipf skew {s}", pub[key], gain, "published setup unknown"))
    # EP versus TP16 (memory-limited batch)
    for name, atp in (("DP attention + TP16 MoE", 1), ("plain TP16", 16)):
        tp = PoolLayout("decode", nodes=2, ep=1, moe_tp=16, attention_tp=atp, two_batch_overlap=False,
                        batch_per_gpu=1, context=2000, dp_gather="all_reduce")
        b = max_batch(tp)
        ep_b = max_batch(DECODE)
        gain = tput(DECODE) / tput(replace(tp, batch_per_gpu=max(b, 1))) if b else float("inf")
        out.append((f"EP72 over TP16 decode ({name})", pub["gain_decode_vs_tp16"], gain,
                    f"batch/GPU fitting: TP16 {b}, EP72 {ep_b} (run at 256)"))
        tpp = replace(tp, role="prefill", batch_per_gpu=16384, context=4096)
        bp = max_batch(tpp)
        gain_p = tput(PREFILL) / tput(replace(tpp, batch_per_gpu=min(bp, 16384))) if bp else float("inf")
        out.append((f"EP32 over TP16 prefill 4K ({name})", pub["gain_prefill_vs_tp16"], gain_p,
                    f"published 'up to'; TP16 at {min(bp, 16384)} tok/GPU"))
    return out


def breakdown() -> str:
    return "\n".join(describe_pool(layout.role, run(layout)) for layout in (PREFILL, DECODE))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true",
                    help="solve the overlap efficiency on the decode TBO gain at 256 requests per GPU and print it")
    if ap.parse_args(argv).calibrate:
        eta = calibrate_overlap()
        print(f"overlap efficiency {eta:.3f} gives the published decode TBO gain of "
              f"{_published()['tbo_decode_256_tokens']:+.1%} at 256 requests per GPU "
              f"(shipped: genz.moe_cluster.layout.OVERLAP_EFFICIENCY = {OVERLAP_EFFICIENCY})")
        return
    print(format_rows(rows()))
    print()
    print(breakdown())


if __name__ == "__main__":
    main()
