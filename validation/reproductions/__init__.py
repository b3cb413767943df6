"""Published serving results replayed on the simulation: each module has a function returning a
pandas frame and a ``python -m`` entry point printing it.

* :mod:`validation.reproductions.splitwise`: co-located versus disaggregated (Splitwise) clusters
  of DGX-A100 and DGX-H100 at iso-cost and iso-power.
* :mod:`validation.reproductions.batching_gap`: static (HuggingFace pipelines) versus continuous
  (vLLM) batching on one GPU.
"""
