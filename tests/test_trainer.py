"""The LM trainer: loss against an explicit reference, early stopping, determinism, interrupt and resume."""

import math

import pytest
import torch

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.checkpoints import load_checkpoint
from advebm_teach.trainer import evaluate_lm_loss, lm_loss, train_lm

TASK = AdditionTask(2)
TRAIN = TASK.sample(96, seed=1)
VAL = TASK.sample(64, seed=2)
SMALL = dict(epochs=6, batch_size=16, lr=3e-3, patience=50, seed=3, device="cpu", progress=False)


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


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"patience": 0}, "patience"),
    ],
)
def test_bad_arguments_name_the_problem(change, message):
    with pytest.raises(ValueError, match=message):
        train_lm(small_lm(), TRAIN, VAL, **{**SMALL, **change})


def test_bad_data_names_the_problem():
    with pytest.raises(ValueError, match="train_tokens"):
        train_lm(small_lm(), TRAIN.float(), VAL, **SMALL)
    with pytest.raises(ValueError, match="val_tokens"):
        train_lm(small_lm(), TRAIN, VAL[:0], **SMALL)
