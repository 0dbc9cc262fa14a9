"""Run-time settings shared by every notebook and script.

* Fast mode: ``ADVEBM_FAST=1`` (the test run sets it) shrinks data sizes and epoch counts so that
  notebooks run in seconds; it never skips a code path. The committed notebook outputs come
  from it.
* Device: ``pick_device()`` names the best one (CUDA, then Apple's MPS, then the CPU). Nothing
  moves a model there on its own: pass ``device=pick_device()`` to a trainer, or ``model.to(...)``.
* Seeding: one call seeds Python, NumPy and torch.
* The course configurations: ``course`` (sized for a 2-core CPU) and ``paper`` (the paper's
  Table 1).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np
import torch

from .checks import check_int, check_number, check_positive, check_seed
from .task import AdditionTask

# Denormal floats make LSTM epochs on CPU swing from 0.4 s to 25 s; flushing them to zero is
# harmless here.
torch.set_flush_denormal(True)

FAST_ENV_VAR = "ADVEBM_FAST"


def fast_mode() -> bool:
    """True when ``ADVEBM_FAST`` is 1/true/yes/on (read at call time, so tests can toggle it)."""
    return os.environ.get(FAST_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """``fast`` in fast mode, else ``full``: how sizes shrink without skipping code."""
    return fast if fast_mode() else full


def pick_device() -> torch.device:
    """The best available device: cuda > mps > cpu (float64 work, the toy EBM's, stays on the
    CPU: MPS has no float64)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators; ``seed`` in [0, 2**32)."""
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class TrainConfig:
    """How a model is optimised, whole (one object per run, recorded with its checkpoints).

    AdamW at ``lr`` (reached linearly over ``warmup_steps`` steps) with ``weight_decay``,
    mini-batches of ``batch_size`` for at most ``epochs`` epochs; with validation, training stops
    after ``patience`` epochs without improvement. ``seed`` decides every shuffle and dropout mask.
    """

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 20
    warmup_steps: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            check_int(name, getattr(self, name), low=1)
        check_positive("lr", self.lr)
        check_number("weight_decay", self.weight_decay, low=0)
        check_int("warmup_steps", self.warmup_steps, low=0)
        check_seed("seed", self.seed)


@dataclass(frozen=True)
class TrainingSetup:
    """One pre-training run: how many training and held-out sequences, and how it is optimised
    (paper Table 1, adapted where noted). Its seed is the run's: ``training.seed`` is not used."""

    n_train: int
    n_val: int
    training: TrainConfig


@dataclass(frozen=True)
class CourseConfig:
    """One configuration of the course pipeline: the task size and how each model is pre-trained.

    ``plm`` is the LSTM language model P_LM; ``energy_lm`` is the Transformer energy model's
    language-model pre-training (paper section 3.2).
    """

    name: str
    n_digits: int
    plm: TrainingSetup
    energy_lm: TrainingSetup
    seed: int = 0


# P_LM: Table 1 (AdamW, lr 1e-3, weight decay 0.05, up to 500 epochs on 1,000 sequences). Early
# stopping on a held-out split keeps the best epoch: trained to the end, the LSTM memorises its
# data.
_PLM = TrainingSetup(n_train=1_000, n_val=1_000, training=TrainConfig(
    epochs=500, batch_size=32, lr=1e-3, weight_decay=0.05, patience=20))

# Energy LM pre-training (both configurations). Table 1's learning rate "6e-10" is a typo; AdamW at
# 1e-3 with 200 warm-up steps and batches of 256 converged in the sizing runs (own samples >= 0.99
# correct after 4-10 epochs at 5-7 digits, ~30-37 s per epoch on 2 CPU cores).
_ENERGY_LM = TrainingSetup(n_train=100_000, n_val=2_000, training=TrainConfig(
    epochs=500, batch_size=256, lr=1e-3, weight_decay=0.01, patience=3, warmup_steps=200))

CONFIGS: dict[str, CourseConfig] = {
    # 5 digits: the largest count at which the later Algorithm-1 experiments fit the CPU budget (an
    # attack step costs 1.7 ms per sequence at 5 digits, 3.9 ms at 7, 6.3 ms at 10) and at which
    # the sizing run met their targets; the energy LM's own samples reach 0.99+ in about 4 minutes.
    # 4 and 3 digits were measured too: no target holds there that fails here (docs/pretraining.md,
    # "Why 5 digits").
    "course": CourseConfig(name="course", n_digits=5, plm=_PLM,
                           energy_lm=replace(_ENERGY_LM,
                                             training=replace(_ENERGY_LM.training, epochs=12))),
    # The paper's Table 1 (500 epochs, cut short by early stopping).
    "paper": CourseConfig(name="paper", n_digits=10, plm=_PLM, energy_lm=_ENERGY_LM),
}


def get_config(name: str) -> CourseConfig:
    """The named configuration; a ValueError lists the valid names."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; expected one of {sorted(CONFIGS)}")
    return CONFIGS[name]


def make_task(config: str = "course") -> AdditionTask:
    """The ``AdditionTask`` of a course configuration (``"course"`` or ``"paper"``)."""
    return AdditionTask(get_config(config).n_digits)
