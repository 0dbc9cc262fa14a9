"""The exact GWG kernel of advebm_teach/toy/kernel.py against the toy's exact distribution and
against the sampler itself (one step from a fixed state, 40,000 chains)."""

import pytest
import torch

from advebm_teach.mcmc import gibbs_with_gradients
from advebm_teach.toy.ebm import state_index
from advebm_teach.toy.kernel import gwg_kernel, stationary_distribution
from conftest import sharp_toy

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.mark.parametrize("seed", [0, 1])
def test_the_kernel_is_stochastic_balanced_and_leaves_p_invariant(seed):
    model = sharp_toy(4, seed)
    kernel = gwg_kernel(model)
    with torch.no_grad():
        p = model.distribution()
    assert (kernel >= 0).all()
    assert torch.allclose(kernel.sum(dim=1), torch.ones(81, dtype=torch.float64))
    flow = p[:, None] * kernel  # p(x) K[x, y]
    assert torch.allclose(flow, flow.T, atol=1e-15)
    assert torch.allclose(p @ kernel, p, atol=1e-14)
    # only single substitutions (and staying) have probability
    states = model.states()
    hamming = (states[:, None, :] != states[None, :, :]).sum(dim=2)
    assert (kernel[hamming > 1] == 0).all()


def test_the_symmetric_ratio_breaks_the_balance():
    model = sharp_toy(4)
    with torch.no_grad():
        p = model.distribution()
    wrong = gwg_kernel(model, symmetric_ratio=True)
    flow = p[:, None] * wrong
    assert (flow - flow.T).abs().max() > 1e-3
    assert float((stationary_distribution(wrong) - p).abs().sum() / 2) > 0.1
    right = stationary_distribution(gwg_kernel(model))
    assert float((right - p).abs().sum() / 2) < 1e-6


def test_the_kernel_row_is_what_the_sampler_does_in_one_step():
    model = sharp_toy(4)
    kernel = gwg_kernel(model)
    start = model.states()[[17]].repeat(40_000, 1)
    after = gibbs_with_gradients(model, model.sequences, start, 1, seed=3).states
    empirical = torch.bincount(state_index(after, 3), minlength=81).double() / len(after)
    assert float((empirical - kernel[17]).abs().sum() / 2) < 0.02


def test_only_a_toy_has_an_exact_kernel():
    with pytest.raises(TypeError, match="model must be a ToyEBM"):
        gwg_kernel(torch.nn.Linear(2, 2))
