"""Policies beyond vLLM's, registered by name: TensorRT-LLM-style guaranteed-no-evict admission never
preempts, where vLLM's optimistic admission does under memory pressure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from genz.serving import ContinuousBatching, LinearStepCost, Scenario, simulate
from genz.serving.policies.guaranteed_no_evict import GuaranteedNoEvict
from genz.serving.registry import SCHEDULERS
from genz.serving.scenario_file import resolve
from interfaces.cli import main
from workloads.requests import PoissonArrivals, WorkloadSpec

# 0.9 * 28,450 / 16 = 1,600 blocks of KV: about 12 sequences of 512 + 1,536 tokens over their whole lives
COST = LinearStepCost(kv_bytes_per_token=1.0, kv_capacity_bytes=28_450.0)
WL = WorkloadSpec(150, PoissonArrivals(20.0), 512, 1536)


@pytest.mark.parametrize("chunked", [True, False])
def test_no_evict_never_preempts_where_vllm_does(chunked):
    vllm = simulate(Scenario(cost=COST, scheduler=ContinuousBatching(chunked_prefill=chunked), workload=WL)).summary
    trt = simulate(Scenario(cost=COST, scheduler=GuaranteedNoEvict(chunked_prefill=chunked), workload=WL)).summary
    assert vllm.preemptions > 0 and trt.preemptions == 0
    assert trt.completed == vllm.completed == 150
    assert trt.output_tokens == vllm.output_tokens == 150 * 1536  # tokens in = tokens out
    assert trt.recomputed_tokens == 0 < vllm.recomputed_tokens


def test_registered_like_any_policy():
    assert "guaranteed_no_evict" in SCHEDULERS and SCHEDULERS["guaranteed_no_evict"].prefill_pool
    spec = resolve({"scheduler": {"kind": "guaranteed_no_evict", "max_num_seqs": 32}})
    assert spec["scheduler"]["kind"] == "guaranteed_no_evict" and spec["scheduler"]["max_num_seqs"] == 32
    r = CliRunner().invoke(main, ["simulate", "--help"])
    assert "guaranteed_no_evict" in r.output
    r = CliRunner().invoke(main, ["simulate", "--scheduler", "guaranteed_no_evict", "--requests", "20", "--json"])
    assert r.exit_code == 0, r.output
