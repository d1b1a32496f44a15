"""``buckbi sweep``: where a controller works over its operating range, NN against teacher, on Dask."""
from .grid import GridError, grid_points, parse_grid, point_key, random_points
from .report import sweep_png, write_sweep_report
from .run import SCHEDULER_ENV, dask_client, open_client, read_results, run_point, run_sweep

__all__ = ["GridError", "grid_points", "parse_grid", "point_key", "random_points", "sweep_png", "write_sweep_report",
           "SCHEDULER_ENV", "dask_client", "open_client", "read_results", "run_point", "run_sweep"]
