"""The likelihood-gradient estimators against the exact gradient and against plain references.

References: ``ToyEBM.exact_grad`` (itself tested against autograd and finite differences in test_toy.py), the
enumerated p_theta for the samplers' invariance, per-sample autograd loops for the NCE and importance-sampling
formulas, a one-sequence-at-a-time loop for the attack, and an energy-evaluation counter for the costs.

Documented sample count: at n = 4096 samples (Gibbs 5 sweeps, GWG 25 steps, importance sampling from a proposal
that covers p_theta) the cosine with the exact gradient is >= 0.99 on the untrained 4-symbol, length-5 model
(measured 0.997-0.999 over model seeds 0-2).
"""

import math

import pytest
import torch

from advebm_teach.attack import DiscreteAttack
from advebm_teach.attack_reference import naive_attack
from advebm_teach.toy.ebm import BigramLM, ToyEBM, all_states, closed_walk_distribution, sample_states, state_index
from advebm_teach.toy.estimators import (adversarial, cosine, error_table, exact, flat, gibbs, gibbs_sweeps,
                                         gibbs_with_gradients, gwg_steps, importance_sampling, nce,
                                         relative_error, train)
from conftest import sharp_toy

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.py

V, T = 4, 5
P_DATA = closed_walk_distribution(V, T)
DATA = sample_states(all_states(V, T), P_DATA, 256, seed=1)
PLM = BigramLM.fit(P_DATA, V, T)



def tv_distance(samples: torch.Tensor, probs: torch.Tensor, n_symbols: int) -> float:
    counts = torch.bincount(state_index(samples, n_symbols), minlength=len(probs)).double()
    return float((counts / counts.sum() - probs).abs().sum() / 2)


# ---------------------------------------------------------------- the unbiased ones converge
def own_proposal(model: ToyEBM) -> BigramLM:
    """A bigram fitted to p_theta itself: a proposal that covers the model (importance sampling's premise)."""
    with torch.no_grad():
        return BigramLM.fit(model.distribution(), model.n_symbols, model.length)


CONVERGING = {
    "gibbs": lambda m, n, s: gibbs(m, DATA, PLM, n, s, sweeps=5),
    "gibbs_with_gradients": lambda m, n, s: gibbs_with_gradients(m, DATA, PLM, n, s, steps=25),
    "importance_sampling": lambda m, n, s: importance_sampling(m, DATA, own_proposal(m), n, s),
}


@pytest.mark.parametrize("name", CONVERGING)
@pytest.mark.parametrize("model_seed", [0, 1])
def test_unbiased_estimators_reach_cosine_099_at_4096_samples(name, model_seed):
    model = ToyEBM(V, T, seed=model_seed)
    reference = model.exact_grad(DATA)
    small = CONVERGING[name](model, 64, 5)
    large = CONVERGING[name](model, 4096, 5)
    assert cosine(large.grads, reference) >= 0.99
    assert relative_error(large.grads, reference) < relative_error(small.grads, reference)


def test_exact_estimator_is_exact_grad_at_the_cost_of_every_state():
    model = ToyEBM(V, T)
    estimate = exact(model, DATA)
    assert all(torch.equal(a, b) for a, b in zip(estimate.grads, model.exact_grad(DATA)))
    assert estimate.cost == 2 * V**T and estimate.negatives is None


# ---------------------------------------------------------------- the samplers keep p_theta
@pytest.mark.parametrize("sampler", ["gibbs", "gwg"])
def test_mcmc_started_at_exact_samples_stays_at_p_theta(sampler):
    """p_theta is invariant: chains that start at exact samples are still distributed as p_theta afterwards.
    (A Metropolis-Hastings ratio without the reverse proposal fails this: TV 0.16, against 0.008 here.)"""
    model = sharp_toy(3)
    with torch.no_grad():
        probs = model.distribution()
    start = model.sample(40_000, seed=0)
    if sampler == "gibbs":
        end, _ = gibbs_sweeps(model, start, sweeps=2, seed=1)
    else:
        end, _, acceptance = gwg_steps(model, start, steps=4, seed=1)
        assert 0.05 < acceptance < 1.0
    assert tv_distance(start, probs, 3) < 0.015
    assert tv_distance(end, probs, 3) < 0.015
    assert (end != start).any(dim=1).float().mean() > 0.3  # the chains did move


@pytest.mark.parametrize("sampler", ["gibbs", "gwg"])
def test_mcmc_from_a_bad_start_approaches_p_theta(sampler):
    model = sharp_toy(3)
    with torch.no_grad():
        probs = model.distribution()
    start = torch.zeros(20_000, 3, dtype=torch.long)  # every chain at 000
    if sampler == "gibbs":
        end, _ = gibbs_sweeps(model, start, sweeps=20, seed=2)
    else:
        end, _, _ = gwg_steps(model, start, steps=60, seed=2)
    assert tv_distance(end, probs, 3) < 0.03


# ---------------------------------------------------------------- the formulas, sample by sample
def per_sample_grads(model: ToyEBM, x: torch.Tensor) -> list[torch.Tensor]:
    """grad_theta E(x_k), one autograd call per sequence, flattened: (K, P)."""
    return [flat(torch.autograd.grad(model.energy(row[None]).sum(), list(model.parameters()))) for row in x]


def test_importance_sampling_weights_and_gradient_follow_the_formula():
    model = ToyEBM(V, T, seed=2)
    estimate = importance_sampling(model, DATA, PLM, 50, seed=3)
    x = estimate.negatives
    with torch.no_grad():
        log_w = [-float(model.energy(row[None])) - float(PLM.log_prob(row[None])) for row in x]
    top = max(log_w)
    w = [math.exp(v - top) for v in log_w]
    w = torch.tensor([v / math.fsum(w) for v in w], dtype=torch.float64)
    torch.testing.assert_close(estimate.weights, w, rtol=1e-10, atol=1e-14)
    data_term = torch.stack(per_sample_grads(model, DATA[:40])).mean(0)
    expected = data_term - (w[:, None] * torch.stack(per_sample_grads(model, x))).sum(0)
    got = importance_sampling(model, DATA[:40], PLM, 50, seed=3)
    torch.testing.assert_close(flat(got.grads), expected, rtol=1e-9, atol=1e-12)


def test_nce_gradient_is_the_bce_formula():
    """grad = mean_data (1 - sigma(s)) grad E - mean_noise sigma(s) grad E, s = -E - log q (Residual-EBM BCE)."""
    model = ToyEBM(V, T, seed=2)
    data = DATA[:40]
    estimate = nce(model, data, PLM, 50, seed=3)
    expected = torch.zeros_like(flat(estimate.grads))
    for rows, sign in ((data, 1.0), (estimate.negatives, -1.0)):
        for row, grad in zip(rows, per_sample_grads(model, rows)):
            with torch.no_grad():
                s = -float(model.energy(row[None])) - float(PLM.log_prob(row[None]))
            sigma = 1 / (1 + math.exp(-s))
            expected += (1 - sigma if sign > 0 else -sigma) * grad / len(rows)
    torch.testing.assert_close(flat(estimate.grads), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, make", [
    ("nce", lambda m, n: nce(m, DATA, PLM, n, 5)),
    ("adversarial", lambda m, n: adversarial(m, DATA, PLM, n, 5)),
])
def test_biased_estimators_keep_their_error_as_samples_grow(name, make):
    """Measured on this model: relative error 4.0 (NCE) and 2.4 (adversarial) at n = 4096, against 0.1 for Gibbs."""
    model = ToyEBM(V, T, seed=0)
    reference = model.exact_grad(DATA)
    error = relative_error(make(model, 4096).grads, reference)
    assert error > 1.0
    assert cosine(make(model, 4096).grads, reference) < 0.9


# ---------------------------------------------------------------- the attack
def test_the_course_attack_runs_on_the_toy_as_the_reference_does_and_never_raises_the_energy():
    """The one attack class and the one reference attack, on the toy's sequences (any symbol, anywhere),
    with the tabu rule the adversarial estimator uses."""
    model = ToyEBM(V, T, seed=1)
    start = PLM.sample(40, seed=6)
    got = DiscreteAttack(model, model.sequences, 8, tabu=True).attack(start)
    expected = naive_attack(model, model.sequences, start, 8, tabu=True)
    assert torch.equal(got.tokens, expected.tokens) and torch.equal(got.position, expected.position)
    assert torch.allclose(got.energy, expected.energy, rtol=0, atol=1e-12)
    with torch.no_grad():
        assert (model.energy(got.final) <= model.energy(start) + 1e-12).all()
        assert (model.energy(got.final) < model.energy(start) - 1e-9).float().mean() > 0.5


# ---------------------------------------------------------------- costs
def counting(model: ToyEBM) -> dict[str, int]:
    """Wrap ``model.energy_from_embeds`` to count sequences passed forward, and those passed with a graph
    (every such pass in the estimators is back-propagated)."""
    counts = {"forward": 0, "backward": 0}
    original = model.energy_from_embeds

    def counted(embeds, tokens=None):
        counts["forward"] += len(embeds)
        if torch.is_grad_enabled():
            counts["backward"] += len(embeds)
        return original(embeds, tokens)

    model.energy_from_embeds = counted
    return counts


@pytest.mark.parametrize("name, make", [
    ("exact", lambda m, d: exact(m, d)),
    ("gibbs", lambda m, d: gibbs(m, d, PLM, 16, 0, sweeps=3)),
    ("gibbs_with_gradients", lambda m, d: gibbs_with_gradients(m, d, PLM, 16, 0, steps=7)),
    ("importance_sampling", lambda m, d: importance_sampling(m, d, PLM, 16, 0)),
    ("nce", lambda m, d: nce(m, d, PLM, 16, 0)),
    ("adversarial", lambda m, d: adversarial(m, d, PLM, 16, 0, steps=4)),
])
def test_cost_counts_the_negative_phase_energy_evaluations(name, make):
    model = ToyEBM(V, T)
    counts = counting(model)
    data = DATA[:10]
    estimate = make(model, data)
    assert estimate.cost == counts["forward"] + counts["backward"] - 2 * len(data)


# ---------------------------------------------------------------- measuring and training
def test_error_table_splits_the_error_into_bias_and_spread():
    model = ToyEBM(V, T)
    estimators = {"exact": lambda m, d, n, s: exact(m, d),
                  "gibbs": lambda m, d, n, s: gibbs(m, d, PLM, n, s, sweeps=1)}
    rows = error_table(model, DATA, estimators, [8, 32], repeats=3)
    assert [(r["estimator"], r["n"]) for r in rows] == [("exact", 8), ("exact", 32), ("gibbs", 8), ("gibbs", 32)]
    for row in rows[:2]:
        assert row["cosine"] == pytest.approx(1.0) and row["relative_error"] == pytest.approx(0.0, abs=1e-12)
    for row in rows:
        assert row["relative_error"] ** 2 == pytest.approx(row["bias"] ** 2 + row["spread"] ** 2, rel=1e-9, abs=1e-15)
    assert rows[2]["cost"] == 1 * T * V * 8 + 2 * 8


def test_training_with_the_exact_gradient_lowers_the_kl():
    model = ToyEBM(V, T)
    trained, history = train(model, DATA, lambda m, d, n, s: exact(m, d), n=0, steps=20, lr=0.02, target=P_DATA)
    assert [row["step"] for row in history] == list(range(21))
    assert history[-1]["kl"] < 0.5 * history[0]["kl"]
    assert history[-1]["cost"] == 20 * 2 * V**T
    with torch.no_grad():
        assert history[-1]["log_likelihood"] == pytest.approx(float(trained.log_prob(DATA).mean()))
        assert history[0]["log_likelihood"] == pytest.approx(float(model.log_prob(DATA).mean()))  # a copy was trained


def planted_model() -> tuple[ToyEBM, torch.Tensor]:
    """The untrained model with 00300 lowered until it holds half of the mass."""
    model = ToyEBM(V, T)
    state = torch.tensor([[0, 0, 3, 0, 0]])
    with torch.no_grad():
        energies = model.energy(model.states())
        index = int(state_index(state, V))
        rest = torch.logsumexp(-torch.cat([energies[:index], energies[index + 1:]]), dim=0)
    return model.with_spurious_mode(state[0], float(energies[index] + rest)), state


def test_a_planted_mode_is_removed_by_the_exact_gradient_and_never_touched_by_nce():
    planted, state = planted_model()
    _, exact_history = train(planted, DATA, lambda m, d, n, s: exact(m, d), n=0, steps=10, lr=0.02,
                             target=P_DATA, watch=state)
    assert exact_history[0]["mass"] == pytest.approx(0.5)
    assert exact_history[-1]["mass"] < 0.01
    after_nce, nce_history = train(planted, DATA, lambda m, d, n, s: nce(m, d, PLM, n, s), n=128, steps=10, lr=0.02,
                                   target=P_DATA, watch=state)
    # the planted unit (the last one) received no gradient: its weights are exactly as planted
    assert torch.equal(after_nce.hidden_weight[-1], planted.hidden_weight[-1])
    assert torch.equal(after_nce.hidden_bias[-1], planted.hidden_bias[-1])
    assert torch.equal(after_nce.out_weight[-1], planted.out_weight[-1])
    assert not torch.equal(after_nce.hidden_weight[:-1], planted.hidden_weight[:-1])  # the others did learn
    assert nce_history[-1]["mass"] > 0.4


# ---------------------------------------------------------------- errors
def test_bad_estimator_arguments_are_refused():
    model = ToyEBM(V, T)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        gibbs(model, DATA, PLM, 0, seed=0)
    with pytest.raises(ValueError, match="sweeps must be an int >= 0"):
        gibbs(model, DATA, PLM, 4, seed=0, sweeps=-1)
    with pytest.raises(TypeError, match="steps must be an int >= 0"):
        gibbs_with_gradients(model, DATA, PLM, 4, seed=0, steps=1.5)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        adversarial(model, DATA, PLM, 4, seed=0, steps=-2)
    with pytest.raises(ValueError, match=r"init must have length seq_len=5 .*got shape \(3, 4\)"):
        gibbs_sweeps(model, torch.zeros(3, 4, dtype=torch.long), 1, seed=0)
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        error_table(model, DATA, {}, [4], repeats=0)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        train(model, DATA, lambda m, d, n, s: exact(m, d), n=0, steps=-1, lr=0.1, target=P_DATA)
    with pytest.raises(TypeError, match="data"):
        nce(model, DATA.float(), PLM, 4, seed=0)
