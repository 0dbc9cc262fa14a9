"""The checkers of notebook 00's exercises say ✓ to a right answer, ✗ with a useful message to the
usual mistakes, "not done yet" to the stub, and refuse a non-callable."""

import pytest
import torch

from advebm_teach import LSTMLanguageModel, load_pretrained, make_task
from advebm_teach.sampling import lm_log_prob
from advebm_teach.task import AdditionTask
from advebm_teach.teaching.exercises.task import (check_answer_digits, check_carries,
                                                  check_correctness, check_sequence_log_prob,
                                                  correctness_trial, step_by_step_log_prob)

NOT_DONE = "… not done yet: write the body of {}, then run this cell again"


def stub(*args):
    raise NotImplementedError


# ------------------------------------------------------------------ 00.1 answer_digits
def test_answer_digits_checker():
    right = check_answer_digits(lambda a, b, n: str(a + b).zfill(n + 1))
    assert right and repr(right).startswith("✓ right")
    forgets_leading_zero = check_answer_digits(lambda a, b, n: str(a + b))
    assert not forgets_leading_zero
    assert repr(forgets_leading_zero) == (
        "✗ wrong: answer_digits(0, 0, 1) returned '0', expected '00'")
    an_int = check_answer_digits(lambda a, b, n: a + b)
    assert repr(an_int) == "✗ wrong: answer_digits(0, 0, 1) returned 0, expected '00'"
    unfinished = check_answer_digits(lambda a, b, n: None)
    assert repr(unfinished).startswith("✗ not yet: answer_digits(0, 0, 1) returned None")
    assert repr(check_answer_digits(stub)) == NOT_DONE.format("answer_digits")


# ------------------------------------------------------------------ 00.4 carries
def loop_carries(a_digits, b_digits):
    out, carry = [], 0
    for a, b in zip(reversed(a_digits), reversed(b_digits)):
        carry = (a + b + carry) // 10
        out.append(carry)
    return out[::-1]


def test_carries_checker():
    assert loop_carries([4, 9, 9, 9], [5, 0, 0, 1]) == [1, 1, 1, 1]  # the notebook's example
    assert check_carries(loop_carries)
    # The classic mistake: a column's carry from its own digits only, ignoring the incoming carry.
    own_digits_only = check_carries(
        lambda a_digits, b_digits: [int(a + b >= 10) for a, b in zip(a_digits, b_digits)])
    assert not own_digits_only
    assert "carries([9, 9], [0, 1]) returned [0, 1], expected [1, 1]" in repr(own_digits_only)
    least_significant_first = check_carries(lambda a, b: loop_carries(a, b)[::-1])
    assert not least_significant_first and "expected [1, 1]" not in repr(least_significant_first)
    assert repr(least_significant_first).startswith("✗ wrong: carries(")
    assert repr(check_carries(stub)) == NOT_DONE.format("carries")


def test_a_raising_answer_is_reported_not_raised():
    def broken(a_digits, b_digits):
        raise IndexError("list index out of range")

    assert repr(check_carries(broken)) == (
        "✗ not yet: carries([0], [0]) raised IndexError: list index out of range")


# ------------------------------------------------------------------ 00.2 correctness
def loop_correctness(tokens, task):
    """A third way: integers and strings, one row at a time."""
    scores = []
    for row in tokens.tolist():
        a = int("".join(str(row[i]) for i in task.a_positions))
        b = int("".join(str(row[i]) for i in task.b_positions))
        truth = str(a + b).zfill(task.n_digits + 1)
        written = [row[i] for i in task.c_positions]
        scores.append(sum(int(d) == t for d, t in zip(truth, written)) / (task.n_digits + 1))
    return torch.tensor(scores)


@pytest.mark.parametrize("n_digits", [1, 5, 10])
def test_the_trial_batch_is_well_formed_and_spans_the_scores(n_digits):
    task = AdditionTask(n_digits)
    tokens = correctness_trial(task, seed=n_digits)
    assert bool(task.is_well_formed(tokens).all())
    assert torch.equal(task.correctness(tokens), loop_correctness(tokens, task))
    scores = set(task.correctness(tokens).tolist())
    assert 1.0 in scores and 0.0 in scores and len(scores) >= min(n_digits + 2, 4)


def test_correctness_checker_says_right():
    verdict = check_correctness(loop_correctness)
    assert verdict and repr(verdict).startswith("✓ right")


def test_correctness_checker_names_the_row_when_carries_are_ignored():
    def no_carries(tokens, task):
        a, b = tokens[:, list(task.a_positions)], tokens[:, list(task.b_positions)]
        c = tokens[:, list(task.c_positions)]
        truth = torch.cat([torch.zeros(len(a), 1, dtype=torch.long), (a + b) % 10], dim=1)
        return (truth == c).float().mean(dim=1)

    verdict = check_correctness(no_carries)
    assert not verdict
    assert repr(verdict) == (
        "✗ wrong: correctness(tokens, task) on 72 5-digit sequences: at batch row 0, "
        "99999+00001=100000, got 0.1667, expected 6/6 = 1 (6 of its 6 answer digits are right "
        "for its own a and b)")


def test_correctness_checker_catches_another_rows_operands_and_counts():
    def next_rows_operands(tokens, task):  # judges row i's answer against row i+1's a and b
        return loop_correctness(torch.cat([tokens[:, :task.equals_position + 1].roll(-1, 0),
                                           tokens[:, task.equals_position + 1:]], dim=1), task)

    verdict = check_correctness(next_rows_operands)
    assert not verdict and "at batch row 0" in repr(verdict)
    counts = check_correctness(lambda tokens, task: task.digit_correct(tokens).sum(dim=1))
    assert repr(counts) == (
        "✗ wrong: correctness(tokens, task) on 72 5-digit sequences returned integers "
        "(torch.int64); correctness is a fraction: right answer digits / (n+1)")
    per_digit = check_correctness(lambda tokens, task: task.digit_correct(tokens).float())
    assert "shape (72, 6), expected shape (72,)" in repr(per_digit)


def test_correctness_checker_stub_and_bad_argument():
    assert repr(check_correctness(stub)) == NOT_DONE.format("correctness")
    with pytest.raises(TypeError, match="correctness must be a function"):
        check_correctness("correctness")


# ------------------------------------------------------------------ 00.3 sequence_log_prob
@pytest.fixture(scope="module")
def plm():
    return load_pretrained("plm")


def vectorised_log_prob(lm, tokens, task):
    logits = lm(tokens)[:, :-1, task.digit_ids]
    log_probs = torch.log_softmax(logits, dim=-1)
    written = log_probs.gather(-1, tokens[:, 1:].clamp(max=9)[..., None]).squeeze(-1)
    return written[:, task.digit_slots[1:]].sum(dim=1)


def test_step_by_step_reference_is_the_library_and_a_brute_force_product(plm):
    task = make_task("course")
    tokens = torch.cat([task.sample(5, seed=3), correctness_trial(task)[-5:]])
    reference = step_by_step_log_prob(plm, task, tokens)
    assert torch.allclose(reference, lm_log_prob(plm, task, tokens), atol=1e-4)
    # exact enumeration on a 1-digit task: the constrained sampler's probabilities sum to 1
    tiny = AdditionTask(1)
    torch.manual_seed(0)
    lm = LSTMLanguageModel(tiny.vocab_size, embed_dim=8, hidden_dim=8).eval()
    every = torch.cartesian_prod(*[torch.arange(10)] * 4)  # a, b, c2, c1
    tokens = tiny.assemble(every[:, :1], every[:, 1:2], every[:, 2:])
    total = step_by_step_log_prob(lm, tiny, tokens).double().exp().sum()
    assert abs(float(total) - 1.0) < 1e-4


def test_sequence_log_prob_checker_says_right(plm):
    task = make_task("course")
    assert repr(check_sequence_log_prob(vectorised_log_prob, plm, task)).startswith("✓ right")
    library = check_sequence_log_prob(lambda lm, tokens, task: lm_log_prob(lm, task, tokens),
                                      plm, task)
    assert library


def test_sequence_log_prob_checker_names_the_usual_slips(plm):
    task = make_task("course")

    def whole_vocabulary(lm, tokens, task):
        log_probs = torch.log_softmax(lm(tokens)[:, :-1], dim=-1)
        written = log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)
        return written[:, task.digit_slots[1:]].sum(dim=1)

    def same_position(lm, tokens, task):
        log_probs = torch.log_softmax(lm(tokens)[:, :, task.digit_ids], dim=-1)
        written = log_probs.gather(-1, tokens.clamp(max=9)[..., None]).squeeze(-1)
        return written[:, task.digit_slots].sum(dim=1)

    vocabulary = repr(check_sequence_log_prob(whole_vocabulary, plm, task))
    assert vocabulary.startswith("✗ wrong: sequence_log_prob(lm, tokens, task) on 12 sequences: "
                                 "at batch row 0: got ")
    assert "the log-softmax over the whole vocabulary, summed over the digit slots" in vocabulary
    shifted = repr(check_sequence_log_prob(same_position, plm, task))
    assert "logits[:, t] scores the NEXT token" in shifted
    probabilities = repr(check_sequence_log_prob(
        lambda lm, tokens, task: vectorised_log_prob(lm, tokens, task).exp(), plm, task))
    assert probabilities.startswith("✗ wrong:") and "Your numbers" not in probabilities


def test_sequence_log_prob_checker_stub_and_bad_arguments(plm):
    task = make_task("course")
    assert repr(check_sequence_log_prob(stub, plm, task)) == NOT_DONE.format("sequence_log_prob")
    with pytest.raises(TypeError, match="sequence_log_prob must be a function"):
        check_sequence_log_prob(None, plm, task)
    with pytest.raises(TypeError, match="task must be an AdditionTask"):
        check_sequence_log_prob(vectorised_log_prob, plm, "course")
    with pytest.raises(ValueError, match="lm"):
        check_sequence_log_prob(vectorised_log_prob, LSTMLanguageModel(20), task)
    with pytest.raises(TypeError, match="next_token_logits"):
        check_sequence_log_prob(vectorised_log_prob, torch.nn.Linear(14, 14), task)
