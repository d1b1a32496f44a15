"""buckbi's product checks, installed with it: run them in any project that has buckbi installed,

    pytest --pyargs buckbi.checks -m ltspice --buckbi-actor gym/actor_final.pth

``test_loop_checks``: the exported actor equals PyTorch in the closed loop, rows at the sampling edges, held inputs
constant between edges. ``test_regulation``: the network regulates the buck alone (start-up, load step) at held-out
points, within the thresholds (the plugin's --buckbi-max-* options).
"""
