"""The ``advebm-teach`` command: ``lab`` opens the course, ``pretrain`` re-makes the shipped weights,
``bench`` measures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import CONFIGS, FAST_ENV_VAR


def _pretrain(args: argparse.Namespace) -> None:
    from .pretrain import pretrain

    records = pretrain(args.config, out=args.out, seed=args.seed, kinds=tuple(args.only or ("plm", "energy_lm")),
                       energy_epochs=args.energy_epochs, checkpoints=args.checkpoints, command=args.command_line)
    summary = {kind: {k: v for k, v in rec["metrics"].items() if k != "per_position_correctness"}
               for kind, rec in records.items()}
    print(json.dumps(summary, indent=2))


def _bench(args: argparse.Namespace) -> None:
    from . import bench

    if args.target == "attack":
        bench.report_attack(bench.bench_attack(head=args.head))
    elif args.target == "perturb":
        from .perturb_experiment import report

        print(report(bench.bench_perturb(command=args.command_line)))
    else:
        figures = {**bench.bench_perturb_cost(), "command": args.command_line}
        bench.write_json(bench.perturb_cost_path(), figures)
        bench.report_perturb_cost(figures)


def _reproduce(args: argparse.Namespace) -> None:
    from .reproduce import reproduce, report

    print(report(reproduce(args.config, seeds=args.seeds, out=args.out, ship=args.ship, restart=args.restart)))


def find_notebooks() -> Path:
    """The course's notebooks: ``./notebooks``, else the folder beside the package in a clone."""
    for folder in (Path.cwd() / "notebooks", Path(__file__).resolve().parent.parent / "notebooks"):
        if (folder / "00_addition_task.ipynb").exists():
            return folder
    raise FileNotFoundError("no notebooks/ folder found: run `advebm-teach lab` from a clone of the course repository")


def lab_command(extra: list[str]) -> list[str]:
    """The JupyterLab command that opens notebook 00, rooted at the notebooks folder.

    JupyterLab refuses to run as root without ``--allow-root``; containers (Docker, some CI and cloud
    machines) run as root, so the flag is added there and only there.
    """
    notebooks = find_notebooks()
    command = [sys.executable, "-m", "jupyter", "lab", str(notebooks / "00_addition_task.ipynb"),
               f"--ServerApp.root_dir={notebooks}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command + extra


def _lab(args: argparse.Namespace) -> None:
    command = lab_command(args.extra)
    os.execv(command[0], command)  # replace this process: Ctrl-C stops JupyterLab as usual


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advebm-teach", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="open the course in JupyterLab (extra options go to jupyter lab)")
    lab.set_defaults(run=_lab)
    pre = commands.add_parser("pretrain", help="train P_LM and the energy model's LM from scratch; save weights")
    pre.add_argument("--config", choices=sorted(CONFIGS), default="course")
    pre.add_argument("--fast", action="store_true", help=f"fast mode (same as {FAST_ENV_VAR}=1): tiny sizes")
    pre.add_argument("--out", help="output folder (default: the shipped weights' folder; runs/ in fast mode)")
    pre.add_argument("--checkpoints", help="training checkpoint folder (default: runs/checkpoints/<config>)")
    pre.add_argument("--seed", type=int, help="run seed (default: the configuration's)")
    pre.add_argument("--only", action="append", choices=["plm", "energy_lm"], help="train only this model")
    pre.add_argument("--energy-epochs", type=int, help="override the energy model's epoch budget")
    pre.set_defaults(run=_pretrain)
    rep = commands.add_parser("reproduce", help="the paper's experiment over seeds: results JSON and figures")
    rep.add_argument("--config", choices=sorted(CONFIGS), default="course")
    rep.add_argument("--seeds", type=int, default=10, help="number of seeds (0, 1, ...)")
    rep.add_argument("--fast", action="store_true", help=f"fast mode (same as {FAST_ENV_VAR}=1): tiny sizes")
    rep.add_argument("--out", help="output folder (default: runs/reproduce/<config>)")
    rep.add_argument("--ship", action="store_true",
                     help="also replace the package's shipped results/<config>.json and seed 0's energies")
    rep.add_argument("--restart", action="store_true",
                     help="discard the seeds an interrupted run left in the output folder (default: go on after them)")
    rep.set_defaults(run=_reproduce)
    bench = commands.add_parser("bench", help="benchmarks measured side by side; the last line is JSON")
    bench.add_argument("target", choices=["attack", "perturb", "perturb-cost"],
                       help="attack: naive vs batched exact vs first-order pruned; perturb: embedding-space adversarial "
                            "training of the BCE energy, every strategy over seeds; perturb-cost: each strategy's step "
                            "time relative to a clean step")
    bench.add_argument("--fast", action="store_true", help=f"fast mode (same as {FAST_ENV_VAR}=1): tiny sizes")
    bench.add_argument("--head", choices=["lm_nll", "eos", "mean"], default="lm_nll", help="energy read-out")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command != "lab":
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    args.command_line = " ".join(["advebm-teach", *argv])
    if getattr(args, "fast", False):
        os.environ[FAST_ENV_VAR] = "1"
    args.run(args)


if __name__ == "__main__":
    main()
