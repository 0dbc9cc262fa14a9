"""Does embedding-space adversarial training remove spurious modes, or only smooth the embedding
space?

``advebm-teach bench perturb``: the residual energy model's real-vs-P_LM classifier (the
Residual-EBM baseline: the scalar ``mean`` read-out, logit -E(x) for "data", the logistic loss of
``trainer.ebm_loss``, negatives drawn from P_LM). Per seed, the baseline is trained first from the
shipped pre-trained LM with clean steps (``baseline_epochs``); then each training step of
``perturb.py`` fine-tunes a copy of it for ``epochs`` more epochs on the same data (the ``clean``
row continues clean training: the control). Adversarial fine-tuning after standard training is
ALUM's curriculum; here every strategy gets it. (Trained from the LM with a strategy from the first
step, the classifier's slow start, ~10 epochs near chance, decides more than the strategy does.)
Every energy is judged on the same held-out sets:

* **clean accuracy**: (P(E < 0 | true sum) + P(E > 0 | P_LM sample)) / 2, as ``train_ebm``
  validates;
* **PGD accuracy**: the same after an L2 PGD attack on each sequence's embeddings (ball
  ``eval_epsilon``);
* **spurious modes**: wrong P_LM samples attacked in token space by the tabu ``DiscreteAttack``; a
  spurious mode is a sequence that is not a correct sum yet whose energy is below the median energy
  of the held-out true sums. Reported: the fraction of samples turned into one within
  ``attack_steps`` steps, and the mean number of steps it took (``attack_steps + 1`` when none was
  found).

Seeds vary the training data, the negatives, the baseline and the strategies' random starts; the
test sets are drawn once.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..attack import DiscreteAttack
from ..checkpoints import load_pretrained
from ..config import TrainConfig, fast_mode, make_task, pick_device
from ..perturb import pgd
from ..perturb_steps import (ALUM, FGM, FGSM, PGD, SMART, YOPO, Clean, FreeAT, FreeLB,
                             GradientPenalty, MatrixFGM, Strategy)
from .statistics import interval
from ..sampling import sample_lm
from ..task import AdditionTask
from ..trace import AttackTrace
from ..trainer import classifier_objective, derive_seed, fit

METRICS = ("clean_accuracy", "pgd_accuracy", "spurious_found", "steps_to_spurious")


@dataclass(frozen=True)
class PerturbStudyProtocol:
    """Sizes and settings of the experiment (course: 2 CPU cores, 5 seeds x 11 strategies in about
    12 minutes)."""

    n_train: int = 1_000          # true sums, and as many P_LM samples, per seed (as the
                                  # reproduction)
    n_test: int = 500             # held-out true sums and P_LM samples, the same for every seed
    baseline_epochs: int = 15     # clean BCE training of the baseline, from the pre-trained LM
    epochs: int = 4               # fine-tuning with each strategy
    batch_size: int = 100
    lr: float = 3e-4
    weight_decay: float = 0.01
    epsilon: float = 0.05         # the training ball, per sequence (a sequence's embeddings have
                                  # norm ~1.5)
    eval_epsilon: float = 0.05    # the PGD attack's ball at evaluation
    eval_steps: int = 10
    penalty_weight: float = 3e-4  # the gradient penalty's lambda (larger ones cost clean accuracy
                                  # here)
    attack_sequences: int = 100   # wrong P_LM samples attacked in token space
    attack_steps: int = 15
    seeds: int = 5
    note: str = ("sized for 2 CPU cores: 1,000 training pairs, a 15-epoch clean baseline per "
                 "seed, 4 fine-tuning epochs per strategy (no early stopping: every strategy "
                 "trains as long), 500 + 500 test sequences, 100 attacked samples for 15 steps")

    @staticmethod
    def for_mode() -> "PerturbStudyProtocol":
        """The course protocol, or a tiny one in fast mode (same code paths)."""
        if not fast_mode():
            return PerturbStudyProtocol()
        return PerturbStudyProtocol(n_train=40, n_test=24, baseline_epochs=1, epochs=2,
                                    batch_size=20, eval_steps=2, attack_sequences=6,
                                    attack_steps=2, seeds=2,
                                    note="fast mode: tiny sizes, numbers meaningless")

    def training(self, epochs: int, seed: int) -> TrainConfig:
        """How one model of the study is trained: ``epochs`` over the data, seeded by ``seed``."""
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, seed=seed)


def strategies(protocol: PerturbStudyProtocol, sequence_numel: int,
               seed: int = 0) -> dict[str, Strategy]:
    """The table's rows, each a fresh strategy (some keep state); random starts drawn from
    generators seeded by ``seed``. FGSM's L-inf ball is the cube whose corners lie at L2 distance
    eps (``sequence_numel`` = T x D entries per sequence). ALUM needs no warm-up of its own: it
    fine-tunes the clean baseline."""
    eps = protocol.epsilon

    def generator(k: int) -> torch.Generator:  # the k-th strategy's random starts
        return torch.Generator().manual_seed(derive_seed(seed, "random start", k))

    return {
        "clean": Clean(),
        "FGSM": FGSM(eps / math.sqrt(sequence_numel)),
        "FGM": FGM(eps),
        "FGM on the table": MatrixFGM(eps),
        "PGD-3": PGD(eps, alpha=eps / 2, steps=3),
        "FreeAT-3": FreeAT(eps, replays=3),
        "YOPO-3-3": YOPO(eps, alpha=eps / 4, full_passes=3, cheap_updates=3,
                         generator=generator(1)),
        "FreeLB-3": FreeLB(eps, alpha=eps / 2, steps=3, generator=generator(2)),
        "SMART": SMART(eps, alpha=eps, weight=1.0, steps=1, generator=generator(3)),
        "ALUM": ALUM(eps, alpha=eps, weight=1.0, generator=generator(4)),
        "gradient penalty": GradientPenalty(weight=protocol.penalty_weight),
        "gradient penalty (finite difference)": GradientPenalty(weight=protocol.penalty_weight,
                                                                method="finite_difference"),
    }


def train_classifier(energy_model: nn.Module, data: torch.Tensor, negatives: torch.Tensor,
                     strategy: Strategy, config: TrainConfig,
                     progress: bool = False) -> list[float]:
    """The BCE energy trained by ``trainer.fit`` with ``strategy`` as its step, on data against as
    many negatives, for ceil(config.epochs / strategy.replays) epochs (FreeAT visits each batch m
    times). Returns each epoch's mean training objective; the model ends in eval mode. It trains
    where it is (``classifier_objective`` moves each batch there)."""
    if len(data) != len(negatives) or len(data) == 0:
        raise ValueError(f"data and negatives must be non-empty and as many, got {len(data)} and "
                         f"{len(negatives)}")

    def step(indices: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
        batch = classifier_objective(energy_model, data[indices], negatives[indices])
        return strategy.step(batch, optimizer)

    epochs = -(-config.epochs // strategy.replays)
    result = fit(energy_model, step, replace(config, epochs=epochs), n_train=len(data),
                 progress=progress, desc=str(strategy))
    return [row["train_loss"] for row in result.history]


def _accuracy(energy: torch.Tensor, n_data: int) -> float:
    return 0.5 * ((energy[:n_data] < 0).float().mean()
                  + (energy[n_data:] > 0).float().mean()).item()


def evaluate(energy_model: nn.Module, task: AdditionTask, test_data: torch.Tensor,
             test_negatives: torch.Tensor, attack_start: torch.Tensor,
             protocol: PerturbStudyProtocol) -> dict[str, float]:
    """Clean accuracy, accuracy under embedding-space PGD, and how the tabu attack reaches spurious
    modes."""
    energy_model.eval()
    objective = classifier_objective(energy_model, test_data, test_negatives)
    embeds = objective.embed().detach()
    with torch.no_grad():
        clean = -objective.forward(embeds)
    delta = pgd(objective.loss_fn, embeds, protocol.eval_epsilon, alpha=protocol.eval_epsilon / 4,
                steps=protocol.eval_steps)
    with torch.no_grad():
        attacked = -objective.forward(embeds + delta)
    trace = DiscreteAttack(energy_model, task, protocol.attack_steps,
                           tabu=True).attack(attack_start)
    found, first = first_spurious_step(trace, task, float(clean[: len(test_data)].median()))
    return {"clean_accuracy": _accuracy(clean, len(test_data)),
            "pgd_accuracy": _accuracy(attacked, len(test_data)),
            "spurious_found": found.float().mean().item(),
            "steps_to_spurious": first.float().mean().item()}


def first_spurious_step(trace: AttackTrace, task: AdditionTask,
                        threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(found (B,) bool, first (B,) long)``: whether each attacked sequence ever became a
    spurious mode (not a correct sum, energy below ``threshold``) and at which step (0 = before any
    step; S + 1 when never)."""
    wrong = (task.correctness(trace.tokens.flatten(0, 1)) < 1).view(trace.tokens.shape[:2])
    spurious = wrong & (trace.energy < threshold)  # (S+1, B)
    found = spurious.any(dim=0)
    return found, torch.where(found, spurious.long().argmax(dim=0), torch.tensor(trace.steps + 1))


def run_experiment(protocol: PerturbStudyProtocol | None = None, config: str = "course",
                   progress: bool = True,
                   command: str = "advebm-teach bench perturb") -> dict[str, Any]:
    """Every strategy of ``strategies`` on ``protocol.seeds`` seeds; returns the results (see
    ``report``)."""
    protocol = protocol or PerturbStudyProtocol.for_mode()
    started = time.perf_counter()
    task, plm = make_task(config), load_pretrained("plm", config)
    # the energies train and are judged on the best device here; P_LM samples on the CPU
    pretrained = load_pretrained("energy_lm", config).to(pick_device())
    pretrained.head = "mean"
    test_data = task.sample(protocol.n_test, seed=50_000)
    test_negatives = sample_lm(plm, task, protocol.n_test, seed=50_001)
    pool = sample_lm(plm, task, 4 * protocol.attack_sequences, seed=50_002)
    attack_start = pool[task.correctness(pool) < 1][: protocol.attack_sequences]
    numel = task.seq_len * pretrained.config["d_model"]
    names = list(strategies(protocol, numel))
    runs: dict[str, dict[str, list[float]]] = {
        name: {key: [] for key in (*METRICS, "train_seconds")} for name in ["baseline", *names]}
    passes = {}
    bar = tqdm(total=(len(names) + 1) * protocol.seeds, disable=not progress,
               desc="perturb experiment", unit="run")

    def judge(name: str, model: nn.Module, seconds: float) -> None:
        runs[name]["train_seconds"].append(round(seconds, 2))
        for key, value in evaluate(model, task, test_data, test_negatives, attack_start,
                                   protocol).items():
            runs[name][key].append(value)
        bar.update(1)
        bar.set_postfix(strategy=name)

    for seed in range(protocol.seeds):
        data = task.sample(protocol.n_train, seed=60_000 + seed)
        negatives = sample_lm(plm, task, protocol.n_train, seed=70_000 + seed)
        baseline, clock = copy.deepcopy(pretrained), time.perf_counter()
        train_classifier(baseline, data, negatives, Clean(),
                         protocol.training(protocol.baseline_epochs, seed))
        judge("baseline", baseline, time.perf_counter() - clock)
        for name, strategy in strategies(protocol, numel, seed).items():
            model, clock = copy.deepcopy(baseline), time.perf_counter()
            train_classifier(model, data, negatives, strategy,
                             protocol.training(protocol.epochs, 1_000 + seed))
            judge(name, model, time.perf_counter() - clock)
            passes[name] = strategy.passes
    bar.close()
    summary = {name: {key: list(interval(values[key])) for key in METRICS}
               for name, values in runs.items()}
    return {"command": command, "config": config, "fast_mode": fast_mode(),
            "protocol": asdict(protocol), "seeds": list(range(protocol.seeds)), "passes": passes,
            "runs": runs, "summary": summary, "attacked_samples": len(attack_start),
            "wall_s": round(time.perf_counter() - started, 1),
            "threads": torch.get_num_threads()}


def report_perturb_study(results: dict[str, Any]) -> str:
    """A text table (mean [95 % interval] over seeds); the last line is one JSON object of the
    means."""
    labels = {"clean_accuracy": "clean accuracy", "pgd_accuracy": "PGD accuracy",
              "spurious_found": "spurious found", "steps_to_spurious": "steps to spurious"}
    protocol = results["protocol"]
    lines = [f"embedding-space adversarial training of the BCE energy: "
             f"{len(results['seeds'])} seeds, "
             f"{results['wall_s']:.0f} s ({'fast mode' if results['fast_mode'] else 'full'}); "
             f"PGD ball {protocol['eval_epsilon']} (L2, {protocol['eval_steps']} steps); "
             f"tabu attack on {results['attacked_samples']} wrong P_LM samples for "
             f"{protocol['attack_steps']} steps",
             f"{'strategy':<38}{'passes':>7}" + "".join(f"{labels[key]:>24}" for key in METRICS)]
    for name, row in results["summary"].items():
        passes = "-" if name == "baseline" else results["passes"][name]
        lines.append(f"{name:<38}{passes:>7}" + "".join(
            f"{m:>10.3f} [{lo:5.3f},{hi:5.3f}]" for m, lo, hi in (row[key] for key in METRICS)))
    lines.append(json.dumps({"strategies": {name: {key: round(row[key][0], 4) for key in METRICS}
                                            for name, row in results["summary"].items()}}))
    return "\n".join(lines)
