"""Checkers of notebook 08's exercises (gradient-informed MCMC).

* ``check_gwg_proposal_probs``: Gibbs-with-Gradients' proposal over the single substitutions of
  one sequence, q(i, v) ∝ exp(d[i, v] / 2) over the allowed (i, v) with v != x_i, against Python
  floats (a loop over every (i, v), normalised after subtracting the largest logit);
* ``check_acceptance_probability``: the Metropolis-Hastings acceptance probability
  min(1, exp(U(x) - U(x') + log q(x | x') - log q(x' | x))), against Python floats.

When a wrong answer equals a usual mistake (no halving of d, the current token proposed, one
softmax per position; a q term dropped, the q terms or the energies swapped), the verdict
names it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, explain_difference, failed_call


def _reference_proposal(scores: list[list[float]], tokens: list[int],
                        allowed: list[list[bool]], halve: bool = True, current: bool = False,
                        per_position: bool = False) -> list[list[float]]:
    """q(i, v) as nested Python floats; the keyword arguments make the usual mistakes."""
    scale = 0.5 if halve else 1.0
    moves = {(i, v): scale * scores[i][v] for i in range(len(tokens))
             for v in range(len(scores[i])) if allowed[i][v] and (current or v != tokens[i])}
    groups = ({i: [m for m in moves if m[0] == i] for i in range(len(tokens))} if per_position
              else {None: list(moves)})
    probs = [[0.0] * len(row) for row in scores]
    for members in groups.values():
        if not members:
            continue
        top = max(moves[m] for m in members)
        total = math.fsum(math.exp(moves[m] - top) for m in members)
        for i, v in members:
            probs[i][v] = math.exp(moves[(i, v)] - top) / total
    return probs


def check_gwg_proposal_probs(gwg_proposal_probs: Callable[[Any, Any, Any], Any]) -> Verdict:
    """Exercise 08.1: ``gwg_proposal_probs(scores (T, V), tokens (T,), allowed (T, V)) -> (T, V)``
    probabilities q(i, v | x) = exp(d[i, v] / 2) / sum over allowed (j, w), w != x_j, zero
    elsewhere."""
    check_callable("gwg_proposal_probs", gwg_proposal_probs)
    import torch

    generator = torch.Generator().manual_seed(8)
    cases = []
    for T, V, scale in ((2, 3, 1.0), (4, 5, 3.0), (3, 4, 3000.0)):  # the last overflows exp
        scores = (torch.randn(T, V, generator=generator, dtype=torch.float64) * scale)
        tokens = torch.randint(0, V, (T,), generator=generator)
        allowed = torch.rand(T, V, generator=generator) < 0.8
        allowed[0] = True
        cases.append((scores, tokens, allowed))
    mistakes = {"d instead of d / 2 (the proposal is softmax(d / 2))": {"halve": False},
                "the current token proposed too (v = x_i moves nowhere: leave it out)":
                    {"current": True},
                "one softmax per position (GWG draws one (i, v) from a single softmax over all "
                "of them; a softmax per position is DMALA's)": {"per_position": True}}
    for scores, tokens, allowed in cases:
        call = (f"gwg_proposal_probs(scores of shape {tuple(scores.shape)}, "
                f"tokens={tokens.tolist()}, allowed)")
        args = (scores.tolist(), tokens.tolist(), allowed.tolist())
        expected = torch.tensor(_reference_proposal(*args), dtype=torch.float64)
        try:
            got = gwg_proposal_probs(scores.clone(), tokens.clone(), allowed.clone())
        except Exception as error:  # the student's code raised: say so
            return failed_call("gwg_proposal_probs", call, error)
        if got is None:
            return Verdict(False, "✗ not yet: gwg_proposal_probs returned None; return the "
                                  "(T, V) tensor of probabilities")
        difference = explain_difference(got, expected, ("position", "token"))
        if difference is None:
            continue
        for mistake, options in mistakes.items():
            variant = torch.tensor(_reference_proposal(*args, **options), dtype=torch.float64)
            if explain_difference(got, variant) is None:
                return Verdict(False, f"✗ wrong: {call} gives the probabilities of {mistake}")
        return Verdict(False, f"✗ wrong: {call} {difference}")
    return Verdict(True, "✓ right: gwg_proposal_probs agrees with the reference on every case "
                         "tried, including scores in the thousands")


def _reference_acceptance(energy: float, proposed: float, forward: float,
                          reverse: float) -> float:
    """min(1, exp(log r)) in Python floats, never exponentiating a positive number."""
    log_ratio = energy - proposed + reverse - forward
    return 1.0 if log_ratio >= 0 else math.exp(log_ratio)


def check_acceptance_probability(acceptance_probability: Callable[..., Any]) -> Verdict:
    """Exercise 08.2: ``acceptance_probability(energy (B,), proposed_energy (B,),
    forward_log_q (B,), reverse_log_q (B,)) -> (B,)``: min(1, r), log r = U(x) - U(x')
    + log q(x | x') - log q(x' | x)."""
    check_callable("acceptance_probability", acceptance_probability)
    import torch

    generator = torch.Generator().manual_seed(9)
    cases = [([0.0], [0.0], [-1.0], [-1.0]),
             ([1.0, 2.0], [2.0, 1.0], [-2.0, -0.5], [-1.0, -3.0]),
             *[tuple((torch.randn(6, generator=generator, dtype=torch.float64) * 2).tolist()
                     for _ in range(4))],
             ([-800.0, 800.0], [800.0, -800.0], [-1.0, -1.0], [-2.0, -2.0])]  # exp(1600)
    mistakes = {"the reverse term log q(x | x') dropped (the sampler would no longer leave p "
                "invariant)": lambda e, p, f, r: (e, p, f, 0.0),
                "both proposal terms dropped (right only for a symmetric proposal, and the "
                "gradient-informed one is not)": lambda e, p, f, r: (e, p, 0.0, 0.0),
                "the proposal terms swapped (it is + log q(x | x') - log q(x' | x))":
                    lambda e, p, f, r: (e, p, r, f),
                "the energies swapped (p(x) = exp(-U(x)) / Z: log p(x') - log p(x) = U(x) - "
                "U(x'))": lambda e, p, f, r: (p, e, f, r)}
    for values in cases:
        call = "acceptance_probability(" + ", ".join(
            f"{[round(v, 3) for v in column]}" for column in values) + ")"
        tensors = [torch.tensor(column, dtype=torch.float64) for column in values]
        expected = torch.tensor([_reference_acceptance(*row) for row in zip(*values)],
                                dtype=torch.float64)
        try:
            got = acceptance_probability(*[t.clone() for t in tensors])
        except Exception as error:
            return failed_call("acceptance_probability", call, error)
        if got is None:
            return Verdict(False, "✗ not yet: acceptance_probability returned None; return the "
                                  "(B,) tensor of probabilities")
        difference = explain_difference(got, expected, ("chain",))
        if difference is None:
            continue
        for mistake, swap in mistakes.items():
            variant = torch.tensor([_reference_acceptance(*swap(*row)) for row in zip(*values)],
                                   dtype=torch.float64)
            if explain_difference(got, variant) is None:
                return Verdict(False, f"✗ wrong: {call} is the acceptance with {mistake}")
        return Verdict(False, f"✗ wrong: {call} {difference}")
    return Verdict(True, "✓ right: acceptance_probability agrees with the reference on every "
                         "case tried, including log-ratios of ±1600")
