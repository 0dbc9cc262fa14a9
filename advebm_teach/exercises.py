"""Checkers for the notebooks' exercises: each runs a student's function against a trusted reference
(plain Python integer arithmetic) on edge cases and random cases and returns a ``Verdict``, which a
notebook shows as one line ("✓ right: ..." or "✗ wrong: ...") and which is truthy when right."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``passed`` and the message a student reads."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


def _cases(seed: int = 0) -> Iterable[tuple[int, int, int]]:
    """(a, b, n_digits): the carry-chain edge cases first, then random ones."""
    for n in (1, 2, 5, 10):
        top = 10**n - 1
        yield from [(0, 0, n), (top, top, n), (top, 1, n), (1, top, n), (10 ** (n - 1), 10 ** (n - 1), n)]
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 12)
        yield rng.randrange(10**n), rng.randrange(10**n), n


def _verdict(name: str, check: Callable[[int, int, int], tuple[Any, Any, str]]) -> Verdict:
    for a, b, n in _cases():
        try:
            expected, got, call = check(a, b, n)
        except Exception as error:  # the student's code raised: say so, do not crash the notebook
            return Verdict(False, f"✗ not yet: {name} raised {type(error).__name__}: {error}")
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        if got != expected:
            return Verdict(False, f"✗ wrong: {call} returned {got!r}, expected {expected!r}")
    return Verdict(True, f"✓ right: {name} agrees with Python's integer addition on every case tried")


def check_answer_digits(answer_digits: Callable[[int, int, int], str]) -> Verdict:
    """Exercise 00.1: ``answer_digits(a, b, n_digits)`` is the n+1 digits of c = a + b, e.g. (12, 39, 2) -> '051'."""

    def check(a: int, b: int, n: int) -> tuple[str, Any, str]:
        return str(a + b).zfill(n + 1), answer_digits(a, b, n), f"answer_digits({a}, {b}, {n})"

    return _verdict("answer_digits", check)


def digits_of(x: int, n_digits: int) -> list[int]:
    """The ``n_digits`` digits of ``x``, most significant first."""
    return [int(d) for d in str(x).zfill(n_digits)]


def check_carries(carries: Callable[[list[int], list[int]], list[int]]) -> Verdict:
    """Exercise 00.2: ``carries(a_digits, b_digits)`` is the carry out of each column, most significant first.

    Reference: the carry out of the column worth 10^j is 1 exactly when (a mod 10^(j+1)) + (b mod 10^(j+1))
    reaches 10^(j+1), which depends on every digit to the right of that column.
    """

    def check(a: int, b: int, n: int) -> tuple[list[int], Any, str]:
        expected = [int(a % 10 ** (j + 1) + b % 10 ** (j + 1) >= 10 ** (j + 1)) for j in reversed(range(n))]
        a_digits, b_digits = digits_of(a, n), digits_of(b, n)
        return expected, carries(a_digits, b_digits), f"carries({a_digits}, {b_digits})"

    return _verdict("carries", check)
