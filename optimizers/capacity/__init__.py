"""Capacity planning: the cheapest (or lowest-power) deployment of a workload mix within its SLOs
and limits (budget, power, racks), chosen by a mixed-integer program over candidates whose
capacities come from the serving simulation, then confirmed by simulation.

>>> from optimizers.capacity import Limits, hardware_catalog, make_candidates, parse_demand, plan_capacity
>>> from optimizers.capacity import SimulationSettings
>>> demand = parse_demand("chatbot=4")
>>> cands = make_candidates(["h100"], tp=[1], disaggregated=False)
>>> plan = plan_capacity(demand, cands, hardware_catalog(["h100"]),
...                      settings=SimulationSettings("llama-3.2-1b", num_requests=60, confirm_requests=100))
>>> plan.solution.gpus, plan.confirmed
({'h100': 1}, True)
"""

from optimizers.capacity.capacities import CapacityTable, SimulationSettings, compute_capacities
from optimizers.capacity.inputs import (
    MODES,
    Candidate,
    Demand,
    HardwareOption,
    Limits,
    hardware_catalog,
    layout_candidate,
    make_candidates,
    parse_demand,
)
from optimizers.capacity.mip import OBJECTIVES, MipSolution, diagnose, solve_mip
from optimizers.capacity.plan import CapacityPlan, InfeasiblePlan, plan_capacity

__all__ = ["MODES", "OBJECTIVES", "Candidate", "CapacityPlan", "CapacityTable", "Demand", "HardwareOption",
           "InfeasiblePlan", "Limits", "MipSolution", "SimulationSettings", "compute_capacities", "diagnose",
           "hardware_catalog", "layout_candidate", "make_candidates", "parse_demand", "plan_capacity", "solve_mip"]
