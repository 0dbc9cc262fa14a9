"""ToyEBM, BigramLM and the toy's distributions against brute force.

References: ``itertools.product`` for the states, an explicit Python loop over the parameters for the energy,
``math`` (max-shifted, ``math.fsum``) for log Z, autograd of the mean NLL through ``logsumexp`` and central
finite differences for the gradient, histograms of many samples for exactness, and the rules written out
state by state for the data distribution and the bigram model.
"""

import itertools
import math

import pytest
import torch

from advebm_teach.saliency import first_order_scores
from advebm_teach.toy.ebm import (MAX_STATES, BigramLM, ToyEBM, all_states, check_states, closed_walk_distribution,
                              exact_kl, sample_states, state_index)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.py


def sharp_model(n_symbols: int = 3, length: int = 3, hidden: int = 8, seed: int = 0) -> ToyEBM:
    """A small model with weights scaled up, so that p_theta is far from uniform (a sterner test)."""
    model = ToyEBM(n_symbols, length, seed=seed, hidden=hidden)
    with torch.no_grad():
        model.hidden_weight.mul_(2.0)
        model.hidden_bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed))
        model.out_weight.mul_(3.0)
        model.offset.fill_(0.7)
    return model


def energy_reference(model: ToyEBM, sequence) -> float:
    """c + sum_k w_k max(0, b_k + sum_i W[k, i*V + x_i]), one Python loop per unit, from the raw parameters."""
    V = model.n_symbols
    W, b = model.hidden_weight.tolist(), model.hidden_bias.tolist()
    w, c = model.out_weight.tolist(), float(model.offset.detach())
    total = c
    for k in range(len(b)):
        pre = b[k] + sum(W[k][i * V + s] for i, s in enumerate(sequence))
        total += w[k] * max(pre, 0.0)
    return total


def logsumexp_reference(values) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def tv_distance(samples: torch.Tensor, probs: torch.Tensor, n_symbols: int) -> float:
    counts = torch.bincount(state_index(samples, n_symbols), minlength=len(probs)).double()
    return float((counts / counts.sum() - probs).abs().sum() / 2)


# ---------------------------------------------------------------- the state space
@pytest.mark.parametrize("n_symbols, length", [(2, 1), (3, 3), (4, 5)])
def test_all_states_lists_every_sequence_once_in_lexicographic_order(n_symbols, length):
    expected = [list(x) for x in itertools.product(range(n_symbols), repeat=length)]
    states = all_states(n_symbols, length)
    assert states.dtype == torch.int64 and states.tolist() == expected
    assert torch.equal(state_index(states, n_symbols), torch.arange(len(expected)))


def test_model_states_are_all_states():
    assert torch.equal(ToyEBM(3, 4).states(), all_states(3, 4))


# ---------------------------------------------------------------- eq. (1) and (2)
@pytest.mark.parametrize("n_symbols, length, hidden", [(3, 3, 8), (4, 5, 32)])
def test_energy_matches_the_formula_loop(n_symbols, length, hidden):
    model = sharp_model(n_symbols, length, hidden)
    states = all_states(n_symbols, length)[:: max(1, n_symbols**length // 60)]
    with torch.no_grad():
        got = model.energy(states).tolist()
    expected = [energy_reference(model, x) for x in states.tolist()]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("n_symbols, length, hidden", [(3, 3, 8), (2, 6, 5), (4, 5, 32)])
def test_log_partition_equals_an_independent_logsumexp_over_every_state(n_symbols, length, hidden):
    model = sharp_model(n_symbols, length, hidden)
    reference = logsumexp_reference([-energy_reference(model, x)
                                     for x in itertools.product(range(n_symbols), repeat=length)])
    with torch.no_grad():
        assert float(model.log_partition()) == pytest.approx(reference, rel=1e-12)


def test_log_prob_and_distribution_are_eq_1():
    model = sharp_model()
    states = model.states()
    with torch.no_grad():
        log_z = logsumexp_reference([-energy_reference(model, x) for x in states.tolist()])
        expected = [-energy_reference(model, x) - log_z for x in states.tolist()]
        assert model.log_prob(states).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert model.distribution().tolist() == pytest.approx([math.exp(v) for v in expected], rel=1e-12, abs=1e-15)
        assert float(model.distribution().sum()) == pytest.approx(1.0, abs=1e-12)


def test_offset_changes_energies_not_probabilities():
    model = sharp_model()
    shifted = sharp_model()
    with torch.no_grad():
        shifted.offset.add_(5.0)
        torch.testing.assert_close(shifted.energy(model.states()), model.energy(model.states()) + 5.0)
        torch.testing.assert_close(shifted.distribution(), model.distribution(), rtol=0, atol=1e-14)


# ---------------------------------------------------------------- eq. (3)
def mean_nll(model: ToyEBM, data: torch.Tensor) -> torch.Tensor:
    """The definition: mean_data E(x) + log Z, with log Z through torch.logsumexp (autograd differentiates it)."""
    return model.energy(data).mean() + torch.logsumexp(-model.energy(model.states()), dim=0)


@pytest.mark.parametrize("n_symbols, length, hidden", [(3, 3, 8), (4, 5, 32)])
def test_exact_grad_equals_autograd_of_the_mean_nll(n_symbols, length, hidden):
    model = sharp_model(n_symbols, length, hidden)
    data = all_states(n_symbols, length)[torch.randint(0, n_symbols**length, (50,),
                                                       generator=torch.Generator().manual_seed(3))]
    reference = torch.autograd.grad(mean_nll(model, data), list(model.parameters()))
    got = model.exact_grad(data)
    assert [g.shape for g in got] == [p.shape for p in model.parameters()]
    for g, r in zip(got, reference):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    assert float(got[-1].abs()) < 1e-12  # the offset: E_data[1] - E_model[1] = 0


def test_exact_grad_equals_central_finite_differences():
    model = sharp_model(3, 3, hidden=4)
    data = torch.tensor([[0, 1, 2], [2, 2, 0], [1, 1, 1], [0, 1, 2]])
    got = torch.cat([g.flatten() for g in model.exact_grad(data)])
    h, numeric = 1e-6, []
    with torch.no_grad():
        for parameter in model.parameters():
            flat = parameter.view(-1)
            for j in range(flat.numel()):
                flat[j] += h
                up = float(mean_nll(model, data))
                flat[j] -= 2 * h
                down = float(mean_nll(model, data))
                flat[j] += h
                numeric.append((up - down) / (2 * h))
    torch.testing.assert_close(got, torch.tensor(numeric, dtype=torch.float64), rtol=1e-6, atol=1e-8)


def test_contrast_grad_with_every_state_weighted_by_p_theta_is_exact_grad():
    model = sharp_model()
    data = torch.tensor([[0, 0, 0], [1, 2, 1]])
    with torch.no_grad():
        probs = model.distribution()
    for a, b in zip(model.contrast_grad(data, model.states(), probs), model.exact_grad(data)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    # uniform weights by default: the mean over the negatives, each counted once per occurrence
    negatives = torch.tensor([[0, 1, 2], [0, 1, 2], [2, 0, 0]])
    weights = torch.tensor([2 / 3, 0.0, 1 / 3], dtype=torch.float64)
    for a, b in zip(model.contrast_grad(data, negatives), model.contrast_grad(data, negatives[[0, 1, 2]], weights)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_no_parameter_grad_is_left_behind():
    model = sharp_model()
    model.exact_grad(torch.tensor([[0, 1, 2]]))
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- sampling and seeds
def test_sample_draws_from_p_theta():
    model = sharp_model()
    with torch.no_grad():
        probs = model.distribution()
    samples = model.sample(40_000, seed=0)
    assert samples.shape == (40_000, 3) and samples.dtype == torch.int64
    assert tv_distance(samples, probs, 3) < 0.02  # expected about 0.007 for 27 states


def test_same_seed_same_model_and_samples():
    assert all(torch.equal(a, b) for a, b in zip(ToyEBM(4, 5, seed=3).parameters(), ToyEBM(4, 5, seed=3).parameters()))
    assert not torch.equal(ToyEBM(4, 5, seed=3).hidden_weight, ToyEBM(4, 5, seed=4).hidden_weight)
    state = torch.get_rng_state()
    ToyEBM(4, 5, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # torch's global random state is left alone
    model = ToyEBM(4, 5)
    assert torch.equal(model.sample(100, seed=1), model.sample(100, seed=1))
    assert not torch.equal(model.sample(100, seed=1), model.sample(100, seed=2))


def test_sample_states_draws_from_the_given_distribution():
    probs = torch.tensor([0.5, 0.0, 0.25, 0.25], dtype=torch.float64)
    samples = sample_states(all_states(2, 2), probs, 40_000, seed=0)
    assert tv_distance(samples, probs, 2) < 0.01
    assert not (state_index(samples, 2) == 1).any()


# ---------------------------------------------------------------- the data and the proposal
def test_closed_walk_distribution_follows_its_rule_state_by_state():
    n_symbols, length, stay = 4, 5, 2.0
    weights = []
    for x in itertools.product(range(n_symbols), repeat=length):
        w = float(x[-1] == x[0])
        for a, b in zip(x, x[1:]):
            w *= stay if a == b else 1.0 if abs(a - b) == 1 else 0.0
        weights.append(w)
    expected = [w / sum(weights) for w in weights]
    assert closed_walk_distribution(n_symbols, length, stay).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert sum(w > 0 for w in weights) == 54


def test_bigram_lm_log_prob_is_the_product_of_its_factors():
    generator = torch.Generator().manual_seed(0)
    initial = torch.rand(3, generator=generator, dtype=torch.float64) + 0.1
    transition = torch.rand(3, 3, generator=generator, dtype=torch.float64) + 0.1
    lm = BigramLM(initial / initial.sum(), transition / transition.sum(1, keepdim=True), length=4)
    states = all_states(3, 4)
    expected = []
    for x in states.tolist():
        value = math.log(lm.initial[x[0]])
        for a, b in zip(x, x[1:]):
            value += math.log(lm.transition[a, b])
        expected.append(value)
    assert lm.log_prob(states).tolist() == pytest.approx(expected, rel=1e-12)
    assert float(lm.distribution().sum()) == pytest.approx(1.0, abs=1e-12)


def test_bigram_lm_fit_recovers_a_bigram_chain_and_samples_it():
    initial = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    transition = torch.tensor([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.8, 0.1, 0.1]], dtype=torch.float64)
    chain = BigramLM(initial, transition, length=4)
    fitted = BigramLM.fit(chain.distribution(), 3, 4, smoothing=1e-12)
    torch.testing.assert_close(fitted.initial, initial, rtol=0, atol=1e-9)
    torch.testing.assert_close(fitted.transition, transition, rtol=0, atol=1e-9)
    samples = chain.sample(40_000, seed=0)
    assert samples.shape == (40_000, 4)
    assert tv_distance(samples, chain.distribution(), 3) < 0.03  # 81 states: expected about 0.016
    assert torch.equal(chain.sample(50, seed=1), chain.sample(50, seed=1))


def test_bigram_lm_learns_the_local_rule_but_not_the_global_one():
    p_data = closed_walk_distribution(4, 5)
    q = BigramLM.fit(p_data, 4, 5, smoothing=1e-3).distribution()
    states = all_states(4, 5)
    legal_steps = ((states[:, 1:] - states[:, :-1]).abs() <= 1).all(dim=1)
    assert float(q.min()) > 0
    assert float(q[legal_steps].sum()) > 0.99          # the step rule: learned
    assert float(q[p_data > 0].sum()) < 0.5            # coming home: not learned


def test_kl_divergence_against_the_formula():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert exact_kl(p, q) == pytest.approx(0.5 * math.log(2) * 2)
    assert exact_kl(q, q) == 0.0
    with pytest.raises(ValueError, match="same states"):
        exact_kl(p, q[:2])


# ---------------------------------------------------------------- the planted mode
def test_spurious_mode_lowers_one_state_by_depth_and_no_other():
    model = sharp_model(4, 5, hidden=32)
    state = torch.tensor([0, 0, 3, 0, 0])
    planted = model.with_spurious_mode(state, depth=7.5)
    assert planted.config["hidden"] == 33 and model.config["hidden"] == 32
    with torch.no_grad():
        change = planted.energy(model.states()) - model.energy(model.states())
    expected = torch.zeros(len(change), dtype=torch.float64)
    expected[int(state_index(state[None], 4))] = -7.5
    torch.testing.assert_close(change, expected, rtol=0, atol=1e-12)
    assert [tuple(p.shape) for p in planted.parameters()] == [(33, 20), (33,), (33,), ()]
    for old, new in zip(model.parameters(), planted.parameters()):  # the fitted units are copied unchanged
        assert torch.equal(new[: len(old)] if old.dim() else new, old)


# ---------------------------------------------------------------- the embedding seam
def test_first_order_scores_are_exact_when_the_energy_is_linear_in_the_one_hots():
    """With every unit active the energy is linear in onehot(x), so g_i[v] - g_i[x_i] is the true energy decrease."""
    model = ToyEBM(4, 5, seed=1)
    with torch.no_grad():
        model.hidden_bias.fill_(100.0)  # every pre-activation positive for every one-hot input
    x = all_states(4, 5)[::97]
    scores = first_order_scores(model, x)
    assert scores.shape == (len(x), 5, 4)
    for b in range(len(x)):
        for i in range(5):
            for v in range(4):
                y = x[b].tolist()
                y[i] = v
                expected = energy_reference(model, x[b].tolist()) - energy_reference(model, y)
                assert float(scores[b, i, v]) == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("bad, error, match", [
    (torch.tensor([[0.0, 1.0, 2.0]]), TypeError, "integer token ids"),
    ([[0, 1, 2]], TypeError, "torch.Tensor"),
    (torch.tensor([0, 1, 2]), ValueError, r"2 dimensions, got shape \(3,\)"),
    (torch.tensor([[0, 1]]), ValueError, r"length seq_len=3 .*shape \(1, 2\)"),
    (torch.zeros(0, 3, dtype=torch.long), ValueError, "at least one sequence"),
    (torch.tensor([[0, 1, 3]]), ValueError, r"token ids in \[0, 3\), got min 0, max 3"),
    (torch.tensor([[0, -1, 2]]), ValueError, r"token ids in \[0, 3\), got min -1, max 2"),
])
def test_bad_states_are_refused_with_a_clear_error(bad, error, match):
    model = ToyEBM(3, 3)
    with pytest.raises(error, match=match):
        model.energy(bad)
    with pytest.raises(error, match="data"):
        model.exact_grad(bad)
    with pytest.raises(error, match=match):
        check_states(bad, 3, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_symbols=1, length=3), ValueError, "n_symbols must be an int >= 2"),
    (dict(n_symbols=4, length=0), ValueError, "length must be an int >= 1"),
    (dict(n_symbols=10, length=6), ValueError, f"too many to enumerate .at most {MAX_STATES}"),
    (dict(n_symbols=4, length=5, hidden=0), ValueError, "hidden must be an int >= 1"),
    (dict(n_symbols=4, length=5, seed=-1), ValueError, "seed must be an int"),
    (dict(n_symbols=4, length=5, seed=True), TypeError, "seed must be an int"),
    (dict(n_symbols=4.0, length=5), TypeError, "n_symbols must be an int"),
])
def test_bad_model_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        ToyEBM(**kwargs)


def test_other_bad_arguments_are_refused():
    model = ToyEBM(3, 3)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        model.sample(0, seed=0)
    with pytest.raises(TypeError, match=r"seed must be an int in \[0, 4294967295\]"):
        model.sample(5, seed="zero")
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        model.contrast_grad(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 0, 0], [1, 1, 1]]), torch.ones(3))
    with pytest.raises(ValueError, match="depth must be a finite number > 0"):
        model.with_spurious_mode(torch.tensor([0, 1, 2]), depth=0.0)
    with pytest.raises(ValueError, match="one sequence"):
        model.with_spurious_mode(torch.tensor([[0, 1, 2], [1, 1, 1]]), depth=1.0)
    with pytest.raises(ValueError, match=r"embeds must have shape \(B, 3, 3\)"):
        model.energy_from_embeds(torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="stay must be a finite number > 0"):
        closed_walk_distribution(4, 5, stay=0.0)
    with pytest.raises(ValueError, match=r"probability vector of shape \(4,\)"):
        sample_states(all_states(2, 2), torch.tensor([0.5, 0.5, 0.5, 0.5]), 3, seed=0)
    with pytest.raises(ValueError, match="positive and sum to 1"):
        BigramLM(torch.tensor([0.5, 0.5]), torch.tensor([[1.0, 0.0], [0.5, 0.5]]), length=3)
    with pytest.raises(ValueError, match=r"initial must be \(V,\)"):
        BigramLM(torch.tensor([0.5, 0.5]), torch.ones(3, 3) / 3, length=3)
    with pytest.raises(ValueError, match="smoothing must be a finite number > 0"):
        BigramLM.fit(closed_walk_distribution(2, 3), 2, 3, smoothing=0.0)


# ---------------------------------------------------------------- notebook 01's checkers and figures
def test_state_heatmaps_place_every_state_in_its_cell():
    from advebm_teach.teaching.plots import state_heatmaps

    probs = [0.0] * 27
    probs[5], probs[26] = 0.75, 0.25  # states 012 and 222
    fig = state_heatmaps({"p": probs, "uniform": [1 / 27] * 27}, 3, 3, floor=1e-6, mark=[5])
    heatmap, marker = fig.data[0], fig.data[1]
    assert list(heatmap.y) == ["0", "1", "2"] and list(heatmap.x)[5] == "12"
    assert heatmap.z[0][5] == round(math.log10(0.75), 3) and heatmap.z[2][8] == round(math.log10(0.25), 3)
    assert heatmap.z[0][0] is None  # probability exactly 0: an empty cell
    assert list(marker.x) == ["12"] and list(marker.y) == ["0"]
    assert len(fig.data) == 4
    with pytest.raises(ValueError, match="expected 27"):
        state_heatmaps({"p": probs[:-1]}, 3, 3)


def test_curves_against_draws_one_line_per_curve():
    from advebm_teach.teaching.plots import curves_against

    fig = curves_against([16, 128], {"a": [0.5, 0.9], "b": [0.1, float("inf")]}, log_x=True)
    assert [trace.name for trace in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.1, None]
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="one value per x"):
        curves_against([1, 2, 3], {"a": [1.0]})
