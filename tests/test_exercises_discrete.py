"""Notebook 05's exercise checkers (one attack step, the S-step loop, and the warm-ups): ✓ for a
right answer, ✗ with a message that names the row, the position and the mistake for the classic
wrong ones, "not done yet" for the stub, TypeError/ValueError for bad arguments."""

import functools
import math

import pytest
import torch

from advebm_teach import AdditionTask, TransformerEnergy, load_pretrained, make_task, sample_lm
from advebm_teach.saliency import token_saliency
from advebm_teach.teaching.exercises.discrete import (_clear_choices, _tabu_before_each_step,
                                                      check_attack_step, check_best_digit,
                                                      check_l1_saliency, check_run_attack)
from advebm_teach.trace import AttackTrace

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest.py

TASK = AdditionTask(n_digits=3)


@functools.lru_cache(maxsize=None)
def small_model(head: str = "mean", seed: int = 0) -> TransformerEnergy:
    """A small model with a random read-out (a fresh read-out is zero)."""
    torch.manual_seed(seed)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=32, head=head).eval()
    torch.nn.init.normal_(model.energy_readout.weight, std=0.5)
    torch.nn.init.normal_(model.energy_readout.bias, std=0.5)
    return model


def corrupted(n: int, seed: int) -> torch.Tensor:
    """True sums with a third of their digits replaced at random (still well formed)."""
    g = torch.Generator().manual_seed(seed)
    x = TASK.sample(n, generator=g)
    digits = TASK.editable_mask(x) & (torch.rand(x.shape, generator=g) < 0.3)
    return torch.where(digits, torch.randint(0, 10, x.shape, generator=g), x)


# ------------------------------------------------------------------- model solutions, mistakes
def attack_step(energy_model, task, tokens, tabu, *, mask_editable=True, respect_tabu=True,
                lowest=True):
    """The model solution of Exercise 05.1; the flags make the classic mistakes."""
    allowed = ~tabu if respect_tabu else torch.ones_like(tabu)
    if mask_editable:
        allowed = allowed & task.editable_mask(tokens)
    position = token_saliency(energy_model, tokens, mask=allowed).argmax(dim=1)
    active = allowed.any(dim=1)
    rows = torch.arange(len(tokens))
    digits = task.writable_tokens()
    energies = []
    for v in digits:
        candidate = tokens.clone()
        candidate[rows, position] = v
        with torch.no_grad():
            energies.append(energy_model.energy(candidate))
    energies = torch.stack(energies, dim=1)
    best = digits[energies.argmin(dim=1) if lowest else energies.argmax(dim=1)]
    new_tokens = tokens.clone()
    new_tokens[rows[active], position[active]] = best[active]
    return new_tokens, torch.where(active, position, -1)


def run_attack(energy_model, task, tokens, steps, tabu=True, *, clear=True, mark=True):
    """The model solution of Exercise 05.2; the flags make the classic mistakes."""
    states = [tokens]
    tabu_mask = torch.zeros_like(tokens, dtype=torch.bool)
    rows = torch.arange(len(tokens))
    for _ in range(steps):
        new_tokens, position = attack_step(energy_model, task, states[-1], tabu_mask)
        if tabu:
            changed = (new_tokens != states[-1]).any(dim=1)
            stalled = ~changed & (position >= 0)
            if clear:
                tabu_mask = tabu_mask & ~changed[:, None]
            if mark:
                tabu_mask[rows[stalled], position[stalled]] = True
        states.append(new_tokens)
    return torch.stack(states)


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------------------- Exercise 05.1
@pytest.mark.parametrize("head", ["mean", "eos", "lm_nll"])
def test_attack_step_checker_says_right_for_the_solution(head):
    verdict = check_attack_step(attack_step, small_model(head), TASK, corrupted(8, seed=1))
    assert verdict and repr(verdict).startswith("✓ right"), repr(verdict)


def test_attack_step_checker_on_the_course_model_and_p_lm_samples():
    task = make_task("course")
    model = load_pretrained("energy_lm")
    model.head = "lm_nll"
    samples = sample_lm(load_pretrained("plm"), task, 8, seed=0)
    verdict = check_attack_step(attack_step, model, task, samples)
    assert verdict and "in all 48 (row, step) cases compared" in repr(verdict), repr(verdict)


def test_attack_step_checker_names_the_classic_mistakes():
    model, x = small_model("mean"), corrupted(8, seed=1)
    ignores_tabu = check_attack_step(functools.partial(attack_step, respect_tabu=False),
                                     model, TASK, x)
    assert not ignores_tabu and "which is tabu for this row" in repr(ignores_tabu)
    assert "batch row" in repr(ignores_tabu)
    highest = check_attack_step(functools.partial(attack_step, lowest=False), model, TASK, x)
    assert not highest and "keep the candidate of lowest energy" in repr(highest)
    assert "batch row 0" in repr(highest) and "E = " in repr(highest)
    everywhere = check_attack_step(functools.partial(attack_step, mask_editable=False),
                                   model, TASK, x)
    assert not everywhere and ("may not edit" in repr(everywhere)
                               or "must stay as it is" in repr(everywhere))


def test_attack_step_checker_catches_a_row_with_every_position_tabu():
    def no_fallback(energy_model, task, tokens, tabu):
        new_tokens, position = attack_step(energy_model, task, tokens, tabu)
        return new_tokens, position.clamp(min=0)  # -1 forgotten

    verdict = check_attack_step(no_fallback, small_model("mean"), TASK, corrupted(8, seed=1))
    assert not verdict and "batch row 0" in repr(verdict) and "position -1" in repr(verdict)


def test_attack_step_checker_refuses_in_place_edits_and_wrong_types():
    model, x = small_model("mean"), corrupted(4, seed=2)

    def in_place(energy_model, task, tokens, tabu):
        new_tokens, position = attack_step(energy_model, task, tokens, tabu)
        tokens[:] = new_tokens
        return tokens, position

    verdict = check_attack_step(in_place, model, TASK, x)
    assert not verdict and "in place" in repr(verdict)
    only_tokens = check_attack_step(lambda *a: attack_step(*a)[0], model, TASK, x)
    assert not only_tokens and "return a pair" in repr(only_tokens)
    floats = check_attack_step(lambda *a: (attack_step(*a)[0].float(), attack_step(*a)[1]),
                               model, TASK, x)
    assert not floats and "torch.long" in repr(floats)


# ------------------------------------------------------------------------------- Exercise 05.2
@pytest.mark.parametrize("head", ["mean", "lm_nll"])
def test_run_attack_checker_says_right_for_the_solution(head):
    verdict = check_run_attack(run_attack, small_model(head), TASK, corrupted(6, seed=3))
    assert verdict and repr(verdict).startswith("✓ right"), repr(verdict)


def test_run_attack_checker_names_the_classic_mistakes():
    model, x = small_model("mean"), corrupted(6, seed=3)
    never_tabu = check_run_attack(lambda m, t, x, s, tabu=True: run_attack(m, t, x, s, False),
                                  model, TASK, x)
    assert not never_tabu and "those of the attack with tabu=False" in repr(never_tabu)
    never_cleared = check_run_attack(functools.partial(run_attack, clear=False), model, TASK, x,
                                     steps=10)
    assert not never_cleared and "empties the row's tabu list" in repr(never_cleared)
    assert "batch row" in repr(never_cleared) and "after step" in repr(never_cleared)
    final_only = check_run_attack(lambda *a: run_attack(*a)[-1], model, TASK, x)
    assert not final_only and "expected (7, 6, 14)" in repr(final_only)
    shifted = check_run_attack(lambda m, t, x, s, tabu: run_attack(m, t, x, s + 1, tabu)[1:],
                               model, TASK, x)
    assert not shifted and "state 0 is the input" in repr(shifted)


# ------------------------------------------------------------------------------- the reference's
def hand_trace(saliency, candidate_energy, position=(2,)):
    """A one-step trace of one row of length 4 over 3 tokens, with the given choices."""
    tokens = torch.zeros(2, 1, 4, dtype=torch.long)
    return AttackTrace(tokens, torch.zeros(2, 1), torch.tensor([list(position)]),
                       torch.tensor([[saliency]]), torch.tensor([[candidate_energy]]))


def test_near_ties_are_not_compared():
    inf = math.inf
    assert _clear_choices(hand_trace([-inf, 1.0, 2.0, 0.5], [3.0, 1.0, 2.0])).all()
    assert not _clear_choices(hand_trace([-inf, 2.0, 2.0 + 1e-5, 0.5], [3.0, 1.0, 2.0])).any()
    assert not _clear_choices(hand_trace([-inf, 1.0, 2.0, 0.5], [3.0, 1.0, 1.0 + 1e-5])).any()
    nothing_left = hand_trace([-inf] * 4, [inf] * 3, position=(-1,))
    assert _clear_choices(nothing_left).all()


def test_tabu_lists_follow_the_trace():
    """A step that changes nothing adds its position; a change empties the row's list."""
    tokens = torch.tensor([[[1, 1, 1]], [[1, 1, 1]], [[1, 2, 1]], [[1, 2, 1]]])
    trace = AttackTrace(tokens, torch.zeros(4, 1), torch.tensor([[0], [1], [2]]),
                        torch.zeros(3, 1, 3), torch.zeros(3, 1, 3))
    masks = _tabu_before_each_step(trace, torch.ones(1, 3, dtype=torch.bool))
    assert [m[0].tolist() for m in masks] == [[False, False, False], [True, False, False],
                                              [False, False, False]]


# ------------------------------------------------------------------------------- the stub, args
CHECKS = {"attack_step": lambda f: check_attack_step(f, small_model(), TASK, corrupted(4, 0)),
          "run_attack": lambda f: check_run_attack(f, small_model(), TASK, corrupted(4, 0)),
          "l1_saliency": check_l1_saliency,
          "best_digit": lambda f: check_best_digit(f, small_model(), corrupted(2, 0))}


@pytest.mark.parametrize("name", CHECKS)
def test_a_stub_is_not_done_yet_and_a_non_function_is_refused(name):
    verdict = CHECKS[name](stub)
    assert not verdict and repr(verdict) == (
        f"… not done yet: write the body of {name}, then run this cell again")
    with pytest.raises(TypeError, match=f"{name} must be a function"):
        CHECKS[name](42)
    returns_none = CHECKS[name](lambda *args: None)
    assert not returns_none and "returned None" in repr(returns_none)


@pytest.mark.parametrize("checker", [check_attack_step, check_run_attack])
def test_bad_arguments_are_named(checker):
    x = corrupted(4, 0)
    with pytest.raises(TypeError, match="energy_model"):
        checker(stub, object(), TASK, x)
    with pytest.raises(TypeError, match="tokens"):
        checker(stub, small_model(), TASK, x.float())
    with pytest.raises(ValueError, match="at least 2 rows"):
        checker(stub, small_model(), TASK, x[:1])
    with pytest.raises(ValueError, match="seq_len"):
        checker(stub, small_model(), AdditionTask(n_digits=2), x)


def test_warm_up_checkers():
    assert check_l1_saliency(lambda g: g.abs().sum(dim=-1))
    l2 = check_l1_saliency(lambda g: g.norm(dim=-1))
    assert not l2 and "batch row 0, position 0" in repr(l2)

    def best_digit(energy_model, x, position):
        candidates = x.repeat(10, 1)
        candidates[:, position] = torch.arange(10)
        with torch.no_grad():
            return int(energy_model.energy(candidates).argmin())

    assert check_best_digit(best_digit, small_model(), corrupted(2, 0))
    highest = check_best_digit(lambda m, x, p: 9 - best_digit(m, x, p), small_model(),
                               corrupted(2, 0))
    assert not highest and repr(highest).startswith("✗ wrong")
