"""Checkers of notebook 01's exercises (an EBM computed exactly), against exact enumeration."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, verdict_of_tensors



def check_log_partition(log_partition: Callable[[Any], Any]) -> Verdict:
    """Exercise 01.1: ``log_partition(energies (N,)) -> log sum_x exp(-E(x))`` (eq. 2), without
    overflow.

    Reference: Python floats, shifted by the largest -E before exponentiating (math.fsum for the
    sum).
    """
    check_callable("log_partition", log_partition)
    import math

    import torch

    generator = torch.Generator().manual_seed(0)
    cases = [torch.zeros(4, dtype=torch.float64),
             torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
             torch.randn(1024, generator=generator, dtype=torch.float64) * 3,
             torch.tensor([-1000.0, -999.0, -998.0], dtype=torch.float64),  # exp(1000) overflows
             torch.tensor([1000.0, 1001.0], dtype=torch.float64)]  # exp(-1000) underflows to 0
    trials = []
    for energies in cases:
        values = [-float(e) for e in energies]
        top = max(values)
        expected = torch.tensor(top + math.log(math.fsum(math.exp(v - top) for v in values)),
                                dtype=torch.float64)
        shown = energies.tolist() if len(energies) < 8 else f"{len(energies)} random energies"
        trials.append((f"log_partition({shown})", expected,
                       lambda e=energies: log_partition(e.clone())))
    return verdict_of_tensors("log_partition", trials)
