"""Notebook 06's checkers: right for a correct function, wrong (and saying why) for typical
mistakes, "not done yet" for the stub, TypeError for something that is not a function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advebm_teach.teaching.exercises.spurious import (check_count_spurious,
                                                      check_pick_probability,
                                                      count_spurious_reference, lower_median,
                                                      pick_probability_reference)


# ------------------------------------------------------------------ Exercise 06.1
def count_spurious(energy, correctness, data_energy):
    return int(((correctness < 1) & (energy < data_energy.median())).sum())


def count_with_ties(energy, correctness, data_energy):  # <= instead of <
    return int(((correctness < 1) & (energy <= data_energy.median())).sum())


def count_below_mean(energy, correctness, data_energy):
    return int(((correctness < 1) & (energy < data_energy.mean())).sum())


def count_numpy_median(energy, correctness, data_energy):  # averages the two middle values
    return int(((correctness < 1) & (energy < float(np.median(data_energy.numpy())))).sum())


def count_all_wrong_digits(energy, correctness, data_energy):  # only sums with no right digit
    return int(((correctness == 0) & (energy < data_energy.median())).sum())


def count_ignoring_correctness(energy, correctness, data_energy):
    return int((energy < data_energy.median()).sum())


def count_as_float(energy, correctness, data_energy):
    return ((correctness < 1) & (energy < data_energy.median())).float().sum()


def count_stub(energy, correctness, data_energy):
    raise NotImplementedError


def test_lower_median_is_torch_median():
    generator = torch.Generator().manual_seed(0)
    for size in range(1, 12):
        values = torch.randint(-5, 5, (size,), generator=generator).float()
        assert lower_median(values.tolist()) == float(values.median())
    with pytest.raises(ValueError, match="at least one"):
        lower_median([])


def test_count_reference_on_a_hand_case():
    # median of the true sums: -1 (lower middle of four); -1.5 and -2.0 are below it, but -2.0
    # is a correct sum, and -1.0 is not strictly below
    assert count_spurious_reference([-1.5, -1.0, -2.0, 0.0], [0.0, 0.25, 1.0, 0.5],
                                    [-3.0, -1.0, 1.0, 4.0]) == 1


def test_count_checker_accepts_a_correct_function():
    verdict = check_count_spurious(count_spurious)
    assert verdict and verdict.message.startswith("✓ right")


def test_count_checker_accepts_a_python_loop():
    def loop(energy, correctness, data_energy):
        threshold = sorted(data_energy.tolist())[(len(data_energy) - 1) // 2]
        return sum(1 for e, c in zip(energy.tolist(), correctness.tolist())
                   if c < 1 and e < threshold)

    assert check_count_spurious(loop)


@pytest.mark.parametrize("mistake", [count_with_ties, count_below_mean, count_numpy_median,
                                     count_all_wrong_digits, count_ignoring_correctness])
def test_count_checker_catches_typical_mistakes(mistake):
    verdict = check_count_spurious(mistake)
    assert not verdict
    assert verdict.message.startswith("✗ wrong: count_spurious(energy=")
    assert "expected" in verdict.message and "median of data_energy is" in verdict.message


def test_count_checker_wants_an_integer():
    verdict = check_count_spurious(count_as_float)
    assert not verdict and "return an int" in verdict.message


def test_count_checker_says_not_done_for_the_stub():
    verdict = check_count_spurious(count_stub)
    assert not verdict and verdict.message.startswith("… not done yet")
    assert "count_spurious" in verdict.message


def test_count_checker_refuses_what_is_not_a_function():
    with pytest.raises(TypeError, match="count_spurious must be a function"):
        check_count_spurious(3)


# ------------------------------------------------------------------ Exercise 06.2
def pick_probability(pool_energy, spurious):
    weights = torch.softmax(-pool_energy.double(), dim=1)
    return (weights * spurious).sum(dim=1)


def pick_naive_exp(pool_energy, spurious):  # overflows at E = -1000
    weights = torch.exp(-pool_energy)
    return (weights * spurious).sum(dim=1) / weights.sum(dim=1)


def pick_wrong_sign(pool_energy, spurious):
    weights = torch.softmax(pool_energy, dim=1)
    return (weights * spurious).sum(dim=1)


def pick_uniform(pool_energy, spurious):  # the share of spurious candidates, unweighted
    return spurious.double().mean(dim=1)


def pick_stub(pool_energy, spurious):
    raise NotImplementedError


def test_pick_reference_on_a_hand_case():
    expected = torch.tensor([1 / (1 + np.e), 0.25, 1.0], dtype=torch.float64)
    got = pick_probability_reference([[1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-1e3, 1e3]],
                                     [[True, False], [False, True, False, False], [True, False]])
    assert torch.allclose(got, expected)


def test_pick_checker_accepts_a_correct_function():
    verdict = check_pick_probability(pick_probability)
    assert verdict and verdict.message.startswith("✓ right")


def test_pick_checker_names_the_row_that_overflows():
    verdict = check_pick_probability(pick_naive_exp)
    assert not verdict
    assert "at row 0: got nan" in verdict.message and "-1000.0" in verdict.message


@pytest.mark.parametrize("mistake", [pick_wrong_sign, pick_uniform])
def test_pick_checker_catches_typical_mistakes(mistake):
    verdict = check_pick_probability(mistake)
    assert not verdict and verdict.message.startswith("✗ wrong: pick_probability(")
    assert "at row" in verdict.message


def test_pick_checker_says_not_done_for_the_stub():
    verdict = check_pick_probability(pick_stub)
    assert not verdict and verdict.message.startswith("… not done yet")


def test_pick_checker_refuses_what_is_not_a_function():
    with pytest.raises(TypeError, match="pick_probability must be a function"):
        check_pick_probability("softmax")
