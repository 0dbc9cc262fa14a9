"""Checkers of notebook 06's exercises (spurious modes), against plain Python loops.

* ``count_spurious``: how many attacked sequences are spurious modes, i.e. not a correct sum
  (correctness < 1) with an energy strictly below the median energy of the true sums (the lower
  middle value when their number is even, as ``torch.median`` takes it). Reference: a sort and a
  loop over the sequences.
* ``pick_probability``: the probability that importance resampling returns a spurious candidate
  from each row of a pool, sum_{k spurious} e^{-E_k} / sum_j e^{-E_j}. Reference: Python floats
  shifted by the row's lowest energy, so that e^{1000} never has to be written down.
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Any, Callable, Sequence

import torch

from ...checks import check_callable
from .verdict import Verdict, failed_call, verdict_of_tensors


def lower_median(values: Sequence[float]) -> float:
    """The median as ``torch.median`` takes it: the middle value of the sorted values, the lower
    of the two middle ones when their number is even."""
    if not values:
        raise ValueError("values must hold at least one number")
    return sorted(values)[(len(values) - 1) // 2]


def count_spurious_reference(energy: Sequence[float], correctness: Sequence[float],
                             data_energy: Sequence[float]) -> int:
    """#{k : correctness_k < 1 and E_k < median(data_energy)}, one sequence at a time."""
    threshold = lower_median(list(data_energy))
    count = 0
    for e, c in zip(energy, correctness):
        if c < 1 and e < threshold:
            count += 1
    return count


def _as_count(value: Any) -> Any:
    """A count as the student returned it: a Python int, or a one-element integer tensor or NumPy
    integer made an int; anything else is returned as it is (and then reads as wrong)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not (
            value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        return int(value.item())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _count_cases(seed: int = 0) -> list[tuple[list[float], list[float], list[float]]]:
    """(energy, correctness, data_energy): hand-made cases first (a tie at the median, an even
    number of true sums, correctness 1 below the median), then random small ones with ties."""
    cases = [([-3.0, -1.0, 0.5, -2.5], [0.5, 1.0, 0.0, 0.75], [-2.0, -1.0, 0.0]),
             ([-1.5, -1.0, -2.0, 0.0], [0.0, 0.25, 1.0, 0.5], [-3.0, -1.0, 1.0, 4.0]),
             ([-4.0, -3.5, -0.5], [1.0, 1.0, 1.0], [-1.0, 0.0, 2.0]),
             ([2.0, 3.0], [0.0, 0.5], [-1.0, 0.0, 1.0])]
    rng = random.Random(seed)
    for _ in range(40):
        size, n_data = rng.randint(1, 8), rng.randint(1, 6)
        cases.append(([rng.randint(-6, 4) / 2 for _ in range(size)],
                      [rng.randint(0, 6) / 6 for _ in range(size)],
                      [rng.randint(-6, 4) / 2 for _ in range(n_data)]))
    size = 300  # as many as the notebook attacks
    cases.append(([rng.gauss(-1.0, 2.0) for _ in range(size)],
                  [rng.randint(0, 6) / 6 for _ in range(size)],
                  [rng.gauss(-2.0, 1.0) for _ in range(size)]))
    return cases


def _short(values: list[float]) -> str:
    if len(values) > 8:
        return f"<{len(values)} values>"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def check_count_spurious(count_spurious: Callable[[Any, Any, Any], Any]) -> Verdict:
    """Exercise 06.1: ``count_spurious(energy (B,), correctness (B,), data_energy (M,)) -> int``,
    the number of spurious modes among B attacked sequences.

    Reference: ``count_spurious_reference`` (a sort and a loop).
    """
    check_callable("count_spurious", count_spurious)
    name = "count_spurious"
    for energy, correctness, data_energy in _count_cases():
        call = (f"{name}(energy={_short(energy)}, correctness={_short(correctness)}, "
                f"data_energy={_short(data_energy)})")
        expected = count_spurious_reference(energy, correctness, data_energy)
        try:
            got = _as_count(count_spurious(torch.tensor(energy), torch.tensor(correctness),
                                           torch.tensor(data_energy)))
        except Exception as error:  # the student's code raised: say so, do not crash
            return failed_call(name, call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        if not isinstance(got, int):
            return Verdict(False, f"✗ wrong: {call} returned {got!r}, expected the integer "
                                  f"{expected} (a count: return an int)")
        if got != expected:
            median = lower_median(data_energy)
            return Verdict(False, f"✗ wrong: {call} returned {got}, expected {expected} (the "
                                  f"median of data_energy is {median:g} here)")
    return Verdict(True, f"✓ right: {name} agrees with the reference on every case tried")


def pick_probability_reference(pool_energy: Sequence[Sequence[float]],
                               spurious: Sequence[Sequence[bool]]) -> torch.Tensor:
    """``(N,)`` float64: per row, sum_{k spurious} e^{-E_k} / sum_j e^{-E_j}, in Python floats
    shifted by the row's lowest energy (e^{-(E_k - min E)} <= 1 never overflows)."""
    rows = []
    for energies, marks in zip(pool_energy, spurious):
        lowest = min(energies)
        weights = [math.exp(-(e - lowest)) for e in energies]
        rows.append(math.fsum(w for w, m in zip(weights, marks) if m) / math.fsum(weights))
    return torch.tensor(rows, dtype=torch.float64)


def check_pick_probability(pick_probability: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 06.2: ``pick_probability(pool_energy (N, M), spurious (N, M) bool) -> (N,)``, the
    probability that importance resampling returns a spurious candidate from each row.

    Reference: ``pick_probability_reference`` (Python floats, shifted by the lowest energy).
    """
    check_callable("pick_probability", pick_probability)
    generator = torch.Generator().manual_seed(6)
    cases = [  # equal weights; then a row with none and a row with all spurious
        (torch.zeros(1, 4), torch.tensor([[True, False, False, False]])),
        (torch.tensor([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]]),
         torch.tensor([[False, False, False], [True, True, True]])),
        (torch.randn(3, 5, generator=generator) * 3, torch.rand(3, 5, generator=generator) < 0.4),
        # e^{1000} overflows: an energy of -1000 must not make the row NaN
        (torch.tensor([[-1000.0, -999.0, 5.0, 0.0], [1000.0, 1001.0, 999.5, 1002.0]]),
         torch.tensor([[False, True, True, False], [True, False, False, True]]))]
    trials = []
    for energy, marks in cases:
        expected = pick_probability_reference(energy.tolist(), marks.tolist())
        rounded = [[round(v, 3) for v in row] for row in energy.tolist()]
        call = f"pick_probability(pool_energy={rounded}, spurious={marks.tolist()})"
        trials.append((call, expected,
                       lambda e=energy, m=marks: pick_probability(e.clone(), m.clone())))
    return verdict_of_tensors("pick_probability", trials, dims=("row",))
