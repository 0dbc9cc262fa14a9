"""Checkers of notebook 00's exercises (the addition task), against Python's integer addition."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable

from ...checks import check_callable, check_int
from .verdict import Verdict, verdict_of_cases


def _cases(seed: int = 0) -> Iterable[tuple[int, int, int]]:
    """(a, b, n_digits): the carry-chain edge cases first, then random ones."""
    for n in (1, 2, 5, 10):
        top = 10**n - 1
        yield from [(0, 0, n), (top, top, n), (top, 1, n), (1, top, n),
                    (10 ** (n - 1), 10 ** (n - 1), n)]
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 12)
        yield rng.randrange(10**n), rng.randrange(10**n), n


def check_answer_digits(answer_digits: Callable[[int, int, int], str]) -> Verdict:
    """Exercise 00.1: ``answer_digits(a, b, n_digits)`` is the n+1 digits of c = a + b.

    E.g. (12, 39, 2) -> '051'.
    """
    check_callable("answer_digits", answer_digits)

    return verdict_of_cases("answer_digits", (
        (f"answer_digits({a}, {b}, {n})", str(a + b).zfill(n + 1),
         lambda a=a, b=b, n=n: answer_digits(a, b, n))
        for a, b, n in _cases()))


def digits_of(x: int, n_digits: int) -> list[int]:
    """The ``n_digits`` digits of ``x``, most significant first."""
    if check_int("x", x, 0) >= 10 ** check_int("n_digits", n_digits, 1):
        raise ValueError(f"x must have at most n_digits={n_digits} digits, got {x}")
    return [int(d) for d in str(x).zfill(n_digits)]


def check_carries(carries: Callable[[list[int], list[int]], list[int]]) -> Verdict:
    """Exercise 00.2: ``carries(a_digits, b_digits)`` is the carry out of each column, most
    significant first.

    Reference: the carry out of the column worth 10^j is 1 exactly when
    (a mod 10^(j+1)) + (b mod 10^(j+1)) reaches 10^(j+1), which depends on every digit to the right
    of that column.
    """
    check_callable("carries", carries)

    def case(a: int, b: int, n: int) -> tuple[str, list[int], Callable[[], Any]]:
        expected = [int(a % 10 ** (j + 1) + b % 10 ** (j + 1) >= 10 ** (j + 1))
                    for j in reversed(range(n))]
        a_digits, b_digits = digits_of(a, n), digits_of(b, n)
        return (f"carries({a_digits}, {b_digits})", expected,
                lambda: carries(list(a_digits), list(b_digits)))

    return verdict_of_cases("carries", (case(a, b, n) for a, b, n in _cases()))
