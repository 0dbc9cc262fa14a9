"""Drawing from a language model: x_t ~ p(x_t | x_<t), left to right (ancestral sampling).

Constrained decoding forces the format tokens (``<bos>``, ``+``, ``=``, ``<eos>``) and lets only
digits be drawn where digits go, so every sample is well formed; without it an LSTM trained on
1,000 sequences writes 12-16 % malformed ones at 10 digits.

Devices: the models run where they are (their inputs are moved there); every function here returns
CPU tensors (samples drawn from a CPU generator, log-probabilities, energies), which the task reads
on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import (check_bool, check_finite, check_int, check_positive, check_seed, check_tensor,
                     check_token_ids, model_config, model_device, seeded_generator)
from .models import evaluation_mode
from .task import AdditionTask, check_task


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
    """``n`` sequences ``(n, seq_len)`` from ``lm`` (a model with ``next_token_logits``), on CPU.

    Reproducible with ``seed`` or ``generator`` (without either, torch's global generator is used)
    and the same ``batch_size``: chunks consume the generator one after another, so another batch
    size draws other samples. Restores the model's train/eval mode.
    """
    check_task(task).check_model("lm", lm)
    if not callable(getattr(lm, "next_token_logits", None)):
        raise TypeError(f"lm must be a language model with next_token_logits, "
                        f"got {type(lm).__name__}")
    n = check_int("n", n, 0)
    temperature = check_positive("temperature", temperature)
    check_bool("constrained", constrained)
    batch_size = check_int("batch_size", batch_size, 1)
    generator = seeded_generator(seed, generator)
    device = model_device(lm)
    with evaluation_mode(lm):
        chunks = [
            _sample_chunk(lm, task, min(batch_size, n - start), generator, temperature,
                          constrained, device)
            for start in range(0, n, batch_size)
        ]
    return torch.cat(chunks) if chunks else torch.empty(0, task.seq_len, dtype=torch.long)


def _sample_chunk(lm, task, n, generator, temperature, constrained, device) -> torch.Tensor:
    """Left to right, one token at a time; the model carries its state (``next_token_logits``)."""
    tokens = task.format_template.repeat(n, 1)  # format tokens in place, -1 in digit slots
    digit_only = torch.full((task.vocab_size,), float("-inf"))
    digit_only[task.digit_ids] = 0.0
    state = None
    for t in range(1, task.seq_len):
        # reads x_{t-1}, predicts x_t: logits (n, V)
        logits, state = lm.next_token_logits(tokens[:, t - 1].to(device), state)
        if constrained and not task.digit_slots[t]:
            continue  # a format token: forced
        logits = logits.float().cpu() / temperature
        if constrained:
            logits = logits + digit_only
        # x_t ~ softmax(logits): (n, 1) -> (n,)
        tokens[:, t] = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)
    return tokens


@torch.no_grad()
def lm_log_prob(lm: nn.Module, task: AdditionTask, tokens: torch.Tensor,
                batch_size: int = 2048) -> torch.Tensor:
    """``(B,)`` on the CPU: log P_LM(x) as constrained ``sample_lm`` draws x, the sum over digit
    slots t of log softmax over the digits of the logits of x_t given x_<t (format tokens are
    forced: probability 1). ``tokens`` may be on any device; they are scored on the model's."""
    check_task(task).check_model("lm", lm)
    batch_size = check_int("batch_size", batch_size, 1)
    tokens = task.check_tokens(tokens).long().view(-1, task.seq_len)
    malformed = (~task.is_well_formed(tokens)).nonzero().flatten().tolist()
    if malformed:
        raise ValueError(f"tokens must be well formed (constrained sampling draws no others); "
                         f"rows {malformed[:10]} are not")
    # ids 0..9 are the digits
    device, n_digit_ids = model_device(lm), len(task.digit_ids)
    slots = task.digit_slots[1:].to(device)
    parts = []
    with evaluation_mode(lm):
        for chunk in tokens.split(batch_size):
            chunk = chunk.to(device)
            parts.append(digit_log_likelihood(lm(chunk), chunk, n_digit_ids, slots).cpu())
    return torch.cat(parts) if parts else torch.empty(0)


def digit_log_likelihood(logits: torch.Tensor, tokens: torch.Tensor, n_digits: int,
                         slots: torch.Tensor) -> torch.Tensor:
    """``(B,)``: sum over the digit slots t (``slots``, a bool mask over t = 1..T-1) of
    log softmax over the digits (ids 0..n_digits-1) of the logits ``(B, T, V)`` at t - 1, taken
    at x_t. ``tokens``: ids ``(B, T)``, or one-hot ``(B, T, V)`` (then linear in them); at least
    float32."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    # next-token log-probabilities over the digits only: (B, T, V) -> (B, T-1, n_digits)
    log_probs = torch.log_softmax(logits[:, :-1, :n_digits].to(dtype), dim=-1)
    if tokens.is_floating_point():  # one-hot targets: (B, T-1, n_digits) -> (B, T-1)
        drawn = (tokens[:, 1:, :n_digits] * log_probs).sum(dim=-1)
    else:  # ids; format slots are clamped here and dropped below
        drawn = log_probs.gather(-1, tokens[:, 1:, None].clamp(max=n_digits - 1)).squeeze(-1)
    return drawn[:, slots].sum(dim=1)


@torch.no_grad()
def energies_of(energy_model: nn.Module, tokens: torch.Tensor,
                batch_size: int = 2048) -> torch.Tensor:
    """``(N,)``: E of every sequence ``(N, T)``, in eval mode and in chunks, on the CPU."""
    if not callable(getattr(energy_model, "energy", None)):
        raise TypeError(f"energy_model must be an energy model (with energy), "
                        f"got {type(energy_model).__name__}")
    config = model_config(energy_model)
    check_token_ids("tokens", tokens, config.get("vocab_size"), config.get("seq_len"), dims=(2,))
    batch_size = check_int("batch_size", batch_size, 1)
    if len(tokens) == 0:
        return torch.empty(0)
    device = model_device(energy_model)
    with evaluation_mode(energy_model):
        return torch.cat([energy_model.energy(chunk.to(device)).cpu()
                          for chunk in tokens.split(batch_size)])


def resample_from_pool(pool: torch.Tensor, pool_energy: torch.Tensor, n_candidates: int,
                       generator: torch.Generator) -> torch.Tensor:
    """One sequence per row of ``pool (N, M, T)``, drawn among its first ``n_candidates`` with
    self-normalised weights w_j = exp(-E_j) / sum_k exp(-E_k) (``pool_energy (N, M)``, finite)."""
    check_token_ids("pool", pool, None, dims=(3,))
    check_tensor("pool_energy", pool_energy, dims=(2,), floating=True)
    if pool_energy.shape != pool.shape[:2]:
        raise ValueError(f"pool_energy must have one energy per pooled sequence, "
                         f"shape {tuple(pool.shape[:2])}, got {tuple(pool_energy.shape)}")
    n_candidates = check_int("n_candidates", n_candidates, 1, pool.shape[1])
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    energies = check_finite("pool_energy", pool_energy[:, :n_candidates])  # else NaN weights
    weights = torch.softmax(-energies.double(), dim=1)  # w_j: (N, n_candidates)
    chosen = torch.multinomial(weights, 1, generator=generator).squeeze(1)  # (N,)
    return pool[torch.arange(len(pool)), chosen]


def importance_resample(lm: nn.Module, energy_model: nn.Module, task: AdditionTask,
                        n_candidates: int, n_out: int, seed: int) -> torch.Tensor:
    """Residual-EBM generation: for each of ``n_out`` outputs draw ``n_candidates`` sequences from
    P_LM and keep one with probability proportional to exp(-E) (self-normalised importance
    resampling of P_LM exp(-E)).

    The candidates' energies must be finite: NaN or +-inf leaves no weights to draw with.
    """
    check_task(task).check_model("energy_model", energy_model)
    n_candidates = check_int("n_candidates", n_candidates, 1)
    n_out = check_int("n_out", n_out, 0)
    seed = check_seed("seed", seed)
    # (n_out * n_candidates, T) -> (n_out, n_candidates, T)
    pool = (sample_lm(lm, task, n_out * n_candidates, seed=seed)
            .view(n_out, n_candidates, task.seq_len))
    pool_energy = energies_of(energy_model, pool.flatten(0, 1)).view(n_out, n_candidates)
    check_finite("energy_model's energies of the candidates", pool_energy)
    return resample_from_pool(pool, pool_energy, n_candidates,
                              torch.Generator().manual_seed(seed + 1))


def copy_rate(samples: torch.Tensor, train_tokens: torch.Tensor) -> float:
    """Fraction of ``samples`` that are exact copies of a training sequence."""
    seen = {tuple(row) for row in train_tokens.tolist()}
    return sum(tuple(row) in seen for row in samples.tolist()) / max(len(samples), 1)
