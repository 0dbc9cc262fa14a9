"""Checkers of notebooks 03 and 04's exercises (adversaries on the embeddings), against plain
Python arithmetic."""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, verdict_of_tensors



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
    return verdict_of_tensors("fgm_perturbation", trials,
                              dims=("batch row", "position", "feature"))


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
    return verdict_of_tensors("project_l2", trials,
                              dims=("batch row", "position", "feature"))
