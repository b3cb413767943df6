"""What to choose: MoE expert placement (ILP after ExFlow), serving-knob search and capacity plans.

Built on ``genz`` (the analytical engine and the serving simulation); see ``docs/optimizers.md``.
"""

from optimizers.capacity import (
           Demand,
           InfeasiblePlan,
           Limits,
           hardware_catalog,
           make_candidates,
           plan_capacity,
)
from optimizers.search import SearchSpace, ServingObjective

# ``optimizers.search.search`` runs a search; it is not re-exported here, where the name would
# shadow the ``optimizers.search`` subpackage.

__all__ = ["Demand", "InfeasiblePlan", "Limits", "SearchSpace", "ServingObjective", "hardware_catalog",
           "make_candidates", "plan_capacity"]
