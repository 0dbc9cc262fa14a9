"""The exact transition matrix of Gibbs-with-Gradients on the toy EBM: detailed balance, seen.

One step of ``mcmc.gibbs_with_gradients`` from state x moves to a state y one substitution away
with probability

    M[x, y] = q(y | x) min(1, r(x, y)),   r(x, y) = p(y) q(x | y) / (p(x) q(y | x)),

and stays with probability M[x, x] = 1 - sum_{y != x} M[x, y]. With r as written,
p(x) M[x, y] = min(p(x) q(y | x), p(y) q(x | y)) is symmetric in x and y (**detailed balance**),
so p M = p: p is the chain's stationary distribution. ``symmetric_ratio=True`` drops the q terms
(r = p(y) / p(x), right only for a symmetric proposal): the flows no longer balance and the chain
settles on another distribution. The toy has V^T states (81 at V = 3, T = 4), so M is a small
dense matrix, built from the same building blocks the sampler runs (``mcmc.gwg_proposal`` on the
course's first-order score).
"""

from __future__ import annotations

import torch

from ..checks import check_bool
from ..mcmc import gwg_proposal
from ..saliency import embedding_table, energy_and_gradient, first_order_from_gradients
from .ebm import ToyEBM


def gwg_kernel(model: ToyEBM, symmetric_ratio: bool = False) -> torch.Tensor:
    """``(S, S)`` float64: M[x, y] over ``model.states()`` (rows sum to 1), as the module docstring
    writes it; ``symmetric_ratio`` drops q from the MH ratio."""
    if not isinstance(model, ToyEBM):
        raise TypeError(f"model must be a ToyEBM (its states are enumerable), "
                        f"got {type(model).__name__}")
    check_bool("symmetric_ratio", symmetric_ratio)
    states = model.states()  # (S, T)
    S, T = states.shape
    V = model.n_symbols
    grads = energy_and_gradient(model, states)
    scores = first_order_from_gradients(grads, embedding_table(model, V, states.device), states)
    allowed = torch.ones(S, T, V, dtype=torch.bool)
    log_q = gwg_proposal(scores, states, allowed)  # (S, T, V): log q(y | x), y = x with v at i
    energy = grads.energy.detach()  # U(x) (S,)
    # the row of y = x with v at i: x's row + (v - x_i) V^(T-1-i), (S, T, V)
    powers = V ** torch.arange(T - 1, -1, -1)
    target = (torch.arange(S)[:, None, None]
              + (torch.arange(V) - states[:, :, None]) * powers[:, None])
    # log q(x | y): at y, the move that writes x_i back at i, (S, T, V)
    reverse = log_q[target, torch.arange(T)[:, None], states[:, :, None].expand(S, T, V)]
    log_ratio = energy[:, None, None] - energy[target]
    if not symmetric_ratio:
        log_ratio = log_ratio + reverse - log_q
    stay = torch.nn.functional.one_hot(states, V).bool()  # v == x_i: not a move
    move = torch.where(stay, 0.0, log_q.exp() * log_ratio.clamp(max=0).exp())  # (S, T, V)
    kernel = torch.zeros(S, S, dtype=torch.float64)
    kernel.index_put_((torch.arange(S)[:, None, None].expand(S, T, V), target), move,
                      accumulate=True)
    return kernel + torch.diag(1 - kernel.sum(dim=1))


def stationary_distribution(kernel: torch.Tensor, steps: int = 5_000) -> torch.Tensor:
    """``(S,)``: where the chain of ``kernel`` settles, u M^steps from the uniform u."""
    distribution = torch.full((len(kernel),), 1 / len(kernel), dtype=kernel.dtype)
    for _ in range(steps):
        distribution = distribution @ kernel
    return distribution
