"""Notebook 01's checkers: right for a right answer, wrong with a useful message for typical
mistakes, "not done yet" for the notebook's stub, TypeError for what is not a function."""

import pytest
import torch

from advebm_teach.teaching.exercises.ebm import check_log_partition, check_model_term

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.py


def stub(*args, **kwargs):
    """The exercise cell as shipped."""
    raise NotImplementedError


# ------------------------------------------------------------------------ Exercise 01.1
def test_log_partition_checker():
    def shifted(energies):
        m = (-energies).max()
        return m + torch.log(torch.exp(-energies - m).sum())

    right = check_log_partition(shifted)
    assert right and repr(right).startswith("✓ right")
    assert check_log_partition(lambda e: torch.logsumexp(-e, dim=0))
    naive = check_log_partition(lambda e: torch.log(torch.exp(-e).sum()))  # overflows
    assert not naive and "returned inf" in repr(naive)
    wrong_sign = check_log_partition(lambda e: torch.logsumexp(e, dim=0))  # log sum exp(+E)
    assert not wrong_sign
    assert repr(wrong_sign) == ("✗ wrong: log_partition([1.0, 2.0, 3.0]) returned 3.40761, "
                                "expected -0.592394")
    assert repr(check_log_partition(lambda e: None)).startswith("✗ not yet")
    assert repr(check_log_partition(stub)) == (
        "… not done yet: write the body of log_partition, then run this cell again")
    with pytest.raises(TypeError, match="log_partition"):
        check_log_partition("torch.logsumexp")


# ------------------------------------------------------------------------ Exercise 01.2
def model_term(model, negatives, weights=None):
    """The model solution: the gradient of sum_k w_k E(x_k), weights detached."""
    energies = model.energy(negatives)
    if weights is None:
        weights = torch.full_like(energies, 1 / len(negatives))
    return list(torch.autograd.grad((weights.detach() * energies).sum(), list(model.parameters())))


def model_term_by_loop(model, negatives, weights=None):
    """Another right answer: one backward pass per negative, accumulated in .grad and zeroed."""
    model.zero_grad()
    K = len(negatives)
    for k in range(K):
        w = 1 / K if weights is None else float(weights[k])
        (w * model.energy(negatives[k:k + 1]).sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return grads


def test_model_term_checker_accepts_right_answers():
    for answer in (model_term, model_term_by_loop):
        verdict = check_model_term(answer)
        assert verdict and repr(verdict).startswith("✓ right")


def test_model_term_checker_names_the_sign_mistake():
    flipped = check_model_term(lambda m, x, w=None: [-g for g in model_term(m, x, w)])
    text = repr(flipped)
    assert not flipped and text.startswith("✗ wrong: model_term(model, [[")
    assert "the gradient for A (hidden_weight), at hidden unit" in text
    assert "the sign is flipped" in text


def test_model_term_checker_names_a_sum_for_a_mean():
    summed = check_model_term(lambda m, x, w=None: list(torch.autograd.grad(
        m.energy(x).sum(), list(m.parameters()))))
    assert not summed and "not their mean" in repr(summed)


def test_model_term_checker_names_ignored_weights():
    unweighted = check_model_term(lambda m, x, w=None: model_term(m, x, None))
    assert not unweighted and "weights were ignored" in repr(unweighted)
    assert "weights=[" in repr(unweighted)  # the failing call shows the weights it was given


def test_model_term_checker_catches_accumulated_gradients():
    def backward_without_zeroing(model, negatives, weights=None):
        energies = model.energy(negatives)
        if weights is None:
            weights = torch.full_like(energies, 1 / len(negatives))
        (weights.detach() * energies).sum().backward()
        return [p.grad for p in model.parameters()]

    assert not check_model_term(backward_without_zeroing)


def test_model_term_checker_refuses_an_optimisation_step():
    def steps(model, negatives, weights=None):
        grads = model_term(model, negatives, weights)
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= 0.1 * g
        return grads

    verdict = check_model_term(steps)
    assert not verdict and "changed the model's parameters" in repr(verdict)


def test_model_term_checker_explains_wrong_kinds_of_answer():
    one_tensor = check_model_term(lambda m, x, w=None: model_term(m, x, w)[0])
    assert repr(one_tensor).endswith("returned a Tensor; expected a list of 4 tensors, "
                                     "one per parameter (A, b, w, c)")
    three = check_model_term(lambda m, x, w=None: model_term(m, x, w)[:3])
    assert "returned a list of length 3" in repr(three)
    floats = check_model_term(lambda m, x, w=None: [float(g.sum()) for g in model_term(m, x, w)])
    assert "is a float, expected a tensor of shape" in repr(floats)
    assert repr(check_model_term(lambda m, x, w=None: None)).startswith("✗ not yet")


def test_model_term_checker_stub_and_bad_argument():
    assert repr(check_model_term(stub)) == (
        "… not done yet: write the body of model_term, then run this cell again")
    raising = check_model_term(lambda m, x, w=None: x.foo)
    assert repr(raising).startswith("✗ not yet: model_term(model, [[") and "AttributeError" in repr(raising)
    with pytest.raises(TypeError, match="model_term"):
        check_model_term(None)


def test_model_term_reference_is_the_exact_expectation():
    """The all-states case: -grad log Z equals the sum over states weighted by P_theta, term by
    term (a check of the reference itself)."""
    from advebm_teach.teaching.exercises.ebm import _model_term_cases
    from advebm_teach.toy.ebm import ToyEBM

    model = ToyEBM(3, 3, seed=4, hidden=6)
    call, negatives, weights, expected = _model_term_cases(model)[-1]
    assert "all 27 states" in call and torch.allclose(weights.sum(), torch.tensor(1.0).double())
    by_state = [torch.autograd.grad(model.energy(x[None]).sum(), list(model.parameters()))
                for x in negatives]
    for j, e in enumerate(expected):
        assert torch.allclose(sum(float(w) * g[j] for w, g in zip(weights, by_state)), e)
