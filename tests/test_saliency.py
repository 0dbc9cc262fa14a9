"""token_saliency and first_order_scores against references.

References: central finite differences of -E in float64 (perturbing single embedding coordinates), a hand
loop that differentiates one position's embedding at a time, an explicit triple loop for the first-order
scores, and the true energy change of single substitutions (the first-order scores predict it).
"""

import pytest
import torch

from advebm_teach import AdditionTask, TransformerEnergy
from advebm_teach.saliency import first_order_scores, token_saliency
from conftest import energy_with_random_readout

TASK = AdditionTask(2)
HEADS = ["mean", "eos", "lm_nll"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py


def small_transformer(seed: int = 0, head: str = "mean", **kwargs) -> TransformerEnergy:
    return energy_with_random_readout(TASK, seed, head, **kwargs)


def corrupted_tokens(n: int = 3, seed: int = 0) -> torch.Tensor:
    """Task samples with about half of their digits replaced by random digits (still well formed)."""
    g = torch.Generator().manual_seed(seed)
    x = TASK.sample(n, generator=g)
    replace = (torch.rand(x.shape, generator=g) < 0.5) & TASK.digit_slots
    return torch.where(replace, torch.randint(0, 10, x.shape, generator=g), x)


def negative_energy_gradient(model, x):
    """grad_e (-E(x)) ``(B, T, D)`` and e, from autograd on the whole batch (the definition)."""
    embeds = model.embed(x).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(-model.energy_from_embeds(embeds, x).sum(), embeds)
    return grad, embeds.detach()


def per_position_gradients(model, x):
    """``(B, T, D)``: for each position i separately, grad of -E w.r.t. e_i alone (the others held fixed)."""
    base = model.embed(x).detach()
    out = torch.empty_like(base)
    for i in range(x.shape[1]):
        e_i = base[:, i].clone().requires_grad_(True)
        embeds = torch.cat([base[:, :i], e_i[:, None], base[:, i + 1 :]], dim=1)
        (grad,) = torch.autograd.grad(-model.energy_from_embeds(embeds, x).sum(), e_i)
        out[:, i] = grad
    return out


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- token_saliency
@pytest.mark.parametrize("head", HEADS)
def test_saliency_matches_central_differences_float64(head, eps=1e-6):
    """s_i = sum_d |d(-E)/d e_id|, each derivative a central difference of -E in float64."""
    model = small_transformer(seed=1, head=head).double()
    x = corrupted_tokens(2, seed=3)
    got = token_saliency(model, x)
    T, D = TASK.seq_len, model.token_embedding.embedding_dim
    with torch.no_grad():
        for b in range(x.shape[0]):
            e = model.embed(x[b : b + 1]).detach()
            plus, minus = e.repeat(T * D, 1, 1), e.repeat(T * D, 1, 1)
            for i in range(T):
                for d in range(D):
                    plus[i * D + d, i, d] += eps
                    minus[i * D + d, i, d] -= eps
            targets = x[b : b + 1].repeat(T * D, 1)
            fd = (model.energy_from_embeds(minus, targets) - model.energy_from_embeds(plus, targets)) / (2 * eps)
            reference = fd.view(T, D).abs().sum(dim=1)
            torch.testing.assert_close(got[b], reference, rtol=1e-6, atol=1e-8)
    assert (got > 1e-3).sum() >= T  # the comparison is not between zeros


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_saliency_matches_hand_loop_over_positions(head, norm):
    """One position at a time: ||grad_{e_i}(-E)||_1 (default) or _2, in float32."""
    model = small_transformer(seed=2, head=head)
    x = corrupted_tokens(3, seed=4)
    grads = per_position_gradients(model, x)
    reference = grads.abs().sum(dim=-1) if norm == "l1" else grads.pow(2).sum(dim=-1).sqrt()
    got = token_saliency(model, x) if norm == "l1" else token_saliency(model, x, norm="l2")
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
    if norm == "l1":
        torch.testing.assert_close(token_saliency(model, x, norm="l1"), got, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saliency_shape_dtype_and_finiteness(dtype):
    model = small_transformer(seed=3, head="eos").to(dtype)
    x = corrupted_tokens(4, seed=5)
    s = token_saliency(model, x)
    assert s.shape == (4, TASK.seq_len) and s.dtype == dtype
    assert torch.isfinite(s).all() and (s >= 0).all()
    s2 = token_saliency(model, x, norm="l2")
    assert s2.shape == (4, TASK.seq_len) and s2.dtype == dtype
    assert (s2 <= s * (1 + 1e-6)).all()  # ||g||_2 <= ||g||_1
    one = token_saliency(model, x[:1])
    assert one.shape == (1, TASK.seq_len)


@pytest.mark.parametrize("head", HEADS)
def test_saliency_mask_gives_minus_inf_exactly_where_masked(head):
    model = small_transformer(seed=4, head=head)
    x = corrupted_tokens(3, seed=6)
    full = token_saliency(model, x)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    mask[0] = False  # a whole row masked
    mask[1] = True  # a whole row allowed
    got = token_saliency(model, x, mask=mask)
    assert got.shape == full.shape and got.dtype == full.dtype
    assert torch.equal(torch.isneginf(got), ~mask)
    assert torch.isfinite(got[mask]).all()
    torch.testing.assert_close(got[mask], full[mask], rtol=1e-6, atol=1e-7)
    # the attack's use: the task's editable mask
    digits = token_saliency(model, x, mask=TASK.editable_mask(x, "answer"))
    assert torch.equal(torch.isfinite(digits), TASK.editable_mask(x, "answer"))


def test_saliency_is_zero_where_energy_ignores_the_embedding():
    """lm_nll with a zero read-out is the answer NLL: no answer token is predicted from the last c digit
    or from <eos>, so causal attention gives their embeddings exactly zero gradient."""
    model = small_transformer(seed=5, head="lm_nll")
    with torch.no_grad():
        model.energy_readout.weight.zero_()
    s = token_saliency(model, corrupted_tokens(2, seed=7))
    assert torch.equal(s[:, -2:], torch.zeros(2, 2))
    assert (s[:, 1:-2] > 0).all()


def test_saliency_runs_in_eval_mode_and_restores_the_mode():
    """With dropout, train mode would make the gradient random: the saliency is the eval-mode one."""
    model = small_transformer(seed=6, head="mean", dropout=0.3)
    x = corrupted_tokens(3, seed=8)
    model.eval()
    reference = per_position_gradients(model, x).abs().sum(dim=-1)
    model.train()
    before = snapshot(model)
    for _ in range(2):
        torch.testing.assert_close(token_saliency(model, x), reference, rtol=1e-5, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())
    assert_untouched(model, before)
    model.eval()
    token_saliency(model, x)
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("head", HEADS)
def test_saliency_leaves_parameters_and_grads_alone(head):
    model = small_transformer(seed=7, head=head)
    before = snapshot(model)
    requires = [p.requires_grad for p in model.parameters()]
    token_saliency(model, corrupted_tokens(2, seed=9), mask=TASK.editable_mask(corrupted_tokens(2), "digits"))
    assert_untouched(model, before)
    assert [p.requires_grad for p in model.parameters()] == requires


# ---------------------------------------------------------------- first_order_scores
def target_term_reference(model, x) -> torch.Tensor:
    """(B, T, V): log p(v | x_<i) - log p(x_i | x_<i) at the answer positions of an lm_nll model, else 0.

    An lm_nll energy reads x_i also as the target of its NLL, linearly in the one-hot x_i, so this part of
    the one-hot gradient is the exact effect of the target change.
    """
    B, T = x.shape
    term = torch.zeros(B, T, TASK.vocab_size, dtype=torch.float64)
    if model.head != "lm_nll":
        return term
    with torch.no_grad():
        log_probs = torch.log_softmax(model(x).double(), dim=-1)
    for b in range(B):
        for i in TASK.c_positions:
            for v in range(TASK.vocab_size):
                term[b, i, v] = log_probs[b, i - 1, v].item() - log_probs[b, i - 1, x[b, i]].item()
    return term


@pytest.mark.parametrize("head", HEADS)
def test_first_order_scores_match_triple_loop(head):
    """score[b, i, v] = g_bi . (E_v - e_{x_bi}) + the target term, with g = grad_e(-E) and E_v the embedding of v."""
    model = small_transformer(seed=8, head=head).double()
    x = corrupted_tokens(2, seed=10)
    grad, _ = negative_energy_gradient(model, x)
    V = TASK.vocab_size
    with torch.no_grad():
        table = model.embed(torch.arange(V))
    got = first_order_scores(model, x)
    assert got.shape == (2, TASK.seq_len, V) and got.dtype == torch.float64
    reference = torch.empty(2, TASK.seq_len, V, dtype=torch.float64)
    for b in range(2):
        for i in range(TASK.seq_len):
            for v in range(V):
                reference[b, i, v] = sum(
                    grad[b, i, d].item() * (table[v, d].item() - table[x[b, i], d].item()) for d in range(table.shape[1])
                )
    reference += target_term_reference(model, x)
    torch.testing.assert_close(got, reference, rtol=1e-9, atol=1e-12)
    # the current token predicts no change
    current = got.gather(-1, x[..., None]).squeeze(-1)
    torch.testing.assert_close(current, torch.zeros_like(current), rtol=0, atol=1e-12)


def test_first_order_scores_float32_shape_mode_and_parameters():
    model = small_transformer(seed=9, head="lm_nll", dropout=0.3).train()
    x = corrupted_tokens(3, seed=11)
    before = snapshot(model)
    got = first_order_scores(model, x)
    assert got.shape == (3, TASK.seq_len, TASK.vocab_size) and got.dtype == torch.float32
    assert model.training and all(m.training for m in model.modules())
    assert_untouched(model, before)
    model.eval()
    grad, _ = negative_energy_gradient(model, x)
    reference = torch.einsum("btd,vd->btv", grad, model.token_embedding.weight.detach()) - (
        grad * model.embed(x).detach()
    ).sum(-1, keepdim=True) + target_term_reference(model, x).float()
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-5)  # eval mode despite dropout


@pytest.mark.parametrize("head", HEADS)
def test_first_order_scores_predict_the_energy_decrease(head):
    """Scale the embedding table down so that E_v - e_x is small: the first-order score approaches the true
    decrease -E(x with v at i) + E(x), its relative error shrinking with the scale (first order: O(scale)).
    For lm_nll the answer tokens are also NLL targets; that part of the score is exact, so every position counts.
    """
    x = corrupted_tokens(2, seed=12)
    T, V = TASK.seq_len, TASK.vocab_size
    positions = list(range(T))
    errors = []
    for scale in (1e-1, 1e-2, 1e-3):
        model = small_transformer(seed=10, head=head).double()
        with torch.no_grad():
            model.token_embedding.weight.mul_(scale)
        predicted = first_order_scores(model, x)[:, positions]
        with torch.no_grad():
            base = model.energy(x)
            true = torch.empty(2, len(positions), V, dtype=torch.float64)
            for k, i in enumerate(positions):
                substituted = x[:, None, :].repeat(1, V, 1)
                substituted[:, :, i] = torch.arange(V)
                true[:, k] = base[:, None] - model.energy(substituted.view(-1, T)).view(2, V)
        assert true.abs().max() > 0
        errors.append(((predicted - true).norm() / true.norm()).item())
    assert errors[0] > 3 * errors[1] > 9 * errors[2], errors
    assert errors[2] < 1e-2, errors
