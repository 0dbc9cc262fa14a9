"""The advebm-teach command: open the course, re-make its weights, reproduce the paper, measure.

Every command writes under runs/ and ends by listing the files it wrote; only --ship replaces the
package's shipped weights and results. Add --help after a command for its options.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Callable

from .checks import check_int, check_seed
from .config import CONFIGS, FAST_ENV_VAR
from .experiments.shipping import BENCH_FILES


def _pretrain(args: argparse.Namespace) -> None:
    from .experiments.pretrain import pretrain
    from .experiments.shipping import run_folder

    out = Path(args.out) if args.out else run_folder("pretrain", args.config)
    records = pretrain(
        args.config,
        out=out,
        seed=args.seed,
        kinds=tuple(args.only or ("plm", "energy_lm")),
        energy_epochs=args.energy_epochs,
        checkpoints=args.checkpoints,
        command=args.command_line,
        ship=args.ship,
    )
    summary = {
        kind: {k: v for k, v in rec["metrics"].items() if k != "per_position_correctness"}
        for kind, rec in records.items()
    }
    print(json.dumps(summary, indent=2))


def _reproduce(args: argparse.Namespace) -> None:
    from .experiments.reproduce import reproduce
    from .experiments.reproduction_report import report_reproduction
    from .experiments.shipping import run_folder

    out = Path(args.out) if args.out else run_folder("reproduce", args.config)
    print(
        report_reproduction(
            reproduce(args.config, seeds=args.seeds, out=out, ship=args.ship, restart=args.restart)
        )
    )


def _bench(args: argparse.Namespace) -> None:
    from .experiments import bench
    from .checkpoints import write_text_atomic
    from .checks import check_folder
    from .experiments.shipping import RESULTS_DIR, check_can_ship, run_folder, ship_files

    if args.ship and args.target == "attack":
        raise ValueError(
            "--ship: `bench attack` ships no file; --ship applies to perturb, perturb-cost and "
            "negatives"
        )
    check_can_ship(args.ship)
    out = check_folder("out", args.out or run_folder("bench", "course"))
    if args.target == "attack":
        figures = bench.bench_attack(head=args.head)
        bench.report_attack(figures)
    elif args.target == "perturb":
        from .experiments.perturb_study import report_perturb_study

        figures = bench.bench_perturb(command=args.command_line)
        print(report_perturb_study(figures))
    elif args.target == "negatives":
        from .experiments.negatives_study import report_negatives_study, run_experiment

        figures = run_experiment(out=out, restart=args.restart, command=args.command_line)
        print(report_negatives_study(figures))
    else:
        figures = {**bench.bench_perturb_cost(), "command": args.command_line}
        bench.report_perturb_cost(figures)
    path = out / BENCH_FILES[args.target]
    write_text_atomic(path, json.dumps(figures, indent=1) + "\n")
    if args.ship:
        ship_files([(path, RESULTS_DIR / path.name)])


def find_notebooks() -> Path:
    """The course's notebooks: ``./notebooks``, else the folder beside the package in a clone."""
    for folder in (Path.cwd() / "notebooks", Path(__file__).resolve().parent.parent / "notebooks"):
        if (folder / "00_addition_task.ipynb").exists():
            return folder
    raise FileNotFoundError(
        "no notebooks/ folder found: run `advebm-teach lab` from a clone of the course repository"
    )


def lab_command(extra: list[str]) -> list[str]:
    """The JupyterLab command that opens notebook 00, rooted at the course's folder (so that the
    notebooks' links to ``docs/`` and ``solutions/`` open in JupyterLab too).

    JupyterLab refuses to run as root without ``--allow-root``; containers (Docker, some CI and
    cloud machines) run as root, so the flag is added there and only there.
    """
    if importlib.util.find_spec("jupyterlab") is None:
        raise FileNotFoundError("JupyterLab is not installed: pip install -e \".[lab]\" (from the "
                                "clone) installs it with jupytext")
    notebooks = find_notebooks()
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        str(notebooks / "00_addition_task.ipynb"),
        f"--ServerApp.root_dir={notebooks.parent}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command + extra


def _lab(args: argparse.Namespace) -> None:
    command = lab_command(args.extra)
    os.execv(command[0], command)  # replace this process: Ctrl-C stops JupyterLab as usual


def _argument(check: Callable, **bounds) -> Callable[[str], int]:
    """An argparse ``type``: an int that passes ``check`` (argparse then names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        try:
            return check("value", value, **bounds)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value ")) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    def command(name: str, help: str, description: str, run) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description, allow_abbrev=False)
        sub.set_defaults(run=run)
        return sub

    def common(sub: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            sub.add_argument(
                "--config",
                choices=sorted(CONFIGS),
                default="course",
                help="course: 5-digit addition sized for a 2-core CPU (default); "
                "paper: 10 digits, the paper's Table 1",
            )
        sub.add_argument(
            "--fast",
            action="store_true",
            help=f"fast mode (same as {FAST_ENV_VAR}=1): tiny sizes, every code path",
        )

    parser = argparse.ArgumentParser(prog="advebm-teach", description=__doc__, allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    command(
        "lab",
        "open the course in JupyterLab (other options go to jupyter lab)",
        "Start JupyterLab on the course's folder, with notebook 00 open. Every option "
        "this command does not know is passed on to `jupyter lab` (e.g. --no-browser, "
        "--port=8889); --allow-root is added only when run as root.",
        _lab,
    )
    pre = command(
        "pretrain",
        "train P_LM and the energy model's LM from scratch",
        "Train P_LM (the LSTM) and the energy model's LM pre-training from scratch and save "
        "them with records of how they were made, under runs/pretrain/<config>. An "
        "interrupted run resumes from runs/checkpoints/<config>.",
        _pretrain,
    )
    common(pre)
    pre.add_argument(
        "--out", help="output folder (default: runs/pretrain/<config>, -fast in fast mode)"
    )
    pre.add_argument(
        "--checkpoints", help="training checkpoint folder (default: runs/checkpoints/<config>)"
    )
    pre.add_argument(
        "--seed", type=_argument(check_seed), help="run seed (default: the configuration's)"
    )
    pre.add_argument(
        "--only",
        action="append",
        choices=["plm", "energy_lm"],
        help="train only this model (energy_lm needs P_LM's record in --out)",
    )
    pre.add_argument(
        "--energy-epochs",
        type=_argument(check_int, low=1),
        help="the energy LM's epoch budget (default: the configuration's)",
    )
    pre.add_argument(
        "--ship",
        action="store_true",
        help="then replace the package's shipped weights pretrained/<config>/ (full mode)",
    )
    rep = command(
        "reproduce",
        "the paper's experiment over seeds: results JSON and figures",
        "The paper's experiment (Algorithm 1 against the Residual-EBM baseline, and the "
        "improved family) over seeds 0..N-1 from the shipped pre-trained weights: results "
        "JSON, per-seed JSON and the paper's figures 1a, 1b and 2 as HTML, under "
        "runs/reproduce/<config>. An interrupted run goes on after its last finished seed. "
        "It runs on the best device found (CUDA, then MPS, then the CPU): --config course is "
        "sized for 2 CPU cores, --config paper (10 digits, the paper's epochs) for one GPU.",
        _reproduce,
    )
    common(rep)
    rep.add_argument(
        "--seeds",
        type=_argument(check_int, low=1),
        help="number of seeds, >= 1 (seeds 0, 1, ..., N-1; default 10, 2 in fast mode)",
    )
    rep.add_argument(
        "--out", help="output folder (default: runs/reproduce/<config>, -fast in fast mode)"
    )
    rep.add_argument(
        "--ship",
        action="store_true",
        help="then replace the shipped results/<config>.json and seed 0's energies (full mode)",
    )
    rep.add_argument(
        "--restart",
        action="store_true",
        help="discard the seeds an interrupted run left in the output folder",
    )
    bench = command(
        "bench",
        "benchmarks measured side by side (the last stdout line is JSON)",
        "attack: the naive attack vs the batched exact one vs first-order pruning; "
        "perturb: embedding-space adversarial training of the BCE energy, every strategy "
        "over seeds; perturb-cost: each strategy's step time relative to a clean step; "
        "negatives: Algorithm 1's negatives from P_LM, the attack, GWG or DMALA chains at equal "
        "cost, then generation by attack or sampler search, over seeds. "
        "Writes <target>.json under runs/bench/course.",
        _bench,
    )
    bench.add_argument("target", choices=sorted(BENCH_FILES), help="what to measure")
    common(bench, config=False)
    bench.add_argument(
        "--head",
        choices=["lm_nll", "eos", "mean"],
        default="lm_nll",
        help="the energy read-out the attack benchmark uses (default lm_nll)",
    )
    bench.add_argument(
        "--out", help="output folder (default: runs/bench/course, -fast in fast mode)"
    )
    bench.add_argument(
        "--ship",
        action="store_true",
        help="then replace the shipped results/<target>.json (all but attack; full mode)",
    )
    bench.add_argument(
        "--restart",
        action="store_true",
        help="negatives: discard the seeds an interrupted run left in the output folder",
    )
    return parser


def _file_times(folders: list[Path]) -> dict[Path, int]:
    return {
        path: path.stat().st_mtime_ns
        for folder in folders
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    }


def _output_folders(args: argparse.Namespace) -> list[Path]:
    """The folders a command may write to: its output folder and the shipped files' folders."""
    from .checkpoints import PRETRAINED_DIR
    from .experiments.shipping import RESULTS_DIR, run_folder

    if args.command == "lab":
        return []
    config = getattr(args, "config", "course")
    out = Path(args.out) if args.out else run_folder(args.command, config)
    return {
        "pretrain": [out, PRETRAINED_DIR / config],
        "reproduce": [out, PRETRAINED_DIR / config, RESULTS_DIR],
        "bench": [out, RESULTS_DIR],
    }[args.command]


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, check it, run the command, then list on stderr the files it wrote."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    for name in ("out", "checkpoints"):
        if getattr(args, name, None) and Path(getattr(args, name)).is_file():
            parser.error(
                f"argument --{name}: must be a folder (created if missing); "
                f"{getattr(args, name)} is a file"
            )
    args.extra = extra
    args.command_line = " ".join(["advebm-teach", *argv])
    if getattr(args, "fast", False):
        os.environ[FAST_ENV_VAR] = "1"
    folders = _output_folders(args)
    before = _file_times(folders)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError) as error:  # what the command refused, and why
        parser.exit(2, f"advebm-teach {args.command}: error: {error}\n")
    for path in sorted(
        path for path, mtime in _file_times(folders).items() if before.get(path) != mtime
    ):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
