"""How well the first-order (HotFlip) score ranks single substitutions, measured against the truth.

For a sequence x and every single substitution x' = x with digit v != x_i at a digit position i:

    predicted decrease  Δ̂(x)[i, v] = saliency.first_order_scores(E, x)[i, v]
                                   = g_i . (W_{x_i} - W_v) + t_i[v] - t_i[x_i],
    true decrease       Δ(x)[i, v] = E(x) - E(x'),  one forward pass per substitution

(g_i = grad_{e_i} E, W the embedding table, t the gradient at a one-hot target: the symbols of
docs/notation.md).

Δ̂ is the score HotFlip prunes candidates with and Gibbs-with-Gradients and discrete Langevin
propose from (``mcmc.py``). Per sequence, over the substitutions at one group of positions
(``GROUPS``: the answer digits c, the operand digits a and b, or all digits):

* Spearman's rho between Δ̂ and Δ (``scipy.stats.spearmanr``): does the score order the
  substitutions as the energy does? (per sequence, since a proposal or a pruning step ranks the
  substitutions of one sequence; ``pooled_spearman`` ranks all sequences' substitutions at once);
* top-1: is argmax Δ̂ the true argmax Δ, the best single substitution? By chance: 1 / (number of
  substitutions in the group).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from .checks import check_choice, check_int
from .saliency import first_order_scores
from .sampling import energies_of
from .task import AdditionTask, check_task

GROUPS = ("answer", "operands", "digits")  # c; a and b; all three


@dataclass(frozen=True)
class SubstitutionEffects:
    """For B sequences: ``predicted`` Δ̂ and ``actual`` Δ ``(B, T, V)`` (CPU, float64), valid
    where ``candidates (B, T, V)`` is True (a digit v != x_i at a digit position i); Δ is NaN
    elsewhere."""

    predicted: torch.Tensor
    actual: torch.Tensor
    candidates: torch.Tensor


@dataclass(frozen=True)
class RankAgreement:
    """Per sequence of one group: ``spearman (B,)`` (NaN where d or D is constant: no ranking),
    ``top1 (B,)`` bool; ``pooled_spearman`` over every sequence's substitutions;
    ``n_substitutions`` per sequence."""

    spearman: np.ndarray
    top1: np.ndarray
    pooled_spearman: float
    n_substitutions: int

    def summary(self) -> dict[str, float]:
        """Mean Spearman (over sequences where it is defined), top-1 rate and its chance level."""
        defined = self.spearman[~np.isnan(self.spearman)]
        return {"spearman": float(defined.mean()) if len(defined) else float("nan"),
                "pooled_spearman": self.pooled_spearman, "top1": float(self.top1.mean()),
                "chance_top1": 1 / self.n_substitutions, "sequences": len(self.top1)}


def substitution_effects(energy_model: nn.Module, task: AdditionTask, tokens: torch.Tensor,
                         batch_size: int = 2048) -> SubstitutionEffects:
    """Δ̂ and Δ for every single digit substitution of well-formed ``tokens (B, T)``; the true
    energies in eval mode, ``batch_size`` sequences per forward pass."""
    tokens = check_task(task).check_sequences(tokens).cpu()
    task.check_model("energy_model", energy_model)
    check_int("batch_size", batch_size, 1)
    predicted = first_order_scores(energy_model, tokens).detach().cpu().double()  # (B, T, V)
    digits = torch.zeros(task.vocab_size, dtype=torch.bool)
    digits[task.digit_ids] = True
    candidates = (task.editable_mask(tokens, "digits")[:, :, None] & digits
                  & (torch.arange(task.vocab_size) != tokens[:, :, None]))  # (B, T, V)
    row, position, digit = candidates.nonzero(as_tuple=True)  # one entry per substitution
    variants = tokens[row].clone()  # (n, T): each sequence once per substitution
    variants[torch.arange(len(row)), position] = digit
    energy = energies_of(energy_model, tokens, batch_size).double()  # (B,)
    actual = torch.full(candidates.shape, float("nan"), dtype=torch.float64)
    actual[candidates] = energy[row] - energies_of(energy_model, variants, batch_size).double()
    return SubstitutionEffects(predicted, actual, candidates)


def group_positions(task: AdditionTask, group: str) -> list[int]:
    """The positions of ``group``: "answer" (c), "operands" (a and b) or "digits" (all)."""
    check_choice("group", group, GROUPS)
    operands = [*task.a_positions, *task.b_positions]
    return {"answer": list(task.c_positions), "operands": operands,
            "digits": sorted(operands + list(task.c_positions))}[group]


def rank_agreement(effects: SubstitutionEffects, positions: list[int]) -> RankAgreement:
    """Spearman and top-1 agreement of Δ̂ with Δ over the substitutions at ``positions``."""
    keep = effects.candidates[:, positions]  # (B, P, V): the same count in every row
    B = len(keep)
    predicted = effects.predicted[:, positions][keep].view(B, -1).numpy()  # (B, P * 9)
    actual = effects.actual[:, positions][keep].view(B, -1).numpy()
    with warnings.catch_warnings():  # a constant row has no ranking: NaN, said in the docstring
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        spearman = np.array([stats.spearmanr(p, a).statistic for p, a in zip(predicted, actual)])
        pooled = float(stats.spearmanr(predicted.ravel(), actual.ravel()).statistic)
    top1 = predicted.argmax(axis=1) == actual.argmax(axis=1)
    return RankAgreement(spearman, top1, pooled, predicted.shape[1])


def first_order_quality(energy_model: nn.Module, task: AdditionTask, tokens: torch.Tensor,
                        batch_size: int = 2048) -> dict[str, RankAgreement]:
    """``rank_agreement`` for each of ``GROUPS``, from one ``substitution_effects``."""
    effects = substitution_effects(energy_model, task, tokens, batch_size)
    return {group: rank_agreement(effects, group_positions(task, group)) for group in GROUPS}
