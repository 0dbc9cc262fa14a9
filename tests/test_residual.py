"""ResidualEnergy (advebm_teach/residual.py) against its parts.

References: ``sampling.lm_log_prob`` and the energy model's own ``energy`` for U; the energy
model's ``first_order_scores`` plus a hand-written autograd of log P_LM for the residual's
first-order scores; the exact change of log P_LM where the first-order score is exact (the last
digit, whose change no later digit sees).
"""

import pytest
import torch

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.residual import ResidualEnergy
from advebm_teach.saliency import first_order_scores
from advebm_teach.sampling import lm_log_prob
from conftest import energy_with_random_readout

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py

TASK = AdditionTask(2)
TEMPERATURE = 0.5


def small_lm(seed: int = 0) -> LSTMLanguageModel:
    torch.manual_seed(seed)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=16, hidden_dim=16).eval()


def corrupted_tokens(n: int = 5, seed: int = 0) -> torch.Tensor:
    """Well-formed sequences with about half of their digits random."""
    g = torch.Generator().manual_seed(seed)
    x = TASK.sample(n, generator=g)
    replace = (torch.rand(x.shape, generator=g) < 0.5) & TASK.digit_slots
    return torch.where(replace, torch.randint(0, 10, x.shape, generator=g), x)


def lm_first_order(lm: LSTMLanguageModel, x: torch.Tensor) -> torch.Tensor:
    """``(B, T, 10)``: first-order change of log P_LM for digit v at i, from autograd on the LM's
    embeddings plus the exact change of slot i's own term."""
    embeds = lm.embed(x).detach().requires_grad_(True)
    log_probs = torch.log_softmax(lm.forward_embeds(embeds)[:, :-1, :10], dim=-1)  # (B, T-1, 10)
    drawn = log_probs.gather(-1, x[:, 1:, None].clamp(max=9)).squeeze(-1)
    (g,) = torch.autograd.grad(drawn[:, TASK.digit_slots[1:]].sum(), embeds)
    table = lm.embed(torch.arange(10))  # (10, D)
    scores = g @ table.T - (g * embeds).sum(dim=-1, keepdim=True)
    own = torch.zeros(x.shape[0], x.shape[1], 10)
    own[:, 1:] = log_probs - log_probs.gather(-1, x[:, 1:, None].clamp(max=9))
    return (scores + own).detach()


@pytest.mark.parametrize("head", ["mean", "eos", "lm_nll"])
def test_energy_is_energy_over_temperature_minus_lm_log_prob(head):
    energy_model, lm = energy_with_random_readout(TASK, 0, head), small_lm()
    x = corrupted_tokens()
    with torch.no_grad():
        got = ResidualEnergy(energy_model, lm, TASK, TEMPERATURE).energy(x)
        expected = energy_model.energy(x) / TEMPERATURE - lm_log_prob(lm, TASK, x)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("head", ["mean", "lm_nll"])
def test_first_order_scores_add_the_two_models_scores(head):
    energy_model, lm = energy_with_random_readout(TASK, 1, head), small_lm(1)
    x = corrupted_tokens(seed=1)
    got = first_order_scores(ResidualEnergy(energy_model, lm, TASK, TEMPERATURE), x)
    expected = first_order_scores(energy_model, x)[..., :10] / TEMPERATURE + lm_first_order(lm, x)
    slots = TASK.digit_slots
    assert torch.allclose(got[:, slots, :10], expected[:, slots], atol=1e-5)


def test_first_order_score_of_the_last_digit_is_exact_for_the_lm():
    """With a constant energy (a fresh read-out is 0), the last digit's score is the exact change
    of log P_LM: no later digit slot is conditioned on it (<eos> is forced)."""
    residual = ResidualEnergy(TransformerEnergy.for_task(TASK, d_model=16, n_heads=2),
                              small_lm(2), TASK)
    x, last = corrupted_tokens(seed=2), TASK.c_positions[-1]
    scores = first_order_scores(residual, x)[:, last, :10]
    for v in range(10):
        y = x.clone()
        y[:, last] = v
        exact = lm_log_prob(residual.lm, TASK, y) - lm_log_prob(residual.lm, TASK, x)
        assert torch.allclose(scores[:, v], exact, atol=1e-5)


def test_bad_arguments_are_refused_by_name():
    energy_model, lm = energy_with_random_readout(TASK), small_lm()
    with pytest.raises(ValueError, match="temperature"):
        ResidualEnergy(energy_model, lm, TASK, temperature=0.0)
    with pytest.raises(TypeError, match="energy_model"):
        ResidualEnergy(lm, lm, TASK)
    with pytest.raises(TypeError, match="task"):
        ResidualEnergy(energy_model, lm, "task")
    with pytest.raises(ValueError, match="energy_model"):
        ResidualEnergy(energy_with_random_readout(AdditionTask(3)), lm, TASK)
    residual = ResidualEnergy(energy_model, lm, TASK)
    with pytest.raises(ValueError, match="tokens"):
        residual.energy_from_embeds(residual.embed(corrupted_tokens()))
