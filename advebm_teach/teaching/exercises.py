"""Checkers for the notebooks' exercises: each runs a student's function against a trusted
reference (plain Python integer arithmetic) on edge cases and random cases and returns a
``Verdict``, which a notebook shows as one line ("✓ right: ..." or "✗ wrong: ...") and which is
truthy when right."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..checks import check_callable, check_int, check_token_ids, model_config


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``passed`` and the message a student reads."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


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


def _verdict(name: str, check: Callable[[int, int, int], tuple[Any, Any, str]]) -> Verdict:
    for a, b, n in _cases():
        try:
            expected, got, call = check(a, b, n)
        except Exception as error:  # the student's code raised: say so, do not crash the notebook
            return Verdict(False, f"✗ not yet: {name} raised {type(error).__name__}: {error}")
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        if got != expected:
            return Verdict(False, f"✗ wrong: {call} returned {got!r}, expected {expected!r}")
    return Verdict(True,
                   f"✓ right: {name} agrees with Python's integer addition on every case tried")


def check_answer_digits(answer_digits: Callable[[int, int, int], str]) -> Verdict:
    """Exercise 00.1: ``answer_digits(a, b, n_digits)`` is the n+1 digits of c = a + b.

    E.g. (12, 39, 2) -> '051'.
    """
    check_callable("answer_digits", answer_digits)

    def check(a: int, b: int, n: int) -> tuple[str, Any, str]:
        return str(a + b).zfill(n + 1), answer_digits(a, b, n), f"answer_digits({a}, {b}, {n})"

    return _verdict("answer_digits", check)


def digits_of(x: int, n_digits: int) -> list[int]:
    """The ``n_digits`` digits of ``x``, most significant first."""
    if check_int("x", x, 0) >= 10 ** check_int("n_digits", n_digits, 1):
        raise ValueError(f"x must have at most n_digits={n_digits} digits, got {x}")
    return [int(d) for d in str(x).zfill(n_digits)]


def check_carries(carries: Callable[[list[int], list[int]], list[int]]) -> Verdict:
    """Exercise 00.2: ``carries(a_digits, b_digits)`` is the carry out of each column, most
    significant first.

    Reference: the carry out of the column worth 10^j is 1 exactly when
    (a mod 10^(j+1)) + (b mod 10^(j+1)) reaches 10^(j+1), which depends on every digit to the right
    of that column.
    """
    check_callable("carries", carries)

    def check(a: int, b: int, n: int) -> tuple[list[int], Any, str]:
        expected = [int(a % 10 ** (j + 1) + b % 10 ** (j + 1) >= 10 ** (j + 1))
                    for j in reversed(range(n))]
        a_digits, b_digits = digits_of(a, n), digits_of(b, n)
        return expected, carries(a_digits, b_digits), f"carries({a_digits}, {b_digits})"

    return _verdict("carries", check)


def _verdict_of_tensors(name: str,
                        trials: Iterable[tuple[str, Any, Callable[[], Any]]]) -> Verdict:
    """Run ``(call, expected, thunk)`` trials; right when every result equals (allclose) the
    expected tensor."""
    import torch

    for call, expected, thunk in trials:
        try:
            got = thunk()
        except Exception as error:
            return Verdict(False, f"✗ not yet: {name} raised {type(error).__name__}: {error}")
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        got = torch.as_tensor(got)
        if got.shape != expected.shape or not torch.allclose(got.to(expected.dtype), expected,
                                                             rtol=1e-5, atol=1e-6):
            def show(t: Any) -> Any:
                return (t.double().round(decimals=4).tolist() if t.numel() < 8
                        else f"a tensor of shape {tuple(t.shape)}")

            return Verdict(False,
                           f"✗ wrong: {call} returned {show(got)}, expected {show(expected)}")
    return Verdict(True, f"✓ right: {name} agrees with the reference on every case tried")


def check_l1_saliency(l1_saliency: Callable[[Any], Any]) -> Verdict:
    """Exercise 04.1: ``l1_saliency(gradient (B, T, D)) -> (B, T)``, the L1 norm of each
    position's gradient.

    Reference: an explicit loop summing absolute values.
    """
    check_callable("l1_saliency", l1_saliency)
    import torch

    generator = torch.Generator().manual_seed(0)
    trials = []
    for shape in ((1, 3, 2), (4, 20, 128), (2, 5, 7)):
        gradient = torch.randn(shape, generator=generator)
        expected = torch.tensor([[sum(abs(float(g)) for g in gradient[b, t])
                                  for t in range(shape[1])]
                                 for b in range(shape[0])])
        trials.append((f"l1_saliency(gradient of shape {shape})", expected,
                       lambda g=gradient: l1_saliency(g)))
    return _verdict_of_tensors("l1_saliency", trials)


def check_best_digit(best_digit: Callable[[Any, Any, int], Any], energy_model: Any,
                     sequences: Any) -> Verdict:
    """Exercise 04.2: ``best_digit(energy_model, x (T,), position) -> int``, the digit of lowest
    energy at ``position``.

    Reference: every digit written in, one sequence at a time; ties go to the lower digit.
    """
    import torch

    check_callable("best_digit", best_digit)
    if not callable(getattr(energy_model, "energy", None)):
        raise TypeError(f"energy_model must be an energy model (with energy), "
                        f"got {type(energy_model).__name__}")
    config = model_config(energy_model)
    check_token_ids("sequences", sequences, config.get("vocab_size"), config.get("seq_len"), (2,))

    trials = []
    for x in sequences:
        for position in (int(p) for p in torch.nonzero(x < 10).flatten()[::4]):
            energies = []
            for digit in range(10):
                candidate = x.clone()
                candidate[position] = digit
                with torch.no_grad():
                    energies.append(float(energy_model.energy(candidate[None])[0]))
            expected = torch.tensor(min(range(10), key=lambda d: (energies[d], d)))
            trials.append((f"best_digit(energy_model, x, {position})", expected,
                           lambda x=x, p=position: best_digit(energy_model, x, p)))
    return _verdict_of_tensors("best_digit", trials)


# ---- notebook 01
def check_log_partition(log_partition: Callable[[Any], Any]) -> Verdict:
    """Exercise 01.1: ``log_partition(energies (N,)) -> log sum_x exp(-E(x))`` (eq. 2), without
    overflow.

    Reference: Python floats, shifted by the largest -E before exponentiating (math.fsum for the
    sum).
    """
    check_callable("log_partition", log_partition)
    import math

    import torch

    generator = torch.Generator().manual_seed(0)
    cases = [torch.zeros(4, dtype=torch.float64),
             torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
             torch.randn(1024, generator=generator, dtype=torch.float64) * 3,
             torch.tensor([-1000.0, -999.0, -998.0], dtype=torch.float64),  # exp(1000) overflows
             torch.tensor([1000.0, 1001.0], dtype=torch.float64)]  # exp(-1000) underflows to 0
    trials = []
    for energies in cases:
        values = [-float(e) for e in energies]
        top = max(values)
        expected = torch.tensor(top + math.log(math.fsum(math.exp(v - top) for v in values)),
                                dtype=torch.float64)
        shown = energies.tolist() if len(energies) < 8 else f"{len(energies)} random energies"
        trials.append((f"log_partition({shown})", expected,
                       lambda e=energies: log_partition(e.clone())))
    return _verdict_of_tensors("log_partition", trials)


def check_gibbs_conditional(gibbs_conditional: Callable[[Any, Any, int], Any],
                            model: Any) -> Verdict:
    """Exercise 01.2: ``gibbs_conditional(model, x (T,), i) -> (V,)``,
    p_theta(x_i = v | every other symbol of x).

    Reference: the enumerated joint ``model.distribution()``, restricted to the V states that agree
    with x everywhere but at i, and renormalised.
    """
    import torch

    from ..toy.ebm import ToyEBM, state_index

    check_callable("gibbs_conditional", gibbs_conditional)
    if not isinstance(model, ToyEBM):
        raise TypeError(f"model must be a ToyEBM, got {type(model).__name__}")

    with torch.no_grad():
        joint = model.distribution()
    generator = torch.Generator().manual_seed(1)
    trials = []
    for x in torch.randint(0, model.n_symbols, (3, model.length), generator=generator):
        for i in range(model.length):
            variants = x.repeat(model.n_symbols, 1)
            variants[:, i] = torch.arange(model.n_symbols)
            restricted = joint[state_index(variants, model.n_symbols)]
            trials.append((f"gibbs_conditional(model, {x.tolist()}, {i})",
                           restricted / restricted.sum(),
                           lambda x=x, i=i: gibbs_conditional(model, x.clone(), i)))
    return _verdict_of_tensors("gibbs_conditional", trials)


def check_importance_weights(importance_weights: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 01.3: ``importance_weights(energies (K,), log_q (K,)) -> (K,)``: w_k proportional
    to exp(-E_k) / q_k, summing to 1.

    Reference: Python floats, shifted by the largest log-weight before exponentiating.
    """
    check_callable("importance_weights", importance_weights)
    import math

    import torch

    generator = torch.Generator().manual_seed(2)
    cases = [(torch.tensor([0.0, 0.0]), torch.tensor([math.log(0.5), math.log(0.25)])),
             (torch.randn(6, generator=generator), -torch.rand(6, generator=generator) * 5),
             # exp(800) overflows
             (torch.tensor([-800.0, -801.0, -799.0]), torch.tensor([-1.0, -2.0, -3.0]))]
    trials = []
    for energies, log_q in cases:
        energies, log_q = energies.double(), log_q.double()
        log_w = [-float(e) - float(lq) for e, lq in zip(energies, log_q)]
        top = max(log_w)
        total = math.fsum(math.exp(v - top) for v in log_w)
        expected = torch.tensor([math.exp(v - top) / total for v in log_w], dtype=torch.float64)
        trials.append((f"importance_weights({[round(e, 3) for e in energies.tolist()]}, "
                       f"{[round(v, 3) for v in log_q.tolist()]})", expected,
                       lambda e=energies, lq=log_q: importance_weights(e.clone(), lq.clone())))
    return _verdict_of_tensors("importance_weights", trials)


def check_logistic_ebm_loss(logistic_ebm_loss: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 05.1: ``logistic_ebm_loss(energy_data (B,), energy_negative (B,)) -> scalar``: the
    mean of softplus(E(x+)) plus the mean of softplus(-E(x-)), the BCE of a classifier whose
    "data" logit is -E.

    Reference: Python floats, softplus(z) = max(z, 0) + log1p(exp(-|z|)) (stable for large |z|).
    """
    check_callable("logistic_ebm_loss", logistic_ebm_loss)
    import math

    import torch

    def softplus(z: float) -> float:
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))

    generator = torch.Generator().manual_seed(5)
    cases = [(torch.tensor([0.0]), torch.tensor([0.0])),
             (torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])),
             (torch.randn(7, generator=generator) * 3, torch.randn(5, generator=generator) * 3),
             # exp(800) overflows float64
             (torch.tensor([-200.0, 800.0]), torch.tensor([-900.0, 90.0]))]
    trials = []
    for data, negative in cases:
        data, negative = data.double(), negative.double()
        expected = torch.tensor(math.fsum(softplus(float(e)) for e in data) / len(data)
                                + math.fsum(softplus(-float(e)) for e in negative) / len(negative),
                                dtype=torch.float64)
        trials.append((f"logistic_ebm_loss({[round(e, 3) for e in data.tolist()]}, "
                       f"{[round(e, 3) for e in negative.tolist()]})", expected,
                       lambda d=data, n=negative: logistic_ebm_loss(d.clone(), n.clone())))
    return _verdict_of_tensors("logistic_ebm_loss", trials)


# ---- notebook 02
def check_fgm_perturbation(fgm_perturbation: Callable[[Any, float], Any]) -> Verdict:
    """Exercise 02.1: ``fgm_perturbation(gradient (B, T, D), epsilon) -> (B, T, D)``:
    eps g_b / ||g_b||_2, each example b normalised over all its tokens (Miyato et al.'s FGM).

    Reference: Python floats, example by example.
    """
    check_callable("fgm_perturbation", fgm_perturbation)
    import math

    import torch

    generator = torch.Generator().manual_seed(3)
    trials = []
    for shape, epsilon in (((1, 2, 3), 1.0), ((3, 5, 4), 0.5), ((2, 20, 128), 0.1)):
        scales = torch.tensor([10.0 ** -b for b in range(shape[0])],
                              dtype=torch.float64).view(-1, 1, 1)
        # examples of unlike sizes
        gradient = torch.randn(shape, generator=generator, dtype=torch.float64) * scales
        expected = torch.empty(shape, dtype=torch.float64)
        for b in range(shape[0]):
            values = [float(v) for v in gradient[b].flatten()]
            norm = math.sqrt(math.fsum(v * v for v in values))
            expected[b] = torch.tensor([epsilon * v / norm for v in values],
                                       dtype=torch.float64).view(shape[1:])
        trials.append((f"fgm_perturbation(gradient of shape {shape}, {epsilon})", expected,
                       lambda g=gradient, e=epsilon: fgm_perturbation(g.clone(), e)))
    return _verdict_of_tensors("fgm_perturbation", trials)


def check_l2_projection(project_l2: Callable[[Any, float], Any]) -> Verdict:
    """Exercise 02.2: ``project_l2(delta (B, T, D), epsilon)``: each example's delta_b rescaled
    onto the ball ||delta_b|| <= eps when it lies outside, unchanged when inside (PGD's
    projection).

    Reference: Python floats, example by example.
    """
    check_callable("project_l2", project_l2)
    import math

    import torch

    generator = torch.Generator().manual_seed(4)
    trials = []
    for shape, epsilon in (((2, 1, 2), 1.0), ((4, 3, 5), 2.0), ((3, 20, 16), 1.5)):
        delta = torch.randn(shape, generator=generator, dtype=torch.float64)
        delta[0] *= 0.01  # one example well inside the ball
        expected = delta.clone()
        for b in range(shape[0]):
            norm = math.sqrt(math.fsum(float(v) ** 2 for v in delta[b].flatten()))
            if norm > epsilon:
                expected[b] = delta[b] * (epsilon / norm)
        trials.append((f"project_l2(delta of shape {shape}, {epsilon})", expected,
                       lambda d=delta, e=epsilon: project_l2(d.clone(), e)))
    return _verdict_of_tensors("project_l2", trials)
