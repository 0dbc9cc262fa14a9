"""Checkers of notebook 02's exercises (estimating the likelihood gradient), against exact
enumeration and plain Python arithmetic."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, verdict_of_tensors



def check_gibbs_conditional(gibbs_conditional: Callable[[Any, Any, int], Any],
                            model: Any) -> Verdict:
    """Exercise 02.1: ``gibbs_conditional(model, x (T,), i) -> (V,)``,
    p_theta(x_i = v | every other symbol of x).

    Reference: the enumerated joint ``model.distribution()``, restricted to the V states that agree
    with x everywhere but at i, and renormalised.
    """
    import torch

    from ...toy.ebm import ToyEBM, state_index

    check_callable("gibbs_conditional", gibbs_conditional)
    if not isinstance(model, ToyEBM):
        raise TypeError(f"model must be a ToyEBM, got {type(model).__name__}")

    with torch.no_grad():
        joint = model.distribution()
    generator = torch.Generator().manual_seed(1)
    trials = []
    for x in torch.randint(0, model.n_symbols, (3, model.length), generator=generator):
        for i in range(model.length):
            variants = x.repeat(model.n_symbols, 1)
            variants[:, i] = torch.arange(model.n_symbols)
            restricted = joint[state_index(variants, model.n_symbols)]
            trials.append((f"gibbs_conditional(model, {x.tolist()}, {i})",
                           restricted / restricted.sum(),
                           lambda x=x, i=i: gibbs_conditional(model, x.clone(), i)))
    return verdict_of_tensors("gibbs_conditional", trials,
                              dims=("symbol",))


def check_importance_weights(importance_weights: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 02.2: ``importance_weights(energies (K,), log_q (K,)) -> (K,)``: w_k proportional
    to exp(-E_k) / q_k, summing to 1.

    Reference: Python floats, shifted by the largest log-weight before exponentiating.
    """
    check_callable("importance_weights", importance_weights)
    import math

    import torch

    generator = torch.Generator().manual_seed(2)
    cases = [(torch.tensor([0.0, 0.0]), torch.tensor([math.log(0.5), math.log(0.25)])),
             (torch.randn(6, generator=generator), -torch.rand(6, generator=generator) * 5),
             # exp(800) overflows
             (torch.tensor([-800.0, -801.0, -799.0]), torch.tensor([-1.0, -2.0, -3.0]))]
    trials = []
    for energies, log_q in cases:
        energies, log_q = energies.double(), log_q.double()
        log_w = [-float(e) - float(lq) for e, lq in zip(energies, log_q)]
        top = max(log_w)
        total = math.fsum(math.exp(v - top) for v in log_w)
        expected = torch.tensor([math.exp(v - top) / total for v in log_w], dtype=torch.float64)
        trials.append((f"importance_weights({[round(e, 3) for e in energies.tolist()]}, "
                       f"{[round(v, 3) for v in log_q.tolist()]})", expected,
                       lambda e=energies, lq=log_q: importance_weights(e.clone(), lq.clone())))
    return verdict_of_tensors("importance_weights", trials,
                              dims=("sample",))
