"""One configuration, three doors: a scenario file, ``genz simulate`` flags and the search objective
(``genz tune``) build the same :class:`~genz.serving.Scenario` and get the same simulated result."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from genz.serving import simulate
from genz.serving.build import build_scenario
from genz.serving.scenario_file import load_scenario, merge, resolve
from interfaces.cli.serving_cmds import overrides_from_flags
from optimizers.search import ServingObjective

ROOT = Path(__file__).resolve().parent.parent
N, RATE = 60, 6.0

# (search-space configuration, scenario-file scheduler section, simulate flags)
CASES = {
    "continuous": ({"scheduler": "continuous", "max_num_seqs": 64, "max_num_batched_tokens": 4096,
                    "chunked_prefill": True, "block_size": 16, "gpu_memory_utilization": 0.9, "tp": 1, "pp": 1,
                    "ep": 1, "replicas": 2, "hardware": "h100", "batch_size": 1},
                   {"kind": "continuous", "max_num_seqs": 64, "max_num_batched_tokens": 4096},
                   {"max_num_seqs": 64, "max_num_batched_tokens": 4096}),
    "static": ({"scheduler": "static", "max_num_seqs": 256, "max_num_batched_tokens": 8192, "chunked_prefill": True,
                "block_size": 16, "gpu_memory_utilization": 0.9, "tp": 1, "pp": 1, "ep": 1, "replicas": 2,
                "hardware": "h100", "batch_size": 4},
               {"kind": "static", "batch_size": 4},
               {"scheduler": "static", "batch_size": 4}),
    "disaggregated": ({"scheduler": "continuous", "max_num_seqs": 128, "max_num_batched_tokens": 8192,
                       "chunked_prefill": True, "block_size": 16, "gpu_memory_utilization": 0.9, "tp": 1, "pp": 1,
                       "ep": 1, "replicas": 2, "hardware": "h100", "batch_size": 1, "prefill_replicas": 1,
                       "prefill_tp": 2},
                      {"kind": "continuous", "max_num_seqs": 128},
                      {"max_num_seqs": 128, "disaggregate": True, "prefill_replicas": 1, "prefill_tp": 2}),
}
FILE_COMMON = {"model": "llama-3-8b", "hardware": "h100", "replicas": 2, "router": "least_outstanding_tokens",
               "workload": {"use_case": "chatbot", "rate_per_s": RATE, "requests": N},
               "memo": {"prefill_bucket": 64, "context_bucket": 1024}, "saturation": {"min_arrivals": 20}}


def _fingerprint(sc) -> dict:
    c = sc.cost
    cost = {k: getattr(c, k) for k in ("model", "hardware", "precision", "tp", "pp", "ep", "runtime", "cuda_graphs",
                                       "max_batched_tokens", "price_per_hour_usd", "kv_capacity_bytes")}
    d = sc.disaggregation
    dis = None if d is None else {"replicas": d.prefill_replicas, "link": d.link, "scheduler": d.prefill_scheduler,
                                  "router": d.prefill_router, "max_batched_tokens": d.prefill_cost.max_batched_tokens,
                                  "tp": d.prefill_cost.tp, "hardware": d.prefill_cost.hardware}
    return {"cost": cost, "scheduler": sc.scheduler, "replicas": sc.replicas, "router": sc.router, "slo": sc.slo,
            "memo": sc.memo, "saturation": sc.saturation, "window_s": sc.window_s, "disaggregation": dis,
            "requests": [dataclasses.astuple(q) for q in sc.requests()]}


def _three(case, tmp_path):
    config, sched, flags = CASES[case]
    raw = FILE_COMMON | {"scheduler": sched}
    if config.get("prefill_replicas"):
        raw["disaggregation"] = {"prefill_replicas": 1, "tp": 2}
    f = tmp_path / "scenario.yaml"
    import yaml

    f.write_text(yaml.safe_dump(raw))
    from_file, _ = load_scenario(f)
    base = {k: FILE_COMMON[k] for k in ("memo", "saturation")}  # no flags for these: a small file holds them
    cli_flags = {"model": "llama-3-8b", "hardware": "h100", "replicas": 2, "router": "least_outstanding_tokens",
                 "use_case": "chatbot", "rate": RATE, "requests": N} | flags
    from_flags = build_scenario(resolve(merge(base, overrides_from_flags(cli_flags, base))))
    ob = ServingObjective(model="llama-3-8b", use_case="chatbot", rate_per_s=RATE, num_requests=N)
    from_search = ob.scenario(config, RATE)
    return from_file, from_flags, from_search, f


@pytest.mark.parametrize("case", list(CASES))
def test_same_scenario_through_every_door(case, tmp_path):
    a, b, c, _ = _three(case, tmp_path)
    fa, fb, fc = _fingerprint(a), _fingerprint(b), _fingerprint(c)
    assert fa == fb
    assert fa == fc


def test_the_settled_rules(tmp_path):
    # static: the activation reserve is a full batch of the longest prompt (4 x chatbot's prompt)
    a, _, c, _ = _three("static", tmp_path)
    longest = max(q.prompt_tokens for q in a.requests())
    assert a.cost.max_batched_tokens == c.cost.max_batched_tokens == 4 * longest
    # disaggregated: KV over the prefill GPU's scale-out NIC, one per GPU of the prefill replica (tp 2)
    a, _, c, _ = _three("disaggregated", tmp_path)
    from hwmodels.registry import load_device

    nic = load_device("h100").scale_out
    assert math.isclose(a.disaggregation.link.bandwidth_bytes_per_s, 2 * nic.bandwidth)
    assert a.disaggregation.link == c.disaggregation.link


@pytest.mark.parametrize("case", ["continuous", "disaggregated"])
def test_same_result_through_every_door(case, tmp_path):
    a, b, c, f = _three(case, tmp_path)
    ra, rb, rc = (simulate(x).summary for x in (a, b, c))
    assert dataclasses.asdict(ra) == dataclasses.asdict(rb) == dataclasses.asdict(rc)
    assert ra.completed == N
    # and the objective's metrics are that summary's
    ob = ServingObjective(model="llama-3-8b", use_case="chatbot", rate_per_s=RATE, num_requests=N)
    ev = ob.evaluate(CASES[case][0])
    assert ev["metrics"]["output_tokens_per_s"] == ra.output_tokens_per_s
    # the command line itself, end to end
    r = subprocess.run([sys.executable, "-m", "interfaces.cli", "simulate", "--scenario", str(f), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output_tokens_per_s"] == ra.output_tokens_per_s
