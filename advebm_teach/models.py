"""The course's two models (paper Table 1), both split at the embedding seam.

Every model has ``embed(tokens) -> (B, T, D)`` (token embeddings only) and
``forward_embeds(embeds) -> (B, T, V)`` next-token logits, so that saliency, embedding-space
adversaries and first-order token scores can all act on the embedding *output*; no code
ever edits an embedding table in place.

* ``LSTMLanguageModel``: P_LM, the locally normalised model p(x) = prod_t p(x_t | x_<t).
* ``TransformerEnergy``: E_theta(x), pre-trained as a language model (its LM head), then read out
  as a scalar energy. Low energy means data: p_theta(x) is proportional to exp(-E_theta(x)).

Devices: every method moves its tensor inputs (tokens, embeddings, one-hot targets) to the model's
device, that of its parameters, and answers there.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import (check_bool, check_choice, check_int, check_number, check_tensor,
                     check_token_ids)
from .task import AdditionTask, check_task

EnergyHead = Literal["mean", "eos", "lm_nll"]
ENERGY_HEADS: tuple[str, ...] = ("mean", "eos", "lm_nll")


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode (no dropout) and restore its train/eval mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def token_nll(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T-1)``: -log p(x_t | x_<t) for t = 1..T-1, from next-token logits ``(B, T, V)``, on
    the logits' device (``tokens`` are moved there)."""
    log_probs = F.log_softmax(logits[:, :-1], dim=-1,
                              dtype=torch.promote_types(logits.dtype, torch.float32))
    return -log_probs.gather(-1, tokens[:, 1:, None].to(logits.device)).squeeze(-1)


def _init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


class LanguageModelMixin:
    """``forward(tokens)`` as ``forward_embeds(embed(tokens))``, and the move of inputs to the
    model's device, shared by both models."""

    def on_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the model's device (that of its token embedding)."""
        return tensor.to(self.token_embedding.weight.device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)``: ``logits[:, t]`` scores x_{t+1} given x_{<=t}."""
        return self.forward_embeds(self.embed(tokens))


class LSTMLanguageModel(LanguageModelMixin, nn.Module):
    """P_LM: a one-layer LSTM LM, p(x) = prod_t softmax(W h_t)[x_{t+1}], h_t = LSTM(e_1..e_t)."""

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, 2)
        check_int("embed_dim", embed_dim, 1)
        check_int("hidden_dim", hidden_dim, 1)
        self.config = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden_dim": hidden_dim}
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.lm_head = nn.Linear(hidden_dim, vocab_size)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, T, embed_dim)`` of ids ``(B, T)`` (or ``(T,)``)."""
        tokens = check_token_ids("tokens", tokens, self.config["vocab_size"])
        return self.token_embedding(self.on_device(tokens))

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` from embeddings ``(B, T, embed_dim)``."""
        _check_embeds(embeds, self.config["embed_dim"])
        hidden, _ = self.lstm(self.on_device(embeds))  # (B, T, hidden_dim)
        return self.lm_head(hidden)

    def next_token_logits(self, tokens: torch.Tensor, state=None):
        """Incremental decoding: ``(logits (B, V), state)`` after reading ``tokens (B,)``.

        ``logits`` score the next position. ``state`` is the LSTM's ``(h, c)`` after the tokens
        read so far (None at the start).
        """
        tokens = self.on_device(check_token_ids("tokens", tokens, self.config["vocab_size"],
                                                dims=(1,)))
        hidden, state = self.lstm(self.token_embedding(tokens[:, None]), state)  # (B, 1, H)
        return self.lm_head(hidden[:, -1]), state


KeysValues = tuple[torch.Tensor, torch.Tensor]


class SelfAttention(nn.Module):
    """Multi-head attention, softmax(Q K^T / sqrt(d_head) + mask) V, causal or bidirectional.

    Written out (not a fused kernel) so that students can read it and double backward works.
    ``forward_with_kv`` can also continue a sequence: given the keys and values of an earlier
    prefix (``past``), the new positions attend to the prefix and, causally, to each other. Leading
    batch dimensions broadcast, so one prefix can serve many continuations.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        check_int("n_heads", n_heads, 1)
        check_number("dropout", dropout, 0, 1, high_open=True)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        return self.forward_with_kv(x, causal)[0]

    def forward_with_kv(self, x: torch.Tensor, causal: bool, past: KeysValues | None = None
                        ) -> tuple[torch.Tensor, KeysValues]:
        """``(output, (keys, values))`` for ``x (..., T, C)``.

        The keys and values are ``(..., heads, T, C/heads)``.
        """
        *lead, T, C = x.shape
        # (..., T, 3C) -> three (..., T, heads, C/heads) -> (..., heads, T, C/heads)
        q, k, v = (t.reshape(*lead, T, self.n_heads, C // self.n_heads).transpose(-3, -2)
                   for t in self.qkv(x).split(C, dim=-1))
        scale = 1 / math.sqrt(C // self.n_heads)
        scores = q @ k.transpose(-2, -1) * scale  # (..., heads, T, T)
        if causal:
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        if past is None:
            mixed = self.dropout(scores.softmax(dim=-1)) @ v
        else:  # the prefix lies entirely in the past of every new position
            past_k, past_v = past
            # (..., heads, T, P + T): the P prefix keys, then the T new ones
            weights = self.dropout(torch.cat([q @ past_k.transpose(-2, -1) * scale, scores],
                                             dim=-1).softmax(dim=-1))
            mixed = weights[..., : past_k.shape[-2]] @ past_v + weights[..., past_k.shape[-2]:] @ v
        # heads joined again: (..., heads, T, C/heads) -> (..., T, C)
        return self.dropout(self.proj(mixed.transpose(-3, -2).reshape(*lead, T, C))), (k, v)


class Block(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Linear(ff_dim, d_model),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        return self.forward_with_kv(x, causal)[0]

    def forward_with_kv(self, x: torch.Tensor, causal: bool, past: KeysValues | None = None
                        ) -> tuple[torch.Tensor, KeysValues]:
        attended, keys_values = self.attn.forward_with_kv(self.ln_attn(x), causal, past)
        x = x + attended
        return x + self.mlp(self.ln_mlp(x)), keys_values


class TransformerEnergy(LanguageModelMixin, nn.Module):
    """E_theta: a 2-layer, 4-head, d=128 Transformer (paper Table 1), LM head and energy read-out.

    ``head`` picks the energy read-out (all share the same weights, so it can be switched after
    loading):

    * ``"mean"``: bidirectional attention, E(x) = w . mean_t h_t + b (the Residual-EBM notebook's
      choice);
    * ``"eos"``: causal attention, E(x) = w . h_EOS + b;
    * ``"lm_nll"``: causal attention,
      E(x) = -sum_{t in answer} log p_theta(x_t | x_<t) + w . h_EOS + b, the pre-trained model's
      own negative log-likelihood of the answer digits plus a learned scalar correction (a
      residual on what pre-training learned).

    ``answer_positions`` (the positions whose NLL ``lm_nll`` sums) defaults to every position after
    the first. The read-out ``w, b`` starts at zero, so before fine-tuning ``lm_nll`` is exactly
    the NLL and the scalar heads are constant (they learn what data looks like only when
    fine-tuned).
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        ff_dim: int = 128,
        dropout: float = 0.0,
        head: EnergyHead = "mean",
        answer_positions: list[int] | None = None,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, 2)
        check_int("seq_len", seq_len, 2)
        check_int("d_model", d_model, 1)
        check_int("n_layers", n_layers, 1)
        check_int("n_heads", n_heads, 1)
        check_int("ff_dim", ff_dim, 1)
        check_number("dropout", dropout, 0, 1, high_open=True)
        check_choice("head", head, ENERGY_HEADS)
        answer_positions = _check_answer_positions(answer_positions, seq_len)
        self.config = {
            "vocab_size": vocab_size, "seq_len": seq_len, "d_model": d_model, "n_layers": n_layers,
            "n_heads": n_heads, "ff_dim": ff_dim, "dropout": dropout, "head": head,
            "answer_positions": list(answer_positions),
        }
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, ff_dim, dropout)
                                    for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.energy_readout = nn.Linear(d_model, 1)
        answer = torch.zeros(seq_len, dtype=torch.bool)
        answer[list(answer_positions)] = True
        # (T-1,), aligned with token_nll's t = 1..T-1
        self.register_buffer("answer_mask", answer[1:], persistent=False)
        self.apply(_init_weights)
        # untrained read-out: E = 0 (mean, eos), E = NLL (lm_nll)
        nn.init.zeros_(self.energy_readout.weight)
        self.head = head

    @classmethod
    def for_task(cls, task: AdditionTask, **kwargs) -> "TransformerEnergy":
        """A model sized for ``task`` whose ``lm_nll`` head reads the answer (c) digits."""
        check_task(task)
        return cls(task.vocab_size, task.seq_len, answer_positions=list(task.c_positions),
                   **kwargs)

    @property
    def head(self) -> str:
        return self._head

    @head.setter
    def head(self, value: str) -> None:
        self._head = check_choice("head", value, ENERGY_HEADS)
        self.config["head"] = value

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, T, d_model)`` (positions are added in ``forward_embeds``)."""
        tokens = check_token_ids("tokens", tokens, self.config["vocab_size"])
        return self.token_embedding(self.on_device(tokens))

    def hidden_states(self, embeds: torch.Tensor, causal: bool) -> torch.Tensor:
        """Final-layer states ``(B, T, d_model)``, T <= seq_len, of embeddings plus positions."""
        _check_embeds(embeds, self.config["d_model"], self.config["seq_len"], at_most=True)
        return self.run_blocks(self.on_device(embeds), check_bool("causal", causal))[0]

    def run_blocks(self, embeds: torch.Tensor, causal: bool, past: list[KeysValues] | None = None,
                    start: int = 0) -> tuple[torch.Tensor, list[KeysValues]]:
        """States of positions ``start..`` (after a cached prefix ``past``), and each block's
        keys/values."""
        # (..., T, D) plus the embeddings of positions start..start+T-1
        x = embeds + self.position_embedding.weight[start : start + embeds.shape[-2]]
        keys_values = []
        for i, block in enumerate(self.blocks):
            x, kv = block.forward_with_kv(x, causal, None if past is None else past[i])
            keys_values.append(kv)
        return self.ln_final(x), keys_values

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Causal next-token logits ``(B, T, V)`` (the LM head of pre-training and sampling)."""
        return self.lm_head(self.hidden_states(embeds, causal=True))

    def next_token_logits(self, tokens: torch.Tensor, state=None):
        """Incremental decoding: ``(logits (B, V), state)`` after reading ``tokens (B,)``.

        ``logits`` score the next position. ``state`` holds the position and every block's keys
        and values so far (None at the start).
        """
        tokens = self.on_device(check_token_ids("tokens", tokens, self.config["vocab_size"],
                                                dims=(1,)))
        start, past = state if state is not None else (0, None)
        if start >= self.config["seq_len"]:
            raise ValueError(f"tokens: the model reads at most seq_len={self.config['seq_len']} "
                             f"tokens, and state holds {start} already")
        states, keys_values = self.run_blocks(self.token_embedding(tokens[:, None]), causal=True,
                                               past=past, start=start)
        if past is not None:
            keys_values = [(torch.cat([pk, k], dim=-2), torch.cat([pv, v], dim=-2))
                           for (pk, pv), (k, v) in zip(past, keys_values)]
        return self.lm_head(states[:, -1]), (start + 1, keys_values)

    def energy_from_embeds(self, embeds: torch.Tensor,
                           tokens: torch.Tensor | None = None) -> torch.Tensor:
        """E(x) ``(B,)`` from token embeddings; ``lm_nll`` also needs ``tokens`` (the NLL targets).

        ``tokens`` may also be one-hot vectors ``(B, T, V)`` (float): the NLL is then linear in
        them, so the gradient of E with respect to them is the exact effect of changing a target
        (first-order token scores).
        """
        return self._energy(*self._check_energy_inputs(embeds, tokens))[0]

    def energy_with_internals(
        self, embeds: torch.Tensor, tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[KeysValues] | None, torch.Tensor | None]:
        """E(x) as ``energy_from_embeds``, with what the pass computed on the way: every block's
        keys and values (causal heads) and the next-token log-probabilities (``lm_nll``);
        ``prefix_cache`` keeps them to re-score substitutions."""
        return self._energy(*self._check_energy_inputs(embeds, tokens))

    def _check_energy_inputs(self, embeds: torch.Tensor, tokens: torch.Tensor | None
                             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(embeds, tokens)`` if embeds are ``(B, seq_len, d_model)`` and tokens are ids
        ``(B, seq_len)`` or one-hot ``(B, seq_len, V)``, checked if given (``lm_nll`` needs
        them); both returned on the model's device."""
        embeds = self.on_device(_check_embeds(embeds, self.config["d_model"],
                                              self.config["seq_len"]))
        if tokens is None:
            if self.head == "lm_nll":
                raise ValueError("tokens must be given: head='lm_nll' needs the tokens, "
                                 "energy_from_embeds(embeds, tokens)")
            return embeds, None
        vocab_size = self.config["vocab_size"]
        if check_tensor("tokens", tokens).is_floating_point():  # one-hot targets
            expected = (*embeds.shape[:2], vocab_size)
        else:
            check_token_ids("tokens", tokens, vocab_size, dims=(2,))
            expected = tuple(embeds.shape[:2])
        if tuple(tokens.shape) != expected:
            raise ValueError(f"tokens {tuple(tokens.shape)} do not match embeds "
                             f"{tuple(embeds.shape)}: expected ids {tuple(embeds.shape[:2])} "
                             f"or one-hot {(*embeds.shape[:2], vocab_size)}")
        return embeds, self.on_device(tokens)

    def _energy(self, embeds: torch.Tensor, tokens: torch.Tensor | None
                ) -> tuple[torch.Tensor, list[KeysValues] | None, torch.Tensor | None]:
        """(E(x), keys and values, log-probabilities) from checked inputs."""
        if self.head == "mean":
            states = self.run_blocks(embeds, causal=False)[0]  # (B, T, D)
            # w . mean_t h_t + b: (B, T, D) -> (B, D) -> (B,)
            return self.energy_readout(states.mean(dim=1)).squeeze(-1), None, None
        states, keys_values = self.run_blocks(embeds, causal=True)
        energy = self.energy_readout(states[:, -1]).squeeze(-1)  # w . h_EOS + b: (B,)
        log_probs = None
        if self.head == "lm_nll":
            log_probs = self.log_probs(states)  # (B, T, V)
            if tokens.is_floating_point():  # one-hot targets (B, T, V)
                nll = -(tokens[:, 1:] * log_probs[:, :-1]).sum(dim=-1)  # (B, T-1)
            else:
                nll = -log_probs[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1)  # (B, T-1)
            # + -sum_{t in answer} log p_theta(x_t | x_<t)
            energy = energy + (nll * self.answer_mask).sum(dim=1)
        return energy, keys_values, log_probs

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        """``(..., T, V)``: next-token log-probabilities (float32 at least) from final states."""
        logits = self.lm_head(states)
        return F.log_softmax(logits, dim=-1,
                             dtype=torch.promote_types(logits.dtype, torch.float32))

    def energy(self, tokens: torch.Tensor) -> torch.Tensor:
        """E(x) ``(B,)`` for token ids ``(B, seq_len)``; low on data."""
        config = self.config
        tokens = check_token_ids("tokens", tokens, config["vocab_size"], config["seq_len"], (2,))
        tokens = self.on_device(tokens)
        return self._energy(self.token_embedding(tokens), tokens)[0]


def _check_embeds(embeds: torch.Tensor, width: int, length: int | None = None,
                  at_most: bool = False) -> torch.Tensor:
    """``embeds`` if floating ``(B, T, width)``, T = ``length`` (or <= with ``at_most``)."""
    check_tensor("embeds", embeds, dims=(3,), floating=True)
    T = embeds.shape[1]
    wrong_length = length is not None and (T > length if at_most else T != length)
    if embeds.shape[2] != width or wrong_length:
        size = "T" if length is None else f"T{'<=' if at_most else '='}{length}"
        raise ValueError(f"embeds must be (B, {size}, {width}), got {tuple(embeds.shape)}")
    return embeds


def _check_answer_positions(positions: Sequence[int] | None, seq_len: int) -> list[int]:
    """The positions ``lm_nll`` sums (default: all after the first), each in [1, seq_len)."""
    if positions is None:
        return list(range(1, seq_len))
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence):
        raise TypeError(f"answer_positions must be a list of int positions, got {positions!r}")
    if not positions:
        raise ValueError(f"answer_positions must be non-empty and lie in [1, {seq_len}), got []")
    return [check_int(f"answer_positions[{i}]", p, 1, seq_len - 1)
            for i, p in enumerate(positions)]
