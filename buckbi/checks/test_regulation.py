"""The closed-loop regulation check users want most: does the network control the buck, in SPICE, alone?

Runs the network under test (``--buckbi-netlist FILE``, else ``--buckbi-actor PATH``, else the reference's published actor) in
the deploy circuit on ``--buckbi-regulation-points`` held-out operating points, in each of ``--buckbi-regulation-scenarios``
(default start-up and load step; ``linestep`` too), and fails with a
table of the points that miss the thresholds (``--buckbi-max-sse``, ``--buckbi-max-overshoot``, ``--buckbi-max-step-deviation``,
``--buckbi-max-recovery``). Example: ``pytest --pyargs buckbi.checks.test_regulation -m ltspice --buckbi-actor gym/actor_final.pth``.
"""
from __future__ import annotations

import pytest

from buckbi.evaluate import evaluate, held_out_points

pytestmark = pytest.mark.ltspice


def test_the_network_regulates_alone(pytestconfig, controller, regulation_thresholds, episode_simulator, tmp_path,
                                     regulation_scenario):  # one item per --buckbi-regulation-scenarios entry
    scenario = regulation_scenario
    opt = pytestconfig.getoption
    points = held_out_points(opt("--buckbi-regulation-points"), opt("--buckbi-regulation-seed"), opt("--buckbi-regulation-steps"))
    table, _, _ = evaluate(controller, points, tmp_path, episode_simulator, jobs=2, scenario=scenario,
                          teacher=False)
    misses = regulation_thresholds.misses(table)
    assert misses.empty, (f"{len(misses)} of {len(table)} held-out points miss ({scenario}, thresholds "
                          f"{regulation_thresholds}):\n" + misses.to_string(index=False, float_format="%.3g"))
