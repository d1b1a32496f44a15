"""The closed-loop regulation check users want most: does the network control the buck, alone, with margin?

Runs the network under test (``--buckbi-netlist FILE``, else ``--buckbi-actor PATH``, else the reference's published
actor) in the deploy circuit on ``--buckbi-regulation-points`` held-out operating points, in each of
``--buckbi-regulation-scenarios`` (default start-up, load step and the loop gain ``fra``; ``linestep``, ``refstep``
too), and fails with a table of the points that miss the thresholds (``--buckbi-max-sse``, ``--buckbi-max-overshoot``,
``--buckbi-max-step-deviation``, ``--buckbi-max-recovery``; the loop gain's ``--buckbi-min-phase-margin`` 45 deg and
``--buckbi-min-gain-margin`` 6 dB), drawn from the ranges of ``--buckbi-converter FILE`` (the reference buck by
default). The transient scenarios run on ``--buckbi-simulator``; the loop gain is measured on
the fast engine (a netlist imported as its equal PyTorch model), where it takes seconds instead of minutes.
Example: ``pytest --pyargs buckbi.checks.test_regulation -m ltspice --buckbi-actor gym/actor_final.pth``.
"""
from __future__ import annotations

import pytest

from buckbi.converters.buck.scenarios import converter_settings
from buckbi.evaluation.evaluate import evaluate, held_out_points
from buckbi.nn.netlist_actor import NetlistActor
from buckbi.pytestplugin.fixtures import refuse_other_converter

pytestmark = pytest.mark.ltspice

FRA_ENGINE = "pwl"  # the loop gain's margins: fast injection on the exact piecewise-linear engine


def test_the_network_regulates_alone(pytestconfig, controller, regulation_thresholds, episode_simulator, tmp_path,
                                     regulation_scenario, converter):  # one item per --buckbi-regulation-scenarios entry
    scenario = regulation_scenario
    refuse_other_converter(pytestconfig, controller, converter)
    opt = pytestconfig.getoption
    points = held_out_points(opt("--buckbi-regulation-points"), opt("--buckbi-regulation-seed"),
                             opt("--buckbi-regulation-steps"), converter)
    network, simulator = controller, episode_simulator
    if scenario == "fra":
        simulator = FRA_ENGINE
        if isinstance(controller, NetlistActor):  # its equal PyTorch model (buckbi import), on the fast engine
            from buckbi.importers.subckt import import_network
            network = import_network(controller.path)
    table, _, _ = evaluate(network, points, tmp_path, simulator, jobs=2, scenario=scenario, teacher=False,
                           settings=converter_settings(converter, scenario))
    misses = regulation_thresholds.misses(table)
    assert misses.empty, (f"{len(misses)} of {len(table)} held-out points miss ({scenario}, thresholds: "
                          f"{regulation_thresholds.text(scenario)}):\n"
                          + misses.to_string(index=False, float_format="%.3g"))
