"""Argument checks shared by every public function of the package.

Each check returns the value it accepted (normalised: ``int``, ``float``) or raises

* ``TypeError`` when the argument is of the wrong kind (a string for a count, a float tensor of token ids),
* ``ValueError`` when it is of the right kind but out of range (a negative count, a NaN learning rate),

and the message always starts with the argument's name and says what was expected, e.g.
``steps must be an int >= 0, got -1``. Booleans are never accepted as numbers (``epochs=True``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import torch

SEED_LIMIT = 2**32  # seeds lie in [0, 2**32): every generator (Python, NumPy, torch) takes them as given

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _range_text(low: float | None, high: float | None, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"<= {high}"
    return ""


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in [``low``, ``high``]."""
    expected = f"{name} must be an int {_range_text(low, high)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{expected}, got {_describe(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{expected}, got {value}")
    return value


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """``value`` as a finite ``float`` in [``low``, ``high``] (``(low, high]`` with ``low_open``)."""
    expected = f"{name} must be a finite number {_range_text(low, high, low_open)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}, got {_describe(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if not math.isfinite(value) or too_low or (high is not None and value > high):
        raise ValueError(f"{expected}, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0 (learning rates, step sizes, radii, temperatures)."""
    return check_number(name, value, low=0, low_open=True)


def check_seed(name: str, value: Any) -> int:
    """``value`` if it is an int in [0, 2**32): a seed every generator takes as it is."""
    return check_int(name, value, 0, SEED_LIMIT - 1)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not any(value is choice or (type(value) is type(choice) and value == choice) for choice in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_tensor(name: str, value: Any, dims: Iterable[int] | None = None, floating: bool = False) -> torch.Tensor:
    """``value`` if it is a tensor with one of ``dims`` dimensions (and a floating dtype, if asked)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    dims = tuple(dims) if dims is not None else None
    if dims is not None and value.dim() not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions, "
                         f"got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    return value


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` if none of its entries is NaN or infinite."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        where = tuple(bad.nonzero()[0].tolist())
        raise ValueError(f"{name} must be finite, got {int(bad.sum())} NaN or infinite entries "
                         f"(the first at index {where}: {value[where].item()})")
    return value


def check_token_ids(name: str, tokens: Any, vocab_size: int, seq_len: int | None = None,
                    dims: Iterable[int] = (1, 2)) -> torch.Tensor:
    """``tokens`` if it is an integer tensor of ids in [0, ``vocab_size``), of length ``seq_len``."""
    tokens = check_tensor(name, tokens, dims)
    if tokens.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {tokens.dtype}")
    if seq_len is not None and tokens.shape[-1] != seq_len:
        raise ValueError(f"{name} must have length seq_len={seq_len} in its last dimension, "
                         f"got shape {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"{name} must be token ids in [0, {vocab_size}), "
                         f"got min {int(tokens.min())}, max {int(tokens.max())}")
    return tokens
