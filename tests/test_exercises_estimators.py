"""Notebook 02's checkers: right for a right answer, wrong with a useful message for typical
mistakes, "not done yet" for the notebook's stub, TypeError for what is not a function or a
model."""

import pytest
import torch

from advebm_teach.teaching.exercises.estimators import (check_gibbs_conditional,
                                                        check_importance_weights)
from advebm_teach.toy.ebm import ToyEBM

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.py


def stub(*args, **kwargs):
    """The exercise cell as shipped."""
    raise NotImplementedError


def sharp_model() -> ToyEBM:
    """Weights scaled up, so that P_theta is far from uniform (a sterner test)."""
    model = ToyEBM(3, 3, seed=0, hidden=8)
    with torch.no_grad():
        model.hidden_weight.mul_(2.0)
        model.hidden_bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
        model.out_weight.mul_(3.0)
    return model


def conditional(model, x, i):
    """The model solution of Exercise 02.1."""
    variants = x.repeat(model.n_symbols, 1)
    variants[:, i] = torch.arange(model.n_symbols)
    with torch.no_grad():
        return torch.softmax(-model.energy(variants), dim=0)


# ------------------------------------------------------------------------ Exercise 02.1
def test_gibbs_conditional_checker():
    model = sharp_model()
    right = check_gibbs_conditional(conditional, model)
    assert right and repr(right).startswith("✓ right")
    # the sign of the energy flipped: probable symbols become improbable
    wrong_sign = check_gibbs_conditional(
        lambda m, x, i: conditional(m, x, i).log().neg().softmax(0), model)
    assert not wrong_sign and repr(wrong_sign).startswith("✗ wrong: gibbs_conditional(model, [")
    assert "at symbol" in repr(wrong_sign)
    # not normalised: scaled by exp(-E(x)) instead of summing to 1 over the symbols
    unnormalised = check_gibbs_conditional(
        lambda m, x, i: conditional(m, x, i) * torch.exp(-m.energy(x[None]).detach()), model)
    assert not unnormalised and repr(unnormalised).startswith("✗ wrong")
    assert repr(check_gibbs_conditional(stub, model)) == (
        "… not done yet: write the body of gibbs_conditional, then run this cell again")
    with pytest.raises(TypeError, match="gibbs_conditional"):
        check_gibbs_conditional(42, model)
    with pytest.raises(TypeError, match="model must be a ToyEBM"):
        check_gibbs_conditional(conditional, "model")


def test_gibbs_conditional_checker_does_not_depend_on_the_input_being_kept():
    """A function that edits x in place still gets a fair check: the checker passes a copy."""
    def in_place(model, x, i):
        out = conditional(model, x, i)
        x[i] = 0
        return out

    assert check_gibbs_conditional(in_place, sharp_model())


# ------------------------------------------------------------------------ Exercise 02.2
def test_importance_weights_checker():
    right = check_importance_weights(lambda e, lq: torch.softmax(-e - lq, dim=0))
    assert right and repr(right).startswith("✓ right")
    # log q added instead of subtracted
    plus = check_importance_weights(lambda e, lq: torch.softmax(-e + lq, dim=0))
    assert not plus and repr(plus).startswith("✗ wrong: importance_weights([0.0, 0.0], ")
    assert "at sample 0" in repr(plus)
    # exp(-E) formed directly: overflows for energies around -800
    overflow = check_importance_weights(lambda e, lq: torch.exp(-e - lq) / torch.exp(-e - lq).sum())
    assert not overflow and "nan" in repr(overflow)
    assert repr(check_importance_weights(stub)) == (
        "… not done yet: write the body of importance_weights, then run this cell again")
    with pytest.raises(TypeError, match="importance_weights"):
        check_importance_weights([1, 2])
