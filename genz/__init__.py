"""What it costs: operators -> per-step cost on a device, and the serving simulation.

>>> import genz
>>> p = genz.predict("llama-3-8b", "h200", batch=8, prompt=512, output=64)
>>> p.ttft_s < p.e2e_s
True
"""

from genz.operators import build_table
from genz.predict import Prediction, evaluate, predict, step_costs
from genz.runtime import list_runtimes, load_runtime
from genz.shapes import StepShape, decode, mixed, prefill

__all__ = ["Prediction", "StepShape", "build_table", "decode", "evaluate", "list_runtimes", "load_runtime",
           "mixed", "predict", "prefill", "step_costs"]
