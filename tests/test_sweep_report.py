"""The sweep report's aggregation, without a simulator: the worst case over the axes not shown."""
from __future__ import annotations

import numpy as np
import pandas as pd

from buckbi.sweep.report import choose_axes, worst_case


def test_worst_case_takes_the_largest_over_the_other_axes_and_failures_as_inf():
    table = pd.DataFrame({
        "vin": [150, 150, 150, 250, 250, 250],
        "vref": [50, 50, 100, 50, 50, 100],
        "ro": [5, 80, 5, 5, 80, 5],
        "nn_sse_%": [0.2, 0.7, 0.4, 0.1, "x", 0.3],  # a failed run leaves no number
    })
    m = worst_case(table, "vin", "vref", "nn_sse_%")
    assert m.loc[50, 150] == 0.7 and m.loc[100, 150] == 0.4 and m.loc[100, 250] == 0.3
    assert np.isinf(m.loc[50, 250])
    assert choose_axes(table, None) == ("vin", "vref")
    assert choose_axes(table, "vref,ro") == ("vref", "ro")
