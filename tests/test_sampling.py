"""sample_lm against references: fixed-distribution stand-in LMs whose sampling law is known in closed form,
a deterministic LM whose samples follow a hand-written rule, plus seeding, errors and train/eval mode.
"""

import math

import pytest
import torch
from torch import nn

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy, sample_lm
from advebm_teach.attack import attack_generate
from advebm_teach.sampling import importance_resample, lm_log_prob, resample_from_pool

TASK = AdditionTask(2)
FORMAT = {0: 12, 3: 10, 6: 11, 10: 13}  # <bos> a a + b b = c c c <eos>, written out by hand for n = 2
DIGIT_SLOTS = [p for p in range(TASK.seq_len) if p not in FORMAT]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py


class FixedLM(nn.Module):
    """A stand-in LM: the same next-token distribution ``probs`` (token -> p) at every position.

    Records its train/eval mode and the inputs it is given.
    """

    def __init__(self, probs: dict[int, float], vocab_size: int = 14) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # so next(lm.parameters()) works
        logits = torch.full((vocab_size,), -1e4)
        for token, p in probs.items():
            logits[token] = math.log(p)
        self.register_buffer("logits", logits)
        self.modes: list[bool] = []
        self.min_input = 0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        self.min_input = min(self.min_input, int(tokens.min()))
        B, T = tokens.shape
        return self.logits.expand(B, T, -1) + 0 * self.dummy

    def next_token_logits(self, tokens: torch.Tensor, state=None):
        """The incremental interface ``sample_lm`` uses: logits ``(B, V)`` after reading ``tokens`` ``(B,)``."""
        logits = self.forward(tokens[:, None])[:, 0]
        return logits, state


class NextDigitLM(nn.Module):
    """Deterministic stand-in: after digit d comes (d + 1) % 10, after any format token comes 7."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        nxt = torch.where(tokens < 10, (tokens + 1) % 10, torch.full_like(tokens, 7))
        return torch.nn.functional.one_hot(nxt, 14).float() * 1e4 - 5e3

    def next_token_logits(self, tokens: torch.Tensor, state=None):
        """Incremental form: the state is the prefix read so far; logits at its last position."""
        prefix = tokens[:, None] if state is None else torch.cat([state, tokens[:, None]], dim=1)
        return self.forward(prefix)[:, -1], prefix


def untrained_lstm(seed: int = 0) -> LSTMLanguageModel:
    torch.manual_seed(seed)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=32, hidden_dim=32)


def untrained_transformer(seed: int = 0) -> TransformerEnergy:
    torch.manual_seed(seed)
    return TransformerEnergy.for_task(TASK, d_model=32, n_heads=2, ff_dim=32)


def well_formed_reference(samples: torch.Tensor) -> torch.Tensor:
    """Format ids at the hand-written format positions, a digit (0-9) everywhere else."""
    fmt = torch.stack([samples[:, p] == v for p, v in FORMAT.items()], dim=1).all(dim=1)
    return fmt & (samples[:, DIGIT_SLOTS] < 10).all(dim=1)


def digit_frequencies(samples: torch.Tensor) -> tuple[torch.Tensor, int]:
    digits = samples[:, DIGIT_SLOTS].flatten()
    return torch.bincount(digits, minlength=14).double() / digits.numel(), digits.numel()


def assert_frequencies(freq: torch.Tensor, expected: dict[int, float], n: int, k: float = 4.5) -> None:
    """Each expected token within k standard errors; every other token never drawn."""
    for token in range(14):
        p = expected.get(token, 0.0)
        if p == 0.0:
            assert freq[token] == 0, (token, freq)
        else:
            se = math.sqrt(p * (1 - p) / n)
            assert abs(freq[token].item() - p) < k * se, (token, freq[token].item(), p, se)


# ---------------------------------------------------------------- well-formedness
@pytest.mark.parametrize("make", [untrained_lstm, untrained_transformer])
def test_constrained_samples_are_well_formed(make):
    samples = sample_lm(make(), TASK, 64, seed=1)
    assert samples.shape == (64, TASK.seq_len) and samples.dtype == torch.long
    assert TASK.is_well_formed(samples).all()
    assert well_formed_reference(samples).all()


@pytest.mark.parametrize("make", [untrained_lstm, untrained_transformer])
def test_unconstrained_samples_of_untrained_model_are_mostly_malformed(make):
    """Near-uniform over 14 symbols, a sequence is well formed with probability ~ (1/14)^3 (10/14)^7."""
    samples = sample_lm(make(), TASK, 64, seed=2, constrained=False)
    assert samples.shape == (64, TASK.seq_len)
    assert (samples[:, 0] == 12).all()  # <bos> is given, not drawn
    frac = well_formed_reference(samples).double().mean().item()
    assert frac < 0.2
    assert torch.equal(TASK.is_well_formed(samples), well_formed_reference(samples))


# ---------------------------------------------------------------- seeding and arguments
def test_seeding():
    lm = untrained_lstm()
    s1 = sample_lm(lm, TASK, 16, seed=5)
    assert torch.equal(s1, sample_lm(lm, TASK, 16, seed=5))
    assert not torch.equal(s1, sample_lm(lm, TASK, 16, seed=6))
    assert torch.equal(s1, sample_lm(lm, TASK, 16, generator=torch.Generator().manual_seed(5)))
    g = torch.Generator().manual_seed(9)
    first, second = sample_lm(lm, TASK, 16, generator=g), sample_lm(lm, TASK, 16, generator=g)
    assert not torch.equal(first, second)  # the generator is advanced, not re-seeded


def test_bad_arguments():
    lm = untrained_lstm()
    with pytest.raises(ValueError, match="not both"):
        sample_lm(lm, TASK, 4, seed=1, generator=torch.Generator())
    for n, error in ((-1, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="n must be"):
            sample_lm(lm, TASK, n)
    for temperature in (0, 0.0, -0.5):
        with pytest.raises(ValueError, match="temperature"):
            sample_lm(lm, TASK, 4, temperature=temperature)


def test_zero_samples():
    out = sample_lm(untrained_lstm(), TASK, 0, seed=0)
    assert out.shape == (0, TASK.seq_len) and out.dtype == torch.long


# ---------------------------------------------------------------- the sampling law
P = {3: 0.7, 5: 0.2, 8: 0.1}


def test_digit_frequencies_match_the_model():
    """7,000 digits from a fixed 0.7/0.2/0.1 distribution on digits 3/5/8: frequencies within 4.5 s.e."""
    lm = FixedLM(P)
    samples = sample_lm(lm, TASK, 1000, seed=11)
    assert well_formed_reference(samples).all()
    freq, n = digit_frequencies(samples)
    assert n == 7000
    assert_frequencies(freq, P, n)
    assert lm.min_input >= 0  # the -1 placeholders of undrawn slots never reach the model


def test_temperature_half_squares_the_probabilities():
    """temperature=0.5 samples from p^2 / sum p^2 = 0.49, 0.04, 0.01 over 0.54."""
    samples = sample_lm(FixedLM(P), TASK, 1000, seed=12, temperature=0.5)
    freq, n = digit_frequencies(samples)
    z = sum(p**2 for p in P.values())
    assert_frequencies(freq, {t: p**2 / z for t, p in P.items()}, n)


def test_constrained_renormalises_over_digits_and_unconstrained_does_not():
    """Model: 0.5 on '+', 0.3 on digit 2, 0.2 on digit 6. Constrained: digits 0.6/0.4 in digit slots.

    Unconstrained: every drawn position (1..T-1) follows the model's own 0.5/0.3/0.2.
    """
    probs = {10: 0.5, 2: 0.3, 6: 0.2}
    constrained = sample_lm(FixedLM(probs), TASK, 800, seed=13)
    freq, n = digit_frequencies(constrained)
    assert_frequencies(freq, {2: 0.6, 6: 0.4}, n)
    free = sample_lm(FixedLM(probs), TASK, 800, seed=14, constrained=False)
    drawn = free[:, 1:].flatten()
    assert_frequencies(torch.bincount(drawn, minlength=14).double() / drawn.numel(), probs, drawn.numel())


def test_conditioning_on_the_prefix():
    """With a deterministic next-token rule, each slot follows the token just before it (hand-computed)."""
    # slot t gets rule(x_{t-1}): <bos> -> 7, 7 -> 8, '+' -> 7, 7 -> 8, '=' -> 7, 7 -> 8, 8 -> 9
    expected = [12, 7, 8, 10, 7, 8, 11, 7, 8, 9, 13]
    samples = sample_lm(NextDigitLM(), TASK, 5, seed=0)
    assert samples.tolist() == [expected] * 5


# ---------------------------------------------------------------- train/eval mode
@pytest.mark.parametrize("training", [True, False])
def test_mode_is_restored_and_sampling_runs_in_eval(training):
    lm = FixedLM(P).train(training)
    sample_lm(lm, TASK, 4, seed=0)
    assert lm.training is training
    assert lm.modes and not any(lm.modes)  # every forward call during sampling saw eval mode


def test_mode_is_restored_for_a_real_model_with_dropout():
    torch.manual_seed(0)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, dropout=0.5).train()
    a = sample_lm(model, TASK, 8, seed=3)
    assert model.training
    model.eval()
    assert torch.equal(a, sample_lm(model, TASK, 8, seed=3))  # dropout was off while sampling
    assert not model.training


# ---------------------------------------------------------------- batching
def test_batch_size_and_chunking():
    """Chunks consume the generator in a different order, so batch_size may change *which* samples come out.

    Observed (documented, not asserted): n=20, seed=3, batch_size=7 vs 2048 give different samples.
    Asserted: any batch_size >= n gives identical samples (one chunk), chunked sampling is reproducible
    and well formed, and it still follows the model's distribution.
    """
    lm = untrained_lstm()
    full = sample_lm(lm, TASK, 20, seed=3, batch_size=2048)
    assert torch.equal(full, sample_lm(lm, TASK, 20, seed=3, batch_size=20))
    chunked = sample_lm(lm, TASK, 20, seed=3, batch_size=7)
    assert chunked.shape == (20, TASK.seq_len)
    assert torch.equal(chunked, sample_lm(lm, TASK, 20, seed=3, batch_size=7))
    assert well_formed_reference(chunked).all()
    freq, n = digit_frequencies(sample_lm(FixedLM(P), TASK, 700, seed=15, batch_size=7))
    assert_frequencies(freq, P, n)


def test_without_a_seed_the_global_generator_is_used():
    """No seed, no generator: torch's global generator decides, as for task.sample."""
    task = AdditionTask(2)
    torch.manual_seed(0)
    lm = LSTMLanguageModel(task.vocab_size, embed_dim=8, hidden_dim=8)
    torch.manual_seed(5)
    first, second = sample_lm(lm, task, 16), sample_lm(lm, task, 16)
    torch.manual_seed(5)
    assert torch.equal(sample_lm(lm, task, 16), first)
    assert not torch.equal(first, second)


# ---------------------------------------------------------------- log P_LM, importance resampling, attack generation
def test_lm_log_prob_sums_the_digit_probabilities_by_hand():
    """Fixed 0.7/0.2/0.1 on digits 3/5/8: log P(x) = sum over the 7 digit slots of log p(digit)."""
    samples = sample_lm(FixedLM(P), TASK, 20, seed=5)
    expected = [sum(math.log(P[int(t)]) for t in row[DIGIT_SLOTS]) for row in samples]
    assert torch.allclose(lm_log_prob(FixedLM(P), TASK, samples).double(), torch.tensor(expected, dtype=torch.double),
                          atol=1e-5)


def test_lm_log_prob_is_a_distribution_over_every_sequence():
    """n = 1: all 10^4 well-formed sequences enumerated; their probabilities under a random LSTM sum to 1."""
    task = AdditionTask(1)
    a, b, c1, c0 = torch.cartesian_prod(*[torch.arange(10)] * 4).T
    every = task.assemble(a[:, None], b[:, None], torch.stack([c1, c0], dim=1))
    torch.manual_seed(0)
    lstm = LSTMLanguageModel(task.vocab_size, embed_dim=8, hidden_dim=8)
    total = lm_log_prob(lstm, task, every).double().exp().sum()
    assert abs(total.item() - 1.0) < 1e-4


def test_lm_log_prob_refuses_malformed_sequences():
    bad = TASK.sample(2, seed=0)
    bad[1, 1] = 10  # '+' in a digit slot
    with pytest.raises(ValueError, match=r"well formed.*\[1\]"):
        lm_log_prob(FixedLM(P), TASK, bad)


class FirstDigitEnergy(nn.Module):
    """A stand-in energy: E(x) = energies[x_1] (only the first digit slot matters)."""

    def __init__(self, energies: dict[int, float]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor([energies.get(d, 0.0) for d in range(14)]))

    def energy(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens[:, 1]]


def test_resample_from_pool_picks_with_self_normalised_weights():
    """Every row holds the same 4 candidates with energies 0, 1, 2, -1: picks follow exp(-E) / sum exp(-E)."""
    energies = [0.0, 1.0, 2.0, -1.0]
    candidates = TASK.sample(4, seed=7)
    rows = 4000
    pool = candidates.expand(rows, 4, TASK.seq_len)
    picked = resample_from_pool(pool, torch.tensor(energies).expand(rows, 4), 4, torch.Generator().manual_seed(0))
    index = (picked[:, None, :] == candidates[None]).all(dim=-1).float().argmax(dim=1)
    z = sum(math.exp(-e) for e in energies)
    for j, e in enumerate(energies):
        p = math.exp(-e) / z
        assert abs((index == j).float().mean().item() - p) < 4.5 * math.sqrt(p * (1 - p) / rows)
    with pytest.raises(ValueError, match="n_candidates"):
        resample_from_pool(pool, torch.zeros(rows, 4), 5, torch.Generator())


@pytest.mark.parametrize("n_candidates", [1, 3])
def test_importance_resampling_matches_exact_enumeration(n_candidates):
    """P_LM puts 0.7/0.3 on digits 2/6, E(first digit 6) = -1.5. The chance that the output's first digit is 6,
    by brute force over every tuple of the candidates' first digits: sum_tuple P(tuple) * w_6-share."""
    lm, energy = FixedLM({2: 0.7, 6: 0.3}), FirstDigitEnergy({6: -1.5})
    expected = 0.0
    for tuple_ in torch.cartesian_prod(*[torch.tensor([2, 6])] * n_candidates).view(-1, n_candidates).tolist():
        p = math.prod(0.7 if d == 2 else 0.3 for d in tuple_)
        w = [math.exp(1.5) if d == 6 else 1.0 for d in tuple_]
        expected += p * sum(wi for wi, d in zip(w, tuple_) if d == 6) / sum(w)
    n_out = 3000
    out = importance_resample(lm, energy, TASK, n_candidates, n_out, seed=0)
    freq = (out[:, 1] == 6).float().mean().item()
    assert abs(freq - expected) < 4.5 * math.sqrt(expected * (1 - expected) / n_out), (freq, expected)


def test_attack_generate_is_sample_then_attack():
    torch.manual_seed(0)
    energy_model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, head="lm_nll")
    lm = untrained_lstm()
    assert torch.equal(attack_generate(lm, energy_model, TASK, 0, 6, seed=3), sample_lm(lm, TASK, 6, seed=3))
    attacked = attack_generate(lm, energy_model, TASK, 3, 6, seed=3, tabu=True)
    start = sample_lm(lm, TASK, 6, seed=3)
    with torch.no_grad():
        assert (energy_model.energy(attacked) <= energy_model.energy(start) + 1e-5).all()
    assert (attacked != start).any()
