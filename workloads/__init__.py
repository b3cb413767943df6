"""What runs: model architectures, precisions, request traces and use cases.

Depends on nothing else in the project.
"""

from workloads.model import Model, list_models, load_model
from workloads.precision import COMPUTE_DTYPES, Precision, precision_names

__all__ = ["COMPUTE_DTYPES", "Model", "Precision", "list_models", "load_model", "precision_names"]
