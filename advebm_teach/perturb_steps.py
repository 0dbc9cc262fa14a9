"""Adversarial training steps built on the adversaries of ``perturb``: one training step each,
which a training loop takes as one argument (``trainer.fit(model, train_step)``).

An ``Objective`` is one mini-batch as a step sees it (embed, forward, loss). A ``Strategy`` is a
step, ``step(objective, optimizer) -> float``: ``Clean``, ``FGSM``, ``FGM``, ``MatrixFGM``,
``PGD``, ``FreeAT``, ``YOPO``, ``FreeLB``, ``SMART``, ``ALUM``, ``GradientPenalty``. Each documents
its equation and ``passes``: its forward+backward passes relative to a clean step (what
``advebm-teach bench perturb-cost`` compares its time with).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .checks import (check_bool, check_callable, check_choice, check_generator, check_int,
                     check_positive, check_token_ids)
from .perturb import (ascend, ascent_direction, check_gradient, check_scalar_loss,
                      embedding_gradient, kl_divergence, loss_and_gradient_penalty, random_in_ball,
                      symmetric_kl, table_perturbation)


@dataclass(frozen=True)
class Objective:
    """One mini-batch as a training step sees it: e = ``embed()``, outputs = ``forward(e)``,
    L = ``loss(outputs)``.

    ``embed`` returns the model's embedding output afresh (attached to the table, so the table
    trains); ``forward`` maps embeddings to the model's outputs (logits; ``(N,)`` for a binary
    classifier); ``loss`` is the scalar batch-mean loss; ``tokens`` are needed only by
    ``MatrixFGM``.
    """

    embed: Callable[[], torch.Tensor]
    forward: Callable[[torch.Tensor], torch.Tensor]
    loss: Callable[[torch.Tensor], torch.Tensor]
    tokens: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_callable("embed", self.embed, "a function embed() -> the embeddings")
        check_callable("forward", self.forward, "a function forward(embeds) -> outputs")
        check_callable("loss", self.loss, "a function loss(outputs) -> scalar loss")
        if self.tokens is not None:
            check_token_ids("tokens", self.tokens, None, dims=None)

    def loss_fn(self, embeds: torch.Tensor) -> torch.Tensor:
        """L(e) = loss(forward(e)), the ``loss_fn`` every adversary above takes."""
        return self.loss(self.forward(embeds))


def _check_step(objective: Objective, optimizer: torch.optim.Optimizer) -> None:
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a perturb_steps.Objective, "
                        f"got {type(objective).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, "
                        f"got {type(optimizer).__name__}")


def _full_pass(objective: Objective, delta: torch.Tensor | None = None, scale: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward and backward of ``scale * L(e + delta)``: parameters accumulate their gradient,
    and the same backward gives grad_delta L. Returns (L detached, grad_delta L, e detached)."""
    embeds = objective.embed()
    delta = (torch.zeros_like(embeds) if delta is None else delta.detach()).requires_grad_(True)
    loss = check_scalar_loss(objective.loss_fn(embeds + delta))
    (loss * scale).backward()
    return loss.detach(), check_gradient(delta.grad), embeds.detach()


class Strategy:
    """A training step, one argument of a trainer loop: ``step(objective, optimizer) -> float``.

    ``step`` zeroes the gradients, runs the strategy's passes and steps the optimizer; it returns
    the value of the objective it minimised. ``passes`` is the ideal cost of a step in
    forward+backward passes (a clean step is 1). ``replays`` is how many times a step visits its
    mini-batch (FreeAT: m), by which a trainer divides its epochs.
    """

    name = "clean"
    replays = 1

    @property
    def passes(self) -> int:
        return 1

    def step(self, objective: Objective, optimizer: torch.optim.Optimizer) -> float:
        _check_step(objective, optimizer)
        optimizer.zero_grad(set_to_none=True)
        value = self.backward(objective)
        optimizer.step()
        return float(value)

    def backward(self, objective: Objective) -> torch.Tensor:
        """Accumulate the step's parameter gradients; return the objective's value."""
        loss = objective.loss_fn(objective.embed())
        loss.backward()
        return loss.detach()

    def __repr__(self) -> str:
        return self.name


class Clean(Strategy):
    """No adversary: min_theta L(e). One pass."""


class _OneStep(Strategy):
    """min_theta L(e) + L(e + delta(g)), g = grad_e L from the clean pass's backward.

    Two passes.
    """

    label = ""

    def __init__(self, epsilon: float) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.name = f"{self.label} (eps={epsilon:g})"

    @property
    def passes(self) -> int:
        return 2

    def backward(self, objective: Objective) -> torch.Tensor:
        clean, gradient, _ = _full_pass(objective)
        adversarial, _, _ = _full_pass(objective, self.perturbation(gradient, objective))
        return clean + adversarial

    def perturbation(self, gradient: torch.Tensor, objective: Objective) -> torch.Tensor:
        raise NotImplementedError


class FGSM(_OneStep):
    """min_theta L(e) + L(e + delta), delta = eps sign(grad_e L). Two passes."""

    label = "FGSM"

    def perturbation(self, gradient: torch.Tensor, objective: Objective) -> torch.Tensor:
        return self.epsilon * gradient.sign()


class FGM(_OneStep):
    """min_theta L(e) + L(e + delta), delta_b = eps g_b / ||g_b|| per example (Miyato et al.).

    Two passes.
    """

    label = "FGM"

    def perturbation(self, gradient: torch.Tensor, objective: Objective) -> torch.Tensor:
        return self.epsilon * ascent_direction(gradient, "l2")


class MatrixFGM(_OneStep):
    """FGM on the embedding table (the blog's shortcut):
    min_theta L(e) + L(e + (eps G/||G||_F)[tokens]), G = grad_W L. Same perturbation for every
    occurrence of a token; eps bounds the whole batch. Two passes."""

    label = "FGM on the table"

    def perturbation(self, gradient: torch.Tensor, objective: Objective) -> torch.Tensor:
        if objective.tokens is None:
            raise ValueError("MatrixFGM needs the objective's tokens: "
                             "Objective(..., tokens=tokens)")
        return table_perturbation(gradient, objective.tokens, self.epsilon)


class PGD(Strategy):
    """PGD-K (Madry et al., as the FGM blog trains it): min_theta L(e) + L(e + delta_K),
    delta_{k+1} = Proj_eps(delta_k + alpha g_k / ||g_k||), delta_0 = 0,
    g_k = grad_e L(e + delta_k).

    The clean pass gives g_0; K - 1 ascent passes (backward to the input only) give g_1..g_{K-1};
    the last pass trains on e + delta_K. K + 1 passes.
    """

    def __init__(self, epsilon: float, alpha: float, steps: int) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.name = f"PGD-{steps} (eps={epsilon:g})"

    @property
    def passes(self) -> int:
        return self.steps + 1

    def backward(self, objective: Objective) -> torch.Tensor:
        clean, gradient, embeds = _full_pass(objective)  # L(e) and g_0
        delta = ascend(torch.zeros_like(embeds), gradient, self.alpha, self.epsilon)  # delta_1
        for _ in range(self.steps - 1):
            delta = ascend(delta, embedding_gradient(objective.loss_fn, embeds + delta),
                           self.alpha, self.epsilon)
        adversarial, _, _ = _full_pass(objective, delta)
        return clean + adversarial


class FreeAT(Strategy):
    """FreeAT (Shafahi et al. 2019): each mini-batch is replayed m times; each replay is one pass
    on e + delta whose backward gives both grad_theta (an optimizer step) and grad_delta:
    delta <- Proj_eps(delta + eps g/||g||). delta is carried over to the next mini-batch
    (restarted at 0 when the batch's shape changes).

    m passes and m optimizer steps per mini-batch (``passes`` = m); a trainer runs epochs / m
    epochs (``replays`` = m), so training costs what clean training does.
    """

    def __init__(self, epsilon: float, replays: int) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.replays = check_int("replays", replays, 1)
        self.name = f"FreeAT-{replays} (eps={epsilon:g})"
        self._delta: torch.Tensor | None = None

    @property
    def passes(self) -> int:
        return self.replays

    def step(self, objective: Objective, optimizer: torch.optim.Optimizer) -> float:
        _check_step(objective, optimizer)
        total = 0.0
        for _ in range(self.replays):
            optimizer.zero_grad(set_to_none=True)
            delta = self._delta
            embeds = objective.embed()
            if delta is None or delta.shape != embeds.shape:
                delta = torch.zeros_like(embeds.detach())
            delta = delta.requires_grad_(True)
            loss = check_scalar_loss(objective.loss_fn(embeds + delta))
            loss.backward()
            optimizer.step()
            gradient = check_gradient(delta.grad)
            self._delta = ascend(delta.detach(), gradient, self.epsilon, self.epsilon)
            total += float(loss.detach()) / self.replays
        return total


class YOPO(Strategy):
    """YOPO-m-n (Zhang et al. 2019), simplified: m full passes on e + delta, their parameter
    gradients averaged into one optimizer step; after each, n cheap updates of delta from the
    co-state p = grad_{x0} L at the first layer's output, held fixed:
    delta <- Proj_eps(delta + alpha grad_delta (p . x0(delta)) / ||.||).

    Simplification: the first layer here is where delta enters, x0 = e + delta, which is linear in
    delta, so grad_delta (p . x0) = p and the n updates cost no model pass (they re-project steps
    along p). delta starts uniform in the ball (``generator``). m passes.
    """

    def __init__(self, epsilon: float, alpha: float, full_passes: int, cheap_updates: int,
                 generator: torch.Generator | None = None) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.alpha = check_positive("alpha", alpha)
        self.full_passes = check_int("full_passes", full_passes, 1)
        self.cheap_updates = check_int("cheap_updates", cheap_updates, 1)
        self.generator = check_generator("generator", generator)
        self.name = f"YOPO-{full_passes}-{cheap_updates} (eps={epsilon:g})"

    @property
    def passes(self) -> int:
        return self.full_passes

    def backward(self, objective: Objective) -> torch.Tensor:
        delta = random_in_ball(objective.embed().detach(), self.epsilon, "l2", self.generator)
        losses = []
        for _ in range(self.full_passes):
            loss, costate, _ = _full_pass(objective, delta, scale=1 / self.full_passes)
            # p = grad_delta L, since x0 = e + delta; n updates with p held fixed
            for _ in range(self.cheap_updates):
                delta = ascend(delta, costate, self.alpha, self.epsilon)
            losses.append(loss)
        return torch.stack(losses).mean()


class _ReplayedRandomness:
    """Snapshot torch's generators (CPU, and CUDA on a CUDA device); ``replay()`` rewinds them, so
    every forward pass after a replay draws the same dropout masks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def replay(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class FreeLB(Strategy):
    """FreeLB-K (Zhu et al. 2020): min_theta (1/K) sum_{t=1..K} L(e + delta_{t-1}), one optimizer
    step, with delta_t = Proj_eps(delta_{t-1} + alpha g_t / ||g_t||): each pass gives grad_theta
    (accumulated, / K) and grad_delta. delta_0 ~ U(-eps, eps) / sqrt(numel per example). All K
    passes see the same dropout masks (the random generators are rewound before each). K passes.
    """

    def __init__(self, epsilon: float, alpha: float, steps: int,
                 generator: torch.Generator | None = None) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.generator = check_generator("generator", generator)
        self.name = f"FreeLB-{steps} (eps={epsilon:g})"

    @property
    def passes(self) -> int:
        return self.steps

    def backward(self, objective: Objective) -> torch.Tensor:
        embeds = objective.embed().detach()
        delta = (random_in_ball(embeds, self.epsilon, "linf", self.generator)
                 / math.sqrt(embeds[0].numel()))  # delta_0
        randomness = _ReplayedRandomness(embeds.device)
        losses = []
        for _ in range(self.steps):
            randomness.replay()
            loss, gradient, _ = _full_pass(objective, delta, scale=1 / self.steps)
            delta = ascend(delta, gradient, self.alpha, self.epsilon)
            losses.append(loss)
        return torch.stack(losses).mean()


class VirtualAdversarial(Strategy):
    """min_theta L(e) + lambda D(f(e), f(e + delta)), the label-free smoothness term of SMART and
    ALUM.

    delta starts at N(0, sigma^2) per entry (the divergence's gradient vanishes at delta = 0;
    SMART's and ALUM's sigma = 1e-5) and takes K ascent steps
    delta <- Proj_eps(delta + alpha g/||g||), g = grad_delta D(f(e) held fixed, f(e + delta))
    (backward to the input only). D is the symmetric KL, both sides trained (``symmetric=True``,
    SMART), or KL(f(e) held fixed || f(e + delta)) (virtual adversarial training, ALUM). The first
    ``warmup_steps`` calls are clean steps (ALUM's curriculum). K + 2 passes: K ascent, then the
    clean and perturbed forwards with one backward through both.
    """

    def __init__(self, epsilon: float, alpha: float, weight: float, steps: int, symmetric: bool,
                 sigma: float = 1e-5, warmup_steps: int = 0,
                 generator: torch.Generator | None = None) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        self.alpha = check_positive("alpha", alpha)
        self.weight, self.sigma = check_positive("weight", weight), check_positive("sigma", sigma)
        self.steps = check_int("steps", steps, 1)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        self.symmetric = check_bool("symmetric", symmetric)
        self.generator = check_generator("generator", generator)
        self.calls = 0
        self.name = f"virtual adversarial (eps={epsilon:g})"

    @property
    def passes(self) -> int:
        return self.steps + 2

    def backward(self, objective: Objective) -> torch.Tensor:
        self.calls += 1
        embeds = objective.embed()
        outputs = objective.forward(embeds)
        loss = check_scalar_loss(objective.loss(outputs))
        if self.calls <= self.warmup_steps:
            loss.backward()
            return loss.detach()
        target, point = outputs.detach(), embeds.detach()
        device = self.generator.device if self.generator is not None else point.device
        delta = (self.sigma * torch.randn(point.shape, generator=self.generator, device=device,
                                          dtype=point.dtype)).to(point.device)
        for _ in range(self.steps):
            gradient = embedding_gradient(lambda x: self._divergence(target, objective.forward(x)),
                                          point + delta)
            delta = ascend(delta, gradient, self.alpha, self.epsilon)
        perturbed = objective.forward(embeds + delta)
        # D: the symmetric KL trains both sides; the KL holds f(e) fixed (target)
        regulariser = (symmetric_kl(outputs, perturbed) if self.symmetric
                       else kl_divergence(target, perturbed))
        total = loss + self.weight * regulariser
        total.backward()
        return total.detach()

    def _divergence(self, target: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return symmetric_kl(target, outputs) if self.symmetric else kl_divergence(target, outputs)


class SMART(VirtualAdversarial):
    """SMART's smoothness-inducing adversarial regulariser (Jiang et al. 2020).

    Symmetric KL, K ascent steps.
    """

    def __init__(self, epsilon: float, alpha: float, weight: float = 1.0, steps: int = 1,
                 sigma: float = 1e-5, generator: torch.Generator | None = None) -> None:
        super().__init__(epsilon, alpha, weight, steps, symmetric=True, sigma=sigma,
                         generator=generator)
        self.name = f"SMART-{steps} (eps={epsilon:g})"


class ALUM(VirtualAdversarial):
    """ALUM (Liu et al. 2020): virtual adversarial KL, one ascent step, after ``warmup_steps``.

    The first ``warmup_steps`` steps are clean steps.
    """

    def __init__(self, epsilon: float, alpha: float, weight: float = 1.0, warmup_steps: int = 0,
                 sigma: float = 1e-5, generator: torch.Generator | None = None) -> None:
        super().__init__(epsilon, alpha, weight, 1, symmetric=False, sigma=sigma,
                         warmup_steps=warmup_steps, generator=generator)
        self.name = f"ALUM (eps={epsilon:g})"


class GradientPenalty(Strategy):
    """min_theta J = L(e) + (c/2) ||grad_e L||^2, c = lambda N; with L the mean of N per-example
    losses l_b this is L + (lambda/2) mean_b ||grad_{e_b} l_b||^2, independent of the batch size.
    FGM's first-order twin.

    ``method="double_backward"``: the exact gradient of J. One forward, a backward that keeps its
    graph, and the backward of both: ideally two passes, as FGM; in practice the second backward
    runs through the first one's graph and costs more than a pass.

    ``method="finite_difference"``: grad_theta J = grad_theta L + c H g with g = grad_e L held
    fixed, and grad_theta L(e + c g) = grad_theta L(e) + c H g + O(c^2): so one pass on e + c g,
    after a pass that finds g (backward to the input only), gives J's gradient to first order in c.
    It is FGM with the unnormalised step delta = c g. Two passes.
    """

    METHODS = ("double_backward", "finite_difference")

    def __init__(self, weight: float, method: str = "double_backward") -> None:
        self.weight = check_positive("weight", weight)
        self.method = check_choice("method", method, self.METHODS)
        self.name = f"gradient penalty (lambda={weight:g}, {method.replace('_', ' ')})"

    @property
    def passes(self) -> int:
        return 2

    def backward(self, objective: Objective) -> torch.Tensor:
        embeds = objective.embed()
        scale = self.weight * embeds.shape[0]  # c = lambda N
        if self.method == "double_backward":
            loss, penalty = loss_and_gradient_penalty(objective.loss_fn, embeds)
            total = loss + 0.5 * scale * penalty
            total.backward()
            return total.detach()
        point = embeds.detach().requires_grad_(True)
        loss = check_scalar_loss(objective.loss_fn(point))
        (gradient,) = torch.autograd.grad(loss, point)  # g, held fixed
        # grad_theta L(e + c g) = grad_theta J + O(c^2)
        objective.loss_fn(embeds + scale * gradient).backward()
        return (loss + 0.5 * scale * gradient.pow(2).sum()).detach()
