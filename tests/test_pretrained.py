"""The shipped weights: each is re-evaluated here and must agree with the metrics recorded when it was made."""

import math

import pytest
import torch

from advebm_teach import load_pretrained, load_pretrained_record, make_task, sample_lm
from advebm_teach.checkpoints import PRETRAINED_DIR, PRETRAINED_KINDS, pretrained_path
from advebm_teach.config import pick
from advebm_teach.sampling import copy_rate
from advebm_teach.trainer import evaluate_lm_loss

SHIPPED = [
    (config, kind)
    for config in ("course", "paper")
    for kind in PRETRAINED_KINDS
    if pretrained_path(kind, config).with_suffix(".safetensors").exists()
]
PRETRAINED = [(config, kind) for config, kind in SHIPPED if kind in ("plm", "energy_lm")]  # by `pretrain`
ids = [f"{config}-{kind}" for config, kind in PRETRAINED]  # the reproduction's energies: tests/test_reproduce.py


def test_the_course_configuration_is_shipped_complete():
    assert {kind for config, kind in SHIPPED if config == "course"} == set(PRETRAINED_KINDS)


def test_shipped_weights_stay_small():
    size = sum(p.stat().st_size for p in PRETRAINED_DIR.rglob("*") if p.is_file())
    assert size < 12e6, f"shipped weights take {size / 1e6:.1f} MB"


@pytest.mark.parametrize("config, kind", PRETRAINED, ids=ids)
def test_record_says_how_the_model_was_made(config, kind):
    record = load_pretrained_record(kind, config)
    assert record["command"].startswith(f"advebm-teach pretrain --config {config}")
    assert record["config"] == config and record["kind"] == kind and record["fast_mode"] is False
    assert record["n_digits"] == make_task(config).n_digits
    assert {"sample_correctness", "heldout_loss", "best_epoch"} <= set(record["metrics"])
    assert len(record["history"]) == record["metrics"]["epochs_run"]


@pytest.mark.parametrize("config, kind", PRETRAINED, ids=ids)
def test_heldout_loss_is_reproduced_on_the_recorded_split(config, kind):
    record = load_pretrained_record(kind, config)
    task, model = make_task(config), load_pretrained(kind, config)
    prefix = "plm" if kind == "plm" else "energy"
    heldout = task.sample(record["training"]["n_val"], seed=record["data_seeds"][f"{prefix}_val"])
    assert evaluate_lm_loss(model, heldout) == pytest.approx(record["metrics"]["heldout_loss"], rel=1e-4)


@pytest.mark.parametrize("config, kind", PRETRAINED, ids=ids)
def test_sample_correctness_is_reproduced_within_sampling_error(config, kind):
    record = load_pretrained_record(kind, config)
    metrics = record["metrics"]
    task, model = make_task(config), load_pretrained(kind, config)
    n = pick(2_000, 500)
    fresh = task.correctness(sample_lm(model, task, n, seed=metrics["eval_seed"] + 1_000))  # new draws
    std = max(metrics["sample_correctness_std"], 1e-3)
    tolerance = 4 * std * math.sqrt(1 / metrics["n_eval_samples"] + 1 / n)
    assert abs(fresh.mean().item() - metrics["sample_correctness"]) < tolerance


def test_plm_copy_rate_is_reproduced():
    record = load_pretrained_record("plm", "course")
    task, model = make_task("course"), load_pretrained("plm", "course")
    train = task.sample(record["training"]["n_train"], seed=record["data_seeds"]["plm_train"])
    n = pick(2_000, 500)
    rate = copy_rate(sample_lm(model, task, n, seed=1), train)
    p = max(record["metrics"]["copy_rate"], 1 / n)
    assert abs(rate - record["metrics"]["copy_rate"]) < 4 * math.sqrt(p * (1 - p) / n) + 1 / n


def test_loaded_models_are_in_eval_mode_on_cpu():
    for config, kind in SHIPPED:
        model = load_pretrained(kind, config)
        assert not model.training
        assert all(p.device == torch.device("cpu") for p in model.parameters())
