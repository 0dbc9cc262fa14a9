"""Gibbs-with-Gradients and DMALA (advebm_teach/mcmc.py) against exact and brute-force references.

References: the toy EBM's enumerated p_theta (its exact log Z) for the long-run distribution and
the MH ratio; a hand-written toy energy differentiated by autograd for the first-order scores; a
loop over all single substitutions (GWG) and over all states (DMALA's product proposal) for the
proposal distributions; counters on the models' real forward and backward passes for the cost.

Stated bound (measured on this 81-state toy, 500 chains x 200 steps, 150 kept per chain):
correct chains reach a total variation of 0.005-0.028 from p_theta (model seeds 0-4, sampler
seeds 0-3; 0.002 with 4000 chains x 800 steps), against 0.22 (GWG) and 0.31 (DMALA) with the
reverse proposal q(x | x') dropped from the MH ratio, and 0.17 and 0.19 with the proposal treated
as symmetric (both q terms dropped). The bound is 0.05.
"""

import pytest
import torch

import advebm_teach.mcmc as mcmc
from advebm_teach import AdditionTask, LSTMLanguageModel
from advebm_teach.mcmc import (discrete_langevin, gibbs_with_gradients, gwg_proposal,
                               langevin_proposal)
from advebm_teach.residual import ResidualEnergy
from advebm_teach.toy.ebm import ToyEBM, all_states, state_index
from conftest import energy_with_random_readout, sharp_toy

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py

V, T = 3, 4  # 81 states
TV_BOUND, CHAINS, STEPS, BURN_IN = 0.05, 500, 200, 50
SAMPLERS = {"gwg": gibbs_with_gradients, "dmala": discrete_langevin}



def long_run_tv(sampler, model: ToyEBM) -> float:
    """TV between p_theta and the states of CHAINS chains from uniform starts, steps
    BURN_IN..STEPS pooled."""
    init = torch.randint(0, V, (CHAINS, T), generator=torch.Generator().manual_seed(0))
    trace = sampler(model, model.sequences, init, STEPS, seed=1, keep_trace=True).trace
    counts = torch.bincount(state_index(trace.tokens[BURN_IN:].flatten(0, 1), V), minlength=V**T)
    with torch.no_grad():
        return float((counts / counts.sum() - model.distribution()).abs().sum() / 2)


def reference_scores(model: ToyEBM, x: torch.Tensor) -> torch.Tensor:
    """``(B, T, V)``: d[i, v] = g_i[v] - g_i[x_i], g = grad of -E at one-hot x, with E written out
    by hand, E(h) = w . relu(W flat(h) + b) + c."""
    onehot = torch.nn.functional.one_hot(x, V).double().requires_grad_(True)
    hidden = torch.relu(onehot.flatten(1) @ model.hidden_weight.T + model.hidden_bias)
    (g,) = torch.autograd.grad(-(hidden @ model.out_weight + model.offset).sum(), onehot)
    return g - g.gather(2, x[..., None])


def gwg_reference(model: ToyEBM, x: torch.Tensor, y: torch.Tensor) -> float:
    """log q(y | x) for one sequence: exp(d / 2) over every single substitution, enumerated."""
    d = reference_scores(model, x[None])[0]
    weights = {(i, v): torch.exp(d[i, v] / 2) for i in range(T) for v in range(V) if v != x[i]}
    changed = (x != y).nonzero().flatten().tolist()
    assert len(changed) == 1
    return float(torch.log(weights[changed[0], int(y[changed[0]])] / sum(weights.values())))


def dmala_reference(model: ToyEBM, x: torch.Tensor, y: torch.Tensor, alpha: float) -> float:
    """log q(y | x) for one sequence: prod_i q_i(y_i | x), each q_i normalised by a loop over v."""
    d = reference_scores(model, x[None])[0]
    total = 0.0
    for i in range(T):
        logits = torch.tensor([float(d[i, v]) / 2 - (v != int(x[i])) / alpha for v in range(V)],
                              dtype=torch.float64)
        total += float(logits[int(y[i])] - torch.logsumexp(logits, dim=0))
    return total


# ---------------------------------------------------------------- the long run is exact
@pytest.mark.parametrize("name", SAMPLERS)
def test_long_run_distribution_is_p_theta(name):
    assert long_run_tv(SAMPLERS[name], sharp_toy(4)) < TV_BOUND


@pytest.mark.parametrize("name", SAMPLERS)
def test_without_the_reverse_proposal_the_long_run_is_wrong(name, monkeypatch):
    """The bound has power: the ratio p(x') / (p(x) q(x' | x)) misses it by far (0.22, 0.31)."""
    monkeypatch.setattr(mcmc, "metropolis_hastings_log_ratio",
                        lambda energy, new_energy, forward, reverse: energy - new_energy - forward)
    assert long_run_tv(SAMPLERS[name], sharp_toy(4)) > 3 * TV_BOUND


# ---------------------------------------------------------------- proposals and the MH ratio
def test_gwg_proposal_matches_enumerated_substitutions():
    model, states = sharp_toy(4, 1), all_states(V, T)
    log_q = gwg_proposal(reference_scores(model, states).detach(), states,
                         torch.ones(len(states), T, V, dtype=torch.bool))
    for k in (0, 5, 40, 80):
        x = states[k]
        for i in range(T):
            for v in range(V):
                if v == x[i]:
                    assert log_q[k, i, v] == float("-inf")
                else:
                    y = x.clone()
                    y[i] = v
                    assert float(log_q[k, i, v]) == pytest.approx(gwg_reference(model, x, y))


def test_langevin_proposal_matches_the_product_over_all_states():
    model, states, alpha = sharp_toy(4, 1), all_states(V, T), 0.7
    log_q = langevin_proposal(reference_scores(model, states).detach(), states,
                              torch.ones(len(states), T, V, dtype=torch.bool), alpha)
    x = states[17]
    product = log_q[17].gather(1, states.T).sum(dim=0)  # log q(y | x) for every state y: (81,)
    assert float(product.logsumexp(0)) == pytest.approx(0.0, abs=1e-12)
    for k in (0, 17, 33, 80):
        assert float(product[k]) == pytest.approx(dmala_reference(model, x, states[k], alpha))


def test_proposals_are_drawn_from_their_distributions():
    """20,000 one-step chains from one state: the proposals' frequencies against q (TV < 0.02,
    sampling noise about 0.01)."""
    model, states = sharp_toy(4, 1), all_states(V, T)
    x = states[40].repeat(20_000, 1)
    d = reference_scores(model, states[40:41]).detach()
    allowed = torch.ones(1, T, V, dtype=torch.bool)
    expected = {"gwg": gwg_proposal(d, states[40:41], allowed).exp().flatten(),
                "dmala": langevin_proposal(d, states[40:41], allowed, 0.5)[0]
                .gather(1, states.T).sum(dim=0).exp()}
    for name, sampler in SAMPLERS.items():
        proposed = sampler(model, model.sequences, x, 1, seed=3, keep_trace=True).trace.proposed[0]
        if name == "gwg":  # the flat index i * V + v of the one change
            position = (proposed != x).int().argmax(dim=1)
            index = position * V + proposed[torch.arange(len(x)), position]
        else:
            index = state_index(proposed, V)
        frequency = torch.bincount(index, minlength=len(expected[name])) / len(x)
        assert float((frequency - expected[name]).abs().sum() / 2) < 0.02


@pytest.mark.parametrize("name", SAMPLERS)
def test_acceptance_ratio_matches_brute_force_from_every_state(name):
    """One step from each of the 81 states: log r against log p from the enumerated p_theta and
    q from the enumerations above; r >= 1 is always accepted, and a state changes only to its
    proposal."""
    model, states = sharp_toy(4, 2), all_states(V, T)
    trace = SAMPLERS[name](model, model.sequences, states, 1, seed=4, keep_trace=True).trace
    with torch.no_grad():
        log_p = model.log_prob(states)  # -E - log Z, Z summed over all states
    for k in range(len(states)):
        x, y = states[k], trace.proposed[0, k]
        y_index = int(state_index(y[None], V))
        if name == "gwg":
            log_q = gwg_reference(model, x, y), gwg_reference(model, y, x)
        else:
            log_q = dmala_reference(model, x, y, 0.5), dmala_reference(model, y, x, 0.5)
        expected = float(log_p[y_index] - log_p[k]) + log_q[1] - log_q[0]
        assert float(trace.log_ratio[0, k]) == pytest.approx(expected, abs=1e-9)
        after = trace.tokens[1, k]
        assert torch.equal(after, x) or torch.equal(after, y)
        if expected >= 0:
            assert torch.equal(after, y)


# ---------------------------------------------------------------- cost, seeds, trace
class CountingToy(ToyEBM):
    """A ToyEBM that counts the sequences it scores forward and those back-propagated."""

    forwards = backwards = 0

    def energy_from_embeds(self, embeds, tokens=None):
        energy = super().energy_from_embeds(embeds, tokens)
        self.forwards += len(embeds)
        if energy.requires_grad:
            energy.register_hook(lambda grad: self._count_backward(len(grad)))
        return energy

    def _count_backward(self, n: int) -> None:
        self.backwards += n


@pytest.mark.parametrize("name", SAMPLERS)
def test_cost_counts_the_passes_run_and_seeds_reproduce(name):
    model = CountingToy(V, T, seed=0, hidden=8)
    init = all_states(V, T)[::4]
    result = SAMPLERS[name](model, model.sequences, init, 7, seed=5)
    assert (result.energy_evaluations, result.gradient_passes) == (model.forwards,
                                                                  model.backwards)
    assert model.forwards == len(init) * 8
    again = SAMPLERS[name](model, model.sequences, init, 7, generator=torch.Generator()
                           .manual_seed(5))
    assert torch.equal(again.states, result.states)
    assert again.acceptance_rate == result.acceptance_rate
    with torch.no_grad():
        assert torch.allclose(result.energy, model.energy(result.states))


def test_trace_records_start_moves_and_end():
    model = sharp_toy(4)
    init = all_states(V, T)[:10]
    result = gibbs_with_gradients(model, model.sequences, init, 6, seed=0, keep_trace=True)
    trace = result.trace
    assert trace.tokens.shape == (7, 10, T) and trace.proposed.shape == (6, 10, T)
    assert torch.equal(trace.tokens[0], init) and torch.equal(trace.tokens[-1], result.states)
    changed = (trace.tokens[1:] != trace.tokens[:-1]).any(dim=2)
    moved = (trace.tokens[1:] == trace.proposed).all(dim=2) & changed
    assert result.acceptance_rate == pytest.approx(float(moved.double().mean()))
    assert (trace.proposed != trace.tokens[:-1]).sum(dim=2).eq(1).all()  # one substitution each
    with torch.no_grad():
        assert torch.allclose(trace.energy, model.energy(trace.tokens.flatten(0, 1)).view(7, 10))
    empty = discrete_langevin(model, model.sequences, init, 0, keep_trace=True)
    assert empty.trace.proposed.shape == (0, 10, T) and empty.acceptance_rate == 0.0


# ---------------------------------------------------------------- the course's energy
TASK = AdditionTask(2)


def residual_energy(head: str = "mean") -> ResidualEnergy:
    torch.manual_seed(0)
    lm = LSTMLanguageModel(TASK.vocab_size, embed_dim=16, hidden_dim=16).eval()
    return ResidualEnergy(energy_with_random_readout(TASK, 0, head), lm, TASK, temperature=0.5)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("positions", ["digits", "answer"])
def test_course_chains_edit_only_editable_digits_and_count_their_passes(name, positions):
    residual = residual_energy("lm_nll")
    counts = {"E forward": 0, "E backward": 0, "LM forward": 0, "LM backward": 0}

    def counter(key):
        return lambda module, args, output: counts.__setitem__(
            key, counts[key] + len((output[0] if isinstance(output, tuple) else output)))

    hooks = [residual.energy_model.ln_final.register_forward_hook(counter("E forward")),
             residual.energy_model.ln_final.register_full_backward_hook(counter("E backward")),
             residual.lm.lm_head.register_forward_hook(counter("LM forward")),
             residual.lm.lm_head.register_full_backward_hook(counter("LM backward"))]
    init = TASK.sample(6, seed=0)
    result = SAMPLERS[name](residual, TASK, init, 5, positions=positions, seed=0,
                            keep_trace=True)
    for hook in hooks:
        hook.remove()
    tokens = result.trace.tokens.flatten(0, 1)
    assert TASK.is_well_formed(tokens).all()
    assert TASK.is_well_formed(result.trace.proposed.flatten(0, 1)).all()
    fixed = ~TASK.editable_mask(init, positions)[0]
    assert (result.trace.tokens[:, :, fixed] == init[:, fixed]).all()
    assert result.acceptance_rate > 0 and (result.states != init).any()
    assert result.energy_evaluations == result.gradient_passes == 6 * 6
    assert set(counts.values()) == {6 * 6}
    with torch.no_grad():
        assert torch.allclose(result.energy, residual.energy(result.states), atol=1e-5)


def test_bad_arguments_are_refused_by_name():
    residual, init = residual_energy(), TASK.sample(2, seed=0)
    with pytest.raises(ValueError, match="steps"):
        gibbs_with_gradients(residual, TASK, init, -1)
    with pytest.raises(ValueError, match="step_size"):
        discrete_langevin(residual, TASK, init, 1, step_size=0.0)
    with pytest.raises(ValueError, match="positions"):
        gibbs_with_gradients(residual, TASK, init, 1, positions="all")
    with pytest.raises(ValueError, match="well formed"):
        gibbs_with_gradients(residual, TASK, init.flip(1), 1)
    with pytest.raises(ValueError, match="seed or generator"):
        gibbs_with_gradients(residual, TASK, init, 1, seed=0, generator=torch.Generator())
    with pytest.raises(TypeError, match="energy_model"):
        gibbs_with_gradients(residual.lm, TASK, init, 1)
