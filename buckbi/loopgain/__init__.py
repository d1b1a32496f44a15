"""Loop gain of the closed loop by injection in series with the sensed output voltage (as LTspice's ``.fra``):
Bode data, crossover, phase and gain margin, the network beside the Type-III teacher, on ngspice or the fast
simulator."""
from .margins import Margins, margins
from .measure import (AMPLITUDE, SETTLE, FraError, FraPlan, FraResult, fourier, frequencies, measure, measure_on_dask, parse_point,
                      plan_for, settle_for)
from .report import margins_table, wide_table, write_fra_report

__all__ = ["AMPLITUDE", "SETTLE", "Margins", "margins", "FraError", "FraPlan", "FraResult", "fourier", "frequencies", "measure", "measure_on_dask", "margins_table", "wide_table", "write_fra_report",
           "parse_point", "plan_for", "settle_for"]
