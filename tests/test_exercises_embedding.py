"""Notebooks 03 and 04's exercise checkers: ✓ for a right answer, ✗ with a message that names the
mistake for the classic wrong ones, "not done yet" for the stub, TypeError for a non-function."""

import math

import pytest
import torch
import torch.nn.functional as F

from advebm_teach.perturb import ascend, project
from advebm_teach.teaching.exercises.embedding import (check_fgm_perturbation, check_freelb_loss,
                                                       check_fgm_training_loss,
                                                       check_l2_projection,
                                                       check_pgd_perturbation,
                                                       check_symmetric_kl)

CHECKERS = (check_fgm_perturbation, check_l2_projection, check_fgm_training_loss,
            check_pgd_perturbation, check_symmetric_kl, check_freelb_loss)


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_stub_is_not_done_yet_and_a_non_function_is_refused(checker):
    verdict = checker(stub)
    assert not verdict and repr(verdict).startswith("… not done yet")
    with pytest.raises(TypeError, match="must be a function"):
        checker(42)
    returns_none = checker(lambda *args: None)
    assert not returns_none and "returned None" in repr(returns_none)


def unit(g):
    return g / g.flatten(1).norm(dim=1)[:, None, None]


def test_fgm_perturbation_checker():
    right = check_fgm_perturbation(lambda g, eps: eps * unit(g))
    assert right and repr(right).startswith("✓ right")
    per_token = check_fgm_perturbation(lambda g, eps: eps * g / g.norm(dim=-1, keepdim=True))
    assert not per_token and "batch row 0, position 0, feature" in repr(per_token)
    whole_batch = check_fgm_perturbation(lambda g, eps: eps * g / g.norm())
    assert not whole_batch and repr(whole_batch).startswith("✗ wrong")


def test_l2_projection_checker():
    def project_l2(delta, eps):
        return delta * (eps / delta.flatten(1).norm(dim=1)).clamp(max=1.0)[:, None, None]

    assert check_l2_projection(project_l2)
    always_rescales = check_l2_projection(lambda d, eps: eps * unit(d))
    assert not always_rescales and "batch row 0" in repr(always_rescales)
    clips_entries = check_l2_projection(lambda d, eps: d.clamp(-eps, eps))
    assert not clips_entries and repr(clips_entries).startswith("✗ wrong")


# ------------------------------------------------------------------- 03.3, FGM's training loss
def fgm_training_loss(loss_fn, embeds, epsilon):
    clean = loss_fn(embeds)
    (g,) = torch.autograd.grad(clean, embeds, retain_graph=True)
    return clean + loss_fn(embeds + epsilon * unit(g))


def test_fgm_training_loss_checker():
    right = check_fgm_training_loss(fgm_training_loss)
    assert right and repr(right).startswith("✓ right"), repr(right)

    def adversarial_only(loss_fn, embeds, epsilon):
        (g,) = torch.autograd.grad(loss_fn(embeds), embeds)
        return loss_fn(embeds + epsilon * unit(g))

    verdict = check_fgm_training_loss(adversarial_only)
    assert not verdict and "expected" in repr(verdict) and "(the loss value)" in repr(verdict)

    def delta_not_held_fixed(loss_fn, embeds, epsilon):  # a gradient flows through delta
        clean = loss_fn(embeds)
        (g,) = torch.autograd.grad(clean, embeds, create_graph=True)
        return clean + loss_fn(embeds + epsilon * unit(g))

    verdict = check_fgm_training_loss(delta_not_held_fixed)
    assert not verdict and "the loss value of" in repr(verdict)
    assert "is right, but the gradient it gives parameter" in repr(verdict)

    def graph_freed(loss_fn, embeds, epsilon):
        clean = loss_fn(embeds)
        (g,) = torch.autograd.grad(clean, embeds)
        return clean + loss_fn(embeds + epsilon * unit(g))

    verdict = check_fgm_training_loss(graph_freed)
    assert not verdict and "retain_graph=True" in repr(verdict)

    detached = check_fgm_training_loss(lambda f, e, eps: fgm_training_loss(f, e, eps).detach())
    assert not detached and "without a graph" in repr(detached)
    per_example = check_fgm_training_loss(lambda f, e, eps: fgm_training_loss(f, e, eps)[None])
    assert not per_example and "expected a scalar tensor" in repr(per_example)


# ------------------------------------------------------------------------ 03.4, PGD's loop
def pgd_perturbation(loss_fn, embeds, epsilon, eta, steps):
    delta = torch.zeros_like(embeds)
    for _ in range(steps):
        point = (embeds + delta).requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(point), point)
        delta = delta + eta * unit(g)
        delta = delta * (epsilon / delta.flatten(1).norm(dim=1)).clamp(max=1.0)[:, None, None]
    return delta


def test_pgd_perturbation_checker():
    right = check_pgd_perturbation(pgd_perturbation)
    assert right and repr(right).startswith("✓ right"), repr(right)

    def no_projection(loss_fn, embeds, epsilon, eta, steps):
        delta = torch.zeros_like(embeds)
        for _ in range(steps):
            point = (embeds + delta).requires_grad_(True)
            (g,) = torch.autograd.grad(loss_fn(point), point)
            delta = delta + eta * unit(g)
        return delta

    verdict = check_pgd_perturbation(no_projection)
    assert not verdict and "> epsilon" in repr(verdict) and "project" in repr(verdict)

    def gradient_at_e_only(loss_fn, embeds, epsilon, eta, steps):  # never recomputes g
        point = embeds.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(point), point)
        delta = torch.zeros_like(embeds)
        for _ in range(steps):
            delta = project(delta + eta * unit(g), epsilon)
        return delta

    verdict = check_pgd_perturbation(gradient_at_e_only)
    assert not verdict and "batch row" in repr(verdict) and "elements differ" in repr(verdict)


# ------------------------------------------------------------------------ 04.2, symmetric KL
def symmetric_kl(logits_p, logits_q):
    log_p = torch.stack([F.logsigmoid(-logits_p), F.logsigmoid(logits_p)], dim=-1)
    log_q = torch.stack([F.logsigmoid(-logits_q), F.logsigmoid(logits_q)], dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1).mean()


def test_symmetric_kl_checker():
    right = check_symmetric_kl(symmetric_kl)
    assert right and repr(right).startswith("✓ right"), repr(right)

    def one_sided(logits_p, logits_q):
        p, q = torch.sigmoid(logits_p), torch.sigmoid(logits_q)
        return (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()

    verdict = check_symmetric_kl(one_sided)
    assert not verdict and "expected" in repr(verdict)
    summed = check_symmetric_kl(lambda p, q: symmetric_kl(p, q) * len(p))
    assert not summed
    assert repr(summed).startswith("✗ wrong: symmetric_kl_term(logits_p of shape (4,)")

    def class_one_only(logits_p, logits_q):  # forgets the other class's term
        p, q = torch.sigmoid(logits_p), torch.sigmoid(logits_q)
        return ((p - q) * (p / q).log()).mean()

    assert not check_symmetric_kl(class_one_only)


# ------------------------------------------------------------------------ 04.1, FreeLB
def freelb_loss(loss_fn, embeds, delta0, epsilon, eta, steps):
    delta, total = delta0, 0.0
    for _ in range(steps):
        delta = delta.detach().requires_grad_(True)
        loss = loss_fn(embeds + delta)
        (g,) = torch.autograd.grad(loss, delta, retain_graph=True)
        total = total + loss / steps
        delta = ascend(delta.detach(), g, eta, epsilon)
    return total


def test_freelb_loss_checker():
    right = check_freelb_loss(freelb_loss)
    assert right and repr(right).startswith("✓ right"), repr(right)

    def last_pass_only(loss_fn, embeds, delta0, epsilon, eta, steps):  # PGD's loss, not FreeLB's
        delta = delta0
        for _ in range(steps - 1):
            point = delta.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss_fn(embeds.detach() + point), point)
            delta = ascend(delta, g, eta, epsilon)
        return loss_fn(embeds + delta)

    verdict = check_freelb_loss(last_pass_only)
    assert not verdict and ", 0.3, 3)" in repr(verdict)
    assert "(the loss value)" in repr(verdict)

    summed = check_freelb_loss(lambda *a: freelb_loss(*a) * a[-1])
    assert not summed and ", 3)" in repr(summed)

    def never_moves(loss_fn, embeds, delta0, epsilon, eta, steps):
        return sum(loss_fn(embeds + delta0) for _ in range(steps)) / steps

    assert not check_freelb_loss(never_moves)


def test_the_tiny_model_has_a_nonzero_embedding_gradient():
    """The checkers' model must depend on its input, or a zero answer could pass."""
    from advebm_teach.perturb import embedding_gradient
    from advebm_teach.teaching.exercises.embedding import tiny_classifier
    from advebm_teach.trainer import classifier_objective

    model, data, negatives = tiny_classifier(0)
    objective = classifier_objective(model, data, negatives)
    gradient = embedding_gradient(objective.loss_fn, objective.embed())
    assert gradient.dtype == torch.float64 and gradient.flatten(1).norm(dim=1).min() > 1e-4
    assert not math.isclose(float(objective.loss_fn(objective.embed()).detach()), 0.0)
