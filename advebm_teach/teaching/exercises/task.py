"""Checkers of notebook 00's exercises (the addition task and P_LM).

Each compares the student's function with a reference written another way: Python's integer
addition (``answer_digits``, ``carries``), the library's vectorised column addition
(``correctness``) and P_LM read one token at a time, as the sampler reads it
(``sequence_log_prob``).
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable

import torch

from ...checks import check_callable, check_int
from ...task import AdditionTask, check_task
from .verdict import Verdict, explain_difference, failed_call, verdict_of_cases


def _cases(seed: int = 0) -> Iterable[tuple[int, int, int]]:
    """(a, b, n_digits): the carry-chain edge cases first, then random ones."""
    for n in (1, 2, 5, 10):
        top = 10**n - 1
        yield from [(0, 0, n), (top, top, n), (top, 1, n), (1, top, n),
                    (10 ** (n - 1), 10 ** (n - 1), n)]
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 12)
        yield rng.randrange(10**n), rng.randrange(10**n), n


def check_answer_digits(answer_digits: Callable[[int, int, int], str]) -> Verdict:
    """Exercise 00.1: ``answer_digits(a, b, n_digits)`` is the n+1 digits of c = a + b.

    E.g. (12, 39, 2) -> '051'.
    """
    check_callable("answer_digits", answer_digits)

    return verdict_of_cases("answer_digits", (
        (f"answer_digits({a}, {b}, {n})", str(a + b).zfill(n + 1),
         lambda a=a, b=b, n=n: answer_digits(a, b, n))
        for a, b, n in _cases()))


def digits_of(x: int, n_digits: int) -> list[int]:
    """The ``n_digits`` digits of ``x``, most significant first."""
    if check_int("x", x, 0) >= 10 ** check_int("n_digits", n_digits, 1):
        raise ValueError(f"x must have at most n_digits={n_digits} digits, got {x}")
    return [int(d) for d in str(x).zfill(n_digits)]


def check_carries(carries: Callable[[list[int], list[int]], list[int]]) -> Verdict:
    """Exercise 00.4: ``carries(a_digits, b_digits)`` is the carry out of each column, most
    significant first.

    Reference: the carry out of the column worth 10^j is 1 exactly when
    (a mod 10^(j+1)) + (b mod 10^(j+1)) reaches 10^(j+1), which depends on every digit to the right
    of that column.
    """
    check_callable("carries", carries)

    def case(a: int, b: int, n: int) -> tuple[str, list[int], Callable[[], Any]]:
        expected = [int(a % 10 ** (j + 1) + b % 10 ** (j + 1) >= 10 ** (j + 1))
                    for j in reversed(range(n))]
        a_digits, b_digits = digits_of(a, n), digits_of(b, n)
        return (f"carries({a_digits}, {b_digits})", expected,
                lambda: carries(list(a_digits), list(b_digits)))

    return verdict_of_cases("carries", (case(a, b, n) for a, b, n in _cases()))


# ------------------------------------------------------------------------ Exercise 00.2
def correctness_trial(task: AdditionTask, seed: int = 0) -> torch.Tensor:
    """A batch ``(B, T)`` of well-formed sequences for ``task`` that a correctness function must
    score right: true sums, the carry-chain extremes, and wrong answers of the kinds a model
    writes (no carries, one digit off, the final carry dropped, another row's answer, random)."""
    n, generator = task.n_digits, torch.Generator().manual_seed(seed)
    nines, zeros = torch.full((1, n), 9), torch.zeros(1, n, dtype=torch.long)
    one = zeros.clone()
    one[0, -1] = 1
    a = torch.cat([nines, zeros, nines, one, torch.randint(0, 10, (8, n), generator=generator)])
    b = torch.cat([one, zeros, nines, nines, torch.randint(0, 10, (8, n), generator=generator)])
    true_c = task.add_digits(a, b)  # (12, n+1)
    no_carries = torch.cat([torch.zeros(len(a), 1, dtype=torch.long), (a + b) % 10], dim=1)
    one_off = true_c.clone()
    one_off[:, -1] = (one_off[:, -1] + 1) % 10
    carry_dropped = true_c.clone()
    carry_dropped[:, 0] = 0
    other_rows = true_c.roll(1, dims=0)
    random_c = torch.randint(0, 10, true_c.shape, generator=generator)
    answers = [true_c, no_carries, one_off, carry_dropped, other_rows, random_c]
    return torch.cat([task.assemble(a, b, c) for c in answers])


def _row_text(task: AdditionTask, tokens: torch.Tensor, row: int) -> str:
    return task.decode(tokens[row], strip=True)


def check_correctness(correctness: Callable[[torch.Tensor, AdditionTask], Any]) -> Verdict:
    """Exercise 00.2: ``correctness(tokens, task)`` is the paper's metric of every row of a batch
    ``(B, T)`` of well-formed sequences, ``(B,)`` floats: the fraction of the n+1 answer digits
    that equal the digits of a + b for the a and b written in the same row.

    Reference: ``AdditionTask.correctness`` (column addition with carries, vectorised), on the
    1-, 5- and 10-digit tasks. A mismatch names the batch row, the sequence and how many answer
    digits are right.
    """
    check_callable("correctness", correctness, "a function correctness(tokens, task) -> (B,)")
    for n_digits in (5, 1, 10):
        task = AdditionTask(n_digits)
        tokens = correctness_trial(task, seed=n_digits)
        call = f"correctness(tokens, task) on {len(tokens)} {n_digits}-digit sequences"
        expected = task.correctness(tokens)
        try:
            got = correctness(tokens.clone(), task)
        except Exception as error:
            return failed_call("correctness", call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of "
                                  f"correctness")
        got = torch.as_tensor(got)
        if got.shape == expected.shape and not got.is_floating_point():
            return Verdict(False, f"✗ wrong: {call} returned integers ({got.dtype}); correctness "
                                  f"is a fraction: right answer digits / (n+1)")
        difference = explain_difference(got, expected, ("batch row",))
        if difference is None:
            continue
        if got.shape != expected.shape:
            return Verdict(False, f"✗ wrong: {call} {difference}")
        row = int(torch.nonzero(~torch.isclose(got.double(), expected.double(), atol=1e-6))[0])
        right = int(task.digit_correct(tokens[row]).sum())
        return Verdict(False, (
            f"✗ wrong: {call}: at batch row {row}, {_row_text(task, tokens, row)}, got "
            f"{float(got[row]):.4g}, expected {right}/{n_digits + 1} = {float(expected[row]):.4g} "
            f"({right} of its {n_digits + 1} answer digits are right for its own a and b)"))
    return Verdict(True, "✓ right: correctness agrees with task.correctness on every sequence "
                         "tried (1, 5 and 10 digits)")


# ------------------------------------------------------------------------ Exercise 00.3
@torch.no_grad()
def step_by_step_log_prob(lm: torch.nn.Module, task: AdditionTask,
                          tokens: torch.Tensor) -> torch.Tensor:
    """``(B,)``: log P_LM(x) read as the constrained sampler reads it, one token at a time:
    the sum over digit slots t of log softmax over the 10 digits of the logits after x_<t.
    ``tokens`` on the CPU; ``lm`` anywhere (its logits are read on the CPU)."""
    total = torch.zeros(len(tokens), dtype=torch.float64)
    state, rows = None, torch.arange(len(tokens))
    for t in range(1, task.seq_len):
        logits, state = lm.next_token_logits(tokens[:, t - 1], state)  # (B, V): scores x_t
        logits = logits.cpu()
        if task.digit_slots[t]:
            log_probs = torch.log_softmax(logits[:, task.digit_ids].double(), dim=-1)
            total += log_probs[rows, tokens[:, t]]
    return total.float()


@torch.no_grad()
def _usual_mistakes(lm: torch.nn.Module, task: AdditionTask,
                    tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """What three common slips compute, each ``(B,)`` on the CPU, with the sentence that explains
    it."""
    logits = lm(tokens).cpu().double()  # (B, T, V): logits[:, t] scores x_{t+1}
    full = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, tokens[:, 1:, None])[..., 0]
    digits = torch.log_softmax(logits[:, :, task.digit_ids], dim=-1)  # (B, T, 10)
    same_position = digits.gather(-1, tokens.clamp(max=9)[..., None])[..., 0]  # logits[:, t], x_t
    slots = task.digit_slots
    return {
        "the log-softmax over the whole vocabulary, summed over the digit slots: constrained "
        "sampling renormalises over the 10 digits where a digit goes":
            full[:, slots[1:]].sum(dim=1),
        "the log-softmax over the whole vocabulary, summed over every position (the training "
        "loss's log-likelihood): the sampler forces the format tokens and draws only digits":
            full.sum(dim=1),
        "x_t scored with logits[:, t]; logits[:, t] scores the NEXT token, x_{t+1}, so x_t's "
        "score is logits[:, t - 1]": same_position[:, slots].sum(dim=1),
    }


def check_sequence_log_prob(sequence_log_prob: Callable[..., Any], lm: torch.nn.Module,
                            task: AdditionTask) -> Verdict:
    """Exercise 00.3: ``sequence_log_prob(lm, tokens, task)`` is log P_LM(x) of each row of a
    batch ``(B, T)`` of well-formed sequences under constrained sampling, ``(B,)``: the sum over
    the digit slots t of log p(x_t | x_<t), the softmax taken over the 10 digits only (the format
    tokens are forced, probability 1).

    Reference: ``step_by_step_log_prob``, which reads ``lm`` one token at a time with
    ``next_token_logits`` as ``sampling.sample_lm`` does, on true sums, ``lm``'s own samples and
    wrong sums. A mismatch names the batch row and, when it matches one, the usual slip.
    """
    from ...models import evaluation_mode
    from ...sampling import sample_lm

    check_callable("sequence_log_prob", sequence_log_prob,
                   "a function sequence_log_prob(lm, tokens, task) -> (B,)")
    check_task(task).check_model("lm", lm)
    if not callable(getattr(lm, "next_token_logits", None)):
        raise TypeError(f"lm must be a language model with next_token_logits, "
                        f"got {type(lm).__name__}")
    tokens = torch.cat([task.sample(4, seed=0), sample_lm(lm, task, 4, seed=1),
                        correctness_trial(task, seed=2)[-4:]])
    call = f"sequence_log_prob(lm, tokens, task) on {len(tokens)} sequences"
    with evaluation_mode(lm), torch.no_grad():
        expected = step_by_step_log_prob(lm, task, tokens)
        try:
            got = sequence_log_prob(lm, tokens.clone(), task)
        except Exception as error:
            return failed_call("sequence_log_prob", call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of "
                                  f"sequence_log_prob")
        got = torch.as_tensor(got).detach().cpu()
        difference = explain_difference(got, expected, ("batch row",), rtol=1e-4, atol=1e-3)
        if difference is None:
            return Verdict(True, "✓ right: sequence_log_prob agrees with P_LM read one token at "
                                 "a time, on true sums, P_LM's samples and wrong sums")
        message = f"✗ wrong: {call}: {difference}"
        if got.shape == expected.shape and got.is_floating_point():
            for slip, value in _usual_mistakes(lm, task, tokens).items():
                if torch.allclose(got.double(), value, rtol=1e-4, atol=1e-3):
                    return Verdict(False, f"{message}. Your numbers are {slip}")
        return Verdict(False, message)
