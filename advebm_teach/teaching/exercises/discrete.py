"""Checkers of notebook 05's exercises (discrete attacks), against loops and brute force."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable, check_token_ids, model_config
from .verdict import Verdict, verdict_of_tensors



def check_l1_saliency(l1_saliency: Callable[[Any], Any]) -> Verdict:
    """Exercise 04.1: ``l1_saliency(gradient (B, T, D)) -> (B, T)``, the L1 norm of each
    position's gradient.

    Reference: an explicit loop summing absolute values.
    """
    check_callable("l1_saliency", l1_saliency)
    import torch

    generator = torch.Generator().manual_seed(0)
    trials = []
    for shape in ((1, 3, 2), (4, 20, 128), (2, 5, 7)):
        gradient = torch.randn(shape, generator=generator)
        expected = torch.tensor([[sum(abs(float(g)) for g in gradient[b, t])
                                  for t in range(shape[1])]
                                 for b in range(shape[0])])
        trials.append((f"l1_saliency(gradient of shape {shape})", expected,
                       lambda g=gradient: l1_saliency(g)))
    return verdict_of_tensors("l1_saliency", trials,
                              dims=("batch row", "position"))


def check_best_digit(best_digit: Callable[[Any, Any, int], Any], energy_model: Any,
                     sequences: Any) -> Verdict:
    """Exercise 04.2: ``best_digit(energy_model, x (T,), position) -> int``, the digit of lowest
    energy at ``position``.

    Reference: every digit written in, one sequence at a time; ties go to the lower digit.
    """
    import torch

    check_callable("best_digit", best_digit)
    if not callable(getattr(energy_model, "energy", None)):
        raise TypeError(f"energy_model must be an energy model (with energy), "
                        f"got {type(energy_model).__name__}")
    config = model_config(energy_model)
    check_token_ids("sequences", sequences, config.get("vocab_size"), config.get("seq_len"), (2,))

    trials = []
    for x in sequences:
        for position in (int(p) for p in torch.nonzero(x < 10).flatten()[::4]):
            energies = []
            for digit in range(10):
                candidate = x.clone()
                candidate[position] = digit
                with torch.no_grad():
                    energies.append(float(energy_model.energy(candidate[None])[0]))
            expected = torch.tensor(min(range(10), key=lambda d: (energies[d], d)))
            trials.append((f"best_digit(energy_model, x, {position})", expected,
                           lambda x=x, p=position: best_digit(energy_model, x, p)))
    return verdict_of_tensors("best_digit", trials)
