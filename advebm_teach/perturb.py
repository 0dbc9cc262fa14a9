"""Embedding-space adversaries and the gradient penalty (the training steps built on them:
``perturb_steps``).

Text has no small perturbations (two one-hot vectors are always sqrt(2) apart), so these act on the
models' embedding seam: with e = ``model.embed(tokens)`` ``(B, T, D)`` and ``loss_fn(e) -> L`` (a
scalar, the batch's mean loss), an adversary returns a perturbation ``delta`` shaped like e, and
training uses L(e + delta). The embedding *output* is perturbed; no table is ever edited in place.

The inner maximisation of min_theta E[max_{||delta|| <= eps} L(e + delta)] (Madry et al.),
approximated by

* ``fgsm``: delta = eps sign(g) (Goodfellow et al. 2015), g = grad_e L, an L-inf step;
* ``fgm``: delta_b = eps g_b / ||g_b||_2 per example b over all its tokens (Miyato et al. 2017);
* ``pgd``: delta_{k+1} = Proj_eps(delta_k + alpha * ascent_direction(g(e + delta_k))), K steps, L2
  or L-inf;
* ``embedding_matrix_fgm``: the FGM blog's shortcut, the gradient of the embedding *table*
  normalised over the table, so every occurrence of a token moves the same way (a contrast, not a
  recommendation);

and ``gradient_penalty`` = ||grad_e L||^2, which training with delta = eps g matches to first
order: grad_theta L(e + eps g) = grad_theta (L + eps/2 ||g||^2) + O(eps^2).

Devices: a perturbation is made on the device of the embeddings it perturbs (random starts drawn
from a CPU generator are moved there).

"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F

from .checks import (check_bool, check_callable, check_choice, check_finite, check_generator,
                     check_int, check_positive, check_tensor, check_token_ids)

Norm = Literal["l2", "linf"]
LossFn = Callable[[torch.Tensor], torch.Tensor]
_TINY = 1e-12


# ---------------------------------------------------------------------- checks
def _check_embeds(embeds: torch.Tensor) -> torch.Tensor:
    if check_tensor("embeds", embeds, floating=True).dim() < 2:
        raise ValueError(f"embeds must be a (B, ..., D) tensor, got shape {tuple(embeds.shape)}")
    return embeds


def _check_norm(norm: str) -> str:
    return check_choice("norm", norm, ("l2", "linf"))


def check_scalar_loss(loss: torch.Tensor) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
    return loss


def _check_loss_fn(loss_fn: LossFn) -> LossFn:
    return check_callable("loss_fn", loss_fn, "a function loss_fn(embeds) -> scalar loss")


def check_gradient(gradient: torch.Tensor) -> torch.Tensor:
    """A NaN or infinite gradient would give a NaN (or, through sign, a zero) perturbation."""
    return check_finite("loss_fn's gradient with respect to the embeddings", gradient)


# ---------------------------------------------------------------------- the geometry of the ball
def per_example_norm(x: torch.Tensor) -> torch.Tensor:
    """||x_b||_2 over all but the batch dimension, ``(B, 1, ..., 1)`` to broadcast with x."""
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def ascent_direction(gradient: torch.Tensor, norm: Norm = "l2") -> torch.Tensor:
    """The steepest-ascent unit step: g_b / ||g_b||_2 per example (L2 ball), or sign(g) (L-inf)."""
    check_tensor("gradient", gradient, floating=True)
    if _check_norm(norm) == "linf":
        return gradient.sign()
    return gradient / per_example_norm(gradient).clamp_min(_TINY)


def project(delta: torch.Tensor, epsilon: float, norm: Norm = "l2") -> torch.Tensor:
    """Proj onto {||delta_b|| <= eps} for each example b: rescale (L2) or clip entries (L-inf)."""
    check_tensor("delta", delta, floating=True)
    epsilon = check_positive("epsilon", epsilon)
    if _check_norm(norm) == "linf":
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / per_example_norm(delta).clamp_min(_TINY)).clamp(max=1.0)


def ascend(delta: torch.Tensor, gradient: torch.Tensor, alpha: float, epsilon: float,
           norm: Norm = "l2") -> torch.Tensor:
    """One projected ascent step: Proj_eps(delta + alpha * ascent_direction(g))."""
    step = check_positive("alpha", alpha) * ascent_direction(gradient, norm)
    return project(delta + step, epsilon, norm)


def random_in_ball(like: torch.Tensor, epsilon: float, norm: Norm = "l2",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniform draw from each example's eps-ball (L2: in the ball; L-inf: in the cube)."""
    check_tensor("like", like, floating=True)
    epsilon = check_positive("epsilon", epsilon)
    check_generator("generator", generator)
    device = generator.device if generator is not None else like.device
    if _check_norm(norm) == "linf":
        sample = (torch.rand(like.shape, generator=generator, device=device,
                             dtype=like.dtype) * 2 - 1) * epsilon
        return sample.to(like.device)
    direction = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
    # (B,): r = U^(1/n) makes the draw uniform in volume, n = the entries per example
    radius = torch.rand(like.shape[0], generator=generator, device=device,
                        dtype=like.dtype) ** (1 / like[0].numel())
    direction = direction / per_example_norm(direction).clamp_min(_TINY)
    # radius (B,) -> (B, 1, ..., 1), to scale each example's unit direction
    return (direction * epsilon * radius.view(-1, *([1] * (like.dim() - 1)))).to(like.device)


# ----------------------------------------------------------- adversaries: loss_fn, embeds -> delta
def embedding_gradient(loss_fn: LossFn, embeds: torch.Tensor) -> torch.Tensor:
    """g = grad_e L at ``embeds``: one forward and one backward pass to the input.

    The parameters get no gradient.
    """
    _check_loss_fn(loss_fn)
    point = _check_embeds(embeds).detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(check_scalar_loss(loss_fn(point)), point)
    return check_gradient(gradient)


def fgsm(loss_fn: LossFn, embeds: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGSM: delta = eps sign(grad_e L), the best first-order step in the L-inf ball. One pass."""
    epsilon = check_positive("epsilon", epsilon)
    return epsilon * embedding_gradient(loss_fn, embeds).sign()


def fgm(loss_fn: LossFn, embeds: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGM: delta_b = eps g_b / ||g_b||_2, g_b example b's gradient over all its tokens. One pass.

    ||delta_b|| = eps exactly (0 where the gradient vanishes).
    """
    epsilon = check_positive("epsilon", epsilon)
    return epsilon * ascent_direction(embedding_gradient(loss_fn, embeds), "l2")


def pgd(loss_fn: LossFn, embeds: torch.Tensor, epsilon: float, alpha: float, steps: int,
        norm: Norm = "l2", random_start: bool = False,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD: delta_{k+1} = Proj_eps(delta_k + alpha * ascent_direction(grad_e L(e + delta_k))).

    k < ``steps``; delta_0 = 0, or uniform in the ball with ``random_start`` (drawn from
    ``generator``). ``steps`` passes; every iterate lies in the eps-ball.
    """
    _check_loss_fn(loss_fn)
    _check_embeds(embeds)
    epsilon, alpha = check_positive("epsilon", epsilon), check_positive("alpha", alpha)
    steps = check_int("steps", steps, 1)
    _check_norm(norm)
    check_bool("random_start", random_start)
    check_generator("generator", generator)
    embeds = embeds.detach()
    delta = (random_in_ball(embeds, epsilon, norm, generator) if random_start
             else torch.zeros_like(embeds))
    for _ in range(steps):
        delta = ascend(delta, embedding_gradient(loss_fn, embeds + delta), alpha, epsilon, norm)
    return delta


def embedding_matrix_fgm(loss_fn: LossFn, embeds: torch.Tensor, tokens: torch.Tensor,
                         epsilon: float) -> torch.Tensor:
    """FGM on the embedding *table*: delta = (eps G / ||G||_F)[tokens], G = grad_W L.

    G[v] sums g over the uses of token v. Every occurrence of a token gets the same
    perturbation, and eps bounds the whole table's (so the batch's) perturbation, not each
    example's. Computed on the seam: the table itself is never touched. One pass.
    """
    epsilon = check_positive("epsilon", epsilon)
    _check_embeds(embeds)
    check_token_ids("tokens", tokens, None, dims=None)
    if tokens.shape != embeds.shape[:-1]:
        raise ValueError(f"tokens must have the shape of embeds without D, "
                         f"{tuple(embeds.shape[:-1])}, "
                         f"got {tuple(tokens.shape)}")
    return table_perturbation(embedding_gradient(loss_fn, embeds), tokens, epsilon)


def table_perturbation(gradient: torch.Tensor, tokens: torch.Tensor,
                       epsilon: float) -> torch.Tensor:
    """(eps G / ||G||_F)[tokens]; G[v] sums ``gradient`` over token v's positions (= grad_W L).

    ``tokens`` are moved to the gradient's device, where the result is."""
    epsilon = check_positive("epsilon", epsilon)
    tokens = check_token_ids("tokens", tokens, None, dims=None).to(gradient.device)
    table = gradient.new_zeros(int(tokens.max()) + 1, gradient.shape[-1])  # G: (V', D)
    # G[v] += g at each position holding v: (B * T, D) summed into (V', D)
    table.index_add_(0, tokens.flatten(), gradient.reshape(-1, gradient.shape[-1]))
    return (epsilon * table / table.norm().clamp_min(_TINY))[tokens]  # rows looked up: (B, T, D)


def loss_and_gradient_penalty(loss_fn: LossFn,
                              embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, ||grad_e L||^2) from one forward; the penalty keeps its graph (double backward), so it
    trains theta.

    ``embeds`` should be the model's embedding output (still attached to the table); a tensor that
    does not require grad is taken as a constant input.
    """
    _check_loss_fn(loss_fn)
    _check_embeds(embeds)
    if not embeds.requires_grad:
        embeds = embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = check_scalar_loss(loss_fn(embeds))
        (gradient,) = torch.autograd.grad(loss, embeds, create_graph=True)
    return loss, gradient.pow(2).sum()


def gradient_penalty(loss_fn: LossFn, embeds: torch.Tensor) -> torch.Tensor:
    """||grad_e L||^2, differentiable with respect to the parameters (double backward)."""
    return loss_and_gradient_penalty(loss_fn, embeds)[1]


def kl_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(p || q) = sum_c p_c (log p_c - log q_c).

    ``(N,)`` logits are binary (the logit of class 1).
    """
    check_tensor("logits_p", logits_p, floating=True)
    check_tensor("logits_q", logits_q, floating=True)
    if logits_p.shape != logits_q.shape:
        raise ValueError(f"logits_p {tuple(logits_p.shape)} and logits_q "
                         f"{tuple(logits_q.shape)} must match")
    log_p, log_q = _log_probs(logits_p), _log_probs(logits_q)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) + KL(q || p), SMART's smoothness divergence for classifiers (batch mean)."""
    return kl_divergence(logits_p, logits_q) + kl_divergence(logits_q, logits_p)


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 1:  # a binary classifier's logit l: the two classes' logits are (0, l)
        logits = torch.stack([torch.zeros_like(logits), logits], dim=-1)
    return F.log_softmax(logits, dim=-1)
