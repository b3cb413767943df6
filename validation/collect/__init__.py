"""The collector: measures a dataset in the schema of ``validation/data/h200-2026-11-28`` on whatever
CUDA GPU PyTorch finds (``python -m validation.collect --out DIR``).

PyTorch is an optional dependency (``pip install 'genz-sim[collect]'``), imported only when measuring;
``--dry-run`` runs tiny shapes on the CPU so the pipeline can be tested without a GPU.
"""

from validation.collect.plan import Plan, dry_run_plan, full_plan, quick_plan, tiny_model
from validation.collect.runner import KINDS, collect, make_plan

__all__ = ["KINDS", "Plan", "collect", "dry_run_plan", "full_plan", "make_plan", "quick_plan", "tiny_model"]
