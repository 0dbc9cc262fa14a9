"""Notebook 08's exercise checkers: right for right answers (the library's own proposal and MH
ratio among them), wrong (naming the mistake) for the usual mistakes, "not done yet" for the stub,
TypeError for something that is not a function."""

import pytest
import torch

from advebm_teach.mcmc import gwg_proposal, metropolis_hastings_log_ratio
from advebm_teach.teaching.exercises.mcmc import (check_acceptance_probability,
                                                  check_gwg_proposal_probs)


def stub(*args):
    raise NotImplementedError


def library_proposal(scores, tokens, allowed):
    """The library's GWG proposal, for one sequence."""
    return gwg_proposal(scores[None], tokens[None], allowed[None])[0].exp()


def softmax_proposal(scores, tokens, allowed, scale=0.5, per_position=False, current=False):
    logits = (scores * scale).masked_fill(~allowed, float("-inf"))
    if not current:
        logits[torch.arange(len(tokens)), tokens] = float("-inf")
    if per_position:
        return torch.nan_to_num(torch.softmax(logits, dim=-1))
    return torch.softmax(logits.flatten(), dim=0).view_as(scores)


def test_gwg_proposal_checker_accepts_the_library_and_names_mistakes():
    assert check_gwg_proposal_probs(library_proposal)
    assert check_gwg_proposal_probs(softmax_proposal)
    for mistake, options in (("d instead of d / 2", {"scale": 1.0}),
                             ("the current token proposed too", {"current": True}),
                             ("one softmax per position", {"per_position": True})):
        verdict = check_gwg_proposal_probs(lambda s, t, a: softmax_proposal(s, t, a, **options))
        assert not verdict and mistake in repr(verdict), repr(verdict)

    def overflowing(scores, tokens, allowed):  # exp(d / 2) normalised by hand: inf / inf
        weights = (scores / 2).exp() * allowed
        weights[torch.arange(len(tokens)), tokens] = 0
        return weights / weights.sum()

    verdict = check_gwg_proposal_probs(overflowing)
    assert not verdict and "(3, 4)" in repr(verdict)
    assert repr(check_gwg_proposal_probs(lambda s, t, a: None)).startswith("✗ not yet")
    assert repr(check_gwg_proposal_probs(stub)).startswith("… not done yet")
    with pytest.raises(TypeError, match="gwg_proposal_probs must be a function"):
        check_gwg_proposal_probs("q")


def test_acceptance_checker_accepts_the_library_and_names_mistakes():
    assert check_acceptance_probability(
        lambda e, p, f, r: metropolis_hastings_log_ratio(e, p, f, r).clamp(max=0).exp())
    mistakes = {"the reverse term log q(x | x') dropped": lambda e, p, f, r: e - p - f,
                "both proposal terms dropped": lambda e, p, f, r: e - p,
                "the proposal terms swapped": lambda e, p, f, r: e - p + f - r,
                "the energies swapped": lambda e, p, f, r: p - e + r - f}
    for mistake, log_ratio in mistakes.items():
        verdict = check_acceptance_probability(
            lambda e, p, f, r, g=log_ratio: g(e, p, f, r).clamp(max=0).exp())
        assert not verdict and mistake in repr(verdict), repr(verdict)
    unclamped = check_acceptance_probability(lambda e, p, f, r: (e - p + r - f).exp())
    assert not unclamped and repr(unclamped).startswith("✗ wrong")
    assert repr(check_acceptance_probability(stub)).startswith("… not done yet")
    with pytest.raises(TypeError, match="acceptance_probability must be a function"):
        check_acceptance_probability(1.0)
