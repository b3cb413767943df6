"""Published serving results replayed on the simulation: each module has a function returning a
pandas frame and a ``python -m`` entry point printing it.

* :mod:`validation.reproductions.splitwise`: co-located versus disaggregated (Splitwise) clusters
  of DGX-A100 and DGX-H100 at iso-cost and iso-power.
* :mod:`validation.reproductions.batching_gap`: static (HuggingFace pipelines) versus continuous
  (vLLM) batching on one GPU.
* :mod:`validation.reproductions.exflow_serving`: ExFlow's expert placements (round robin, greedy,
  ILP) served end to end, with the all-to-all share of step time that explains the difference.
"""
