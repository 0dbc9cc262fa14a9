"""The first-order study (advebm_teach/first_order_study.py) against brute force.

Reference: a loop over every sequence, position and digit that scores each substitution with its
own forward pass, Spearman's rho as the Pearson correlation of ranks (``scipy.stats.rankdata``,
``numpy.corrcoef``), and the best substitutions found by Python's ``max``.
"""

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from advebm_teach import AdditionTask, TransformerEnergy
from advebm_teach.first_order_study import (GROUPS, first_order_quality, group_positions,
                                            substitution_effects)
from advebm_teach.saliency import first_order_scores
from conftest import energy_with_random_readout

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py

TASK = AdditionTask(2)


def corrupted_tokens(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Well-formed sequences with about half of their digits random."""
    g = torch.Generator().manual_seed(seed)
    x = TASK.sample(n, generator=g)
    replace = (torch.rand(x.shape, generator=g) < 0.5) & TASK.digit_slots
    return torch.where(replace, torch.randint(0, 10, x.shape, generator=g), x)


def brute_force(model, x: torch.Tensor, positions: list[int]) -> tuple[list, list, list]:
    """Per sequence: (predicted, true) decrease per substitution, Spearman rho, top-1 hit."""
    scores = first_order_scores(model, x)
    pairs, rhos, hits = [], [], []
    with torch.no_grad():
        for b in range(len(x)):
            energy = float(model.energy(x[b : b + 1]))
            row = {}
            for i in positions:
                for v in range(10):
                    if v != x[b, i]:
                        y = x[b : b + 1].clone()
                        y[0, i] = v
                        row[i, v] = float(scores[b, i, v]), energy - float(model.energy(y))
            predicted, actual = map(np.array, zip(*row.values()))
            pairs.append(row)
            rhos.append(np.corrcoef(rankdata(predicted), rankdata(actual))[0, 1])
            hits.append(max(row, key=lambda k: row[k][0]) == max(row, key=lambda k: row[k][1]))
    return pairs, rhos, hits


@pytest.mark.parametrize("head", ["eos", "lm_nll"])
def test_rank_agreement_matches_brute_force(head):
    model, x = energy_with_random_readout(TASK, 0, head), corrupted_tokens()
    effects = substitution_effects(model, TASK, x)
    quality = first_order_quality(model, TASK, x)
    assert set(quality) == set(GROUPS)
    for group in GROUPS:
        positions = group_positions(TASK, group)
        pairs, rhos, hits = brute_force(model, x, positions)
        for b, row in enumerate(pairs):
            for (i, v), (predicted, actual) in row.items():
                assert float(effects.predicted[b, i, v]) == pytest.approx(predicted, abs=1e-6)
                assert float(effects.actual[b, i, v]) == pytest.approx(actual, abs=1e-5)
        agreement = quality[group]
        assert np.allclose(agreement.spearman, rhos, atol=1e-6)
        assert agreement.top1.tolist() == hits
        assert agreement.n_substitutions == 9 * len(positions)
        summary = agreement.summary()
        assert summary["spearman"] == pytest.approx(np.mean(rhos))
        assert summary["chance_top1"] == pytest.approx(1 / (9 * len(positions)))
    assert group_positions(TASK, "answer") == [7, 8, 9]  # <bos> a a + b b = c c c <eos>
    assert group_positions(TASK, "operands") == [1, 2, 4, 5]


def test_candidates_are_exactly_the_single_digit_substitutions():
    x = corrupted_tokens(2, seed=1)
    effects = substitution_effects(energy_with_random_readout(TASK, 1, "mean"), TASK, x)
    expected = torch.zeros_like(effects.candidates)
    for b in range(2):
        for i in group_positions(TASK, "digits"):
            for v in range(10):
                expected[b, i, v] = v != x[b, i]
    assert torch.equal(effects.candidates, expected)
    assert effects.actual[~expected].isnan().all() and not effects.actual[expected].isnan().any()


def test_a_constant_energy_has_no_ranking():
    """A fresh scalar read-out gives E = 0 everywhere: rho is undefined (NaN), not a number."""
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2)
    summary = first_order_quality(model, TASK, corrupted_tokens())["answer"].summary()
    assert np.isnan(summary["spearman"]) and summary["sequences"] == 4


def test_bad_arguments_are_refused_by_name():
    model = energy_with_random_readout(TASK)
    with pytest.raises(ValueError, match="group"):
        group_positions(TASK, "question")
    with pytest.raises(ValueError, match="well formed"):
        substitution_effects(model, TASK, corrupted_tokens().flip(1))
    with pytest.raises(ValueError, match="batch_size"):
        substitution_effects(model, TASK, corrupted_tokens(), batch_size=0)
