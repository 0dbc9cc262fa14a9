"""Argument checks shared by every public function of the package.

Each check returns the value it accepted (normalised: ``int``, ``float``) or raises

* ``TypeError`` when the argument is of the wrong kind (a string for a count, float token ids),
* ``ValueError`` when it is of the right kind but out of range (a negative count, a NaN rate),

and the message always starts with the argument's name and says what was expected, e.g.
``steps must be an int >= 0, got -1``. Booleans are never accepted as numbers (``epochs=True``).
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

# Seeds lie in [0, 2**32): every generator (Python's, NumPy's, torch's) takes them as given.
SEED_LIMIT = 2**32

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _range_text(low: float | None, high: float | None, low_open: bool = False,
                high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
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
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in [``low``, ``high``] (an end open if asked)."""
    bounds = _range_text(low, high, low_open, high_open)
    expected = f"{name} must be a finite number {bounds}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}, got {_describe(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{expected}, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0 (learning rates, step sizes, radii, temperatures)."""
    return check_number(name, value, low=0, low_open=True)


def check_seed(name: str, value: Any) -> int:
    """``value`` if it is an int in [0, 2**32): a seed every generator takes as it is."""
    return check_int(name, value, 0, SEED_LIMIT - 1)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (a flag: ``tabu=1`` or ``tabu="no"`` is refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return value


def check_callable(name: str, value: Any, expected: str = "a function") -> Any:
    """``value`` if it can be called; ``expected`` describes it (``"a function f(e) -> loss"``)."""
    if not callable(value):
        raise TypeError(f"{name} must be {expected}, got {_describe(value)}")
    return value


def check_generator(name: str, value: Any) -> torch.Generator | None:
    """``value`` if it is None or a ``torch.Generator``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {_describe(value)}")
    return value


def seeded_generator(seed: Any, generator: Any = None) -> torch.Generator | None:
    """A new generator seeded with ``seed``, else ``generator`` (None: torch's global generator).

    Passing both is a ValueError: one of them would be ignored.
    """
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    if seed is None:
        return check_generator("generator", generator)
    return torch.Generator().manual_seed(check_seed("seed", seed))


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not any(value is choice or (type(value) is type(choice) and value == choice)
               for choice in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_tensor(name: str, value: Any, dims: Iterable[int] | None = None,
                 floating: bool = False) -> torch.Tensor:
    """``value`` if it is a tensor with one of ``dims`` dimensions (and a float dtype if asked)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    dims = tuple(dims) if dims is not None else None
    if dims is not None and value.dim() not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions, "
                         f"got shape {tuple(value.shape)}")
    return value


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` if none of its entries is NaN or infinite."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        where = tuple(bad.nonzero()[0].tolist())
        raise ValueError(f"{name} must be finite, got {int(bad.sum())} NaN or infinite entries "
                         f"(the first at index {where}: {value[where].item()})")
    return value


def check_token_ids(name: str, tokens: Any, vocab_size: int | None, seq_len: int | None = None,
                    dims: Iterable[int] | None = (1, 2)) -> torch.Tensor:
    """``tokens`` if it is an integer tensor of ids in [0, ``vocab_size``), of length ``seq_len``.

    ``vocab_size=None`` checks only that no id is negative; ``dims=None`` allows any dimensions.
    A tensor on torch's ``meta`` device has no values: only its dtype and shape are checked.
    """
    tokens = check_tensor(name, tokens, dims)
    if tokens.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"{name} must hold integer token ids (torch.long), "
                        f"got dtype {tokens.dtype}")
    if seq_len is not None and (tokens.dim() == 0 or tokens.shape[-1] != seq_len):
        raise ValueError(f"{name} must have length seq_len={seq_len} in its last dimension, "
                         f"got shape {tuple(tokens.shape)}")
    if tokens.numel() and not tokens.is_meta:
        low, high = torch.stack(torch.aminmax(tokens)).tolist()  # one device sync
        if low < 0 or (vocab_size is not None and high >= vocab_size):
            allowed = f"in [0, {vocab_size})" if vocab_size is not None else ">= 0"
            raise ValueError(f"{name} must be token ids {allowed}, got min {low}, max {high}")
    return tokens


def check_model_fits(name: str, model: Any, vocab_size: int, seq_len: int | None = None) -> Any:
    """``model`` if it is an ``nn.Module`` built for ``vocab_size`` tokens (and ``seq_len``).

    The course's models record their sizes in ``model.config``: ``vocab_size`` always, ``seq_len``
    when the model has a fixed length (``TransformerEnergy``; the LSTM reads any length). A module
    without a config (a hand-written stand-in) cannot tell what it was built for: it is accepted.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a model (a torch.nn.Module), got {type(model).__name__}")
    config = model_config(model)
    if config.get("vocab_size", vocab_size) != vocab_size:
        raise ValueError(f"{name} was built for vocab_size={config['vocab_size']}, "
                         f"but the task has vocab_size={vocab_size}")
    if seq_len is not None and config.get("seq_len", seq_len) != seq_len:
        raise ValueError(f"{name} was built for seq_len={config['seq_len']}, "
                         f"but the task has seq_len={seq_len}")
    return model


def check_device(name: str, device: Any) -> torch.device:
    """``device`` as a ``torch.device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...) if
    this machine has it; a ValueError names the argument, and the devices there are, otherwise."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must be a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from None
    mps = getattr(torch.backends, "mps", None)
    present = {"cpu": True, "meta": True, "cuda": torch.cuda.is_available(),
               "mps": mps is not None and mps.is_available()}
    if not present.get(device.type, True):
        here = ", ".join(kind for kind, there in present.items() if there and kind != "meta")
        raise ValueError(f"{name} is {str(device)!r}, which this machine does not have "
                         f"(it has: {here})")
    if device.type == "cuda" and device.index is not None and (
            device.index >= torch.cuda.device_count()):
        raise ValueError(f"{name} is {str(device)!r}, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def model_device(model: nn.Module) -> torch.device:
    """Where ``model`` lives: the device of its first parameter (or buffer); the CPU if it has
    neither. Every public function moves its tensor inputs there."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """The device all ``tensors`` (by their argument names) are on; a ValueError names each
    tensor's device when they differ."""
    devices = {name: tensor.device for name, tensor in tensors.items()}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on {device}" for name, device in devices.items())
        *first, last = devices
        raise ValueError(f"{', '.join(first)} and {last} must be on one device, got {where}")
    return next(iter(devices.values()))


def model_config(model: Any) -> dict:
    """``model.config``, the sizes a course model records, or ``{}`` for a model without one."""
    config = getattr(model, "config", None)
    return config if isinstance(config, dict) else {}


def check_folder(name: str, path: Any) -> Path:
    """``path`` as a Path, if it is a folder or does not exist yet (a file there is refused)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a folder path, got {type(path).__name__}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} must be a folder (it is created if missing); {path} is a file")
    return path
