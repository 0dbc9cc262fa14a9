"""Gradient-informed MCMC on token sequences: Gibbs-with-Gradients and discrete Langevin (DMALA).

Both sample p(x) = exp(-U(x)) / Z for an energy U on the course's embedding seam: a ``ToyEBM``
(U = E_toy), or the residual model's ``residual.ResidualEnergy`` (U = E / temperature - log P_LM).
Both propose from the course's one first-order token score, the HotFlip score of ``saliency.py``,

    Δ̂(x)[i, v] = g_i . (W_{x_i} - W_v) + t_i[v] - t_i[x_i]  ~  U(x) - U(x with v at i),

the predicted change of log p when v is written at i (g_i = grad_{e_i} U, W the embedding
table, t the gradient at a one-hot target: docs/notation.md), from one forward and one backward
pass. Only the positions ``task.editable_mask`` allows change, and only to
``task.writable_tokens``.

* **Gibbs-with-Gradients** (Grathwohl et al. 2021): one substitution (i, v), v != x_i, drawn from
  q(i, v | x) = softmax over all single substitutions of Δ̂(x)[i, v] / 2.
* **DMALA**, discrete Langevin with the MH correction (Zhang et al. 2022): every editable position
  at once, independently, q(x' | x) = prod_i q_i(x'_i | x) with
  q_i(v | x) ∝ exp(Δ̂(x)[i, v] / 2 - ||onehot(v) - onehot(x_i)||^2 / (2 beta))
  = exp(Δ̂(x)[i, v] / 2 - [v != x_i] / beta); beta is ``step_size``.

Both accept x' with the Metropolis-Hastings probability min(1, r),

    r = p(x') q(x | x') / (p(x) q(x' | x)),   log r = U(x) - U(x') + log q(x | x') - log q(x' | x),

so p is invariant however rough the first-order score is: it decides how fast the chains mix,
never where they go.

Cost, counted exactly: each chain's start and each proposal are scored by one forward and one
backward pass (U(x') and Δ̂(x') come together; Δ̂(x') is needed for the reverse probability
q(x | x')), so ``energy_evaluations = gradient_passes = chains * (steps + 1)``. For a
``ResidualEnergy`` one evaluation runs both E and P_LM.

Randomness and devices: everything runs on the energy model's device; the random numbers (Gumbel
noise for the proposals, uniforms for the MH test) are drawn from ``generator`` on its own device
(CPU by default) and moved there, so a seed gives the same chains on any device up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attack import AttackableTask
from .checks import check_choice, check_int, check_positive, model_device, seeded_generator
from .models import evaluation_mode
from .saliency import embedding_table, energy_and_gradient, first_order_from_gradients


@dataclass(frozen=True)
class ChainTrace:
    """Every step of B chains over S steps, on the CPU: ``tokens (S+1, B, T)`` (index 0: the
    start), ``energy (S+1, B)`` (U of those), ``proposed (S, B, T)`` and ``log_ratio (S, B)``
    (log r of each proposal; it was accepted when the next state equals it)."""

    tokens: torch.Tensor
    energy: torch.Tensor
    proposed: torch.Tensor
    log_ratio: torch.Tensor


@dataclass(frozen=True)
class ChainResult:
    """``states (B, T)`` and their energies U ``(B,)`` after the last step (on the model's
    device), the fraction of proposals accepted (a DMALA proposal that changes nothing counts as
    accepted), the exact cost, and the trace (when kept)."""

    states: torch.Tensor
    energy: torch.Tensor
    acceptance_rate: float
    energy_evaluations: int
    gradient_passes: int
    trace: ChainTrace | None = None


def gwg_proposal(scores: torch.Tensor, tokens: torch.Tensor,
                 allowed: torch.Tensor) -> torch.Tensor:
    """``(B, T, V)``: log q(i, v | x) = log softmax_{(i, v)}(Δ̂(x)[i, v] / 2) over the allowed
    substitutions with v != x_i (``-inf`` elsewhere); ``scores`` Δ̂ ``(B, T, V)``."""
    logits = (scores / 2).masked_fill(~allowed | _one_hot(tokens, scores), float("-inf"))
    return torch.log_softmax(logits.flatten(1), dim=1).view_as(scores)  # over all (i, v) at once


def langevin_proposal(scores: torch.Tensor, tokens: torch.Tensor, allowed: torch.Tensor,
                      step_size: float) -> torch.Tensor:
    """``(B, T, V)``: log q_i(v | x) = log softmax_v(Δ̂(x)[i, v] / 2 - [v != x_i] / beta), each
    position normalised on its own over its allowed tokens and x_i; a position with nothing
    allowed keeps x_i (log q_i(x_i | x) = 0)."""
    current = _one_hot(tokens, scores)
    logits = scores / 2 - (~current).to(scores.dtype) / step_size
    return torch.log_softmax(logits.masked_fill(~(allowed | current), float("-inf")), dim=-1)


def metropolis_hastings_log_ratio(energy: torch.Tensor, proposed_energy: torch.Tensor,
                                  forward_log_q: torch.Tensor,
                                  reverse_log_q: torch.Tensor) -> torch.Tensor:
    """log r = log [p(x') q(x | x') / (p(x) q(x' | x))] = U(x) - U(x') + log q(x | x')
    - log q(x' | x), all ``(B,)``."""
    return energy - proposed_energy + reverse_log_q - forward_log_q


def gibbs_with_gradients(energy_model: nn.Module, task: AttackableTask, init: torch.Tensor,
                         steps: int, positions: str | None = None, seed: int | None = None,
                         generator: torch.Generator | None = None,
                         keep_trace: bool = False) -> ChainResult:
    """Gibbs-with-Gradients chains from each row of ``init (B, T)`` for ``steps`` steps.

    ``positions``: one of ``task.position_sets`` (default the first; ``AdditionTask``: "digits"
    or "answer"). Reproducible with ``seed`` or ``generator``.
    """
    return _run_chains(energy_model, task, init, steps, _GibbsWithGradients(), positions,
                       seeded_generator(seed, generator), keep_trace)


def discrete_langevin(energy_model: nn.Module, task: AttackableTask, init: torch.Tensor,
                      steps: int, step_size: float = 0.5, positions: str | None = None,
                      seed: int | None = None, generator: torch.Generator | None = None,
                      keep_trace: bool = False) -> ChainResult:
    """DMALA chains from each row of ``init (B, T)``; ``step_size`` is beta (larger: more
    positions change per proposal, fewer proposals are accepted). Arguments as
    ``gibbs_with_gradients``."""
    return _run_chains(energy_model, task, init, steps,
                       _Langevin(check_positive("step_size", step_size)), positions,
                       seeded_generator(seed, generator), keep_trace)


class _GibbsWithGradients:
    """One substitution: sampled over the flattened (i, v), scored where x and x' differ."""

    def log_probs(self, scores, tokens, allowed) -> torch.Tensor:
        return gwg_proposal(scores, tokens, allowed)

    def sample(self, log_q: torch.Tensor, tokens: torch.Tensor, generator) -> torch.Tensor:
        B, T, V = log_q.shape
        move = _gumbel_argmax(log_q.flatten(1), generator)  # (B,): the flat index i * V + v
        proposed = tokens.clone()
        proposed[torch.arange(B, device=tokens.device), move // V] = move % V
        return proposed

    def log_prob(self, log_q: torch.Tensor, tokens: torch.Tensor,
                 proposed: torch.Tensor) -> torch.Tensor:
        """log q(x' | x) for x' one substitution away from x."""
        rows = torch.arange(len(tokens), device=tokens.device)
        position = (tokens != proposed).int().argmax(dim=1)  # (B,)
        return log_q[rows, position, proposed[rows, position]]


@dataclass(frozen=True)
class _Langevin:
    """Every position on its own: sampled per position, scored as the product."""

    step_size: float

    def log_probs(self, scores, tokens, allowed) -> torch.Tensor:
        return langevin_proposal(scores, tokens, allowed, self.step_size)

    def sample(self, log_q: torch.Tensor, tokens: torch.Tensor, generator) -> torch.Tensor:
        return _gumbel_argmax(log_q, generator)  # (B, T, V) -> (B, T)

    def log_prob(self, log_q: torch.Tensor, tokens: torch.Tensor,
                 proposed: torch.Tensor) -> torch.Tensor:
        """log q(x' | x) = sum_i log q_i(x'_i | x)."""
        return log_q.gather(-1, proposed[..., None]).squeeze(-1).sum(dim=1)


def _run_chains(energy_model, task, init, steps, proposal, positions, generator,
                keep_trace) -> ChainResult:
    """Metropolis-Hastings with ``proposal``, all chains at once (see the module docstring)."""
    if not callable(getattr(energy_model, "energy_from_embeds", None)):
        raise TypeError(f"energy_model must be an energy model (embed, energy_from_embeds), "
                        f"got {type(energy_model).__name__}")
    task.check_model("energy_model", energy_model)
    steps = check_int("steps", steps, 0)
    positions = (task.position_sets[0] if positions is None
                 else check_choice("positions", positions, task.position_sets))
    device = model_device(energy_model)
    x = task.check_sequences(init).to(device)
    B, V = len(x), task.vocab_size
    writable = torch.zeros(V, dtype=torch.bool, device=device)
    writable[task.writable_tokens().to(device)] = True
    # (B, T, V): token v may be written at position i
    allowed = task.editable_mask(x, positions).to(device)[:, :, None] & writable
    table = embedding_table(energy_model, V, device)
    accepted, trace = 0, _TraceRecorder() if keep_trace else None
    with evaluation_mode(energy_model):
        energy, log_q = _score(energy_model, table, proposal, x, allowed)
        for _ in range(steps):
            proposed = proposal.sample(log_q, x, generator)
            new_energy, new_log_q = _score(energy_model, table, proposal, proposed, allowed)
            log_ratio = metropolis_hastings_log_ratio(
                energy, new_energy, proposal.log_prob(log_q, x, proposed),
                proposal.log_prob(new_log_q, proposed, x))
            accept = _uniform(B, generator, log_ratio).log() < log_ratio  # (B,)
            if trace is not None:
                trace.add(x, energy, proposed, log_ratio)
            x = torch.where(accept[:, None], proposed, x)
            energy = torch.where(accept, new_energy, energy)
            log_q = torch.where(accept[:, None, None], new_log_q, log_q)
            accepted += int(accept.sum())
    return ChainResult(x, energy, accepted / max(B * steps, 1), B * (steps + 1),
                       B * (steps + 1), None if trace is None else trace.finish(x, energy))


class _TraceRecorder:
    """Collects each step's state before the move, the proposal and its log r, on the CPU."""

    def __init__(self) -> None:
        self.tokens, self.energy, self.proposed, self.log_ratio = [], [], [], []

    def add(self, x, energy, proposed, log_ratio) -> None:
        for values, value in ((self.tokens, x), (self.energy, energy),
                              (self.proposed, proposed), (self.log_ratio, log_ratio)):
            values.append(value.cpu())

    def finish(self, x: torch.Tensor, energy: torch.Tensor) -> ChainTrace:
        """The trace, with the final state appended."""
        tokens, energies = self.tokens + [x.cpu()], self.energy + [energy.cpu()]
        B, T = x.shape
        return ChainTrace(
            torch.stack(tokens), torch.stack(energies),
            torch.stack(self.proposed) if self.proposed else x.new_empty(0, B, T).cpu(),
            torch.stack(self.log_ratio) if self.log_ratio else energy.new_empty(0, B).cpu())


def _score(energy_model, table, proposal, x, allowed) -> tuple[torch.Tensor, torch.Tensor]:
    """U(x) ``(B,)`` and the proposal's log-probabilities from x ``(B, T, V)``: one forward and
    one backward pass, through the course's first-order score."""
    grads = energy_and_gradient(energy_model, x, target_gradient=True)
    scores = first_order_from_gradients(grads, table, x)  # Δ̂(x): (B, T, V)
    return grads.energy, proposal.log_probs(scores, x, allowed)


def _one_hot(tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, T, V)`` bool: v == x_i."""
    return F.one_hot(tokens, like.shape[-1]).bool()


def _uniform(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """U(0, 1) draws in float64 from ``generator`` on its own device, moved to ``like``'s."""
    source = generator.device if generator is not None else torch.device("cpu")
    draws = torch.rand(shape, generator=generator, device=source, dtype=torch.float64)
    return draws.clamp_min(torch.finfo(torch.float64).tiny).to(like.device)


def _gumbel_argmax(log_probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of the last dimension: argmax(log q + Gumbel noise) ~ q."""
    gumbel = -(-_uniform(log_probs.shape, generator, log_probs).log()).log()
    return (log_probs + gumbel).argmax(dim=-1)
