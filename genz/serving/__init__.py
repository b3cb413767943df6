"""Discrete-event serving simulation (simpy): requests through replicas, schedulers and routers.

Entities (:mod:`~genz.serving.entities`), batching policies (:mod:`~genz.serving.schedulers`) and
iteration costs (:mod:`~genz.serving.cost`) are separate, as in Vidur; configs are dataclasses
(:mod:`~genz.serving.config`). The analytical engine plugs in as a :class:`StepCostModel`.

>>> from genz.serving import LinearStepCost, Scenario, ContinuousBatching, SLO, simulate
>>> from workloads.requests import PoissonArrivals, WorkloadSpec
>>> sc = Scenario(cost=LinearStepCost(), scheduler=ContinuousBatching(max_num_seqs=64), replicas=2,
...               workload=WorkloadSpec(200, PoissonArrivals(4.0), 512, 64), slo=SLO(0.5, 0.05), seed=1)
>>> r = simulate(sc)
>>> (r.summary.completed, r.summary.saturated)
(200, False)
"""

from genz.serving import policies  # noqa: E402,F401  (registers the policies beyond vLLM's)
from genz.serving.config import (
    ROUTERS,
    SLO,
    ContinuousBatching,
    Disaggregation,
    KVLink,
    MemoConfig,
    SaturationConfig,
    Scenario,
    StaticBatching,
)
from genz.serving.cost import (
    AllToAllCost,
    LinearAllToAll,
    LinearStepCost,
    MemoizedStepCost,
    StepCostModel,
    WithAllToAll,
)
from genz.serving.results import Percentiles, ServingResult, Summary
from genz.serving.schedulers import num_kv_blocks
from genz.serving.simulate import simulate, unloaded_tpot, unloaded_ttft

__all__ = ["ROUTERS", "SLO", "AllToAllCost", "ContinuousBatching", "Disaggregation", "KVLink", "LinearAllToAll",
           "LinearStepCost", "MemoConfig", "MemoizedStepCost", "Percentiles", "SaturationConfig", "Scenario",
           "ServingResult", "StaticBatching", "StepCostModel", "Summary", "WithAllToAll", "num_kv_blocks",
           "simulate", "unloaded_tpot", "unloaded_ttft"]
