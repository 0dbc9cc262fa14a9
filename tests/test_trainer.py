"""The LM trainer: loss against an explicit reference, early stopping, determinism, interrupt and resume."""

from dataclasses import fields
import math
import re

import pytest
import torch

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.checkpoints import load_checkpoint
from advebm_teach.config import TrainConfig
from advebm_teach.trainer import evaluate_lm_loss, lm_loss
from advebm_teach.trainer import train_lm as train_lm_with_config

TASK = AdditionTask(2)
TRAIN = TASK.sample(96, seed=1)
VAL = TASK.sample(64, seed=2)
SMALL = dict(epochs=6, batch_size=16, lr=3e-3, patience=50, seed=3, device="cpu", progress=False)


def split_config(settings: dict) -> tuple[TrainConfig, dict]:
    """The TrainConfig among flat keyword settings, and the rest (device, progress, ...)."""
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in settings.items() if k in names})
    return config, {k: v for k, v in settings.items() if k not in names}


def train_lm(model, train_tokens, val_tokens, **settings):
    """``trainer.train_lm`` with its TrainConfig given as flat keywords, as these tests write them."""
    config, rest = split_config(settings)
    return train_lm_with_config(model, train_tokens, val_tokens, config, **rest)


def small_lm(seed: int = 0) -> LSTMLanguageModel:
    torch.manual_seed(seed)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=16, hidden_dim=16)


def small_transformer(seed: int = 0) -> TransformerEnergy:
    torch.manual_seed(seed)
    return TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, dropout=0.1)


def test_lm_loss_matches_explicit_average_of_next_token_log_probabilities():
    model = small_lm()
    tokens = TRAIN[:5]
    logits = model(tokens)
    terms = [
        -math.log(torch.softmax(logits[b, t - 1], dim=-1)[tokens[b, t]].item())
        for b in range(tokens.shape[0])
        for t in range(1, tokens.shape[1])
    ]
    assert lm_loss(model, tokens).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert evaluate_lm_loss(model, tokens, batch_size=2) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_training_lowers_held_out_loss_and_keeps_the_best_epoch():
    model = small_lm()
    before = evaluate_lm_loss(model, VAL)
    result = train_lm(model, TRAIN, VAL, **{**SMALL, "epochs": 8})
    val_losses = [row["val_loss"] for row in result.history]
    assert result.best_val_loss < before
    assert result.best_val_loss == min(val_losses)
    assert result.best_epoch == 1 + val_losses.index(min(val_losses))
    # The model ends with the best epoch's weights: its held-out loss is the best one, not the last one.
    assert evaluate_lm_loss(model, VAL) == pytest.approx(result.best_val_loss, rel=1e-6)
    assert not model.training


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model = small_lm()
    # A learning rate this large makes the held-out loss worse from the first epoch on.
    result = train_lm(model, TRAIN, VAL, **{**SMALL, "epochs": 30, "lr": 5.0, "patience": 2})
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 2


def test_same_seed_same_weights_including_dropout():
    weights = []
    for _ in range(2):
        model = small_transformer()
        train_lm(model, TRAIN, VAL, **{**SMALL, "epochs": 3})
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("make_model", [small_lm, small_transformer])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, make_model):
    reference = make_model()
    expected = train_lm(reference, TRAIN, VAL, **SMALL)

    def interrupt_after_epoch_3(row, model):
        if row["epoch"] == 3:
            raise Interrupt  # stands in for Ctrl-C or a killed kernel, after epoch 3's checkpoint

    model = make_model()
    with pytest.raises(Interrupt):
        train_lm(model, TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path, on_epoch_end=interrupt_after_epoch_3)
    _, record = load_checkpoint(tmp_path / "last")
    assert len(record["result"]["history"]) == 2  # the callback runs before epoch 3 is saved

    resumed_model = make_model(seed=123)  # different initial weights: everything must come from the checkpoint
    resumed = train_lm(resumed_model, TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path)
    reference_state, resumed_state = reference.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(reference_state[k], resumed_state[k]) for k in reference_state)
    drop_time = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]  # noqa: E731
    assert drop_time(resumed.history) == drop_time(expected.history)
    assert resumed.best_epoch == expected.best_epoch


def test_resume_with_other_settings_is_refused(tmp_path):
    train_lm(small_lm(), TRAIN, VAL, **{**SMALL, "epochs": 1}, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different settings"):
        train_lm(small_lm(), TRAIN, VAL, **{**SMALL, "epochs": 1, "lr": 1e-2}, checkpoint_dir=tmp_path)


def test_resume_on_other_data_is_refused_before_any_weight_is_loaded(tmp_path):
    """Same model and settings, other tokens (another task size, say): the checkpoint belongs to another run."""
    train_lm(small_lm(), TRAIN, VAL, **{**SMALL, "epochs": 1}, checkpoint_dir=tmp_path)
    model = small_lm(seed=7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="data_sha256 differ"):
        train_lm(model, TRAIN.flip(0), VAL, **{**SMALL, "epochs": 1}, checkpoint_dir=tmp_path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_finished_run_is_not_trained_again(tmp_path):
    first = small_lm()
    train_lm(first, TRAIN, VAL, **{**SMALL, "epochs": 2}, checkpoint_dir=tmp_path)
    again = small_lm(seed=7)
    result = train_lm(again, TRAIN, VAL, **{**SMALL, "epochs": 2}, checkpoint_dir=tmp_path)
    assert len(result.history) == 2
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))


BAD_ARGUMENTS = [
    ({"epochs": 0}, ValueError, "epochs must be an int >= 1"),
    ({"epochs": True}, TypeError, "epochs must be an int >= 1, got True"),
    ({"epochs": 2.0}, TypeError, "epochs must be an int"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"patience": 0}, ValueError, "patience"),
    ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
    ({"lr": -1e-3}, ValueError, "lr must be a finite number > 0"),
    ({"lr": float("inf")}, ValueError, "lr must be a finite number > 0, got inf"),
    ({"lr": float("nan")}, ValueError, "lr must be a finite number > 0, got nan"),
    ({"lr": "1e-3"}, TypeError, "lr must be a finite number"),
    ({"warmup_steps": -1}, ValueError, "warmup_steps must be an int >= 0"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": float("nan")}, ValueError, "weight_decay"),
    ({"seed": -1}, ValueError, "seed must be an int in [0, 4294967295]"),
    ({"seed": 2**64}, ValueError, "seed must be an int in [0, 4294967295]"),
    ({"seed": "3"}, TypeError, "seed must be an int"),
]


@pytest.mark.parametrize("change, error, message", BAD_ARGUMENTS, ids=[str(c) for c, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_name_the_problem_before_any_training(change, error, message, monkeypatch):
    monkeypatch.setattr("advebm_teach.trainer.fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(error, match=re.escape(message)):
        train_lm(small_lm(), TRAIN, VAL, **{**SMALL, **change})


BAD_DATA = [
    ("train_tokens", TRAIN.float(), VAL, TypeError, "train_tokens must hold integer token ids"),
    ("train_tokens", TRAIN[0], VAL, ValueError, "train_tokens must have 2 dimensions"),
    ("train_tokens", TRAIN + 20, VAL, ValueError, "train_tokens must be token ids in [0, 14)"),
    ("train_tokens", TRAIN - 20, VAL, ValueError, "train_tokens must be token ids in [0, 14)"),
    ("train_tokens", TRAIN.tolist(), VAL, TypeError, "train_tokens must be a torch.Tensor"),
    ("val_tokens", TRAIN, VAL[:0], ValueError, "val_tokens must hold at least one sequence"),
]


@pytest.mark.parametrize("name, train, val, error, message", BAD_DATA, ids=[m for *_, m in BAD_DATA])
def test_bad_data_names_the_problem(name, train, val, error, message):
    with pytest.raises(error, match=re.escape(message)):
        train_lm(small_lm(), train, val, **SMALL)


def test_a_diverging_run_stops_naming_the_epoch_and_the_loss(tmp_path):
    """A NaN weight (as lr=1e30 or a NaN regulariser make) gives NaN losses: an error, not the untrained
    weights returned as the "best epoch 0"; no checkpoint of the diverged epoch is written."""
    model = small_lm()
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"epoch 1: the training loss is nan and the validation loss is nan"):
        train_lm(model, TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path)
    assert not (tmp_path / "last.safetensors").exists()


def test_a_run_that_diverges_later_keeps_its_finite_checkpoint(tmp_path):
    def poison_after_epoch_2(row, model):
        if row["epoch"] == 2:
            with torch.no_grad():
                model.lm_head.bias.fill_(float("inf"))

    with pytest.raises(FloatingPointError, match="epoch 3"):
        train_lm(small_lm(), TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path, on_epoch_end=poison_after_epoch_2)
    _, record = load_checkpoint(tmp_path / "last")
    assert len(record["result"]["history"]) == 2


def test_a_damaged_or_foreign_checkpoint_names_the_file_and_what_to_do(tmp_path):
    from advebm_teach.checkpoints import CheckpointError, save_checkpoint

    (tmp_path / "last.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path / 'last.safetensors'}") + ".*delete"):
        train_lm(small_lm(), TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path)
    save_checkpoint(tmp_path / "last", small_lm().state_dict(), {"kind": "plm"})  # a model file, not a run
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        train_lm(small_lm(), TRAIN, VAL, **SMALL, checkpoint_dir=tmp_path)


def test_train_lm_takes_its_settings_as_one_config():
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train_lm_with_config(small_lm(), TRAIN, VAL, {"epochs": 1})


def test_derived_seeds_by_purpose():
    """The offsets the shipped runs were made with: epoch e and the first random start at e, the
    negatives at 1 and 2 (seed * 1,000,003 + offset, mod 2**32)."""
    from advebm_teach.trainer import derive_seed, epoch_seed

    assert [epoch_seed(3, e) for e in range(3)] == [3_000_009, 3_000_010, 3_000_011]
    assert derive_seed(3, "negatives") == 3_000_010 and derive_seed(3, "validation negatives") == 3_000_011
    assert derive_seed(3, "random start", 4) == 3_000_013
    assert derive_seed(2**32 - 1, "epoch", 5) == ((2**32 - 1) * 1_000_003 + 5) % 2**32
    with pytest.raises(ValueError, match="purpose must be one of"):
        derive_seed(3, "dropout")
