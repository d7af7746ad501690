"""Model-based planning: CEM / random-shooting / MPPI over the true native env or PETS."""

from fugu.plan.mpc import MPC, PETSAgent, PlanningModel, StepReport, run_mpc
from fugu.plan.pets import PETSModel, ProbabilisticEnsemble
from fugu.plan.planners import CEM, MPPI, PLANNERS, Planner, RandomShooting, make_planner
from fugu.plan.true_model import TrueModel

__all__ = [
    "CEM",
    "MPC",
    "MPPI",
    "PLANNERS",
    "PETSAgent",
    "PETSModel",
    "Planner",
    "PlanningModel",
    "ProbabilisticEnsemble",
    "RandomShooting",
    "StepReport",
    "TrueModel",
    "make_planner",
    "run_mpc",
]
