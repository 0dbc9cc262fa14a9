"""Checkers of notebook 07's exercises (Algorithm 1), against plain Python arithmetic."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, verdict_of_tensors



def check_logistic_ebm_loss(logistic_ebm_loss: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 05.1: ``logistic_ebm_loss(energy_data (B,), energy_negative (B,)) -> scalar``: the
    mean of softplus(E(x+)) plus the mean of softplus(-E(x-)), the BCE of a classifier whose
    "data" logit is -E.

    Reference: Python floats, softplus(z) = max(z, 0) + log1p(exp(-|z|)) (stable for large |z|).
    """
    check_callable("logistic_ebm_loss", logistic_ebm_loss)
    import math

    import torch

    def softplus(z: float) -> float:
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))

    generator = torch.Generator().manual_seed(5)
    cases = [(torch.tensor([0.0]), torch.tensor([0.0])),
             (torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])),
             (torch.randn(7, generator=generator) * 3, torch.randn(5, generator=generator) * 3),
             # exp(800) overflows float64
             (torch.tensor([-200.0, 800.0]), torch.tensor([-900.0, 90.0]))]
    trials = []
    for data, negative in cases:
        data, negative = data.double(), negative.double()
        expected = torch.tensor(math.fsum(softplus(float(e)) for e in data) / len(data)
                                + math.fsum(softplus(-float(e)) for e in negative) / len(negative),
                                dtype=torch.float64)
        trials.append((f"logistic_ebm_loss({[round(e, 3) for e in data.tolist()]}, "
                       f"{[round(e, 3) for e in negative.tolist()]})", expected,
                       lambda d=data, n=negative: logistic_ebm_loss(d.clone(), n.clone())))
    return verdict_of_tensors("logistic_ebm_loss", trials)
