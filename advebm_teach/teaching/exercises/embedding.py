"""Checkers of notebooks 03 and 04's exercises (adversaries on the embeddings).

Each compares a student's function with a trusted reference written differently: plain Python
arithmetic example by example (FGM's perturbation, the projection, the symmetric KL), or the
library's own training steps (``perturb_steps.FGM``, ``perturb_steps.FreeLB``) and ``perturb.pgd``
run on a tiny float64 Transformer energy, whose loss value and parameter gradients the student's
loss must reproduce.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ...checks import check_callable
from .verdict import Verdict, explain_difference, failed_call, verdict_of_tensors

#: the axes of an embedding-shaped tensor, as a mismatch message names them
EMBEDDING_DIMS = ("batch row", "position", "feature")


def check_fgm_perturbation(fgm_perturbation: Callable[[Any, float], Any]) -> Verdict:
    """Exercise 03.1: ``fgm_perturbation(gradient (B, T, D), epsilon) -> (B, T, D)``:
    eps g_b / ||g_b||_2, each example b normalised over all its tokens (Miyato et al.'s FGM).

    Reference: Python floats, example by example.
    """
    check_callable("fgm_perturbation", fgm_perturbation)
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
    return verdict_of_tensors("fgm_perturbation", trials, dims=EMBEDDING_DIMS)


def check_l2_projection(project_l2: Callable[[Any, float], Any]) -> Verdict:
    """Exercise 03.2: ``project_l2(delta (B, T, D), epsilon)``: each example's delta_b rescaled
    onto the ball ||delta_b|| <= eps when it lies outside, unchanged when inside (PGD's
    projection).

    Reference: Python floats, example by example.
    """
    check_callable("project_l2", project_l2)
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
    return verdict_of_tensors("project_l2", trials, dims=EMBEDDING_DIMS)


# ------------------------------------------------------------ training steps on a tiny model
def tiny_classifier(seed: int) -> tuple[Any, Any, Any]:
    """A tiny float64 Transformer energy (1 layer, d = 8, sequences of 6 tokens over 7 symbols,
    a random read-out so that the energy depends on its input) and a batch of 3 "data" and 3
    "negative" token sequences: ``(model, data, negatives)``. The global random state is left as
    it was."""
    import torch

    from ...models import TransformerEnergy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TransformerEnergy(vocab_size=7, seq_len=6, d_model=8, n_layers=1, n_heads=2,
                                  ff_dim=8).double()
        torch.nn.init.normal_(model.energy_readout.weight, std=1.0)
        tokens = torch.randint(0, 7, (6, 6))
    return model, tokens[:3], tokens[3:]


def _parameter_gradients(model: Any) -> dict[str, Any]:
    import torch

    return {name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
            for name, p in model.named_parameters()}


def _student_loss_and_gradients(name: str, call: str, thunk: Callable[[], Any],
                                model: Any) -> tuple[Any, dict[str, Any]] | Verdict:
    """Run the student's loss ``thunk``, check that it is a scalar tensor and backpropagate it:
    ``(loss, parameter gradients)``, or the verdict that explains why not."""
    import torch

    try:
        loss = thunk()
    except Exception as error:
        return failed_call(name, call, error)
    if loss is None:
        return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        return Verdict(False, f"✗ wrong: {call} returned {shape}, expected a scalar tensor "
                              "(the loss a training step backpropagates)")
    if not loss.requires_grad:
        return Verdict(False, f"✗ wrong: {call} returned a loss without a graph (detached?): "
                              "backpropagating it would train nothing")
    try:
        loss.backward()
    except RuntimeError as error:
        return Verdict(False, f"✗ not yet: backpropagating the loss of {call} failed: {error} "
                              "(a graph you differentiate twice needs retain_graph=True the "
                              "first time)")
    return loss.detach(), _parameter_gradients(model)


def _compare_training_loss(name: str, call: str, got: tuple[Any, dict[str, Any]],
                           expected_value: Any, expected: dict[str, Any]) -> Verdict | None:
    """None when the loss value and every parameter gradient agree, else a verdict naming the
    first that differs."""
    value, gradients = got
    difference = explain_difference(value, expected_value.detach(), rtol=1e-7, atol=1e-10)
    if difference is not None:
        return Verdict(False, f"✗ wrong: {call} {difference} (the loss value)")
    for parameter, gradient in expected.items():
        difference = explain_difference(gradients[parameter], gradient, rtol=1e-6, atol=1e-9)
        if difference is not None:
            return Verdict(False, f"✗ wrong: the loss value of {call} is right, but the gradient "
                                  f"it gives parameter {parameter} is not: {difference} "
                                  "(which term carries a graph it should not?)")
    return None


def check_fgm_training_loss(fgm_training_loss: Callable[[Any, Any, float], Any]) -> Verdict:
    """Exercise 03.3: ``fgm_training_loss(loss_fn, embeds, epsilon)`` is the loss of FGM's training
    step, L(e) + L(e + delta) with delta_b = eps g_b / ||g_b||, g = grad_e L, held fixed (no
    gradient flows through delta); its backward gives the step's parameter gradients.

    Reference: the library's step ``perturb_steps.FGM(epsilon).backward`` on a tiny float64
    Transformer energy; the loss value and the gradient of every parameter must agree.
    """
    check_callable("fgm_training_loss", fgm_training_loss)
    from ...perturb_steps import FGM
    from ...trainer import classifier_objective

    name = "fgm_training_loss"
    for seed, epsilon in ((0, 0.1), (1, 1.0)):
        model, data, negatives = tiny_classifier(seed)
        expected_value = FGM(epsilon).backward(classifier_objective(model, data, negatives))
        expected = _parameter_gradients(model)
        model.zero_grad(set_to_none=True)
        objective = classifier_objective(model, data, negatives)
        call = f"{name}(loss_fn, embeds of shape (6, 6, 8), {epsilon})"
        got = _student_loss_and_gradients(
            name, call, lambda: fgm_training_loss(objective.loss_fn, objective.embed(), epsilon),
            model)
        if isinstance(got, Verdict):
            return got
        verdict = _compare_training_loss(name, call, got, expected_value, expected)
        if verdict is not None:
            return verdict
    return Verdict(True, f"✓ right: {name} gives the library's FGM step its loss value and "
                         "every parameter gradient")


def check_pgd_perturbation(pgd_perturbation: Callable[..., Any]) -> Verdict:
    """Exercise 03.4: ``pgd_perturbation(loss_fn, embeds, epsilon, eta, steps) -> delta``, K =
    ``steps`` projected ascent steps from delta_0 = 0:
    delta_{k+1} = Proj_eps(delta_k + eta g_k / ||g_k||), g_k = grad_e L(e + delta_k).

    Reference: ``perturb.pgd`` (L2 ball, no random start) on a tiny float64 Transformer energy;
    every returned delta_b must lie in the ball.
    """
    check_callable("pgd_perturbation", pgd_perturbation)
    import torch

    from ...perturb import pgd
    from ...trainer import classifier_objective

    name = "pgd_perturbation"
    for seed, epsilon, eta, steps in ((0, 0.5, 0.2, 1), (1, 0.5, 0.2, 5), (2, 2.0, 0.5, 8)):
        model, data, negatives = tiny_classifier(seed)
        objective = classifier_objective(model, data, negatives)
        embeds = objective.embed().detach()
        expected = pgd(objective.loss_fn, embeds, epsilon, alpha=eta, steps=steps)
        call = f"{name}(loss_fn, embeds of shape (6, 6, 8), {epsilon}, {eta}, {steps})"
        try:
            got = pgd_perturbation(objective.loss_fn, embeds.clone(), epsilon, eta, steps)
        except Exception as error:
            return failed_call(name, call, error)
        if got is None:
            return Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
        got = torch.as_tensor(got).detach()
        if got.shape == expected.shape:
            norms = got.flatten(1).norm(dim=1)
            outside = (norms > epsilon * (1 + 1e-9)).nonzero()
            if len(outside):
                b = int(outside[0])
                return Verdict(False, f"✗ wrong: {call} returned a delta whose batch row {b} "
                                      f"has norm {float(norms[b]):.6g} > epsilon = {epsilon}: "
                                      "project after every step")
        difference = explain_difference(got, expected, EMBEDDING_DIMS, rtol=1e-6, atol=1e-9)
        if difference is not None:
            return Verdict(False, f"✗ wrong: {call} {difference}")
    return Verdict(True, f"✓ right: {name} agrees with perturb.pgd on every case tried")


def check_symmetric_kl(symmetric_kl_term: Callable[[Any, Any], Any]) -> Verdict:
    """Exercise 04.2: ``symmetric_kl_term(logits_p (N,), logits_q (N,))``: SMART's smoothness
    term for a binary classifier, the batch mean of KL(p_n || q_n) + KL(q_n || p_n), where logit
    l gives the two-class distribution (1 - sigmoid(l), sigmoid(l)).

    Reference: Python floats, pair by pair.
    """
    check_callable("symmetric_kl_term", symmetric_kl_term)
    import torch

    def distribution(logit: float) -> tuple[float, float]:
        one = 1.0 / (1.0 + math.exp(-logit))
        return 1.0 - one, one

    def kl(p: tuple[float, float], q: tuple[float, float]) -> float:
        return math.fsum(pc * math.log(pc / qc) for pc, qc in zip(p, q))

    generator = torch.Generator().manual_seed(5)
    trials = []
    for n, scale in ((1, 1.0), (4, 2.0), (50, 6.0)):
        logits_p = torch.randn(n, generator=generator, dtype=torch.float64) * scale
        logits_q = logits_p + torch.randn(n, generator=generator, dtype=torch.float64)
        terms = [kl(distribution(float(lp)), distribution(float(lq)))
                 + kl(distribution(float(lq)), distribution(float(lp)))
                 for lp, lq in zip(logits_p, logits_q)]
        expected = torch.tensor(math.fsum(terms) / n, dtype=torch.float64)
        trials.append((f"symmetric_kl_term(logits_p of shape ({n},), logits_q of shape ({n},))",
                       expected,
                       lambda p=logits_p, q=logits_q: symmetric_kl_term(p.clone(), q.clone())))
    return verdict_of_tensors("symmetric_kl_term", trials, rtol=1e-7, atol=1e-12)


def check_freelb_loss(freelb_loss: Callable[..., Any]) -> Verdict:
    """Exercise 04.1: ``freelb_loss(loss_fn, embeds, delta0, epsilon, eta, steps)`` is FreeLB's
    objective (1/K) sum_{t=1..K} L(e + delta_{t-1}), K = ``steps``, with
    delta_t = Proj_eps(delta_{t-1} + eta g_t / ||g_t||), g_t = grad_delta L(e + delta_{t-1}) held
    fixed; its backward gives FreeLB's averaged parameter gradient.

    Reference: the library's step ``perturb_steps.FreeLB(epsilon, eta, K).backward`` on a tiny
    float64 Transformer energy, from the same random start delta0; the loss value and the gradient
    of every parameter must agree.
    """
    check_callable("freelb_loss", freelb_loss)
    import torch

    from ...perturb import random_in_ball
    from ...perturb_steps import FreeLB
    from ...trainer import classifier_objective

    name = "freelb_loss"
    for seed, epsilon, eta, steps in ((0, 0.5, 0.3, 1), (1, 0.5, 0.3, 3), (2, 1.0, 0.4, 4)):
        model, data, negatives = tiny_classifier(seed)
        strategy = FreeLB(epsilon, eta, steps, generator=torch.Generator().manual_seed(seed))
        expected_value = strategy.backward(classifier_objective(model, data, negatives))
        expected = _parameter_gradients(model)
        model.zero_grad(set_to_none=True)
        objective = classifier_objective(model, data, negatives)
        embeds = objective.embed()
        # FreeLB's random start, drawn as the library draws it
        delta0 = (random_in_ball(embeds.detach(), epsilon, "linf",
                                 torch.Generator().manual_seed(seed))
                  / math.sqrt(embeds[0].numel()))
        call = f"{name}(loss_fn, embeds of shape (6, 6, 8), delta0, {epsilon}, {eta}, {steps})"
        got = _student_loss_and_gradients(
            name, call,
            lambda: freelb_loss(objective.loss_fn, embeds, delta0.clone(), epsilon, eta, steps),
            model)
        if isinstance(got, Verdict):
            return got
        verdict = _compare_training_loss(name, call, got, expected_value, expected)
        if verdict is not None:
            return verdict
    return Verdict(True, f"✓ right: {name} gives the library's FreeLB step its loss value and "
                         "every parameter gradient")
