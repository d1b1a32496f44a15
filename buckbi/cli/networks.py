"""``buckbi export`` (a checkpoint as a SPICE subcircuit) and ``buckbi import`` (a subcircuit as a checkpoint)."""
from __future__ import annotations

import argparse

from ..sim.names import ENV_VAR
from .common import add_network_options


def add_parser(sub) -> None:
    m = sub.add_parser("import", help="another exporter's subcircuit file as a buckbi checkpoint (PyTorch model)",
                       description="Reads a feed-forward network written as B sources (the reference's exporter: "
                       "linear units, IF() ReLU, sigmoid, tanh) and saves it as a checkpoint equal to the file.")
    m.add_argument("file", help="the .sp file with '.subckt ActorSubckt' (19 inputs, 1 output)")
    m.add_argument("--out", required=True, help="checkpoint to write (e.g. actor.pth)")
    m.add_argument("--converter", default=None, metavar="FILE", help="the buck the network was made for (a converter "
                   "file or a shipped name), recorded in the checkpoint so that every command checks it (default: the "
                   "reference buck, or the converter the netlist's header records)")
    m.add_argument("--allow-other-converter", action="store_true",
                   help="record --converter even where the netlist's header records another")
    m.set_defaults(func=run_import)

    e = sub.add_parser("export", help="export a checkpoint's network as a SPICE subcircuit")
    e.add_argument("checkpoint", help="buckbi checkpoint, the seed's actor_*.pth state dict, a state dict with "
                   "--arch, or a module / TorchScript file with --trust-pickle")
    add_network_options(e)
    e.add_argument("--out", required=True, help="netlist file to write")
    e.add_argument("--dialect", choices=("ngspice", "ltspice"), default="ngspice")
    e.add_argument("--subckt", default="ActorSubckt", help="subcircuit name (default ActorSubckt)")
    e.add_argument("--structure", choices=("fast", "plain", "xspice"), default="fast",
                   help="fast: VCCS sums (portable, fastest of the two); plain: one B-source per sum (readable); "
                        "xspice: one element of buckbi's ngspice code model (python -m buckbi.xspice build)")
    e.add_argument("--simulator", default=None, help=f"unused by export; accepted everywhere (or ${ENV_VAR})")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..converters.buck.converter import netlist_note, reference
    from ..export import export_model
    from ..nn.checkpoint import load_checkpoint
    model, meta = load_checkpoint(args.checkpoint, arch=args.arch, trust_pickle=args.trust_pickle)
    codemodel = None
    if args.structure == "xspice":
        from ..xspice import require_codemodel
        codemodel = require_codemodel()
    conv = meta.get("converter") if isinstance(meta, dict) else None
    # another converter's network says so in its header (a reference-buck export stays as it always was)
    notes = (netlist_note(conv),) if isinstance(conv, dict) and conv != reference().record() else ()
    text = export_model(model, args.out, subckt_name=args.subckt, dialect=args.dialect, structure=args.structure,
                        codemodel=codemodel, notes=notes)
    made_for = (f"; trained for converter {conv['name']}: its inputs are the sensed voltages / {conv['vmax']:g} V, "
                f"one sample per {1e6 / conv['fsw']:g} us" if isinstance(conv, dict) and "vmax" in conv else "")
    print(f"wrote {args.out}: subcircuit {args.subckt}, {args.dialect} dialect, {len(text.splitlines())} lines{made_for}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..importers.subckt import import_network
    from ..nn.checkpoint import save_checkpoint
    from ..converters.buck.converter import check_same_converter, recorded_in_netlist
    from ..converters.buck.design import load_converter
    from pathlib import Path
    # errors (a converter file, the netlist's own record, a mismatch) before anything is written
    try:
        text = Path(args.file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""  # import_network names the problem
    recorded = recorded_in_netlist(text, f"netlist {args.file}")
    if args.converter is None and recorded is not None:
        record = recorded  # the netlist's own (buckbi export of a network trained for another converter)
    else:
        conv = load_converter(args.converter)
        check_same_converter(recorded, conv, f"netlist {args.file}", args.allow_other_converter)
        record = conv.record()
    model = import_network(args.file)
    save_checkpoint(args.out, model, source=str(args.file), importer="buckbi.importers.subckt", converter=record)
    shapes = " ".join(type(m).__name__ + (f"({m.in_features}->{m.out_features})" if hasattr(m, "in_features") else "")
                      for m in model)
    print(f"wrote {args.out}: {shapes} (from {args.file}, for converter {record['name']}); run it with --actor "
          f"{args.out}")
    return 0
