"""The residual model as one energy: p(x) ∝ P_LM(x) exp(-E(x) / temperature).

    U(x) = E(x) / temperature - log P_LM(x),    p(x) = exp(-U(x)) / Z,

over the well-formed sequences of an ``AdditionTask``, with log P_LM as constrained decoding
scores it (``sampling.lm_log_prob``, through the same ``sampling.digit_log_likelihood``: the
format tokens are forced, each digit slot t contributes log softmax over the digits of the LM's
logits for x_t given x_<t).

``ResidualEnergy`` puts U on the course's embedding seam (``embed`` / ``energy_from_embeds``), so
that ``saliency.first_order_scores`` and the samplers of ``mcmc.py`` apply to it unchanged: its
embedding of a token is the LM's and the energy model's side by side, [e^LM; e^E], so one backward
pass gives the first-order score of both terms. For P_LM, as for the ``lm_nll`` read-out, the
score of writing v at slot i is exact for the slot's own term, log P_LM(v | x_<i) - log P_LM(x_i |
x_<i) (log P_LM is linear in one-hot targets), and first order for what v changes downstream
through the LSTM's state.

Why a first-order estimate of the P_LM term, and not its exact change by re-scoring each
substitution: a Metropolis-Hastings sampler (``mcmc.py``) accepts with the exact U(x'), so the
proposal's accuracy changes how fast the chains mix, never what they sample; the written digit's
own term is exact anyway; and the cost stays one forward and one backward pass of each model per
step, where re-scoring would add one LM pass per substitution (9 per editable digit: 144 at 5
digits).
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_positive, check_tensor, model_device
from .sampling import digit_log_likelihood
from .task import AdditionTask, check_task


class ResidualEnergy(nn.Module):
    """U(x) = E(x) / ``temperature`` - log P_LM(x) for ``energy_model`` E and ``lm`` P_LM.

    Both models must be built for ``task`` and live on one device; U is computed there. A small
    ``temperature`` weighs the energy over the LM (temperature -> 0: the minima of E).
    """

    def __init__(self, energy_model: nn.Module, lm: nn.Module, task: AdditionTask,
                 temperature: float = 1.0) -> None:
        super().__init__()
        check_task(task).check_model("energy_model", energy_model)
        task.check_model("lm", lm)
        if not callable(getattr(energy_model, "energy_from_embeds", None)):
            raise TypeError(f"energy_model must be an energy model (embed, energy_from_embeds), "
                            f"got {type(energy_model).__name__}")
        if not callable(getattr(lm, "forward_embeds", None)):
            raise TypeError(f"lm must be a language model (embed, forward_embeds), "
                            f"got {type(lm).__name__}")
        if model_device(energy_model) != model_device(lm):
            raise ValueError(f"energy_model and lm must be on one device, got energy_model on "
                             f"{model_device(energy_model)}, lm on {model_device(lm)}")
        self.energy_model, self.lm = energy_model, lm
        self.temperature = check_positive("temperature", temperature)
        self.config = {"vocab_size": task.vocab_size, "seq_len": task.seq_len}
        self.n_digits = len(task.digit_ids)  # ids 0..9 are the digits
        self.lm_width = lm.embed(torch.zeros(1, dtype=torch.long)).shape[-1]
        # (T-1,): which next-token prediction t = 1..T-1 writes a digit slot
        self.register_buffer("digit_targets", task.digit_slots[1:].to(model_device(lm)),
                             persistent=False)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """[e^LM; e^E]: ``(B, T, D_LM + D_E)``, the two models' token embeddings side by side."""
        return torch.cat([self.lm.embed(tokens), self.energy_model.embed(tokens)], dim=-1)

    def energy_from_embeds(self, embeds: torch.Tensor,
                           tokens: torch.Tensor | None = None) -> torch.Tensor:
        """U ``(B,)`` from embeddings ``(B, T, D_LM + D_E)`` and the tokens (ids ``(B, T)`` or
        one-hot ``(B, T, V)``), which log P_LM needs as its targets."""
        check_tensor("embeds", embeds, dims=(3,), floating=True)
        if tokens is None:
            raise ValueError("tokens must be given: log P_LM needs them, "
                             "energy_from_embeds(embeds, tokens)")
        lm_embeds, energy_embeds = embeds.split(
            [self.lm_width, embeds.shape[-1] - self.lm_width], dim=-1)
        energy = self.energy_model.energy_from_embeds(energy_embeds, tokens)
        return energy / self.temperature - self.lm_log_prob(lm_embeds, tokens)

    def lm_log_prob(self, lm_embeds: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(B,)``: log P_LM(x) = sum over digit slots t of log softmax_digits(logits_{t-1})[x_t],
        from the LM's embeddings ``(B, T, D_LM)``; linear in one-hot ``tokens (B, T, V)``."""
        tokens = self.lm.on_device(tokens)
        return digit_log_likelihood(self.lm.forward_embeds(lm_embeds), tokens, self.n_digits,
                                    self.digit_targets)

    def energy(self, tokens: torch.Tensor) -> torch.Tensor:
        """U(x) ``(B,)`` for token ids ``(B, T)``."""
        return self.energy_from_embeds(self.embed(tokens), tokens)
