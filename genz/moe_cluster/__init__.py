"""MoE models served on multi-node clusters: expert parallelism across nodes next to data-parallel
or tensor-parallel attention, redundant experts, hierarchical all-to-all on NVLink and RDMA,
two-batch overlap, and prefill/decode pools (PD disaggregation).

>>> from genz.moe_cluster import ClusterLayout, PoolLayout, predict_cluster
>>> lay = ClusterLayout("deepseek-v3", "dgx-h100", decode=PoolLayout("decode", nodes=9, ep=72,
...     redundant_experts=32, a2a="low_latency", batch_per_gpu=256, context=2000))
>>> p = predict_cluster(lay).pools["decode"]
>>> p.fits and p.tokens_per_s_per_node > 1000
True
"""

from genz.moe_cluster.comm import Comm, all_gather, all_reduce, ep_all_to_all
from genz.moe_cluster.layout import ClusterLayout, PoolLayout, layout_from_dict, load_layout
from genz.moe_cluster.memory import pool_memory
from genz.moe_cluster.predict import ClusterPrediction, PoolPrediction, predict_cluster
from genz.moe_cluster.routing import imbalance, place_experts, routing_probs

__all__ = ["ClusterLayout", "ClusterPrediction", "Comm", "PoolLayout", "PoolPrediction", "all_gather", "all_reduce",
           "ep_all_to_all", "imbalance", "layout_from_dict", "load_layout", "place_experts", "pool_memory",
           "predict_cluster", "routing_probs"]
