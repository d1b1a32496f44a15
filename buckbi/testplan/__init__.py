"""Sign-off test plans: corners x scenarios x limits, NN beside the teacher (``buckbi testplan``, pytest items)."""
from .cells import run_cell
from .plan import DEFAULT, Corner, Limit, Plan, PlanError, Test, load_plan, parse_plan
from .report import cell_verdicts, results_table, write_plan_report
from .run import PlanCell, plan_cells, read_cells, run_plan

__all__ = ["DEFAULT", "Corner", "Limit", "Plan", "PlanError", "Test", "load_plan", "parse_plan", "run_cell",
           "run_plan", "plan_cells", "read_cells", "PlanCell", "results_table", "cell_verdicts", "write_plan_report"]
