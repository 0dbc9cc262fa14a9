"""Notebook 07's exercise checkers: right for a right answer, wrong (saying why) for the usual
mistakes, "not done yet" for the stub, TypeError for something that is not a function."""

import pytest
import torch
import torch.nn.functional as F

from advebm_teach.teaching.exercises.algorithm1 import (check_algorithm1_update,
                                                        check_logistic_ebm_loss)
from advebm_teach.trainer import ebm_loss


def stub(*args):
    raise NotImplementedError


# ---------------------------------------------------------------- Exercise 07.1
def test_logistic_loss_checker_accepts_the_library_and_rejects_mistakes():
    assert check_logistic_ebm_loss(lambda d, n: ebm_loss(d, n, "logistic"))
    assert check_logistic_ebm_loss(
        lambda d, n: d.clamp(min=0).mean() + torch.log1p(torch.exp(-d.abs())).mean()
        + (-n).clamp(min=0).mean() + torch.log1p(torch.exp(-n.abs())).mean())

    def naive(d, n):  # log(1 + e^z) written literally: e^800 is inf
        return torch.log1p(torch.exp(d)).mean() + torch.log1p(torch.exp(-n)).mean()

    verdict = check_logistic_ebm_loss(naive)
    assert repr(verdict) == ("✗ wrong: logistic_ebm_loss([-200.0, 800.0], [-900.0, 90.0]) "
                             "returned inf, expected 850")
    swapped = check_logistic_ebm_loss(lambda d, n: F.softplus(-d).mean() + F.softplus(n).mean())
    assert not swapped and repr(swapped).startswith("✗ wrong: logistic_ebm_loss([0.5, -1.0]")
    assert repr(check_logistic_ebm_loss(lambda d, n: None)).startswith("✗ not yet")
    assert repr(check_logistic_ebm_loss(stub)).startswith("… not done yet: write the body of "
                                                          "logistic_ebm_loss")
    with pytest.raises(TypeError, match="logistic_ebm_loss must be a function"):
        check_logistic_ebm_loss(0.5)


# ---------------------------------------------------------------- Exercise 07.2
def update_with(loss_of, zero=True, step=True, returned=None):
    """An algorithm1_update whose loss is ``loss_of(E(x_data), E(x_negative))``."""

    def algorithm1_update(energy_model, optimizer, x_data, x_negative):
        if zero:
            optimizer.zero_grad()
        loss = loss_of(energy_model.energy(x_data), energy_model.energy(x_negative))
        loss.backward()
        if step:
            optimizer.step()
        return loss.item() if returned is None else returned

    return algorithm1_update


def test_update_checker_accepts_a_right_update_written_two_ways():
    assert repr(check_algorithm1_update(update_with(ebm_loss))).startswith("✓ right")

    def by_hand(energy_model, optimizer, x_data, x_negative):
        # no optimizer: gradients by autograd, the step written out
        lr = optimizer.param_groups[0]["lr"]
        loss = (F.softplus(energy_model.energy(x_data)).mean()
                + F.softplus(-energy_model.energy(x_negative)).mean())
        parameters = list(energy_model.parameters())
        grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(parameters, grads):
                if g is not None:  # the LM head does not enter the energy
                    p -= lr * g
        return loss

    assert check_algorithm1_update(by_hand)


@pytest.mark.parametrize("update, says", [
    (update_with(lambda d, n: d.sum() - n.sum()), "line 18 as written"),
    (update_with(lambda d, n: ebm_loss(d, n, "paper", alpha=0.0)), "averaged over the batch"),
    (update_with(lambda d, n: ebm_loss(-d, -n)), "the signs swapped"),
    (update_with(ebm_loss, zero=False), "zero them first"),
    (update_with(ebm_loss, step=False), "did not move"),
    (update_with(lambda d, n: F.softplus(d).sum() + F.softplus(-n).sum()), "the sum over"),
    (update_with(lambda d, n: F.softplus(d).mean()),  # no negatives: an unnamed mistake
     "parameter token_embedding.weight at index [0, 0]: got"),
])
def test_update_checker_names_the_mistake(update, says):
    verdict = check_algorithm1_update(update)
    assert not verdict
    assert repr(verdict).startswith("✗ wrong: after algorithm1_update(energy_model, SGD(lr=0.1)")
    assert says in repr(verdict)


def test_update_checker_wants_the_loss_before_the_step():
    verdict = check_algorithm1_update(update_with(ebm_loss, returned=0.0))
    assert not verdict and "expected the loss before the step" in repr(verdict)
    assert repr(check_algorithm1_update(update_with(ebm_loss, returned="loss"))).startswith(
        "✗ wrong: the parameters are right, but")


def test_update_checker_says_not_done_for_the_stub_and_refuses_a_non_function():
    assert repr(check_algorithm1_update(stub)) == (
        "… not done yet: write the body of algorithm1_update, then run this cell again")
    with pytest.raises(TypeError, match="algorithm1_update must be a function"):
        check_algorithm1_update(None)


def test_update_checker_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    before = torch.rand(3)
    torch.manual_seed(3)
    check_algorithm1_update(update_with(ebm_loss))
    assert torch.equal(torch.rand(3), before)
