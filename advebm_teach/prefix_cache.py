"""The attack's speed-up: re-scoring single-token substitutions without recomputing the prefix.

A student can skip this file: ``attack.DiscreteAttack`` gives the same answers without it (the
tests compare it with ``attack_reference.naive_attack``), only slower.

For a causal energy (the ``eos`` and ``lm_nll`` read-outs of ``models.TransformerEnergy``), writing
token v at position p changes nothing before p: the keys and values of positions < p, and the NLL
terms of positions < p, are those of x itself. So the gradient pass over x keeps them
(``energy_and_cache``), and each candidate x' = x with v at p recomputes only positions p..T-1
(``energy_of_substitutions``). The bidirectional ``mean`` read-out has nothing to re-use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_int, check_token_ids, model_device
from .models import KeysValues, TransformerEnergy


@dataclass(frozen=True)
class PrefixCache:
    """What a causal forward over sequences x leaves behind for re-scoring substitutions.

    ``tokens (B, T)``: x; ``keys_values``: per block, the attention keys and values
    ``(B, heads, T, d_head)``; ``log_probs``: ``(B, T, V)`` next-token log-probabilities
    (``lm_nll`` read-out only, else None).
    """

    tokens: torch.Tensor
    keys_values: list[KeysValues]
    log_probs: torch.Tensor | None

    def select(self, rows: torch.Tensor) -> "PrefixCache":
        """The cache of a subset of the sequences."""
        return PrefixCache(self.tokens[rows], [(k[rows], v[rows]) for k, v in self.keys_values],
                           None if self.log_probs is None else self.log_probs[rows])


def energy_and_cache(model: nn.Module, embeds: torch.Tensor, tokens: torch.Tensor
                     ) -> tuple[torch.Tensor, PrefixCache | None]:
    """E(x) as ``model.energy_from_embeds(embeds, tokens)``, and, for a causal Transformer energy,
    a detached ``PrefixCache`` of the pass (None for any other model: nothing to re-use), both on
    the model's device (``tokens`` are moved there)."""
    tokens = tokens.to(model_device(model))
    if not isinstance(model, TransformerEnergy) or model.head == "mean":
        return model.energy_from_embeds(embeds, tokens), None
    energy, keys_values, log_probs = model.energy_with_internals(embeds, tokens)
    ids = tokens.argmax(dim=-1) if tokens.is_floating_point() else tokens  # one-hot: (B, T)
    cache = PrefixCache(ids.detach(), [(k.detach(), v.detach()) for k, v in keys_values],
                        None if log_probs is None else log_probs.detach())
    return energy, cache


@torch.no_grad()
def energy_of_substitutions(model: TransformerEnergy, cache: PrefixCache, positions: torch.Tensor,
                            candidates: torch.Tensor, max_tokens: int = 16_384) -> torch.Tensor:
    """``(B, K)``: E(x with ``candidates[b, k]`` at ``positions[b]``), for the x of ``cache``.

    Only positions >= p are recomputed; sequences are grouped by p and processed in chunks of about
    ``max_tokens`` token positions. ``positions`` and ``candidates`` are moved to the model's
    device, where the result is.
    """
    if not isinstance(model, TransformerEnergy) or model.head == "mean":
        raise ValueError("model must be a TransformerEnergy with a causal read-out ('eos' or "
                         "'lm_nll'): with 'mean' a substitution changes every position")
    if not isinstance(cache, PrefixCache):
        raise TypeError(f"cache must be a PrefixCache (from energy_and_cache), "
                        f"got {type(cache).__name__}")
    check_token_ids("candidates", candidates, model.config["vocab_size"], dims=(2,))
    length = cache.tokens.shape[1]
    check_token_ids("positions", positions, length, dims=(1,))
    check_int("max_tokens", max_tokens, 1)
    if not len(positions) == len(candidates) == len(cache.tokens):
        raise ValueError(f"positions and candidates must have one row per cached sequence "
                         f"({len(cache.tokens)}), got {len(positions)} and {len(candidates)}")
    device = model_device(model)
    positions, candidates = positions.to(device), candidates.to(device)
    dtype = cache.keys_values[0][0].dtype
    out = torch.empty(candidates.shape, dtype=dtype, device=candidates.device)
    for p in positions.unique().tolist():
        if p == 0:
            raise ValueError("positions must lie in 1..T-1: position 0 has no prefix to reuse")
        rows = (positions == p).nonzero().squeeze(1)
        per_row = candidates.shape[1] * (length - p)
        for chunk in rows.split(max(1, max_tokens // per_row)):
            out[chunk] = _substitution_energy(model, cache.select(chunk), p, candidates[chunk])
    return out


def _substitution_energy(model: TransformerEnergy, cache: PrefixCache, p: int,
                         candidates: torch.Tensor) -> torch.Tensor:
    """``(n, K)``: the energies of the cached sequences with each candidate at position ``p``."""
    n, k = candidates.shape
    suffix = cache.tokens[:, p:].unsqueeze(1).repeat(1, k, 1)  # (n, K, T-p): positions p..T-1
    suffix[:, :, 0] = candidates
    past = [(keys[:, :, :p].unsqueeze(1), values[:, :, :p].unsqueeze(1))  # (n, 1, heads, p, d)
            for keys, values in cache.keys_values]
    # every candidate's suffix, attending to the shared prefix: (n, K, T-p, d_model)
    states, _ = model.run_blocks(model.token_embedding(suffix), causal=True, past=past, start=p)
    energy = model.energy_readout(states[:, :, -1]).squeeze(-1)  # (n, K)
    if model.head == "lm_nll":  # answer_mask[j] weighs the NLL of position j + 1
        mask, tokens = model.answer_mask, cache.tokens
        # positions 1..p-1, as in x: (n, p-1)
        before = -cache.log_probs[:, : p - 1].gather(-1, tokens[:, 1:p, None]).squeeze(-1)
        at_p = -cache.log_probs[:, p - 1].gather(-1, candidates)  # (n, K): the prefix predicts v
        # positions p+1..T-1, recomputed: (n, K, T-1-p)
        after = -model.log_probs(states[:, :, :-1]).gather(-1, suffix[:, :, 1:, None]).squeeze(-1)
        energy = (energy + (before * mask[: p - 1]).sum(dim=1, keepdim=True)
                  + at_p * mask[p - 1] + (after * mask[p:]).sum(dim=-1))
    return energy
