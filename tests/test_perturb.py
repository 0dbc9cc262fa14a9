"""Embedding-space adversaries and training steps, checked against references: autograd written out by hand,
finite differences, explicit formulas, and counted forward passes. A tiny float64 Transformer keeps every
check exact to rounding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from advebm_teach.models import TransformerEnergy
from advebm_teach.perturb import (ascend, embedding_gradient, embedding_matrix_fgm, fgm, fgsm,
                                  gradient_penalty, kl_divergence, pgd, project, random_in_ball,
                                  symmetric_kl)
from advebm_teach.perturb_steps import (ALUM, FGM, FGSM, PGD, SMART, YOPO, FreeAT, FreeLB,
                                        GradientPenalty, MatrixFGM, Objective)
from advebm_teach.experiments.perturb_study import PerturbStudyProtocol, strategies
from advebm_teach.trainer import classifier_objective
from advebm_teach.trainer import ebm_loss

EPS = 0.3
TOKENS = torch.randint(0, 14, (6, 6), generator=torch.Generator().manual_seed(0))


def tiny_model(seed: int = 0, dropout: float = 0.0) -> TransformerEnergy:
    torch.manual_seed(seed)
    model = TransformerEnergy(vocab_size=14, seq_len=6, d_model=8, n_layers=1, n_heads=2, ff_dim=8,
                              dropout=dropout, head="mean").double()
    torch.nn.init.normal_(model.energy_readout.weight, std=1.0)  # the shipped read-out starts at 0: no gradient
    return model


def objective(model) -> Objective:
    return classifier_objective(model, TOKENS[:3], TOKENS[3:])


def reference_gradient(model, embeds: torch.Tensor) -> torch.Tensor:
    """grad_e L by autograd, written out."""
    point = embeds.detach().clone().requires_grad_(True)
    energy = model.energy_from_embeds(point, TOKENS)
    loss = F.softplus(energy[:3]).mean() + F.softplus(-energy[3:]).mean()
    return torch.autograd.grad(loss, point)[0]


def test_classifier_objective_is_the_logistic_ebm_loss():
    model = tiny_model()
    obj = objective(model)
    energy = model.energy(TOKENS)
    assert torch.allclose(obj.loss_fn(obj.embed()), ebm_loss(energy[:3], energy[3:], "logistic"))
    assert torch.allclose(obj.forward(obj.embed()), -energy)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_stays_in_the_ball_at_every_step_and_raises_the_loss(norm, random_start):
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    with torch.no_grad():
        clean = float(obj.loss_fn(embeds))
    for steps in range(1, 6):  # every iterate: run k steps, k = 1..5, with a step as large as the ball
        delta = pgd(obj.loss_fn, embeds, EPS, alpha=EPS, steps=steps, norm=norm, random_start=random_start,
                    generator=torch.Generator().manual_seed(1))
        for b in range(len(delta)):
            values = [float(v) for v in delta[b].flatten()]
            size = math.sqrt(sum(v * v for v in values)) if norm == "l2" else max(abs(v) for v in values)
            assert size <= EPS * (1 + 1e-9)
        with torch.no_grad():
            assert float(obj.loss_fn(embeds + delta)) > clean


def test_random_start_lies_in_the_ball():
    like = torch.zeros(50, 3, 4, dtype=torch.float64)
    l2 = random_in_ball(like, 0.7, "l2", torch.Generator().manual_seed(0))
    assert (l2.flatten(1).norm(dim=1) <= 0.7 + 1e-12).all() and l2.abs().sum() > 0
    linf = random_in_ball(like, 0.7, "linf", torch.Generator().manual_seed(0))
    assert linf.abs().max() <= 0.7 and linf.abs().max() > 0.5


def test_fgm_is_the_normalised_gradient_with_norm_epsilon_per_example():
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    delta = fgm(obj.loss_fn, embeds, EPS)
    gradient = reference_gradient(model, embeds)
    for b in range(len(delta)):
        assert math.isclose(float(delta[b].norm()), EPS, rel_tol=1e-12)
        assert torch.allclose(delta[b], EPS * gradient[b] / gradient[b].norm())


def test_fgsm_is_epsilon_times_the_gradient_sign():
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    assert torch.equal(fgsm(obj.loss_fn, embeds, EPS), EPS * reference_gradient(model, embeds).sign())


def test_projection_rescales_only_outside_the_ball():
    delta = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    assert torch.allclose(project(delta, 1.0), torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert torch.equal(project(delta, 1.0, "linf"), torch.tensor([[1.0, 1.0], [0.3, 0.4]]))


def test_gradient_penalty_matches_finite_differences():
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    h, squares = 1e-6, 0.0
    for index in range(embeds.numel()):  # central differences, one embedding coordinate at a time
        step = torch.zeros(embeds.numel(), dtype=embeds.dtype)
        step[index] = h
        step = step.view_as(embeds)
        with torch.no_grad():
            derivative = (obj.loss_fn(embeds + step) - obj.loss_fn(embeds - step)) / (2 * h)
        squares += float(derivative) ** 2
    assert math.isclose(gradient_penalty(obj.loss_fn, embeds).item(), squares, rel_tol=1e-7)


class EnergyOfEmbeds(torch.nn.Module):
    """``energy_from_embeds`` as a module's forward, so that ``torch.func.functional_call`` can swap a weight."""

    def __init__(self, model: TransformerEnergy) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.model.energy_from_embeds(embeds, TOKENS)


def loss_with_weight(model, name: str, weight: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
    energy = torch.func.functional_call(EnergyOfEmbeds(model), {f"model.{name}": weight}, (embeds,), strict=False)
    return F.softplus(energy[:3]).mean() + F.softplus(-energy[3:]).mean()


def test_gradient_penalty_is_differentiable_in_the_parameters():
    model = tiny_model()
    name = "blocks.0.mlp.0.weight"
    embeds = model.embed(TOKENS).detach()
    weight = model.get_parameter(name).detach().clone().requires_grad_(True)
    # double backward against finite differences of the penalty itself
    assert torch.autograd.gradcheck(lambda w: gradient_penalty(lambda e: loss_with_weight(model, name, w, e), embeds),
                                    (weight,))


def parameter_gradient(model, loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True, materialize_grads=True)
    return torch.cat([g.flatten() for g in grads])  # the unused LM head's gradient is zero


@pytest.mark.parametrize("normalised", [False, True])
def test_fgm_parameter_gradient_matches_the_gradient_penalty_to_first_order(normalised):
    """Training on L(e + delta), delta held fixed, is training on L + penalty to first order in eps:
    delta = eps g <-> L + eps/2 ||g||^2 (the blog's derivation); delta_b = eps g_b/||g_b|| (``fgm``) <->
    L + eps sum_b ||g_b||. The relative error of the correction shrinks linearly with eps."""
    model = tiny_model()
    obj = objective(model)
    clean = parameter_gradient(model, obj.loss_fn(obj.embed()))
    errors = []
    for eps in (1e-3, 1e-4, 1e-5):
        embeds = obj.embed()
        if normalised:
            delta = fgm(obj.loss_fn, embeds, eps)
        else:
            delta = eps * reference_gradient(model, embeds)
        adversarial = parameter_gradient(model, obj.loss_fn(obj.embed() + delta))
        embeds = obj.embed()
        loss = obj.loss_fn(embeds)
        (g,) = torch.autograd.grad(loss, embeds, create_graph=True)
        penalty = eps * g.flatten(1).norm(dim=1).sum() if normalised else eps / 2 * g.pow(2).sum()
        penalised = parameter_gradient(model, loss + penalty)
        errors.append(float((adversarial - penalised).norm() / (penalised - clean).norm()))
    assert errors[-1] < 2e-3
    for larger, smaller in zip(errors, errors[1:]):
        assert 0.05 < smaller / larger < 0.2  # eps / 10 -> error / 10


def test_embedding_matrix_fgm_is_the_normalised_table_gradient():
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    delta = embedding_matrix_fgm(obj.loss_fn, embeds, TOKENS, EPS)
    table = model.token_embedding.weight.detach().clone().requires_grad_(True)
    energy = model.energy_from_embeds(F.embedding(TOKENS, table), TOKENS)
    (grad_table,) = torch.autograd.grad(F.softplus(energy[:3]).mean() + F.softplus(-energy[3:]).mean(), table)
    assert torch.allclose(delta, (EPS * grad_table / grad_table.norm())[TOKENS])
    first = TOKENS[0, 0]
    assert torch.equal(delta[TOKENS == first][0], delta[TOKENS == first][-1])  # one perturbation per token


def test_kl_divergences_of_binary_logits_match_the_bernoulli_formula():
    a, b = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    p, q = torch.sigmoid(a).tolist(), torch.sigmoid(b).tolist()
    kl = [pi * math.log(pi / qi) + (1 - pi) * math.log((1 - pi) / (1 - qi)) for pi, qi in zip(p, q)]
    back = [qi * math.log(qi / pi) + (1 - qi) * math.log((1 - qi) / (1 - pi)) for pi, qi in zip(p, q)]
    assert math.isclose(float(kl_divergence(a, b)), sum(kl) / 7, rel_tol=1e-12)
    assert math.isclose(float(symmetric_kl(a, b)), (sum(kl) + sum(back)) / 7, rel_tol=1e-12)
    two_class = torch.stack([torch.zeros(7, dtype=torch.float64), a], dim=1)
    assert math.isclose(float(kl_divergence(two_class, torch.stack([torch.zeros_like(b), b], 1))), sum(kl) / 7,
                        rel_tol=1e-12)


# ---------------------------------------------------------------------- training steps
def gradients(model) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def reference_ascent(delta, gradient, alpha, eps):
    """delta + alpha g_b/||g_b||, rescaled onto the ball when outside, example by example."""
    out = delta.clone()
    for b in range(len(delta)):
        out[b] = delta[b] + alpha * gradient[b] / gradient[b].norm()
        if out[b].norm() > eps:
            out[b] = out[b] * eps / out[b].norm()
    return out


def test_freelb_gradient_is_the_mean_of_the_k_separate_gradients_with_one_dropout_mask():
    model, steps, alpha = tiny_model(dropout=0.3), 3, 0.1
    model.train()
    obj = objective(model)
    torch.manual_seed(123)
    FreeLB(EPS, alpha, steps, generator=torch.Generator().manual_seed(5)).backward(obj)
    combined = gradients(model)

    def separate(seeds: list[int]) -> torch.Tensor:
        numel = TOKENS.numel() * 8
        delta = (torch.rand(TOKENS.shape + (8,), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
                 * 2 - 1) * EPS / math.sqrt(numel / len(TOKENS))
        each = []
        for seed in seeds:
            model.zero_grad()
            torch.manual_seed(seed)  # the same seed: the same dropout mask
            point = delta.clone().requires_grad_(True)
            obj.loss_fn(obj.embed() + point).backward()
            each.append(gradients(model))
            delta = reference_ascent(delta, point.grad, alpha, EPS)
        return torch.stack(each).mean(dim=0)

    assert torch.allclose(combined, separate([123] * steps), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(combined, separate([123, 124, 125]), rtol=1e-6)  # other masks: another gradient


def test_fgm_step_trains_on_clean_plus_adversarial_loss():
    model = tiny_model()
    obj = objective(model)
    model.zero_grad()
    FGM(EPS).backward(obj)
    embeds = obj.embed()
    gradient = reference_gradient(model, embeds)
    delta = EPS * gradient / gradient.flatten(1).norm(dim=1)[:, None, None]
    model.zero_grad()
    (obj.loss_fn(obj.embed()) + obj.loss_fn(obj.embed() + delta)).backward()
    reference = gradients(model)
    model.zero_grad()
    FGM(EPS).backward(obj)
    assert torch.allclose(gradients(model), reference)


def test_pgd_step_trains_on_clean_plus_last_iterate():
    model, steps, alpha = tiny_model(), 3, 0.2
    obj = objective(model)
    embeds = obj.embed().detach()
    delta = torch.zeros_like(embeds)
    for _ in range(steps):
        delta = reference_ascent(delta, reference_gradient(model, embeds + delta), alpha, EPS)
    model.zero_grad()
    (obj.loss_fn(obj.embed()) + obj.loss_fn(obj.embed() + delta)).backward()
    reference = gradients(model)
    model.zero_grad()
    PGD(EPS, alpha, steps).backward(obj)
    assert torch.allclose(gradients(model), reference)


def test_gradient_penalty_step_matches_finite_differences_of_its_objective():
    model, weight = tiny_model(), 0.7
    obj = objective(model)
    name = "blocks.0.mlp.0.weight"
    model.zero_grad()
    GradientPenalty(weight).backward(obj)
    analytic = model.get_parameter(name).grad
    base = model.get_parameter(name).detach().clone()

    def penalised(w: torch.Tensor) -> float:  # L + (lambda/2) mean_b ||grad_{e_b} l_b||^2, l_b = N x (b's share of L)
        embeds = obj.embed().detach().requires_grad_(True)
        loss = loss_with_weight(model, name, w, embeds)
        (g,) = torch.autograd.grad(loss, embeds)
        per_example = [float((len(TOKENS) * g[b]).pow(2).sum()) for b in range(len(TOKENS))]
        return loss.item() + weight / 2 * sum(per_example) / len(TOKENS)

    h = 1e-6
    for index in [(0, 0), (3, 5), (7, 2)]:
        step = torch.zeros_like(base)
        step[index] = h
        numeric = (penalised(base + step) - penalised(base - step)) / (2 * h)
        assert math.isclose(float(analytic[index]), numeric, rel_tol=1e-5, abs_tol=1e-9)


def test_finite_difference_gradient_penalty_converges_to_the_double_backward_one():
    """The finite-difference step's gradient against the exact (double backward) one, less the clean gradient:
    the error of the penalty's part shrinks linearly with lambda, and the returned objective is J exactly."""
    model = tiny_model()
    obj = objective(model)
    model.zero_grad()
    obj.loss_fn(obj.embed()).backward()
    clean = gradients(model)
    errors = []
    for weight in (1e-4, 1e-5, 1e-6):
        model.zero_grad()
        exact_value = GradientPenalty(weight).backward(obj)
        exact = gradients(model)
        model.zero_grad()
        value = GradientPenalty(weight, method="finite_difference").backward(obj)
        errors.append(float((gradients(model) - exact).norm() / (exact - clean).norm()))
        assert math.isclose(float(value), float(exact_value), rel_tol=1e-12)
    assert errors[-1] < 1e-3
    for larger, smaller in zip(errors, errors[1:]):
        assert 0.05 < smaller / larger < 0.2  # lambda / 10 -> error / 10


def counting(model) -> tuple[Objective, list[int]]:
    inner = objective(model)
    calls = [0]

    def forward(embeds):
        calls[0] += 1
        return inner.forward(embeds)

    return Objective(inner.embed, forward, inner.loss, inner.tokens), calls


@pytest.mark.parametrize("name", list(strategies(PerturbStudyProtocol(), sequence_numel=48)))
def test_each_strategy_takes_as_many_forward_passes_as_it_claims_and_trains(name):
    """``passes`` against counted forwards (the gradient penalty's second pass is a backward: 1 forward)."""
    model = tiny_model()
    strategy = strategies(PerturbStudyProtocol(epsilon=EPS), sequence_numel=48)[name]
    optimizer_steps = [0]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    optimizer.register_step_post_hook(lambda *args: optimizer_steps.__setitem__(0, optimizer_steps[0] + 1))
    before = [p.detach().clone() for p in model.parameters()]
    obj, calls = counting(model)
    optimizer_steps[0] = 0
    value = strategy.step(obj, optimizer)
    assert math.isfinite(value)
    double_backward = isinstance(strategy, GradientPenalty) and strategy.method == "double_backward"
    assert calls[0] == (1 if double_backward else strategy.passes)
    assert optimizer_steps[0] == strategy.replays
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_freeat_replays_the_batch_and_carries_its_perturbation():
    model = tiny_model()
    strategy = FreeAT(EPS, replays=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay, so the carried delta is checkable
    strategy.step(objective(model), optimizer)
    carried = strategy._delta.clone()
    assert 0 < float(carried.flatten(1).norm(dim=1).max()) <= EPS * (1 + 1e-12)
    obj, _ = counting(model)
    first_loss = obj.loss_fn(obj.embed() + carried).item()
    losses = []
    inner_loss = obj.loss
    strategy.step(Objective(obj.embed, obj.forward, lambda out: losses.append(inner_loss(out)) or losses[-1]), optimizer)
    assert math.isclose(losses[0].item(), first_loss, rel_tol=1e-12)  # the next batch starts from the carried delta


def test_alum_is_clean_during_its_warm_up():
    model = tiny_model()
    obj = objective(model)
    model.zero_grad()
    obj.loss_fn(obj.embed()).backward()
    clean = gradients(model)
    model.zero_grad()
    strategy = ALUM(EPS, alpha=EPS, warmup_steps=1)
    strategy.backward(obj)
    assert torch.allclose(gradients(model), clean)
    model.zero_grad()
    strategy.backward(obj)
    assert not torch.allclose(gradients(model), clean)


def test_virtual_adversarial_step_raises_the_divergence_from_its_random_start():
    model = tiny_model()
    obj = objective(model)
    embeds = obj.embed().detach()
    target = obj.forward(embeds).detach()
    delta = 1e-3 * torch.randn(embeds.shape, generator=torch.Generator().manual_seed(0), dtype=embeds.dtype)
    gradient = embedding_gradient(lambda x: symmetric_kl(target, obj.forward(x)), embeds + delta)
    moved = ascend(delta, gradient, EPS, EPS)
    with torch.no_grad():
        assert symmetric_kl(target, obj.forward(embeds + moved)) > symmetric_kl(target, obj.forward(embeds + delta))
    assert SMART(EPS, EPS, steps=2).passes == 4 and YOPO(EPS, 0.1, 3, 5).passes == 3


@pytest.mark.parametrize("call, argument", [
    (lambda: fgm(lambda e: e.sum(), torch.zeros(2, 3, 4), 0.0), "epsilon"),
    (lambda: pgd(lambda e: e.sum(), torch.zeros(2, 3, 4), 1.0, 0.5, 2, norm="l1"), "norm"),
    (lambda: pgd(lambda e: e.sum(), torch.zeros(2, 3, 4), 1.0, 0.5, 0), "steps"),
    (lambda: pgd(lambda e: e.sum(), torch.zeros(2, 3, 4), 1.0, -0.5, 1), "alpha"),
    (lambda: fgm(lambda e: e.sum(dim=-1), torch.zeros(2, 3, 4), 1.0), "scalar"),
    (lambda: embedding_matrix_fgm(lambda e: e.sum(), torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), 1.0),
     "tokens"),
    (lambda: FreeLB(1.0, 0.5, steps=0), "steps"),
    (lambda: GradientPenalty(weight=-1.0), "weight"),
    (lambda: GradientPenalty(weight=1.0, method="exact"), "method"),
    (lambda: MatrixFGM(1.0).backward(Objective(lambda: torch.zeros(1, 2, 3), lambda e: e.sum(), lambda o: o)), "tokens"),
    (lambda: kl_divergence(torch.zeros(3), torch.zeros(4)), "logits_p"),
])
def test_bad_arguments_are_refused_by_name(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_embeddings_of_the_wrong_kind_are_refused_by_name():
    with pytest.raises(TypeError, match="embeds"):
        fgm(lambda e: e.sum(), torch.zeros(2, 3, dtype=torch.long), 1.0)



@pytest.mark.parametrize("adversary", [
    lambda loss_fn, e: fgsm(loss_fn, e, 0.1),
    lambda loss_fn, e: fgm(loss_fn, e, 0.1),
    lambda loss_fn, e: pgd(loss_fn, e, 0.1, 0.05, 2),
    lambda loss_fn, e: FGSM(0.1).backward(Objective(e.clone().requires_grad_, lambda x: x, loss_fn)),
], ids=["fgsm", "fgm", "pgd", "FGSM step"])
@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_non_finite_gradient_is_refused_not_made_into_a_perturbation(adversary, bad):
    """sign(NaN) is NaN, and so is NaN / ||NaN||: no adversary returns a usable perturbation."""
    with pytest.raises(ValueError, match="loss_fn's gradient .* must be finite"):
        adversary(lambda e: (e * bad).sum(), torch.ones(2, 3, 4))
