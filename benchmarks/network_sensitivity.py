"""Where a network's integral action lives: at one operating point, for each checkpoint given, its duty on the periodic
orbit, the sensitivity of the duty to the five past duties (NNin11..15, with NNin18 = NNin11 - NNin12) and to the
accumulator NNin19, and the largest |eigenvalue| of its period map; optionally the accumulator over a long run.

    python benchmarks/network_sensitivity.py CKPT [CKPT ...] --point vin=48,vref=14.5,ro=2,Lo=1.58e-6
        [--converter FILE] [--longrun-ms 250]

A teacher-like network integrates through NNin19; one whose past-duty sensitivities sum to ~1 integrates through its
own output (an IIR form), with the period map's slow mode near +1.
"""
from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np


def sensitivities(actor, params) -> dict:
    """Duty, d duty / d past duties (summed), d duty / d NNin19 and the largest |eigenvalue| at the NN's orbit."""
    from buckbi.loopgain.pop import FixedOrbitLoopGain, _loop_states
    held = FixedOrbitLoopGain(actor, params)  # its orbit and the network's inputs held on it
    loop, orbit = held.loop, held.orbit
    J = held.jacobian(loop.actor).detach().numpy()
    keep = _loop_states(loop, orbit.jacobian)
    rho = float(np.max(np.abs(np.linalg.eigvals(orbit.jacobian[np.ix_(keep, keep)]))))
    # NNin18 = NNin11 - NNin12: its weight counts on the latest two duties with opposite signs (sums to 0)
    return {"duty": orbit.duty, "past_duties": float(J[10:15].sum()), "accumulator": float(J[18]), "rho": rho}


def main() -> int:
    from buckbi.converters.buck.design import load_converter
    from buckbi.nn.checkpoint import load_checkpoint
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--point", required=True, help="vin=V,vref=V,ro=OHM,Lo=H")
    ap.add_argument("--converter", default=None, metavar="FILE")
    ap.add_argument("--longrun-ms", type=float, default=0.0, help="also run the long run (deploy) and print NNin19")
    args = ap.parse_args()
    conv = load_converter(args.converter)
    point = {k: float(v) for k, v in (kv.split("=") for kv in args.point.split(","))}
    params = conv.params(**point, steps=2048)
    for path in args.checkpoints:
        actor, meta = load_checkpoint(path)
        try:
            s = sensitivities(actor, params)
            print(f"{path}: duty {s['duty']:.4f}, d duty/d past duties (sum) {s['past_duties']:+.3f}, "
                  f"d duty/d NNin19 {s['accumulator']:+.4f}, period map |eig| max {s['rho']:.4f}")
        except Exception as e:  # noqa: BLE001 - a network without an orbit there: say so, go on
            print(f"{path}: {type(e).__name__}: {e}")
        if args.longrun_ms:
            from buckbi.converters.buck.scenarios import scenario_params
            from buckbi.episodes.run import run_episode
            settings = {"soft_start_ms": conv.soft_start_ms, "duration_ms": args.longrun_ms}
            with tempfile.TemporaryDirectory() as tmp:
                ep = run_episode("deploy", actor, scenario_params(params, "longrun", settings), tmp, "pwl",
                                 scenario="longrun", settings=settings)
            acc, n = ep.x[:, 18], len(ep.x)
            at = ", ".join(f"{(k + 1) * args.longrun_ms / 4:g} ms {acc[(k + 1) * n // 4 - 1]:+.4f}" for k in range(4))
            print(f"  long run: NNin19 at {at}; Vout at the end {float(ep.rows['V(out)'].iloc[-1]):.4f} V "
                  f"(vref {params.vref:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
