"""Drawing sequences from a language model: x_t ~ p(x_t | x_<t), left to right (ancestral sampling).

Constrained decoding forces the format tokens (``<bos>``, ``+``, ``=``, ``<eos>``) and lets only
digits be drawn where digits go, so every sample is well formed; without it an LSTM trained on
1,000 sequences writes 12-16 % malformed ones at 10 digits.
"""

from __future__ import annotations

import torch
from torch import nn

from .task import AdditionTask


@torch.no_grad()
def sample_lm(
    lm: nn.Module,
    task: AdditionTask,
    n: int,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    constrained: bool = True,
    batch_size: int = 2048,
) -> torch.Tensor:
    """``n`` sequences ``(n, seq_len)`` sampled from ``lm`` (any model with ``lm(tokens) -> logits``), on CPU.

    Reproducible with ``seed`` or ``generator`` (without either, torch's global generator is used) and
    the same ``batch_size``: chunks consume the generator one after another, so another batch size
    draws other samples. Restores the model's train/eval mode.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not temperature > 0:  # also refuses NaN
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    device = next(lm.parameters()).device
    was_training = lm.training
    lm.eval()
    try:
        chunks = [
            _sample_chunk(lm, task, min(batch_size, n - start), generator, temperature, constrained, device)
            for start in range(0, n, batch_size)
        ]
    finally:
        lm.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, task.seq_len, dtype=torch.long)


def _sample_chunk(lm, task, n, generator, temperature, constrained, device) -> torch.Tensor:
    tokens = task.format_template.repeat(n, 1)  # format tokens in place, -1 in digit slots
    digit_only = torch.full((task.vocab_size,), float("-inf"))
    digit_only[:10] = 0.0
    for t in range(1, task.seq_len):
        if constrained and not task.digit_slots[t]:
            continue  # a format token: forced
        logits = lm(tokens[:, :t].to(device))[:, -1].float().cpu() / temperature  # the prefix is all filled in
        if constrained:
            logits = logits + digit_only
        tokens[:, t] = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)
    return tokens
