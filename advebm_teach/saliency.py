"""Gradients of the energy with respect to the tokens, and what they say about tokens.

With e_i the embedding of token x_i and g_i = grad_{e_i}(-E(x)):

* saliency (paper eq. 4): s_i = ||g_i||_1, how strongly position i can move the energy;
* first-order token scores (HotFlip): the gradient of -E with respect to the one-hot token x_i,
  dotted with the change from x_i to v: S[i, v] = g_i . (E_v - e_{x_i}) + t_i[v] - t_i[x_i], the
  first-order estimate of -E(x with v at i) + E(x), i.e. the predicted energy *decrease*. Here
  t_i = grad(-E) with respect to x_i as a prediction *target*: zero for the scalar heads, and for
  ``lm_nll`` (which scores the answer digits by their log-probability) t_i[v] = log p(v | x_<i) on
  answer positions, so that term is exact. The same scores drive Gibbs-with-Gradients and discrete
  Langevin proposals.

One backward pass gives both. Everything acts on the models' embedding seam
(``embed`` / ``energy_from_embeds``); nothing edits an embedding table.

Devices: the tokens (and a mask) are moved to the energy model's device, and every result is
returned there (on a GPU, saliencies and scores stay on the GPU: ``.cpu()`` them to print).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .checks import (check_choice, check_int, check_tensor, check_token_ids, model_config,
                     model_device)
from .models import evaluation_mode
from .prefix_cache import energy_and_cache


@dataclass(frozen=True)
class EnergyGradients:
    """One forward and one backward pass over ``tokens (B, T)``.

    ``energy (B,)``; ``gradient`` = grad_e(-E) ``(B, T, D)`` at the embeddings ``embeds``;
    ``target_gradient`` = grad(-E) with respect to one-hot targets ``(B, T, V)`` (when asked for);
    ``cache``: the model's ``PrefixCache`` for re-scoring substitutions (when asked for and the
    head is causal).
    """

    energy: torch.Tensor
    gradient: torch.Tensor
    embeds: torch.Tensor
    target_gradient: torch.Tensor | None = None
    cache: object | None = None


def energy_and_gradient(energy_model: nn.Module, tokens: torch.Tensor, keep_cache: bool = False,
                        target_gradient: bool = False) -> EnergyGradients:
    """E(x) and its gradients from one forward and one backward; parameters receive no gradient.

    Everything is on the model's device (``tokens`` are moved there)."""
    tokens = tokens.to(model_device(energy_model))
    embeds = energy_model.embed(tokens).detach().requires_grad_(True)  # (B, T, D)
    targets = tokens
    if target_gradient:
        targets = (F.one_hot(tokens, energy_model.config["vocab_size"])  # (B, T) -> (B, T, V)
                   .to(embeds.dtype).requires_grad_(True))
    with torch.enable_grad():
        if keep_cache:
            energy, cache = energy_and_cache(energy_model, embeds, targets)
        else:
            energy, cache = energy_model.energy_from_embeds(embeds, targets), None
        inputs = [embeds, targets] if target_gradient else [embeds]
        gradients = torch.autograd.grad(-energy.sum(), inputs, allow_unused=True)
    target = None
    if target_gradient:  # unused by the scalar heads: zero
        target = gradients[1] if gradients[1] is not None else torch.zeros_like(targets)
    return EnergyGradients(energy.detach(), gradients[0], embeds.detach(), target, cache)


def saliency_from_gradient(gradient: torch.Tensor, mask: torch.Tensor | None = None,
                           norm: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """``(B, T)`` norms of the gradients ``(B, T, D)``; ``-inf`` where ``mask`` is False."""
    check_tensor("gradient", gradient, dims=(3,), floating=True)
    check_choice("norm", norm, ("l1", "l2"))
    saliency = gradient.abs().sum(dim=-1) if norm == "l1" else gradient.norm(dim=-1)
    if mask is not None:
        if check_tensor("mask", mask).dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        if mask.shape != saliency.shape:
            raise ValueError(f"mask must have the tokens' shape {tuple(saliency.shape)}, "
                             f"got {tuple(mask.shape)}")
        saliency = saliency.masked_fill(~mask.to(saliency.device), float("-inf"))
    return saliency


def embedding_table(energy_model: nn.Module, vocab_size: int,
                    device: torch.device) -> torch.Tensor:
    """``(V, D)``: E_v for every token v, read through the model's ``embed``."""
    check_int("vocab_size", vocab_size, 1)
    return energy_model.embed(torch.arange(vocab_size, device=device)).detach()


def token_saliency(energy_model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                   norm: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """``(B, T)``: s_i = ||grad_{e_i}(-E(x))|| (paper eq. 4); ``-inf`` outside ``mask``.

    ``-inf``, so that argmax never picks such a position. Computed in eval mode; the model's
    mode is restored. On the model's device.
    """
    _check_tokens(energy_model, tokens)
    check_choice("norm", norm, ("l1", "l2"))
    with evaluation_mode(energy_model):
        gradient = energy_and_gradient(energy_model, tokens).gradient
    return saliency_from_gradient(gradient, mask, norm)


def first_order_from_gradients(grads: EnergyGradients, table: torch.Tensor,
                               tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T, V)`` first-order scores from one gradient pass (see the module docstring), on its
    device (``tokens`` are moved there)."""
    tokens = tokens.to(grads.gradient.device)
    # g_i . E_v - g_i . e_{x_i}: (B, T, D) @ (D, V) -> (B, T, V), minus (B, T, 1)
    scores = grads.gradient @ table.T - (grads.gradient * grads.embeds).sum(dim=-1, keepdim=True)
    if grads.target_gradient is not None:  # + t_i[v] - t_i[x_i]
        scores = (scores + grads.target_gradient
                  - grads.target_gradient.gather(-1, tokens[..., None]))
    return scores


def first_order_scores(energy_model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T, V)``: the first-order (HotFlip) estimate of the energy decrease for v at i, on the
    model's device."""
    tokens = _check_tokens(energy_model, tokens).to(model_device(energy_model))
    with evaluation_mode(energy_model):
        grads = energy_and_gradient(energy_model, tokens, target_gradient=True)
        table = embedding_table(energy_model, energy_model.config["vocab_size"],
                                grads.embeds.device)
    return first_order_from_gradients(grads, table, tokens)


def _check_tokens(energy_model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` if ``energy_model`` is an energy model and they are ids ``(B, T)`` of its
    vocabulary and length, as far as its config tells (``TransformerEnergy``: ``seq_len``,
    ``ToyEBM``: ``length``)."""
    if not callable(getattr(energy_model, "energy_from_embeds", None)):
        raise TypeError(f"energy_model must be an energy model (embed, energy_from_embeds), "
                        f"got {type(energy_model).__name__}")
    config = model_config(energy_model)
    length = config.get("seq_len", config.get("length"))
    return check_token_ids("tokens", tokens, config.get("vocab_size"), length, dims=(2,))
