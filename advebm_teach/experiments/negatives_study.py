"""Attacks or MCMC? Algorithm 1's negatives drawn four ways at equal cost:
``advebm-teach bench negatives``.

The paper argues that a discrete attack finds the spurious modes of an energy that MCMC would need
long chains to reach, and never compares the two. Here, per seed and per energy family, one
baseline energy is trained with BCE on data against P_LM samples, then four copies of it are
fine-tuned for the same epochs, each with its negatives drawn another way (``train_ebm``):

* ``plm``: the P_LM samples themselves (BCE continued: the control);
* ``attack``: the family's attack for ``attack_steps`` steps (Algorithm 1);
* ``gwg`` and ``dmala``: Gibbs-with-Gradients and discrete Langevin chains started at the P_LM
  samples, on the current residual model P_LM(x) exp(-E(x)) (``mcmc.py``), for as many energy
  evaluations as the attack: one attack step evaluates the current sequence (its gradient pass)
  and the 9 other digits at the chosen position, 10 evaluations; one chain step evaluates one
  proposal (with its gradient), and the start costs one. So S attack steps match 10 S - 1 chain
  steps, and the chains make 10 times the gradient passes (and run P_LM too): the wall times show
  what that costs.

Every trained energy then generates by sample-then-search from the same P_LM test samples: the
family's attack, or a sampler run as a search, the chain on P_LM(x) exp(-E(x) / T) at a low
temperature T, each judged after ``budgets`` energy evaluations per sequence (an attack of b / 10
steps, b - 1 chain steps). Per budget: **correctness** (the paper's average correctness, the
fraction of answer digits right) and **spurious modes** (the fraction of outputs that are wrong
sums with an energy below the median energy of held-out true sums). Over seeds: means with 95 %
intervals and, for each method, the paired difference from ``plm`` seed by seed
(``statistics.py``).

Families: ``paper`` (the scalar ``mean`` read-out, the greedy attack, where spurious modes exist)
and ``control`` (the likelihood read-out ``lm_nll`` with the tabu attack), as in ``reproduce``.
Seeds vary the training data, the P_LM negatives and the chains; the test sets are drawn once. An
interrupted run goes on after its last finished seed (``out/negatives_seeds/``).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attack import DiscreteAttack
from ..checkpoints import load_pretrained
from ..checks import check_folder, check_int
from ..config import TrainConfig, fast_mode, get_config, make_task, pick_device
from ..residual import ResidualEnergy
from ..sampling import energies_of, sample_lm
from ..task import AdditionTask
from ..trainer import CHAINS, train_ebm
from .shipping import finished_seed, pretrained_sha256, store_seed
from .statistics import interval, paired_difference

METHODS = ("plm", "attack", "gwg", "dmala")     # how the fine-tuning draws its negatives
SEARCHES = ("attack", "gwg", "dmala")           # how a trained energy generates
METRICS = ("correctness", "spurious")
# One attack step's energy evaluations: the current sequence and the 9 other digits at i*.
EVALUATIONS_PER_ATTACK_STEP = 10


@dataclass(frozen=True)
class Family:
    """One energy family: its read-out, learning rate, attacks (for training and for search) and
    DMALA's step size (chosen so that its chains accept about half their proposals at T = 1 on the
    shipped energies of the read-out)."""

    head: str
    lr: float
    training_attack: dict
    search_attack: dict
    step_size: float


FAMILIES = {
    # eq. 5's alternative tokens for training, the greedy attack as written for generation
    "paper": Family("mean", 3e-4, {"include_current": False}, {}, step_size=0.2),
    "control": Family("lm_nll", 1e-5, {"tabu": True}, {"tabu": True}, step_size=0.05),
}


@dataclass(frozen=True)
class NegativesStudyProtocol:
    """Sizes and settings (course: 2 CPU cores, 5 seeds x 2 families in under 30 minutes)."""

    n_data: int = 1_000           # true sums, and as many P_LM samples, per seed (as the
                                  # reproduction)
    n_val: int = 100              # held out for early stopping
    n_test: int = 100             # P_LM samples searched from, and true sums (the same every seed)
    batch_size: int = 100
    base_epochs: int = 15         # the BCE baseline, from the pre-trained energy LM
    epochs: int = 4               # each fine-tuning, from the baseline
    patience: int = 3
    attack_steps: int = 2         # the training attack: 20 energy evaluations per negative
    temperature: float = 1.0      # the training chains' residual model
    search_temperature: float = 0.25
    budgets: tuple[int, ...] = (0, 10, 20, 50)  # energy evaluations per generated sequence
    seeds: int = 5
    families: tuple[str, ...] = ("paper", "control")
    note: str = ("sized for 2 CPU cores: 1,000 training pairs, a 15-epoch BCE baseline per seed "
                 "and family, 4 fine-tuning epochs per method, 100 test sequences searched for up "
                 "to 50 energy evaluations each")

    @property
    def chain_steps(self) -> int:
        """The training chains' steps: as many energy evaluations as ``attack_steps``."""
        return EVALUATIONS_PER_ATTACK_STEP * self.attack_steps - 1

    @staticmethod
    def for_mode() -> "NegativesStudyProtocol":
        """The course protocol, or a tiny one in fast mode (same code paths)."""
        if not fast_mode():
            return NegativesStudyProtocol()
        return NegativesStudyProtocol(n_data=24, n_val=12, n_test=12, batch_size=12,
                                      base_epochs=1, epochs=1, attack_steps=1,
                                      budgets=(0, 10, 20), seeds=2,
                                      note="fast mode: tiny sizes, numbers meaningless")


def train_energies(family: Family, task: AdditionTask, plm: nn.Module, seed: int,
                   protocol: NegativesStudyProtocol, device: torch.device, config: str = "course"
                   ) -> tuple[dict[str, nn.Module], dict[str, float]]:
    """The baseline (from ``config``'s pre-trained energy LM), then one fine-tuned copy per method
    of ``METHODS``; the four energies and each one's training seconds (the baseline's under
    ``"baseline"``)."""
    data = task.sample(protocol.n_data, seed=90_000 + seed)
    val = task.sample(protocol.n_val, seed=91_000 + seed)

    def training(epochs: int, run_seed: int) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=protocol.batch_size, lr=family.lr,
                           weight_decay=0.01, patience=protocol.patience, seed=run_seed)

    base = load_pretrained("energy_lm", config).to(device)
    base.head = family.head
    clock = time.perf_counter()
    train_ebm(base, task, data, plm, "bce", val_data=val, progress=False,
              config=training(protocol.base_epochs, seed))
    seconds = {"baseline": time.perf_counter() - clock}
    chain_options = {"gwg": {"temperature": protocol.temperature},
                     "dmala": {"temperature": protocol.temperature,
                               "step_size": family.step_size}}
    energies, trainer_method = {}, {"plm": "bce", "attack": "adversarial"}
    for method in METHODS:
        model, clock = copy.deepcopy(base), time.perf_counter()
        # every method fine-tunes on the same data, order and P_LM samples (one run seed)
        train_ebm(model, task, data, plm, trainer_method.get(method, method),
                  protocol.attack_steps, val_data=val, attack_options=family.training_attack,
                  chain_steps=protocol.chain_steps if method in chain_options else 0,
                  chain_options=chain_options.get(method), progress=False,
                  config=training(protocol.epochs, 1_000 + seed))
        seconds[method] = time.perf_counter() - clock
        energies[method] = model
    return energies, seconds


def search(energy_model: nn.Module, plm: nn.Module, task: AdditionTask, family: Family,
           how: str, start: torch.Tensor, protocol: NegativesStudyProtocol, seed: int
           ) -> tuple[list[torch.Tensor], dict[str, float]]:
    """Sample-then-search from ``start (B, T)`` with ``how`` (one of ``SEARCHES``); the sequences
    after each budget of ``protocol.budgets`` (each ``(B, T)``, on the CPU), and the search's
    seconds (and a chain's acceptance rate)."""
    top = max(protocol.budgets)
    clock = time.perf_counter()
    if how == "attack":
        trace = DiscreteAttack(energy_model, task, top // EVALUATIONS_PER_ATTACK_STEP,
                               **family.search_attack).attack(start)
        states = [trace.tokens[b // EVALUATIONS_PER_ATTACK_STEP] for b in protocol.budgets]
        return states, {"seconds": time.perf_counter() - clock}
    residual = ResidualEnergy(energy_model, plm, task, protocol.search_temperature)
    options = {"step_size": family.step_size} if how == "dmala" else {}
    chains = CHAINS[how](residual, task, start, max(top - 1, 0), seed=seed, keep_trace=True,
                         **options)
    # budget b: the start and b - 1 proposals evaluated (budget 0: the start itself)
    states = [chains.trace.tokens[max(b - 1, 0)] for b in protocol.budgets]
    return states, {"seconds": time.perf_counter() - clock,
                    "acceptance": chains.acceptance_rate}


def judge(energy_model: nn.Module, task: AdditionTask, states: list[torch.Tensor],
          threshold: float) -> dict[str, list[float]]:
    """Per budget: the average correctness (the paper's: the fraction of answer digits right),
    and the fraction of spurious modes (wrong sums with E below ``threshold``, the median energy
    of true sums)."""
    scores: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for tokens in states:
        correctness = task.correctness(tokens)  # (B,)
        spurious = (correctness < 1) & (energies_of(energy_model, tokens) < threshold)
        scores["correctness"].append(correctness.mean().item())
        scores["spurious"].append(spurious.float().mean().item())
    return scores


def run_seed(seed: int, protocol: NegativesStudyProtocol, config: str = "course",
             device: torch.device | None = None) -> dict[str, Any]:
    """One seed: per family, the four energies, and each one's searches judged."""
    device = device or pick_device()
    task = make_task(config)
    plm = load_pretrained("plm", config).to(device)
    test_data = task.sample(protocol.n_test, seed=92_000)
    start = sample_lm(plm, task, protocol.n_test, seed=92_001)
    result: dict[str, Any] = {"seed": seed, "families": {}}
    for name in protocol.families:
        family = FAMILIES[name]
        energies, seconds = train_energies(family, task, plm, seed, protocol, device, config)
        rows = {}
        for method, model in energies.items():
            threshold = float(energies_of(model, test_data).median())
            rows[method] = {"train_seconds": seconds[method], "search": {}}
            for how in SEARCHES:
                states, costs = search(model, plm, task, family, how, start, protocol,
                                       seed=93_000 + seed)
                rows[method]["search"][how] = {**judge(model, task, states, threshold), **costs}
        result["families"][name] = {"baseline_seconds": seconds["baseline"], "methods": rows}
    return result


def summarise(per_seed: list[dict[str, Any]], protocol: NegativesStudyProtocol
              ) -> dict[str, Any]:
    """Per family, method, search and metric: one list over seeds per budget, its interval, and
    the paired difference from ``plm`` (mean, low, high, seeds ahead)."""
    summary: dict[str, Any] = {}
    for name in protocol.families:
        rows = [run["families"][name]["methods"] for run in per_seed]
        family: dict[str, Any] = {}
        for method in METHODS:
            entry: dict[str, Any] = {"train_seconds": list(interval(
                [row[method]["train_seconds"] for row in rows]))}
            for how in SEARCHES:
                cell: dict[str, Any] = {"seconds": list(interval(
                    [row[method]["search"][how]["seconds"] for row in rows]))}
                if how != "attack":
                    cell["acceptance"] = list(interval(
                        [row[method]["search"][how]["acceptance"] for row in rows]))
                for metric in METRICS:
                    values = [[row[method]["search"][how][metric][k] for row in rows]
                              for k in range(len(protocol.budgets))]
                    control = [[row["plm"]["search"][how][metric][k] for row in rows]
                               for k in range(len(protocol.budgets))]
                    cell[metric] = {
                        str(budget): {"values": values[k], "interval": list(interval(values[k])),
                                      "versus_plm": _paired(values[k], control[k])}
                        for k, budget in enumerate(protocol.budgets)}
                entry[how] = cell
            family[method] = entry
        summary[name] = family
    return summary


def _paired(values: list[float], control: list[float]) -> list[float]:
    (mean, low, high), ahead = paired_difference(values, control)
    return [mean, low, high, ahead]


def run_experiment(config: str = "course", out: str | Path | None = None, restart: bool = False,
                   seeds: int | None = None, progress: bool = True,
                   command: str = "advebm-teach bench negatives") -> dict[str, Any]:
    """Every seed (default ``protocol.seeds``), each stored under ``out/negatives_seeds`` when
    ``out`` is given (read back by a later run with the same fingerprint; ``restart`` discards
    them); returns the results (see ``report_negatives_study``)."""
    get_config(config)
    protocol = NegativesStudyProtocol.for_mode()
    n_seeds = protocol.seeds if seeds is None else check_int("seeds", seeds, low=1)
    device = pick_device()
    fingerprint = {"config": config, "protocol": asdict(protocol), "fast_mode": fast_mode(),
                   "device": device.type,
                   "pretrained_sha256": pretrained_sha256(config)}
    folder = check_folder("out", out) / "negatives_seeds" if out is not None else None
    per_seed, resumed = [], []
    for seed in range(n_seeds):
        path = folder / f"seed_{seed}.json" if folder is not None else None
        if path is not None and restart and path.exists():
            path.unlink()
        run = finished_seed(path, fingerprint) if path is not None else None
        if run is not None:
            resumed.append(seed)
        else:
            clock = time.perf_counter()
            run = run_seed(seed, protocol, config, device)
            run["wall_s"] = time.perf_counter() - clock
            if path is not None:
                store_seed(path, fingerprint, run)
        per_seed.append(run)
        if progress:
            print(_seed_line(run, protocol), flush=True)
    return {"command": command, "config": config, "fast_mode": fast_mode(),
            "protocol": asdict(protocol), "chain_steps": protocol.chain_steps,
            "families": {name: asdict(FAMILIES[name]) for name in protocol.families},
            "seeds": list(range(n_seeds)), "resumed_seeds": resumed,
            "summary": summarise(per_seed, protocol),
            "seconds_per_seed": [round(run["wall_s"], 1) for run in per_seed],
            "wall_s": round(sum(run["wall_s"] for run in per_seed), 1),
            "device": device.type, "threads": torch.get_num_threads()}


def _seed_line(run: dict[str, Any], protocol: NegativesStudyProtocol) -> str:
    """One seed's headline: each family's correctness after the attack at the top budget."""
    top = len(protocol.budgets) - 1
    parts = [f"{name}: " + ", ".join(
        f"{method} {rows['methods'][method]['search']['attack']['correctness'][top]:.2f}"
        for method in METHODS) for name, rows in run["families"].items()]
    return f"seed {run['seed']}: attacked correctness | " + " | ".join(parts) + \
        f" | {run['wall_s']:.0f} s"


LABELS = {"plm": "P_LM samples", "attack": "attack", "gwg": "GWG chains", "dmala": "DMALA chains"}


def report_negatives_study(results: dict[str, Any]) -> str:
    """A text table per family: for each negatives method and search, correctness and spurious
    modes (mean [95 % interval] over seeds) at the budgets, and the costs; the last line is one
    JSON object of the top budget's means."""
    protocol = results["protocol"]
    budgets = [str(b) for b in protocol["budgets"]]
    lines = [f"negatives at equal cost: {len(results['seeds'])} seeds, {results['wall_s']:.0f} s "
             f"({'fast mode' if results['fast_mode'] else 'full'}); training: attack "
             f"{protocol['attack_steps']} steps = {results['chain_steps']} chain steps; search "
             f"temperature {protocol['search_temperature']}; budgets in energy evaluations per "
             f"sequence"]
    headline: dict[str, Any] = {}
    for name, family in results["summary"].items():
        lines.append(f"\n{name} family ({results['families'][name]['head']} read-out)")
        lines.append(f"{'negatives':<14}{'search':<8}" + "".join(
            f"{'correct@' + b:>22}" for b in budgets[1:]) + f"{'spurious@' + budgets[-1]:>22}"
            f"{'search s':>10}{'train s':>9}")
        for method, entry in family.items():
            for how in SEARCHES:
                cell = entry[how]
                lines.append(f"{LABELS[method]:<14}{how:<8}" + "".join(
                    _cell(cell["correctness"][b]["interval"]) for b in budgets[1:])
                    + _cell(cell["spurious"][budgets[-1]]["interval"])
                    + f"{cell['seconds'][0]:>10.1f}{entry['train_seconds'][0]:>9.1f}")
                headline.setdefault(name, {}).setdefault(method, {})[how] = {
                    metric: round(cell[metric][budgets[-1]]["interval"][0], 3)
                    for metric in METRICS}
        lines.append("paired difference from P_LM samples (attack search, top budget): "
                     + "; ".join(
            f"{LABELS[method]} {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] ({d[3]}/"
            f"{len(results['seeds'])} seeds ahead)"
            for method in METHODS[1:]
            for d in [family[method]["attack"]["correctness"][budgets[-1]]["versus_plm"]]))
    lines.append(json.dumps(headline))
    return "\n".join(lines)


def _cell(values: list[float]) -> str:
    mean, low, high = values
    return f"{mean:>10.3f} [{low:4.2f},{high:4.2f}]"
