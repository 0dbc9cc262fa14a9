"""Estimators of the likelihood gradient of a ``ToyEBM``, each against the exact one.

The gradient of the mean negative log-likelihood (eq. 3, negated) is a data term minus a
model term:

    grad NLL = E_data[grad E(x)] - E_{p_theta}[grad E(x)].

The data term is a mean over the data, computed exactly by every estimator (NCE weighs it
differently). They differ in how they stand in for the model term, which needs samples of p_theta,
i.e. Z(theta):

* ``exact``: the sum over every state (possible only on an enumerable toy);
* ``gibbs``: negatives from Gibbs sweeps (each symbol redrawn from its exact conditional);
* ``gibbs_with_gradients``: Metropolis-Hastings with proposals from the first-order scores (GWG);
* ``importance_sampling``: proposal samples reweighted by exp(-E) / q (self-normalised), as
  Residual EBMs do;
* ``nce``: the Residual-EBM baseline's binary classification of data against proposal samples.
  **Its gradient is not the likelihood gradient**: it is the gradient of a different objective that
  happens to have the same optimum (when the model can reach it);
* ``adversarial``: proposal samples moved by the paper's attack (section 2.2,
  ``attack.DiscreteAttack``). **Biased**: the negatives sit at local minima of the energy, not at
  samples of p_theta.

Every Monte-Carlo estimator starts from n samples of the proposal (P_LM's role), as the paper's
attack does. Each returns a ``GradientEstimate``: one tensor per parameter and the *cost*, counted
as energy evaluations of the negative phase: one per sequence per forward pass, one more per
sequence for a backward pass (the data term costs the same for every estimator and is not counted).

Like the toy itself (``ebm.py``), everything here runs on the CPU in float64: states given on
another device are moved to the CPU, and the returned gradients and negatives are CPU tensors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .. import mcmc
from ..attack import DiscreteAttack
from ..checks import check_callable, check_int, check_positive, check_seed, check_tensor
from .ebm import BigramLM, ToyEBM, as_generator, check_states, exact_kl, state_index

Grads = list[torch.Tensor]


@dataclass(frozen=True)
class GradientEstimate:
    """``grads``: one tensor per parameter (``parameters()`` order); ``cost``: negative-phase
    energy evaluations; ``negatives (K, T)`` and their ``weights (K,)`` (None for the exact
    sum)."""

    grads: Grads
    cost: int
    negatives: torch.Tensor | None = None
    weights: torch.Tensor | None = None


# ---------------------------------------------------------------------------- checks
def _check_model(model: ToyEBM) -> ToyEBM:
    if not isinstance(model, ToyEBM):
        raise TypeError(f"model must be a ToyEBM, got {type(model).__name__}")
    return model


def _check_problem(model: ToyEBM, data: torch.Tensor, proposal: BigramLM | None = None
                   ) -> torch.Tensor:
    """``data`` (as ``torch.long``) if it holds states of ``model``, and ``proposal`` (when given)
    is a ``BigramLM`` over the same states."""
    data = check_states(data, _check_model(model).n_symbols, model.length, "data")
    if proposal is not None:
        if not isinstance(proposal, BigramLM):
            raise TypeError(f"proposal must be a BigramLM, got {type(proposal).__name__}")
        if (proposal.n_symbols, proposal.length) != (model.n_symbols, model.length):
            raise ValueError(f"proposal must be over the model's states: it has n_symbols="
                             f"{proposal.n_symbols}, length={proposal.length}, the model "
                             f"n_symbols={model.n_symbols}, length={model.length}")
    return data


# ---------------------------------------------------------------------------- negative samplers
def gibbs_sweeps(model: ToyEBM, init: torch.Tensor, sweeps: int, seed: int | torch.Generator
                 ) -> tuple[torch.Tensor, int]:
    """Run ``sweeps`` systematic Gibbs sweeps from each row of ``init``; returns (states, cost).

    At position i, x_i is redrawn from p_theta(x_i = v | x_-i) = softmax_v(-E(x with v at i)): V
    energy evaluations per position per chain. p_theta is invariant, so the chains approach it as
    sweeps grow.
    """
    x = check_states(init, _check_model(model).n_symbols, model.length, "init").clone()
    check_int("sweeps", sweeps, 0)
    generator = as_generator(seed)
    n, V = len(x), model.n_symbols
    with torch.no_grad():
        for _ in range(sweeps):
            for i in range(model.length):
                # each chain with every symbol v at i: (n * V, T)
                candidates = x.repeat_interleave(V, dim=0)
                candidates[:, i] = torch.arange(V).repeat(n)
                logits = -model.energy(candidates).view(n, V)  # -E(x with v at i): (n, V)
                x[:, i] = torch.multinomial(torch.softmax(logits, dim=1), 1,
                                            generator=generator).squeeze(1)
    return x, sweeps * model.length * V * n


def gwg_steps(model: ToyEBM, init: torch.Tensor, steps: int, seed: int | torch.Generator
              ) -> tuple[torch.Tensor, int, float]:
    """Gibbs-with-Gradients (Grathwohl et al., 2021) from each row of ``init``:
    ``mcmc.gibbs_with_gradients`` on the toy, the course's one implementation.

    Returns the states, the cost and the acceptance rate. Propose one substitution (i, v),
    v != x_i, with probability softmax(S(x)[i, v] / 2), where S is the first-order score (what
    ``saliency.first_order_scores`` returns, taken from the same forward and backward pass that
    gives E(x)); accept with the Metropolis-Hastings probability
    min(1, exp(E(x) - E(x')) q(x | x') / q(x' | x)), so p_theta stays invariant however rough S is.
    One forward and one backward pass per chain per step (and for the start): cost 2 per pass.
    """
    x = check_states(init, _check_model(model).n_symbols, model.length, "init")
    check_int("steps", steps, 0)
    chains = mcmc.gibbs_with_gradients(model, model.sequences, x, steps,
                                       generator=as_generator(seed))
    return chains.states, 2 * chains.gradient_passes, chains.acceptance_rate


# ---------------------------------------------------------------------------- gradient estimators
def exact(model: ToyEBM, data: torch.Tensor) -> GradientEstimate:
    """``model.exact_grad(data)``: the model term summed over all V^T states (one forward and
    backward each)."""
    _check_problem(model, data)
    return GradientEstimate(model.exact_grad(data), 2 * len(model.states()))


def gibbs(model: ToyEBM, data: torch.Tensor, proposal: BigramLM, n: int, seed: int,
          sweeps: int = 5) -> GradientEstimate:
    """Model term from n Gibbs chains from proposal samples (``gibbs_sweeps``), equal weights.

    Unbiased in the limit of many sweeps; with few, the chains remember where they started
    (short-run MCMC).
    """
    _check_problem(model, data, proposal)
    generator = as_generator(seed)
    negatives, cost = gibbs_sweeps(model, proposal.sample(n, generator), sweeps, generator)
    return GradientEstimate(model.contrast_grad(data, negatives), cost + 2 * n, negatives)


def gibbs_with_gradients(model: ToyEBM, data: torch.Tensor, proposal: BigramLM, n: int, seed: int,
                         steps: int = 25) -> GradientEstimate:
    """Model term from n GWG chains (``gwg_steps``) started at proposal samples, equal weights."""
    _check_problem(model, data, proposal)
    generator = as_generator(seed)
    negatives, cost, _ = gwg_steps(model, proposal.sample(n, generator), steps, generator)
    return GradientEstimate(model.contrast_grad(data, negatives), cost + 2 * n, negatives)


def importance_sampling(model: ToyEBM, data: torch.Tensor, proposal: BigramLM, n: int,
                        seed: int) -> GradientEstimate:
    """Self-normalised importance sampling: x_k ~ q, w_k proportional to exp(-E(x_k)) / q(x_k),
    sum w_k = 1.

    Consistent (the bias vanishes as n grows) when q > 0 wherever p_theta is; in practice it can
    only reweight what q writes, so a mode that q almost never visits is missed at any
    affordable n.
    """
    _check_problem(model, data, proposal)
    negatives = proposal.sample(n, seed)
    with torch.no_grad():
        # w_k: a softmax of log(exp(-E(x_k)) / q(x_k)) over the n samples, (n,)
        weights = torch.softmax(-model.energy(negatives) - proposal.log_prob(negatives), dim=0)
    return GradientEstimate(model.contrast_grad(data, negatives, weights), 3 * n, negatives,
                            weights)


def nce_loss(model: ToyEBM, data: torch.Tensor, noise: torch.Tensor,
             proposal: BigramLM) -> torch.Tensor:
    """The Residual-EBM baseline's loss: binary cross-entropy of data (label 1) against proposal
    samples (label 0).

    The classifier's logit is s(x) = -E(x) - log q(x), i.e. -E_res(x) for the residual energy
    E_res = E + log q of p(x) proportional to q(x) exp(-E_res(x)) (Deng et al., 2019). Loss:
    mean_data softplus(-s) + mean_noise softplus(s); at its optimum exp(-E) = p_data, with Z = 1.
    """
    data = _check_problem(model, data, proposal)
    noise = check_states(noise, model.n_symbols, model.length, "noise")
    logit_data = -model.energy(data) - proposal.log_prob(data)
    logit_noise = -model.energy(noise) - proposal.log_prob(noise)
    return F.softplus(-logit_data).mean() + F.softplus(logit_noise).mean()


def nce(model: ToyEBM, data: torch.Tensor, proposal: BigramLM, n: int,
        seed: int) -> GradientEstimate:
    """grad of ``nce_loss`` with n noise samples:
    E_data[(1 - sigma(s)) grad E] - E_q[sigma(s) grad E].

    **Not the likelihood gradient**: it weighs data and noise by how well the classifier already
    separates them, and a state that neither the data nor q produce gets no gradient at all.
    """
    _check_problem(model, data, proposal)
    noise = proposal.sample(n, seed)
    loss = nce_loss(model, data, noise, proposal)
    grads = list(torch.autograd.grad(loss, list(model.parameters())))
    return GradientEstimate(grads, 2 * n, noise)


def adversarial(model: ToyEBM, data: torch.Tensor, proposal: BigramLM, n: int, seed: int,
                steps: int = 5) -> GradientEstimate:
    """Model term from n proposal samples moved by the paper's attack (Algorithm 1, lines 5-17),
    equal weights: ``attack.DiscreteAttack`` on the toy's sequences, with the tabu rule (a
    position whose best symbol is already there is skipped until the sequence changes) so that
    the search moves on instead of stalling. Its cost: per sequence and step, a forward and a
    backward for the saliency (the forward also gives the current energy), and one forward per
    other symbol evaluated (none when every position is tabu).

    **Biased**: the attack carries every sample to a nearby low-energy state, so the negatives
    over-represent the modes (spurious ones included, which is the point) and do not follow
    p_theta.
    """
    _check_problem(model, data, proposal)
    check_int("steps", steps, 0)
    negatives, cost = proposal.sample(n, seed), 0
    if steps:
        trace = DiscreteAttack(model, model.sequences, steps, tabu=True).attack(negatives)
        # the candidates evaluated: every finite candidate energy but the current token's, which
        # is carried over
        evaluated = int(trace.candidate_energy.isfinite().sum() - (trace.position >= 0).sum())
        negatives, cost = trace.final, 2 * n * steps + evaluated
    return GradientEstimate(model.contrast_grad(data, negatives), cost + 2 * n, negatives)


# -------------------------------------------------------------------------- measuring and training
def flat(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """All parameters' gradients as one vector."""
    return torch.cat([g.reshape(-1) for g in grads])


def cosine(estimate: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]) -> float:
    """cos(angle) between two gradients (1: same direction)."""
    return float(F.cosine_similarity(flat(estimate), flat(reference), dim=0))


def relative_error(estimate: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]) -> float:
    """||estimate - reference|| / ||reference||."""
    reference = flat(reference)
    return float((flat(estimate) - reference).norm() / reference.norm())


Estimator = Callable[[ToyEBM, torch.Tensor, int, int], GradientEstimate]  # (model, data, n, seed)


def error_table(model: ToyEBM, data: torch.Tensor, estimators: dict[str, Estimator],
                sample_counts: Sequence[int], repeats: int,
                seed: int = 0) -> list[dict[str, float]]:
    """Bias and variance of each estimator against ``model.exact_grad(data)``, per sample count n.

    Per (name, n), over ``repeats`` seeds: mean ``cosine``, root-mean-square ``relative_error``,
    ``bias`` = ||mean estimate - exact|| / ||exact|| and
    ``spread`` = RMS ||estimate - mean estimate|| / ||exact||
    (so relative_error^2 = bias^2 + spread^2), and the mean ``cost``.
    """
    _check_problem(model, data)
    check_int("repeats", repeats, 1)
    check_seed("seed", seed)
    for name, estimator in estimators.items():
        check_callable(f"estimators[{name!r}]", estimator, "an estimator f(model, data, n, seed)")
    for n in sample_counts:
        check_int("sample_counts", n, 1)
    reference = flat(model.exact_grad(data)).detach()
    rows = []
    for name, estimator in estimators.items():
        for n in sample_counts:
            estimates = [estimator(model, data, n, seed + 1000 * r) for r in range(repeats)]
            vectors = torch.stack([flat(e.grads).detach() for e in estimates])  # (repeats, P)
            mean = vectors.mean(dim=0)
            scale = reference.norm()
            rows.append({
                "estimator": name, "n": n,
                "cosine": float(F.cosine_similarity(vectors, reference[None], dim=1).mean()),
                "relative_error": float(
                    ((vectors - reference).norm(dim=1) ** 2).mean().sqrt() / scale),
                "bias": float((mean - reference).norm() / scale),
                "spread": float(((vectors - mean).norm(dim=1) ** 2).mean().sqrt() / scale),
                "cost": sum(e.cost for e in estimates) / repeats,
            })
    return rows


def train(model: ToyEBM, data: torch.Tensor, estimator: Estimator, n: int, steps: int, lr: float,
          target: torch.Tensor, watch: torch.Tensor | None = None,
          seed: int = 0) -> tuple[ToyEBM, list[dict[str, float]]]:
    """Adam on a copy of ``model`` for ``steps`` steps; the gradient is
    ``estimator(model, data, n, seed + step)``.

    Returns the trained copy and one row per step (step 0 is before any update): ``log_likelihood``
    (mean log p_theta of ``data``), ``kl`` = KL(target || p_theta) for the distribution ``target``
    over all states, ``mass`` = p_theta(``watch``) (the total over the rows of ``watch``, when
    given) and the cumulative ``cost``.
    """
    _check_problem(model, data)
    check_callable("estimator", estimator, "an estimator f(model, data, n, seed)")
    check_int("steps", steps, 0)
    check_positive("lr", lr)
    check_seed("seed", seed)
    check_tensor("target", target, floating=True)
    model = copy.deepcopy(model)
    watched = None if watch is None else state_index(
        check_states(watch, model.n_symbols, model.length, "watch"), model.n_symbols)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history, cost = [], 0
    for step in range(steps + 1):
        with torch.no_grad():
            probs = model.distribution()
            row = {"step": step, "log_likelihood": float(model.log_prob(data).mean()),
                   "kl": exact_kl(target, probs), "cost": cost}
            if watched is not None:
                row["mass"] = float(probs[watched].sum())
        history.append(row)
        if step == steps:
            break
        estimate = estimator(model, data, n, seed + step)
        for parameter, grad in zip(model.parameters(), estimate.grads):
            parameter.grad = grad.detach()
        optimizer.step()
        cost += estimate.cost
    return model, history
