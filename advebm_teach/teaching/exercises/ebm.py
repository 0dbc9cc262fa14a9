"""Checkers of notebook 01's exercises (an EBM computed exactly), against exact enumeration,
autograd and plain Python arithmetic."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, explain_difference, failed_call, verdict_of_tensors


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


#: ToyEBM's parameters in ``parameters()`` order: (symbol, attribute, names of the dimensions)
_PARAMETERS = (("A", "hidden_weight", ("hidden unit", "one-hot input")),
               ("b", "hidden_bias", ("hidden unit",)),
               ("w", "out_weight", ("hidden unit",)),
               ("c", "offset", ()))


def _model_term_cases(model: Any) -> list[tuple[str, Any, Any, Any]]:
    """(call, negatives, weights, expected) for ``check_model_term``.

    Expected values, computed without the weighted-sum shortcut a student would use:

    * a handful of negatives, equal weights and then random ones: a Python loop, one autograd call
      per negative, summed with its weight;
    * all states weighted by P_theta: E_{P_theta}[grad E] = -grad log Z_theta, by autograd of
      ``model.log_partition()`` (eq. 2 differentiated through logsumexp).
    """
    import torch

    parameters = list(model.parameters())
    states = model.states()
    with torch.no_grad():
        p_theta = model.distribution()
    minus_grad_log_z = [-g for g in torch.autograd.grad(model.log_partition(), parameters)]
    cases = []
    generator = torch.Generator().manual_seed(3)
    negatives = torch.randint(0, model.n_symbols, (6, model.length), generator=generator)
    negatives[4] = negatives[1]  # a repeated negative counts twice
    raw = torch.rand(6, generator=generator, dtype=torch.float64) + 0.1
    for weights in (None, raw / raw.sum()):
        per_negative = [torch.autograd.grad(model.energy(x[None]).sum(), parameters)
                        for x in negatives]
        factors = [1 / len(negatives)] * len(negatives) if weights is None else weights.tolist()
        expected = [sum(factor * grads[j] for factor, grads in zip(factors, per_negative))
                    for j in range(len(parameters))]
        shown = "weights=None" if weights is None else f"weights={[round(w, 3) for w in factors]}"
        cases.append((f"model_term(model, {negatives.tolist()}, {shown})", negatives, weights,
                      expected))
    cases.append((f"model_term(model, all {len(states)} states, weights=P_theta)", states, p_theta,
                  minus_grad_log_z))
    return cases


def _flat(tensors: Any) -> Any:
    import torch

    return torch.cat([torch.as_tensor(t).detach().reshape(-1).double() for t in tensors])


def _likely_mistake(got: list[Any], expected: list[Any], negatives: Any, weights: Any,
                    model: Any) -> str:
    """A hint when ``got`` is a known wrong answer: the sign flipped, a sum for a mean, the
    weights ignored."""
    import torch

    got_flat, expected_flat = _flat(got), _flat(expected)
    if got_flat.shape != expected_flat.shape:
        return ""
    if torch.allclose(got_flat, -expected_flat, rtol=1e-5, atol=1e-8):
        return " (the sign is flipped: the model term is E[grad E], not E[grad(-E)])"
    if weights is None and torch.allclose(got_flat, len(negatives) * expected_flat, rtol=1e-5,
                                          atol=1e-8):
        return f" (that is the sum over the {len(negatives)} negatives, not their mean)"
    if weights is not None:
        uniform = torch.autograd.grad(model.energy(negatives).mean(), list(model.parameters()))
        if torch.allclose(got_flat, _flat(uniform), rtol=1e-5, atol=1e-8):
            return " (that is the plain mean over the negatives: the weights were ignored)"
    return ""


def check_model_term(model_term: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``model_term(model, negatives (K, T), weights (K,) or None)`` is
    sum_k w_k grad_theta E_theta(x_k), one tensor per parameter in ``parameters()`` order
    (w_k = 1/K when ``weights`` is None): the model term of eq. 3 from negative samples.

    Checked on a ``ToyEBM`` with 3 symbols and length 3 (27 states) against the references of
    ``_model_term_cases``, and the parameters must be left unchanged.
    """
    check_callable("model_term", model_term)
    import torch

    from ...toy.ebm import ToyEBM

    model = ToyEBM(3, 3, seed=4, hidden=6)
    with torch.no_grad():  # a bias that is not zero, so that b's gradient is a sterner test
        model.hidden_bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(5))
    before = [p.detach().clone() for p in model.parameters()]
    for call, negatives, weights, expected in _model_term_cases(model):
        try:
            got = model_term(model, negatives.clone(),
                             None if weights is None else weights.clone())
        except Exception as error:  # the student's code raised: say so, do not crash
            return failed_call("model_term", call, error)
        if not all(torch.equal(b, p) for b, p in zip(before, model.parameters())):
            return Verdict(False, f"✗ wrong: {call} changed the model's parameters; "
                                  f"compute gradients, take no optimisation step")
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of "
                                  f"model_term")
        if not isinstance(got, (list, tuple)) or len(got) != len(_PARAMETERS):
            kind = (f"a {type(got).__name__} of length {len(got)}"
                    if isinstance(got, (list, tuple)) else f"a {type(got).__name__}")
            return Verdict(False, f"✗ wrong: {call} returned {kind}; expected a list of "
                                  f"{len(_PARAMETERS)} tensors, one per parameter (A, b, w, c)")
        for j, (symbol, attribute, dims) in enumerate(_PARAMETERS):
            if not isinstance(got[j], torch.Tensor):
                return Verdict(False, f"✗ wrong: {call}[{j}], the gradient for {symbol} "
                                      f"({attribute}), is a {type(got[j]).__name__}, expected "
                                      f"a tensor of shape {tuple(expected[j].shape)}")
            difference = explain_difference(got[j].detach(), expected[j].detach(), dims,
                                            rtol=1e-5, atol=1e-8)
            if difference is not None:
                hint = _likely_mistake(got, expected, negatives, weights, model)
                return Verdict(False, f"✗ wrong: {call}[{j}], the gradient for {symbol} "
                                      f"({attribute}), {difference}{hint}")
    return Verdict(True, "✓ right: model_term agrees with the reference on every case tried")
