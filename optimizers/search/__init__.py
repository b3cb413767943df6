"""Knob search over the serving simulation: grid, random, TPE and NSGA-II (Optuna), in parallel
locally or on a Ray cluster, always reported against a baseline.

>>> from optimizers.search import SearchSpace, ServingObjective, search
>>> space = SearchSpace(max_num_seqs=(16, 64, 256), hardware=("h100",))
>>> objective = ServingObjective("llama-3.2-1b", use_case="chatbot", num_requests=40)
>>> result = search(space, objective, sampler="grid")
>>> result.best["params"]["max_num_seqs"] in (64, 256)
True
"""

from optimizers.search.objective import (
           METRICS,
           Metric,
           ServingObjective,
           check_prices,
           metric_value,
           register_metric,
)
from optimizers.search.parallel import make_executor
from optimizers.search.space import KNOBS, VLLM_DEFAULTS, SearchSpace, canonical, config_problem
from optimizers.search.study import SAMPLERS, SearchResult, pareto_front, search

__all__ = ["KNOBS", "METRICS", "SAMPLERS", "VLLM_DEFAULTS", "Metric", "SearchResult", "SearchSpace",
           "ServingObjective", "canonical", "check_prices", "config_problem", "make_executor",
           "metric_value", "pareto_front", "register_metric", "search"]
