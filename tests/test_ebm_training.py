"""EBM fine-tuning: the losses against hand-computed values, the ablation equals the baseline, separation,
interrupt and resume, errors."""

from dataclasses import fields
import math
import re

import pytest
import torch

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.checkpoints import load_checkpoint
from advebm_teach.config import TrainConfig
from advebm_teach.trainer import ebm_loss
from advebm_teach.trainer import train_ebm as train_ebm_with_config

TASK = AdditionTask(2)
DATA = TASK.sample(64, seed=1)
VAL = TASK.sample(32, seed=2)
SMALL = dict(val_data=VAL, epochs=4, batch_size=16, lr=3e-3, patience=50, seed=3, device="cpu", progress=False)

pytestmark = pytest.mark.usefixtures("one_thread")


class Interrupt(Exception):
    pass


def split_config(settings: dict) -> tuple[TrainConfig, dict]:
    """The TrainConfig among flat keyword settings, and the rest (device, progress, ...)."""
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in settings.items() if k in names})
    return config, {k: v for k, v in settings.items() if k not in names}


def train_ebm(energy_model, task, data, lm, *args, **settings):
    """``trainer.train_ebm`` with its TrainConfig given as flat keywords, as these tests write them."""
    config, rest = split_config(settings)
    return train_ebm_with_config(energy_model, task, data, lm, *args, config=config, **rest)


def proposal_lm() -> LSTMLanguageModel:
    torch.manual_seed(11)  # untrained: its samples are random digits, mostly wrong sums
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=8, hidden_dim=8)


def small_energy(seed: int = 0, head: str = "mean") -> TransformerEnergy:
    torch.manual_seed(seed)
    return TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, dropout=0.1, head=head)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- losses
E_DATA, E_NEG = [0.5, -1.0], [2.0, 0.0]


def test_logistic_loss_by_hand():
    """mean softplus(E+) + mean softplus(-E-), softplus(z) = log(1 + e^z), written out."""
    softplus = lambda z: math.log1p(math.exp(z))  # noqa: E731
    expected = (softplus(0.5) + softplus(-1.0)) / 2 + (softplus(-2.0) + softplus(0.0)) / 2
    got = ebm_loss(torch.tensor(E_DATA), torch.tensor(E_NEG), "logistic")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.0537074, rel=1e-6)


def test_paper_loss_by_hand():
    """mean E+ - mean E- + alpha (mean E+^2 + mean E-^2) = -0.25 - 1 + 0.1 (0.625 + 2) = -0.9875."""
    got = ebm_loss(torch.tensor(E_DATA), torch.tensor(E_NEG), "paper", alpha=0.1)
    assert got.item() == pytest.approx(-0.9875, rel=1e-6)


def test_logistic_loss_gradient_is_the_classifier_error():
    """d/dE+ = sigmoid(E+)/B, d/dE- = -sigmoid(-E-)/B: the probabilities of the wrong label."""
    e_data, e_neg = torch.tensor(E_DATA, requires_grad=True), torch.tensor(E_NEG, requires_grad=True)
    ebm_loss(e_data, e_neg).backward()
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    assert e_data.grad.tolist() == pytest.approx([sigmoid(e) / 2 for e in E_DATA], rel=1e-6)
    assert e_neg.grad.tolist() == pytest.approx([-sigmoid(-e) / 2 for e in E_NEG], rel=1e-6)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss must be 'logistic' or 'paper'"):
        ebm_loss(torch.zeros(2), torch.zeros(2), "hinge")


# ---------------------------------------------------------------- training
class NinesLM(torch.nn.Module):
    """A stand-in P_LM that always writes 9: its samples are all 99 + 99 = 999, easy to tell from data."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def next_token_logits(self, tokens: torch.Tensor, state=None):
        return torch.nn.functional.one_hot(torch.full_like(tokens, 9), TASK.vocab_size).float() * 50, state


def test_bce_training_separates_data_from_proposals():
    model = small_energy()
    result = train_ebm(model, TASK, DATA, NinesLM(), "bce", **{**SMALL, "epochs": 6})
    assert result.history[-1]["val_accuracy"] > 0.9
    assert result.history[-1]["val_energy_data"] < result.history[-1]["val_energy_negative"]
    assert result.best_val_loss < math.log(2) * 2  # below the loss of a constant energy 0


def test_zero_attack_steps_is_the_baseline():
    """Algorithm 1 with attack_steps=0 (the paper's ablation) trains exactly the BCE baseline."""
    baseline, ablation = small_energy(), small_energy()
    train_ebm(baseline, TASK, DATA, proposal_lm(), "bce", **SMALL)
    train_ebm(ablation, TASK, DATA, proposal_lm(), "adversarial", attack_steps=0, **SMALL)
    assert same_weights(baseline, ablation)
    attacked = small_energy()
    train_ebm(attacked, TASK, DATA, proposal_lm(), "adversarial", attack_steps=1, **SMALL)
    assert not same_weights(baseline, attacked)


@pytest.mark.parametrize("head, options", [("mean", {"include_current": False}), ("lm_nll", {"tabu": True})])
def test_interrupted_adversarial_run_resumes_to_the_same_weights(tmp_path, head, options):
    settings = {**SMALL, "attack_options": options}
    reference = small_energy(head=head)
    expected = train_ebm(reference, TASK, DATA, proposal_lm(), "adversarial", attack_steps=2, **settings)

    def interrupt_after_epoch_2(row, model):
        if row["epoch"] == 2:
            raise Interrupt  # stands in for Ctrl-C or a killed kernel

    model = small_energy(head=head)
    with pytest.raises(Interrupt):
        train_ebm(model, TASK, DATA, proposal_lm(), "adversarial", attack_steps=2, **settings,
                  checkpoint_dir=tmp_path, on_epoch_end=interrupt_after_epoch_2)
    _, record = load_checkpoint(tmp_path / "last")
    assert len(record["result"]["history"]) == 1

    resumed_model = small_energy(seed=99, head=head)
    resumed = train_ebm(resumed_model, TASK, DATA, proposal_lm(), "adversarial", attack_steps=2, **settings,
                        checkpoint_dir=tmp_path)
    assert same_weights(reference, resumed_model)
    drop_time = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]  # noqa: E731
    assert drop_time(resumed.history) == drop_time(expected.history)


@pytest.mark.parametrize("method, options", [("gwg", {"temperature": 0.5}),
                                             ("dmala", {"step_size": 0.2})])
def test_chain_negatives_move_and_an_interrupted_run_resumes_to_the_same_weights(
        tmp_path, method, options):
    """GWG and DMALA negatives draw from torch's global generator, which every epoch reseeds: a
    resumed run replays the same chains. With 0 chain steps the method is the BCE baseline."""
    settings = {**SMALL, "epochs": 3, "chain_options": options}
    baseline, ablation = small_energy(), small_energy()
    train_ebm(baseline, TASK, DATA, proposal_lm(), "bce", **SMALL)
    train_ebm(ablation, TASK, DATA, proposal_lm(), method, chain_steps=0,
              **{**SMALL, "chain_options": options})
    assert same_weights(baseline, ablation)

    reference = small_energy()
    expected = train_ebm(reference, TASK, DATA, proposal_lm(), method, chain_steps=3, **settings)
    assert not same_weights(reference, small_energy())

    def interrupt_after_epoch_2(row, model):
        if row["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_ebm(small_energy(), TASK, DATA, proposal_lm(), method, chain_steps=3, **settings,
                  checkpoint_dir=tmp_path, on_epoch_end=interrupt_after_epoch_2)
    resumed_model = small_energy(seed=99)
    resumed = train_ebm(resumed_model, TASK, DATA, proposal_lm(), method, chain_steps=3,
                        **settings, checkpoint_dir=tmp_path)
    assert same_weights(reference, resumed_model)
    assert ([row["val_loss"] for row in resumed.history]
            == [row["val_loss"] for row in expected.history])


def test_resume_with_another_method_is_refused(tmp_path):
    train_ebm(small_energy(), TASK, DATA, proposal_lm(), "bce", **{**SMALL, "epochs": 1}, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different settings"):
        train_ebm(small_energy(), TASK, DATA, proposal_lm(), "adversarial", attack_steps=1,
                  **{**SMALL, "epochs": 1}, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("change, error, message", [
    ({"method": "gan"}, ValueError, "method must be one of 'bce', 'adversarial'"),
    ({"attack_steps": -1}, ValueError, "attack_steps"),
    ({"attack_steps": 1.5}, TypeError, "attack_steps must be an int"),
    ({"loss": "hinge"}, ValueError, "loss must be one of 'logistic', 'paper'"),
    ({"alpha": float("nan")}, ValueError, "alpha must be a finite number >= 0, got nan"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": True}, TypeError, "epochs"),
    ({"lr": float("inf")}, ValueError, "lr must be a finite number > 0"),
    ({"val_data": VAL + 14}, ValueError, "val_data must be token ids in [0, 14)"),
    ({"val_data": VAL[:, :-1]}, ValueError, "val_data must have length seq_len=11"),
    ({"attack_options": {"steps": 3}}, TypeError, "steps"),
    ({"method": "gwg", "chain_steps": -1}, ValueError, "chain_steps"),
    ({"method": "gwg", "chain_options": {"step_size": 0.1}}, TypeError,
     "chain_options: method 'gwg' takes temperature, got step_size"),
    ({"method": "dmala", "chain_options": {"temperature": 0}}, ValueError,
     "chain_options['temperature'] must be"),
    ({"chain_options": {"temperature": 1.0}}, ValueError,
     "chain_options apply to methods gwg, dmala; method 'bce'"),
])
def test_bad_arguments_name_the_problem(change, error, message):
    arguments = {"method": "bce", "attack_steps": 1, **SMALL, **change}
    with pytest.raises(error, match=re.escape(message)):
        train_ebm(small_energy(), TASK, DATA, proposal_lm(), **arguments)


def test_a_nan_regulariser_weight_is_refused_and_a_diverging_loss_stops_training():
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_ebm(small_energy(), TASK, DATA, proposal_lm(), "bce", **{**SMALL, "lr": 1e30}, loss="paper",
                  alpha=0.0)


def test_models_for_another_task_are_refused_before_sampling(monkeypatch):
    monkeypatch.setattr("advebm_teach.trainer.sample_lm", lambda *a, **k: pytest.fail("sampling started"))
    other = AdditionTask(3)
    with pytest.raises(ValueError, match="energy_model was built for seq_len=11, but the task has seq_len=14"):
        train_ebm(small_energy(), other, other.sample(8, seed=0), proposal_lm(), "bce",
                  **{**SMALL, "val_data": other.sample(8, seed=1)})
    with pytest.raises(ValueError, match="lm was built for vocab_size=20"):
        train_ebm(small_energy(), TASK, DATA, LSTMLanguageModel(20, embed_dim=8, hidden_dim=8), "bce", **SMALL)


def test_large_seeds_derive_valid_seeds():
    train_ebm(small_energy(), TASK, DATA[:16], proposal_lm(), "bce", **{**SMALL, "epochs": 1, "seed": 2**32 - 1})
