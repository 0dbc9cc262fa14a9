"""Interrupt anywhere, run again, get the same weights: train_lm, train_ebm and pretrain,
interrupted at every kind of boundary (inside an epoch, between epochs, between models, while
saving) and resumed, end bit-identical to an uninterrupted run (CPU, the same thread count: the
tests' one)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.experiments import pretrain as pretraining
from advebm_teach import trainer
from advebm_teach.checkpoints import PRETRAINED_DIR
from advebm_teach.config import CourseConfig, TrainConfig, TrainingSetup
from advebm_teach.trainer import train_ebm, train_lm

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = AdditionTask(2)
TRAIN, VAL = TASK.sample(48, seed=1), TASK.sample(16, seed=2)  # 3 steps per epoch at batch size 16
CONFIG = TrainConfig(epochs=3, batch_size=16, lr=3e-3, patience=50, seed=3)
SETTINGS = dict(device="cpu", progress=False)


def interrupt_at(monkeypatch, owner, name: str, call: int, after: bool = False) -> None:
    """Make ``owner.name`` raise KeyboardInterrupt at its ``call``-th call (1-based), before it
    runs or, with ``after``, once it has run (a save that completed just before Ctrl-C)."""
    real, calls = getattr(owner, name), []

    def interrupted(*args, **kwargs):
        calls.append(None)
        if len(calls) == call and not after:
            raise KeyboardInterrupt
        value = real(*args, **kwargs)
        if len(calls) == call:
            raise KeyboardInterrupt
        return value

    monkeypatch.setattr(owner, name, interrupted)


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# ---------------------------------------------------------------- the two trainers
def small_transformer(seed: int = 0) -> TransformerEnergy:
    torch.manual_seed(seed)
    return TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, dropout=0.1)


def proposal_lm() -> LSTMLanguageModel:
    torch.manual_seed(11)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=8, hidden_dim=8)


def fit_lm(model, **extra):
    return train_lm(model, TRAIN, VAL, CONFIG, **SETTINGS, **extra)


def fit_ebm(model, **extra):
    return train_ebm(
        model,
        TASK,
        TRAIN,
        proposal_lm(),
        "adversarial",
        2,
        val_data=VAL,
        attack_options={"include_current": False},
        config=CONFIG,
        **SETTINGS,
        **extra,
    )


# (where, the function patched, its call interrupted, after it ran): 9 optimizer steps in all
BOUNDARIES = [
    ("the first step", "optimizer", 1, False),
    ("inside epoch 1", "optimizer", 2, False),
    ("between epochs 1 and 2, before epoch 2's first step", "optimizer", 4, False),
    ("inside the last epoch", "optimizer", 8, False),
    ("right after epoch 2's checkpoint was written", "save", 2, True),
    ("while the last checkpoint was being written", "save", 3, False),
]


@pytest.mark.parametrize("fit", [fit_lm, fit_ebm], ids=["train_lm", "train_ebm"])
@pytest.mark.parametrize("where, patched, call, after", BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_a_trainer_interrupted_anywhere_resumes_to_the_same_weights(
    tmp_path, monkeypatch, fit, where, patched, call, after
):
    reference = small_transformer()
    expected = fit(reference)
    with monkeypatch.context() as patch:
        if patched == "optimizer":
            interrupt_at(patch, torch.optim.AdamW, "step", call)
        else:
            interrupt_at(patch, trainer, "save_training_state", call, after)
        with pytest.raises(KeyboardInterrupt):
            fit(small_transformer(), checkpoint_dir=tmp_path)
    # A run interrupted before its first checkpoint starts over from the caller's (same) initial
    # weights; after one, other initial weights prove that everything comes from the checkpoint.
    resumed_model = small_transformer(seed=99 if (tmp_path / "last.safetensors").exists() else 0)
    resumed = fit(resumed_model, checkpoint_dir=tmp_path)
    assert same_tensors(reference.state_dict(), resumed_model.state_dict()), where
    assert without_time(resumed.history) == without_time(expected.history)
    assert resumed.best_epoch == expected.best_epoch


def test_train_seconds_add_up_every_session(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_at(patch, torch.optim.AdamW, "step", 5)
        with pytest.raises(KeyboardInterrupt):
            fit_lm(small_transformer(), checkpoint_dir=tmp_path)
    first_session = json.loads((tmp_path / "last.json").read_text())["result"]["history"]
    resumed = fit_lm(small_transformer(), checkpoint_dir=tmp_path)
    assert (
        resumed.history[0]["seconds"] == first_session[0]["seconds"]
    )  # epoch 1 ran before the interrupt
    assert (
        resumed.train_seconds
        == sum(row["seconds"] for row in resumed.history)
        > first_session[0]["seconds"]
    )


# ------------------------------------------------------------ pretrain: both models, one command
TINY = CourseConfig(
    name="course",
    n_digits=2,
    plm=TrainingSetup(n_train=32, n_val=16, training=TrainConfig(
        epochs=2, batch_size=16, lr=1e-3, weight_decay=0.05, patience=5)),
    energy_lm=TrainingSetup(n_train=32, n_val=16, training=TrainConfig(
        epochs=2, batch_size=16, lr=1e-3, weight_decay=0.01, patience=5)),
)  # fast mode keeps these sizes: 2 steps per epoch, 2 epochs per model, 8 optimizer steps in all

PRETRAIN_BOUNDARIES = [
    ("inside P_LM's first epoch", "optimizer", 2, False),
    ("between P_LM's epochs", "optimizer", 3, False),
    ("between the models: P_LM saved, the energy LM not begun", "optimizer", 5, False),
    ("inside the energy LM's first epoch", "optimizer", 6, False),
    ("between the energy LM's epochs", "optimizer", 7, False),
    ("after P_LM's training, before its weights were saved", "save_model", 1, False),
    ("after both trained, before the energy LM was saved", "save_model", 2, False),
]


def pretrain_tiny(tmp_path, **extra) -> dict:
    return pretraining.pretrain(
        TINY, out=tmp_path / "out", checkpoints=tmp_path / "checkpoints", progress=False, **extra
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    records = pretrain_tiny(folder)
    return records, {kind: load_file(folder / "out" / f"{kind}.safetensors") for kind in records}


@pytest.mark.parametrize(
    "where, patched, call, after", PRETRAIN_BOUNDARIES, ids=[b[0] for b in PRETRAIN_BOUNDARIES]
)
def test_pretrain_interrupted_anywhere_makes_the_same_weights(
    tmp_path, monkeypatch, uninterrupted, where, patched, call, after
):
    expected_records, expected = uninterrupted
    with monkeypatch.context() as patch:
        torch.manual_seed(12345)  # the global generator's state must not matter either
        if patched == "optimizer":
            interrupt_at(patch, torch.optim.AdamW, "step", call)
        else:
            interrupt_at(patch, pretraining, patched, call, after)
        with pytest.raises(KeyboardInterrupt):
            pretrain_tiny(tmp_path)
    torch.manual_seed(54321)
    records = pretrain_tiny(tmp_path)
    for kind, tensors in expected.items():
        assert same_tensors(tensors, load_file(tmp_path / "out" / f"{kind}.safetensors")), (
            where,
            kind,
        )
        record, reference = records[kind], expected_records[kind]
        assert without_time(record["history"]) == without_time(reference["history"])
        metrics = {k: v for k, v in record["metrics"].items() if k != "train_seconds"}
        assert metrics == {k: v for k, v in reference["metrics"].items() if k != "train_seconds"}
        assert record["metrics"]["train_seconds"] == round(
            sum(r["seconds"] for r in record["history"]), 1
        )


def test_the_energy_lm_starts_from_the_seed_of_plm_s_last_epoch(uninterrupted):
    """The rule that makes the shipped energy LMs: its initial weights are drawn with P_LM's last
    epoch seed (the state the first pretrain left torch's generator in), checked on the <eos>
    embedding row, which LM training never changes but through weight decay (nothing predicts from
    <eos>)."""
    for config, plm_epochs in (("course", 29), ("paper", 35)):
        task = AdditionTask({"course": 5, "paper": 10}[config])
        shipped = load_file(PRETRAINED_DIR / config / "energy_lm.safetensors")[
            "token_embedding.weight"
        ]
        seed = pretraining.energy_init_seed(0, plm_epochs)
        start = pretraining.initialised(lambda: TransformerEnergy.for_task(task), seed)
        eos = task.token_id["<eos>"]
        cosine = torch.cosine_similarity(
            start.token_embedding.weight[eos].detach(), shipped[eos], dim=0
        )
        assert cosine > 0.9999, (config, float(cosine))
