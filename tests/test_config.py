"""Run-time settings: fast mode, device pick, seeding, configurations."""

import random

import numpy as np
import pytest
import torch

from advebm_teach.config import CONFIGS, fast_mode, get_config, make_task, pick, pick_device, seed_everything


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_fast_mode_is_read_at_call_time(monkeypatch, value, expected):
    monkeypatch.setenv("ADVEBM_FAST", value)
    assert fast_mode() is expected
    assert pick("full", "fast") == ("fast" if expected else "full")


def test_device_pick_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(2**32)


def test_configurations():
    assert make_task("paper").n_digits == 10  # the paper's task
    assert make_task("course").n_digits == CONFIGS["course"].n_digits < 10
    assert CONFIGS["paper"].plm.n_train == 1_000 and CONFIGS["paper"].energy_lm.n_train == 100_000  # Table 1
    with pytest.raises(ValueError, match="unknown config 'tiny'"):
        get_config("tiny")
