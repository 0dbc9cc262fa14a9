"""Devices: every public function takes its inputs on any device and answers on the model's; the
task's tensors follow their input's device; trainers train where the model is.

Parametrized over the devices present: the CPU always, CUDA and Apple's MPS when available
(``tools/gpu_check.py`` runs this file on a GPU). There each call is compared with the same call
all on the CPU (the reference), within float32 rounding. On a CPU-only machine torch's ``meta``
device stands in for a second device: it holds shapes and no values, and an operation that mixes
a meta tensor with a CPU tensor (the task's layout, a mask, the tokens) raises, as CUDA would.
"""

from __future__ import annotations

import copy
import re

import pytest
import torch
from conftest import energy_with_random_readout

from advebm_teach import AdditionTask, LSTMLanguageModel
from advebm_teach.attack import DiscreteAttack
from advebm_teach.attack_reference import naive_attack
from advebm_teach.config import TrainConfig
from advebm_teach.perturb import table_perturbation
from advebm_teach.sampling import energies_of, lm_log_prob, sample_lm
from advebm_teach.saliency import energy_and_gradient, first_order_scores, token_saliency
from advebm_teach.teaching.exercises.discrete import check_best_digit
from advebm_teach.toy.ebm import ToyEBM, all_states
from advebm_teach.trainer import TrainResult, classifier_objective, train_ebm, train_lm


def _available() -> list[str]:
    mps = getattr(torch.backends, "mps", None)
    return (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
            + (["mps"] if mps is not None and mps.is_available() else []))


DEVICES = _available()
HEADS = ("mean", "eos", "lm_nll")
TASK = AdditionTask(n_digits=3)
# float32 on two devices: the same sums in another order (and other kernels)
CLOSE = dict(rtol=1e-4, atol=1e-4)

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest.py


def sequences() -> torch.Tensor:
    """``(6, T)`` well-formed sequences, half of them wrong sums (random answer digits)."""
    tokens = TASK.sample(6, seed=0)
    generator = torch.Generator().manual_seed(1)
    tokens[:3, list(TASK.c_positions)] = torch.randint(0, 10, (3, TASK.n_digits + 1),
                                                       generator=generator)
    return tokens


def malformed() -> torch.Tensor:
    """``(4, T)``: two well-formed sequences, then a format token in a digit slot and a digit in a
    format slot."""
    tokens = sequences()[:4].clone()
    tokens[2, 1] = TASK.token_id["+"]
    tokens[3, TASK.plus_position] = 7
    return tokens


def energy(head: str, device: str = "cpu") -> torch.nn.Module:
    """The same small energy (random read-out) for every call, on ``device``."""
    return energy_with_random_readout(TASK, seed=0, head=head).to(device)


def small_lm(device: str = "cpu") -> LSTMLanguageModel:
    torch.manual_seed(0)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=16, hidden_dim=16).to(device)


def assert_on(tensor: torch.Tensor, device: str) -> None:
    assert tensor.device.type == torch.device(device).type, (tensor.device, device)


def assert_close_to(got: torch.Tensor, reference: torch.Tensor, device: str) -> None:
    """``got`` is on ``device`` and equals the CPU ``reference`` within float32 rounding (exactly
    for integers and booleans)."""
    assert_on(got, device)
    got = got.cpu()
    if reference.is_floating_point():
        torch.testing.assert_close(got, reference, **CLOSE)
    else:
        assert torch.equal(got, reference)


# ------------------------------------------------------------------------------ the task
@pytest.mark.parametrize("device", DEVICES)
def test_the_task_answers_on_the_tokens_device(device):
    for tokens in (malformed(), sequences()):
        on_device = tokens.to(device)
        assert_close_to(TASK.is_well_formed(on_device), TASK.is_well_formed(tokens), device)
        assert_close_to(TASK.digit_correct(on_device), TASK.digit_correct(tokens), device)
        assert_close_to(TASK.correctness(on_device), TASK.correctness(tokens), device)
        for positions in TASK.position_sets:
            assert_close_to(TASK.editable_mask(on_device, positions),
                            TASK.editable_mask(tokens, positions), device)
        assert TASK.decode(on_device) == TASK.decode(tokens)
    tokens = sequences()
    assert_close_to(TASK.check_sequences(tokens.to(device)), tokens, device)
    a, b = tokens[:, list(TASK.a_positions)], tokens[:, list(TASK.b_positions)]
    c = TASK.add_digits(a, b)
    assert_close_to(TASK.add_digits(a.to(device), b.to(device)), c, device)
    assert_close_to(TASK.assemble(a.to(device), b.to(device), c.to(device)),
                    TASK.assemble(a, b, c), device)
    with pytest.raises(ValueError, match=r"rows \[2, 3\] are not"):
        TASK.check_sequences(malformed().to(device))


def test_the_tasks_shape_only_methods_follow_a_meta_tensor():
    """A CPU layout mixed with a meta batch raises: each result must be built on the batch's
    device."""
    tokens = sequences().to("meta")
    B, T, n = len(tokens), TASK.seq_len, TASK.n_digits
    expected = {"is_well_formed": ((B,), torch.bool), "digit_correct": ((B, n + 1), torch.bool),
                "correctness": ((B,), torch.float32)}
    for name, (shape, dtype) in expected.items():
        result = getattr(TASK, name)(tokens)
        assert (result.device.type, result.shape, result.dtype) == ("meta", shape, dtype), name
    for positions in TASK.position_sets:
        mask = TASK.editable_mask(tokens, positions)
        assert (mask.device.type, mask.shape, mask.dtype) == ("meta", (B, T), torch.bool)
    a, b = tokens[:, list(TASK.a_positions)], tokens[:, list(TASK.b_positions)]
    c = TASK.add_digits(a, b)
    assert (c.device.type, c.shape) == ("meta", (B, n + 1))
    assembled = TASK.assemble(a, b, c)
    assert (assembled.device.type, assembled.shape) == ("meta", (B, T))


def test_the_task_refuses_digits_on_two_devices():
    a = torch.zeros(2, TASK.n_digits, dtype=torch.long)
    c = torch.zeros(2, TASK.n_digits + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="a, b and c must be on one device, got a on cpu, "
                                         "b on meta, c on cpu"):
        TASK.assemble(a, a.to("meta"), c)
    with pytest.raises(ValueError, match="a and b must be on one device, got a on meta, b on cpu"):
        TASK.add_digits(a.to("meta"), a)


# ------------------------------------------------------------------------------ the models
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("device", DEVICES)
def test_an_energy_reads_tokens_and_embeddings_from_any_device(device, head):
    reference, model = energy(head), energy(head, device)
    tokens = sequences()
    with torch.no_grad():
        expected = reference.energy(tokens)
        for where in ("cpu", device):
            assert_close_to(model.energy(tokens.to(where)), expected, device)
            embeds = reference.embed(tokens).to(where)
            assert_close_to(model.embed(tokens.to(where)), embeds.cpu(), device)
            assert_close_to(model.energy_from_embeds(embeds, tokens.to(where)), expected, device)
        assert_close_to(model(tokens), reference(tokens), device)


@pytest.mark.parametrize("device", DEVICES)
def test_a_language_model_reads_tokens_from_any_device(device):
    reference, lm = small_lm(), small_lm(device)
    tokens = sequences()
    with torch.no_grad():
        assert_close_to(lm(tokens), reference(tokens), device)
        logits, _ = lm.next_token_logits(tokens[:, 0])
        assert_close_to(logits, reference.next_token_logits(tokens[:, 0])[0], device)


# ------------------------------------------------------------------------------ saliency
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("device", DEVICES)
def test_saliency_and_scores_move_tokens_and_mask_to_the_model(device, head):
    reference, model = energy(head), energy(head, device)
    tokens = sequences()
    mask = TASK.editable_mask(tokens)  # on the CPU
    expected = token_saliency(reference, tokens, mask)
    got = token_saliency(model, tokens, mask)
    assert_on(got, device)
    assert torch.equal(got.cpu().isinf(), ~mask)
    torch.testing.assert_close(got.cpu()[mask], expected[mask], **CLOSE)
    assert_close_to(first_order_scores(model, tokens), first_order_scores(reference, tokens),
                    device)
    grads = energy_and_gradient(model, tokens, keep_cache=True, target_gradient=True)
    want = energy_and_gradient(reference, tokens, keep_cache=True, target_gradient=True)
    for name in ("energy", "gradient", "embeds", "target_gradient"):
        assert_close_to(getattr(grads, name), getattr(want, name), device)
    if want.cache is not None:
        assert_close_to(grads.cache.keys_values[0][0], want.cache.keys_values[0][0], device)


@pytest.mark.parametrize("head", HEADS)
def test_an_energy_on_a_meta_device_answers_there(head):
    """Every tensor input, given on the CPU, is moved to the model's (meta) device: a CPU tensor
    left among meta ones raises."""
    model = energy(head, "meta")
    tokens = sequences()
    B, T, V = len(tokens), TASK.seq_len, TASK.vocab_size
    assert_on(model.energy(tokens), "meta")
    assert_on(model.energy_from_embeds(torch.zeros(B, T, 16), tokens), "meta")
    saliency = token_saliency(model, tokens, TASK.editable_mask(tokens))
    assert (saliency.device.type, saliency.shape) == ("meta", (B, T))
    scores = first_order_scores(model, tokens)
    assert (scores.device.type, scores.shape) == ("meta", (B, T, V))
    grads = energy_and_gradient(model, tokens, keep_cache=True, target_gradient=True)
    assert {grads.energy.device.type, grads.gradient.device.type,
            grads.target_gradient.device.type} == {"meta"}
    objective = classifier_objective(model, tokens, tokens.flip(0))
    assert_on(objective.loss_fn(objective.embed()), "meta")


# ------------------------------------------------------------------------------ objectives
@pytest.mark.parametrize("device", DEVICES)
def test_the_classifier_objective_moves_its_batch_to_the_model(device):
    data, negatives = TASK.sample(4, seed=3), sequences()[:4]

    def loss_and_gradient(model):
        objective = classifier_objective(model, data, negatives)
        embeds = objective.embed().detach().requires_grad_(True)
        loss = objective.loss_fn(embeds)
        return objective.tokens, loss.detach(), torch.autograd.grad(loss, embeds)[0]

    expected = loss_and_gradient(energy("mean"))
    for got, want in zip(loss_and_gradient(energy("mean", device)), expected):
        assert_close_to(got, want, device)


@pytest.mark.parametrize("device", DEVICES)
def test_a_table_perturbation_moves_tokens_to_the_gradient(device):
    tokens = sequences()
    gradient = torch.randn(*tokens.shape, 8, generator=torch.Generator().manual_seed(0))
    assert_close_to(table_perturbation(gradient.to(device), tokens, 0.5),
                    table_perturbation(gradient, tokens, 0.5), device)


# ------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("device", DEVICES)
def test_sampling_and_scoring_take_tokens_on_any_device(device):
    reference, lm = small_lm(), small_lm(device)
    samples = sample_lm(lm, TASK, 8, seed=0)
    assert_on(samples, "cpu")
    assert bool(TASK.is_well_formed(samples).all())
    expected = lm_log_prob(reference, TASK, samples)
    for where in ("cpu", device):
        assert_close_to(lm_log_prob(lm, TASK, samples.to(where)), expected, "cpu")
    tokens = sequences()
    expected = energies_of(energy("lm_nll"), tokens)
    for where in ("cpu", device):
        assert_close_to(energies_of(energy("lm_nll", device), tokens.to(where)), expected, "cpu")


# ------------------------------------------------------------------------------ attacks
@pytest.mark.parametrize("head,candidates", [("mean", None), ("lm_nll", None), ("eos", 3)])
@pytest.mark.parametrize("device", DEVICES)
def test_the_attacks_take_tokens_on_any_device_and_trace_on_the_cpu(device, head, candidates):
    tokens = sequences()
    reference = DiscreteAttack(energy(head), TASK, 2, candidates=candidates).attack(tokens)
    attack = DiscreteAttack(energy(head, device), TASK, 2, candidates=candidates)
    for where in ("cpu", device):
        trace = attack.attack(tokens.to(where))
        # the first step starts from the same tokens: same saliency, candidates and energies
        for name in ("saliency", "candidate_energy"):
            assert_close_to(getattr(trace, name)[0], getattr(reference, name)[0], "cpu")
        assert_close_to(trace.tokens[0], tokens, "cpu")
        assert_close_to(trace.energy[0], reference.energy[0], "cpu")
        assert bool((trace.energy[1:] <= trace.energy[:-1] + 1e-6).all())  # never rises
    naive = naive_attack(energy(head, device), TASK, tokens[:2].to(device), 1)
    expected = naive_attack(energy(head), TASK, tokens[:2], 1)
    for name in ("energy", "saliency", "candidate_energy"):
        assert_close_to(getattr(naive, name), getattr(expected, name), "cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_the_best_digit_checker_runs_the_model_where_it_is(device):
    def best_digit(energy_model, x, position):  # a right answer, by trying every digit
        candidates = x.repeat(10, 1)
        candidates[:, position] = torch.arange(10)
        with torch.no_grad():
            return int(energy_model.energy(candidates).argmin())

    model = energy("mean", device)
    verdict = check_best_digit(best_digit, model, sequences()[:2])
    assert verdict, repr(verdict)
    wrong = check_best_digit(lambda m, x, p: 9 - best_digit(m, x, p), model, sequences()[:2])
    assert not wrong and repr(wrong).startswith("✗ wrong")


# ------------------------------------------------------------------------------ trainers
LM_TRAINING = TrainConfig(epochs=2, batch_size=8, lr=3e-3, patience=5, seed=3)
EBM_TRAINING = TrainConfig(epochs=1, batch_size=8, lr=1e-3, patience=5, seed=3)
# a few optimizer steps amplify float32 rounding a little
TRAINED = dict(rtol=1e-3, atol=1e-3)


def train_small_lm(lm: torch.nn.Module, **options) -> tuple[TrainResult, list[float]]:
    """``train_lm`` on 16 sums; returns the result and its validation losses."""
    result = train_lm(lm, TASK.sample(16, seed=1), TASK.sample(8, seed=2), LM_TRAINING,
                      progress=False, **options)
    return result, [row["val_loss"] for row in result.history]


def train_small_ebm(model: torch.nn.Module, **options) -> TrainResult:
    """One epoch of Algorithm 1 (one attack step) on 8 sums."""
    return train_ebm(model, TASK, TASK.sample(8, seed=1), small_lm(), "adversarial", 1,
                     val_data=TASK.sample(8, seed=2), config=EBM_TRAINING, progress=False,
                     **options)


def assert_all_on(model: torch.nn.Module, device: str) -> None:
    assert {p.device.type for p in model.parameters()} == {torch.device(device).type}


@pytest.fixture
def best_device_is_meta(monkeypatch):
    """``pick_device()`` names a device the trainers must not move a model to on their own."""
    import advebm_teach.config
    import advebm_teach.trainer

    monkeypatch.setattr(advebm_teach.config, "pick_device", lambda: torch.device("meta"))
    monkeypatch.setattr(advebm_teach.trainer, "pick_device", lambda: torch.device("meta"),
                        raising=False)


@pytest.mark.parametrize("device", DEVICES)
def test_the_trainers_train_the_model_where_it_is(device, best_device_is_meta):
    lm = small_lm(device)
    result, history = train_small_lm(lm)
    assert result.model is lm
    assert_all_on(lm, device)
    _, expected = train_small_lm(small_lm(), device="cpu")
    torch.testing.assert_close(torch.tensor(history), torch.tensor(expected), **TRAINED)
    model = energy("lm_nll", device)
    assert train_small_ebm(model).model is model
    assert_all_on(model, device)


@pytest.mark.parametrize("device", DEVICES)
def test_the_trainers_move_the_model_to_a_device_given(device, tmp_path):
    lm = small_lm()
    result, history = train_small_lm(lm, device=device, checkpoint_dir=tmp_path)
    assert result.model is lm
    assert_all_on(lm, device)
    # the finished run read back from its checkpoint: the same history, the model given
    again = small_lm()
    resumed, same = train_small_lm(again, device=device, checkpoint_dir=tmp_path)
    assert resumed.model is again and same == history
    assert_all_on(again, device)
    for name, parameter in lm.state_dict().items():
        assert torch.equal(again.state_dict()[name], parameter)
    model = energy("mean")
    assert train_small_ebm(model, device=device).model is model
    assert_all_on(model, device)


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "device must be a torch device such as 'cpu' or 'cuda', got 'gpu'"),
    (3.5, "device must be a torch device"),
    pytest.param("cuda", "which this machine does not have", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_a_device_that_is_not_here_is_refused_by_name_before_training(device, message):
    lm = small_lm()
    with pytest.raises(ValueError, match=re.escape(message)):
        train_small_lm(lm, device=device)
    assert_all_on(lm, "cpu")


# ------------------------------------------------------------------------------ the toy world
@pytest.mark.parametrize("device", DEVICES)
def test_the_toy_world_runs_on_the_cpu_in_float64(device):
    model = ToyEBM(3, 3, seed=0)
    states = all_states(3, 3)
    expected = model.energy(states)
    got = model.energy(states.to(device))  # states on another device are moved to the CPU
    assert got.device.type == "cpu" and got.dtype == torch.float64
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="float64.*torch.float32"):
        copy.deepcopy(model).float().energy(states)
    moved = "meta" if device == "cpu" else device
    with pytest.raises(ValueError, match=f"CPU in float64.*on {moved}"):
        copy.deepcopy(model).to(moved).energy(states)
