"""What every exercise checker returns, and how it explains a mismatch.

A checker runs a student's function against a trusted reference (plain Python arithmetic, brute
force or exact enumeration) and returns a ``Verdict``: one line a student reads ("✓ right: ...",
"✗ wrong: ...", or "… not done yet: ..." while the function still raises ``NotImplementedError``),
truthy when right. A wrong tensor is explained by its first differing element, named in the
input's own terms (which batch row, which position), with integers shown as integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``passed`` and the message a student reads."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


def failed_call(name: str, call: str, error: Exception) -> Verdict:
    """The verdict when the student's function raised ``error`` during ``call``."""
    if isinstance(error, NotImplementedError):
        return Verdict(False,
                       f"… not done yet: write the body of {name}, then run this cell again")
    return Verdict(False, f"✗ not yet: {call} raised {type(error).__name__}: {error}")


def verdict_of_cases(name: str, cases: Iterable[tuple[str, Any, Callable[[], Any]]]) -> Verdict:
    """Run ``(call, expected, thunk)`` cases whose results are plain values (ints, strings, lists);
    right when every result equals the expected value."""
    for call, expected, thunk in cases:
        try:
            got = thunk()
        except Exception as error:  # the student's code raised: say so, do not crash the notebook
            return failed_call(name, call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        if got != expected:
            return Verdict(False, f"✗ wrong: {call} returned {got!r}, expected {expected!r}")
    return Verdict(True, f"✓ right: {name} agrees with the reference on every case tried")


def _number(value: Any, integer: bool) -> str:
    """A tensor element as a student would write it: ``3`` for an integer, ``0.1235`` else."""
    return str(int(value)) if integer else f"{float(value):.6g}"


def explain_difference(got: Any, expected: Any, dims: Sequence[str] = (),
                       rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """None when ``got`` equals ``expected`` (allclose for floats, exactly for integers), else a
    sentence naming what differs: the shape, or the first differing element by ``dims`` (e.g.
    ``("batch row", "position")``) and how many elements differ. ``got`` may be on any device
    (a student's model on a GPU): it is compared on the CPU."""
    import torch

    got = torch.as_tensor(got).cpu()
    integer = not (expected.is_floating_point() or expected.is_complex())
    if got.shape != expected.shape:
        return (f"returned a tensor of shape {tuple(got.shape)}, expected shape "
                f"{tuple(expected.shape)}" + (f" ({', '.join(dims)})" if dims else ""))
    if integer and got.is_floating_point():
        return f"returned floats ({got.dtype}), expected integers ({expected.dtype})"
    if integer:
        wrong = got.to(expected.dtype) != expected
    else:
        wrong = ~torch.isclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol,
                               equal_nan=True)
    if not bool(wrong.any()):
        return None
    index = tuple(int(i) for i in torch.nonzero(wrong)[0])
    if not index:
        return f"returned {_number(got, integer)}, expected {_number(expected, integer)}"
    if len(dims) == len(index):
        where = ", ".join(f"{name} {i}" for name, i in zip(dims, index))
    else:
        where = f"index {list(index)}"
    count = int(wrong.sum())
    return (f"at {where}: got {_number(got[index], integer)}, expected "
            f"{_number(expected[index], integer)} ({count} of {wrong.numel()} elements differ)")


def verdict_of_tensors(name: str, trials: Iterable[tuple[str, Any, Callable[[], Any]]],
                       dims: Sequence[str] = (), rtol: float = 1e-5,
                       atol: float = 1e-6) -> Verdict:
    """Run ``(call, expected, thunk)`` trials; right when every result equals the expected tensor
    (see ``explain_difference``; ``dims`` name the axes in the message)."""
    for call, expected, thunk in trials:
        try:
            got = thunk()
        except Exception as error:
            return failed_call(name, call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        difference = explain_difference(got, expected, dims, rtol, atol)
        if difference is not None:
            return Verdict(False, f"✗ wrong: {call} {difference}")
    return Verdict(True, f"✓ right: {name} agrees with the reference on every case tried")
