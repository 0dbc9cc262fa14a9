"""The course's two models (paper Table 1), both split at the embedding seam.

Every model has ``embed(tokens) -> (B, T, D)`` (token embeddings only) and
``forward_embeds(embeds) -> (B, T, V)`` next-token logits, so that saliency, embedding-space
adversaries and first-order token scores can all act on the embedding *output*; no code
ever edits an embedding table in place.

* ``LSTMLanguageModel``: P_LM, the locally normalised model p(x) = prod_t p(x_t | x_<t).
* ``TransformerEnergy``: E_theta(x), pre-trained as a language model (its LM head), then read out
  as a scalar energy. Low energy means data: p_theta(x) is proportional to exp(-E_theta(x)).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

EnergyHead = Literal["mean", "eos", "lm_nll"]
ENERGY_HEADS: tuple[str, ...] = ("mean", "eos", "lm_nll")


def token_nll(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T-1)``: -log p(x_t | x_<t) for t = 1..T-1, from logits ``(B, T, V)`` that predict the next token."""
    log_probs = F.log_softmax(logits[:, :-1], dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))
    return -log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)


def _init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


class LanguageModelMixin:
    """``forward(tokens)`` as ``forward_embeds(embed(tokens))``, shared by both models."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)``: ``logits[:, t]`` scores ``x_{t+1}`` given ``x_{<=t}``."""
        return self.forward_embeds(self.embed(tokens))


class LSTMLanguageModel(LanguageModelMixin, nn.Module):
    """P_LM: one-layer LSTM language model, p(x) = prod_t softmax(W h_t)[x_{t+1}], h_t = LSTM(e_1..e_t)."""

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden_dim": hidden_dim}
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.lm_head = nn.Linear(hidden_dim, vocab_size)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, T, embed_dim)``."""
        return self.token_embedding(tokens)

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` from embeddings ``(B, T, embed_dim)``."""
        hidden, _ = self.lstm(embeds)
        return self.lm_head(hidden)


class SelfAttention(nn.Module):
    """Multi-head attention, softmax(Q K^T / sqrt(d_head) + mask) V, causal or bidirectional.

    Written out (not a fused kernel) so that students can read it and double backward works.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_heads)
        if causal:
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = self.dropout(scores.softmax(dim=-1))
        return self.dropout(self.proj((weights @ v).transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Linear(ff_dim, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x), causal)
        return x + self.mlp(self.ln_mlp(x))


class TransformerEnergy(LanguageModelMixin, nn.Module):
    """E_theta: a 2-layer, 4-head, d=128 Transformer (paper Table 1) with an LM head and an energy read-out.

    ``head`` picks the energy read-out (all share the same weights, so it can be switched after loading):

    * ``"mean"``: bidirectional attention, E(x) = w . mean_t h_t + b (the Residual-EBM notebook's choice);
    * ``"eos"``: causal attention, E(x) = w . h_EOS + b;
    * ``"lm_nll"``: causal attention, E(x) = -sum_{t in answer} log p_theta(x_t | x_<t) + w . h_EOS + b,
      the pre-trained model's own negative log-likelihood of the answer digits plus a learned scalar
      correction (a residual on what pre-training learned).

    ``answer_positions`` (the positions whose NLL ``lm_nll`` sums) defaults to every position after the first.
    The read-out ``w, b`` starts at zero, so before fine-tuning ``lm_nll`` is exactly the NLL and the
    scalar heads are constant (they learn what data looks like only when fine-tuned).
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
        if answer_positions is None:
            answer_positions = list(range(1, seq_len))
        if not answer_positions or not all(0 < p < seq_len for p in answer_positions):
            raise ValueError(f"answer_positions must be non-empty and lie in [1, {seq_len}), got {answer_positions}")
        self.config = {
            "vocab_size": vocab_size, "seq_len": seq_len, "d_model": d_model, "n_layers": n_layers,
            "n_heads": n_heads, "ff_dim": ff_dim, "dropout": dropout, "head": head,
            "answer_positions": list(answer_positions),
        }
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, ff_dim, dropout) for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.energy_readout = nn.Linear(d_model, 1)
        answer = torch.zeros(seq_len, dtype=torch.bool)
        answer[list(answer_positions)] = True
        self.register_buffer("answer_mask", answer[1:], persistent=False)  # aligned with token_nll's t = 1..T-1
        self.apply(_init_weights)
        nn.init.zeros_(self.energy_readout.weight)  # untrained read-out: E = 0 (mean, eos), E = NLL (lm_nll)
        self.head = head

    @classmethod
    def for_task(cls, task, **kwargs) -> "TransformerEnergy":
        """A model sized for ``task`` whose ``lm_nll`` head reads the answer (c) digits."""
        return cls(task.vocab_size, task.seq_len, answer_positions=list(task.c_positions), **kwargs)

    @property
    def head(self) -> str:
        return self._head

    @head.setter
    def head(self, value: str) -> None:
        if value not in ENERGY_HEADS:
            raise ValueError(f"head must be one of {ENERGY_HEADS}, got {value!r}")
        self._head = value
        self.config["head"] = value

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, T, d_model)`` (positions are added in ``forward_embeds``)."""
        return self.token_embedding(tokens)

    def hidden_states(self, embeds: torch.Tensor, causal: bool) -> torch.Tensor:
        """Final-layer states ``(B, T, d_model)`` of token embeddings plus learned positions."""
        if embeds.dim() != 3 or embeds.shape[1] > self.position_embedding.num_embeddings:
            raise ValueError(
                f"embeds must be (B, T<={self.position_embedding.num_embeddings}, D), got {tuple(embeds.shape)}"
            )
        x = embeds + self.position_embedding.weight[: embeds.shape[1]]
        for block in self.blocks:
            x = block(x, causal)
        return self.ln_final(x)

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Causal next-token logits ``(B, T, V)`` (the LM head used in pre-training and sampling)."""
        return self.lm_head(self.hidden_states(embeds, causal=True))

    def energy_from_embeds(self, embeds: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """E(x) ``(B,)`` from token embeddings; ``tokens`` (the NLL targets) are required for ``lm_nll``."""
        if self.head == "mean":
            return self.energy_readout(self.hidden_states(embeds, causal=False).mean(dim=1)).squeeze(-1)
        states = self.hidden_states(embeds, causal=True)
        correction = self.energy_readout(states[:, -1]).squeeze(-1)
        if self.head == "eos":
            return correction
        if tokens is None:
            raise ValueError("head='lm_nll' needs the tokens: energy_from_embeds(embeds, tokens)")
        if tokens.shape != embeds.shape[:2]:
            raise ValueError(f"tokens {tuple(tokens.shape)} do not match embeds {tuple(embeds.shape)}")
        nll = token_nll(self.lm_head(states), tokens)
        return (nll * self.answer_mask).sum(dim=1) + correction

    def energy(self, tokens: torch.Tensor) -> torch.Tensor:
        """E(x) ``(B,)`` for token ids ``(B, T)``; low on data."""
        return self.energy_from_embeds(self.embed(tokens), tokens)
