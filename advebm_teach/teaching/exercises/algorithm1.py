"""Checkers of notebook 07's exercises (Algorithm 1).

* ``check_logistic_ebm_loss``: the loss both trainings use, against Python floats with a softplus
  written to survive energies of +-800;
* ``check_algorithm1_update``: one update of Algorithm 1 (lines 17-18) with that loss and plain
  SGD, against a copy of the model updated by hand: ``trainer.ebm_loss``, its gradient by
  ``torch.autograd.grad`` and theta - alpha * gradient written out parameter by parameter.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, explain_difference, failed_call, verdict_of_tensors


def check_logistic_ebm_loss(logistic_ebm_loss: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 07.1: ``logistic_ebm_loss(energy_data (B,), energy_negative (B,)) -> scalar``: the
    mean of softplus(E(x+)) plus the mean of softplus(-E(x-)), the BCE of a classifier whose
    "data" logit is -E.

    Reference: Python floats, softplus(z) = max(z, 0) + log1p(exp(-|z|)) (stable for large |z|).
    """
    check_callable("logistic_ebm_loss", logistic_ebm_loss)
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


# ---------------------------------------------------------------- one update of Algorithm 1
def tiny_energy(seed: int) -> tuple[Any, Any, Any]:
    """A tiny float64 Transformer energy (1 layer, d = 8, no dropout, sequences of 6 tokens over 7
    symbols, a random read-out so that the energy depends on its input), 4 "data" and 4 "attacked
    negative" token sequences: ``(model, x_data, x_negative)``. The global random state is left as
    it was."""
    import torch

    from ...models import TransformerEnergy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TransformerEnergy(vocab_size=7, seq_len=6, d_model=8, n_layers=1, n_heads=2,
                                  ff_dim=8, dropout=0.0).double()
        torch.nn.init.normal_(model.energy_readout.weight, std=1.0)
        tokens = torch.randint(0, 7, (8, 6))
    return model, tokens[:4], tokens[4:]


def _updates_by_hand(model: Any, x_data: Any, x_negative: Any, lr: float,
                     stale: dict[str, Any]) -> tuple[float, dict[str, dict[str, Any]]]:
    """The reference on a copy of ``model``: the logistic loss's value, and theta after one plain
    gradient step of size ``lr``, written out; beside it the parameters a few usual mistakes would
    give (to name the mistake when the student's update matches one)."""
    import torch
    import torch.nn.functional as F

    from ...trainer import ebm_loss

    model = copy.deepcopy(model)
    names, parameters = zip(*model.named_parameters())

    def gradient(loss: Any) -> dict[str, Any]:
        # parameters the energy does not use (the LM head) get no gradient: zero
        grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        return {name: torch.zeros_like(p) if g is None else g
                for name, p, g in zip(names, parameters, grads)}

    def stepped(grads: dict[str, Any]) -> dict[str, Any]:
        return {name: p.detach() - lr * grads[name] for name, p in zip(names, parameters)}

    e_data, e_negative = model.energy(x_data), model.energy(x_negative)
    loss = ebm_loss(e_data, e_negative, "logistic")
    right = gradient(loss)
    paper_mean = gradient(ebm_loss(e_data, e_negative, "paper", alpha=0.0))
    paper_sum = gradient(e_data.sum() - e_negative.sum())
    swapped = gradient(ebm_loss(-e_data, -e_negative, "logistic"))
    summed = gradient(F.softplus(e_data).sum() + F.softplus(-e_negative).sum())
    return loss.item(), {
        "right": stepped(right),
        "line 18 as written, E(x_data) - E(x'*) (this exercise uses the logistic loss "
        "train_ebm trains on)": stepped(paper_sum),
        "E(x_data) - E(x'*) averaged over the batch (this exercise uses the logistic loss "
        "train_ebm trains on)": stepped(paper_mean),
        "the signs swapped: it raises the energy of data and lowers that of negatives":
            stepped(swapped),
        "the sum over the batch, where the library's loss averages": stepped(summed),
        "gradients the optimizer still held from an earlier step: zero them first":
            stepped({name: right[name] + stale[name] for name in names}),
        "no step at all: the parameters did not move (call the optimizer's step)":
            {name: p.detach().clone() for name, p in zip(names, parameters)},
    }


def _matches(parameters: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(explain_difference(parameters[name], value, rtol=1e-7, atol=1e-10) is None
               for name, value in expected.items())


def check_algorithm1_update(algorithm1_update: Callable[[Any, Any, Any, Any], Any]) -> Verdict:
    """Exercise 07.2: ``algorithm1_update(energy_model, optimizer, x_data, x_negative) -> float``:
    one update of Algorithm 1 (lines 17-18) with the loss ``train_ebm`` trains on: zero the
    gradients, L = mean softplus(E(x_data)) + mean softplus(-E(x'*)), backpropagate, one
    optimizer step (plain SGD at learning rate alpha: theta <- theta - alpha grad L); return L's
    value before the step.

    The optimizer is ``torch.optim.SGD`` and the parameters' ``.grad`` hold an earlier step's
    gradients when the function is called. Reference: a copy of the model, ``trainer.ebm_loss``,
    ``torch.autograd.grad`` and the step written out parameter by parameter; every parameter and
    the returned loss must agree.
    """
    check_callable("algorithm1_update", algorithm1_update)
    import torch

    name = "algorithm1_update"
    for seed, lr in ((0, 0.1), (1, 0.5)):
        model, x_data, x_negative = tiny_energy(seed)
        # what an earlier step would have left behind
        stale = {key: torch.full_like(p, 0.25) for key, p in model.named_parameters()}
        loss, candidates = _updates_by_hand(model, x_data, x_negative, lr, stale)
        for key, p in model.named_parameters():
            p.grad = stale[key].clone()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        call = (f"{name}(energy_model, SGD(lr={lr}), x_data of shape (4, 6), "
                "x_negative of shape (4, 6))")
        try:
            got = algorithm1_update(model, optimizer, x_data.clone(), x_negative.clone())
        except Exception as error:
            return failed_call(name, call, error)
        parameters = {key: p.detach() for key, p in model.named_parameters()}
        if not _matches(parameters, candidates["right"]):
            for mistake, expected in list(candidates.items())[1:]:
                if _matches(parameters, expected):
                    return Verdict(False, f"✗ wrong: after {call} the parameters are those of "
                                          f"{mistake}")
            for key, value in candidates["right"].items():
                difference = explain_difference(parameters[key], value, rtol=1e-7, atol=1e-10)
                if difference is not None:
                    return Verdict(False, f"✗ wrong: after {call}, parameter {key} {difference}")
        if got is None:
            return Verdict(False, f"✗ not yet: the parameters are right, but {call} returned "
                                  "None; return the loss (a float)")
        try:
            value = float(got.detach() if isinstance(got, torch.Tensor) else got)
        except (TypeError, ValueError, RuntimeError):
            return Verdict(False, f"✗ wrong: the parameters are right, but {call} returned "
                                  f"{type(got).__name__}; return the loss as a float")
        if not math.isclose(value, loss, rel_tol=1e-7, abs_tol=1e-10):
            return Verdict(False, f"✗ wrong: the parameters are right, but {call} returned "
                                  f"{value:.6g}, expected the loss before the step, {loss:.6g}")
    return Verdict(True, f"✓ right: {name} moves every parameter as theta - alpha * grad L and "
                         "returns L, on every case tried")
