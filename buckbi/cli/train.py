"""``buckbi train``: behaviour-imitation training (resumes where it stopped)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import SIM_HELP, STEP_HELP, add_network_options, check_simulator


def add_parser(sub) -> None:
    from ..train.config import DEFAULT_SPICE_CHECK, TrainConfig
    from ..train.recipes import RECIPES
    d = TrainConfig()  # train's defaults are the config's
    seed = RECIPES["seed"]
    recipes = "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values())
    t = sub.add_parser("train", help="behaviour-imitation training of the network (resumes where it stopped)",
                       description="Behaviour imitation of the Type-III teacher: per batch export the actor, run "
                       "episodes, fit, log and plot. A recipe names what the episodes vary and how the learner fits "
                       f"them ({recipes}).")
    t.add_argument("--recipe", choices=tuple(RECIPES), default="signoff",
                   help="what to train with (default signoff: the recipe whose networks pass the default plan; "
                        "seed: the seed notebook's schedule, unchanged)")
    t.add_argument("--workdir", default=str(d.workdir), help=f"training folder (default ./{d.workdir}, as the seed)")
    t.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start a new run from this network (buckbi checkpoint; a state dict with --arch; a module "
                        "or TorchScript file with --trust-pickle) instead of a seeded one")
    add_network_options(t)
    t.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="recipe_set",
                   help="change one setting of the recipe, e.g. --set loop_gain_weight=0 --set excitation_mV=[0,50] "
                        "(the fields of buckbi.train.recipes.Recipe); the run records the changed recipe's name")
    t.add_argument("--schedule", default=None, help=f"GYM:EPISODES,... (default: the recipe's; seed's {seed.schedule}; "
                   "the signoff recipe draws its gyms itself)")
    t.add_argument("--gym", choices=("gym1", "gym2"), help="run every episode in this gym (overrides --schedule)")
    t.add_argument("--episodes", type=int, help="episodes to run now (default: to the end of the recipe)")
    t.add_argument("--steps", type=int, default=None,
                   help=f"control periods of a start-up episode (default: the recipe's, {seed.steps})")
    t.add_argument("--epochs", type=int, default=None,
                   help=f"Adam steps per update (default: the recipe's; seed {seed.epochs} full-batch epochs)")
    t.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default: the recipe's; seed {seed.lr:g})")
    t.add_argument("--seed", type=int, help="makes parameter draws and initial weights reproducible")
    t.add_argument("--jobs", type=int, default=None,
                   help="simulate N episodes at once with the same actor and update on their joined batch (default: "
                        "the recipe's; the seed's 1 is strictly sequential, signoff's 8)")
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
                        f"buckbi.pwl.agreement.SPICE_CHECK stops training (default: the recipe's, seed {DEFAULT_SPICE_CHECK}, "
                        "signoff 400; 0: off)")
    t.add_argument("--converter", default=None, metavar="FILE", help="the buck to train for, as a converter file "
                   "(TOML; 'buck-48v' and 'reference' name the shipped ones; default: the reference's): the recipe's "
                   "times, loads and box carried over to it, recorded in every checkpoint")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from ..train import TrainConfig, train
    if args.simulator is None and not os.environ.get("BUCKBI_SIMULATOR") and args.recipe != "seed":
        args.simulator = "pwl"  # a recipe of thousands of episodes trains on the fast engine, SPICE checking it
    check_simulator(args.simulator)
    from ..train.recipes import with_settings
    recipe = with_settings(args.recipe, args.recipe_set)
    config = TrainConfig(workdir=Path(args.workdir), recipe=recipe, schedule=args.schedule, gym=args.gym, episodes=args.episodes,
                         steps=args.steps, epochs=args.epochs, lr=args.lr, seed=args.seed, jobs=args.jobs,
                         simulator=args.simulator, start_episode=args.start_episode, fresh=args.fresh,
                         max_failures=args.max_failures, timeout=args.timeout, progress=not args.quiet,
                         spice_check_every=args.spice_check_every, max_step=args.max_step,
                         init=Path(args.init) if args.init else None, arch=args.arch, trust_pickle=args.trust_pickle,
                         converter=args.converter)
    if config.check_every:
        check_simulator(config.spice_simulator)
    log = train(config)
    ok = log[log["status"] == "ok"]
    last = f", last loss {ok['loss_actor'].iloc[-1]:.3e}" if len(ok) else ""
    where = f"{args.workdir}/restart-*/" if "restart" in log.columns else f"{args.workdir}/"
    print(f"{len(log)} episodes logged in {where}log.csv{last}; plots: {where}loss_plot.html, {where}episode_plot.html")
    selected = Path(args.workdir) / "actor_selected.pth"
    if selected.exists():
        from ..nn.checkpoint import load_checkpoint
        _, meta = load_checkpoint(selected)
        where = (Path(args.workdir) / "restarts.csv" if "run" in meta else Path(args.workdir) / "selection.csv")
        print(f"the recipe's network: {selected} ({meta.get('run', 'episode')}{' episode' if 'run' in meta else ''} "
              f"{meta['episode']}, score {meta['score']:.3f}: {meta.get('selected_by', 'the selection score')}; "
              f"{where})")
    return 0
