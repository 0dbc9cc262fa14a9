"""Pieces of the pre-training pipeline checked by hand-made examples."""

import torch

from advebm_teach import AdditionTask
from advebm_teach.experiments.pretrain import data_seeds, sample_metrics
from advebm_teach.sampling import copy_rate

TASK = AdditionTask(2)


def test_copy_rate_counts_exact_copies_only():
    train = TASK.encode(["12+39=051", "50+50=100"])
    samples = TASK.encode(["12+39=051", "12+39=052", "50+50=100", "50+50=100"])
    assert copy_rate(samples, train) == 0.75  # the near-copy (one digit off) does not count


def test_sample_metrics_by_hand():
    samples = TASK.encode(["12+39=051", "12+39=052", "12+39=151"])  # 3/3, 2/3, 2/3 right digits
    metrics = sample_metrics(samples, TASK)
    assert abs(metrics["sample_correctness"] - (1 + 2 / 3 + 2 / 3) / 3) < 1e-6
    assert abs(metrics["fully_correct"] - 1 / 3) < 1e-6
    assert metrics["per_position_correctness"] == [round(2 / 3, 4), 1.0, round(2 / 3, 4)]
    assert metrics["n_eval_samples"] == 3


def test_every_data_set_gets_its_own_seed():
    for seed in (0, 1, 7):
        seeds = data_seeds(seed)
        assert len(set(seeds.values())) == len(seeds)
    assert not set(data_seeds(0).values()) & set(data_seeds(1).values())
    assert not torch.equal(TASK.sample(4, seed=data_seeds(0)["plm_train"]), TASK.sample(4, seed=data_seeds(0)["plm_val"]))
