"""``buckbi train``: behaviour-imitation training (resumes where it stopped)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import SIM_HELP, STEP_HELP, add_network_options, check_simulator


def add_parser(sub) -> None:
    from ..train.config import DEFAULT_SPICE_CHECK, TrainConfig
    d = TrainConfig()  # train's defaults are the config's
    t = sub.add_parser("train", help="behaviour-imitation training in SPICE (resumes where it stopped)",
                       description="Behaviour imitation of the Type-III teacher, as the seed notebook: per episode "
                       "export the actor, run a SPICE episode, fit 200 Adam epochs on its batch, log and plot.")
    t.add_argument("--workdir", default=str(d.workdir), help=f"training folder (default ./{d.workdir}, as the seed)")
    t.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start a new run from this network (buckbi checkpoint; a state dict with --arch; a module "
                        "or TorchScript file with --trust-pickle) instead of a seeded one")
    add_network_options(t)
    t.add_argument("--schedule", default=d.schedule, help=f"GYM:EPISODES,... (default {d.schedule})")
    t.add_argument("--gym", choices=("gym1", "gym2"), help="run every episode in this gym (overrides --schedule)")
    t.add_argument("--episodes", type=int, help="episodes to run now (default: to the end of the schedule)")
    t.add_argument("--steps", type=int, default=d.steps, help=f"control periods per episode (default {d.steps})")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"Adam epochs per update (default {d.epochs})")
    t.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    t.add_argument("--seed", type=int, help="makes parameter draws and initial weights reproducible")
    t.add_argument("--jobs", type=int, default=d.jobs,
                   help="simulate N episodes at once with the same actor and update on their joined batch; "
                        "--jobs 1 (default) is the seed's strictly sequential behaviour")
    t.add_argument("--start-episode", type=int, help="restart at episode N: log rows >= N are dropped (the seed's "
                   "train_loop(N, ...)); the actor is the latest (actor_final.pth)")
    t.add_argument("--fresh", action="store_true", help="start over; an earlier run is moved to previous-<time>/")
    t.add_argument("--max-failures", type=int, default=d.max_failures,
                   help=f"stop after this many failed episodes in a row (default {d.max_failures})")
    t.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds one episode may take (default {d.timeout:g})")
    t.add_argument("--quiet", action="store_true", help="no progress bar: one log line per episode")
    t.add_argument("--simulator", default=None, help=SIM_HELP)
    t.add_argument("--max-step", type=float, default=d.max_step, help=STEP_HELP)
    t.add_argument("--spice-check-every", type=int, default=None, metavar="N",
                   help="with --simulator pwl: every N-th episode also runs in ngspice with the same actor and "
                        "point, at a converged step (T/400); its deviation goes into log.csv and one beyond "
                        f"buckbi.pwl.agreement.SPICE_CHECK stops training (default {DEFAULT_SPICE_CHECK}; 0: off)")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train
    check_simulator(args.simulator)
    config = TrainConfig(workdir=Path(args.workdir), schedule=args.schedule, gym=args.gym, episodes=args.episodes,
                         steps=args.steps, epochs=args.epochs, lr=args.lr, seed=args.seed, jobs=args.jobs,
                         simulator=args.simulator, start_episode=args.start_episode, fresh=args.fresh,
                         max_failures=args.max_failures, timeout=args.timeout, progress=not args.quiet,
                         spice_check_every=args.spice_check_every, max_step=args.max_step,
                         init=Path(args.init) if args.init else None, arch=args.arch, trust_pickle=args.trust_pickle)
    if config.check_every:
        check_simulator(config.spice_simulator)
    log = train(config)
    ok = log[log["status"] == "ok"]
    last = f", last loss {ok['loss_actor'].iloc[-1]:.3e}" if len(ok) else ""
    print(f"{len(log)} episodes logged in {args.workdir}/log.csv{last}; "
          f"plots: {args.workdir}/loss_plot.html, {args.workdir}/episode_plot.html")
    return 0
