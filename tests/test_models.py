"""LSTMLanguageModel and TransformerEnergy against references.

References: explicit Python loops for the ``lm_nll`` energy, torch's own scaled_dot_product_attention
for SelfAttention, central finite differences in float64 for gradients, token-change experiments for
causality, and the paper's Table 1 for the sizes.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy
from advebm_teach.models import ENERGY_HEADS, SelfAttention
from conftest import energy_with_random_readout

TASK = AdditionTask(2)
HEADS = ["mean", "eos", "lm_nll"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py


def small_lstm(seed: int = 0) -> LSTMLanguageModel:
    torch.manual_seed(seed)
    return LSTMLanguageModel(TASK.vocab_size, embed_dim=16, hidden_dim=16).eval()


def small_transformer(seed: int = 0, head: str = "mean", **kwargs) -> TransformerEnergy:
    return energy_with_random_readout(TASK, seed, head, **kwargs)


def tokens(n: int = 4, seed: int = 0) -> torch.Tensor:
    return TASK.sample(n, seed=seed)


def random_tokens(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Arbitrary (mostly malformed) ids: the models must not depend on well-formedness."""
    return torch.randint(0, TASK.vocab_size, (n, TASK.seq_len), generator=torch.Generator().manual_seed(seed))


def nll_reference(model: TransformerEnergy, x: torch.Tensor, positions) -> list[float]:
    """sum_{t in positions} -log softmax(logits[t-1])[x_t], one explicit loop per sequence, from model(x)."""
    logits = model(x).double()
    out = []
    for i in range(x.shape[0]):
        total = 0.0
        for t in positions:
            probs = torch.softmax(logits[i, t - 1], dim=-1)
            total += -math.log(probs[x[i, t]].item())
        out.append(total)
    return out


def readout_reference(model: TransformerEnergy, x: torch.Tensor) -> list[float]:
    states = model.hidden_states(model.embed(x), causal=True)
    return model.energy_readout(states[:, -1]).squeeze(-1).tolist()


# ---------------------------------------------------------------- the embedding seam
@pytest.mark.parametrize("make", [small_lstm, small_transformer])
def test_forward_is_forward_embeds_of_embed(make):
    model = make()
    x = random_tokens()
    assert torch.equal(model(x), model.forward_embeds(model.embed(x)))
    assert model(x).shape == (4, TASK.seq_len, TASK.vocab_size)


@pytest.mark.parametrize("make", [small_lstm, small_transformer])
def test_embed_is_token_embedding_only(make):
    """embed is a table look-up: no positions, no scaling."""
    model = make()
    x = random_tokens()
    assert torch.equal(model.embed(x), model.token_embedding.weight[x])


@pytest.mark.parametrize("head", HEADS)
def test_energy_is_energy_from_embeds_of_embed(head):
    model = small_transformer(head=head)
    x = random_tokens()
    e = model.energy(x)
    assert e.shape == (4,)
    assert torch.equal(e, model.energy_from_embeds(model.embed(x), x))


# ---------------------------------------------------------------- causality
@pytest.mark.parametrize("make", [small_lstm, small_transformer])
@pytest.mark.parametrize("t", [0, 4, 9])
def test_language_models_are_causal(make, t):
    """Changing tokens after t leaves logits at positions <= t unchanged, and does change later ones."""
    model = make()
    x = tokens(3)
    y = x.clone()
    y[:, t + 1 :] = (x[:, t + 1 :] + 1 + torch.randint(0, 12, y[:, t + 1 :].shape, generator=torch.Generator().manual_seed(t))) % 14
    assert (y[:, t + 1 :] != x[:, t + 1 :]).all()
    with torch.no_grad():
        lx, ly = model(x), model(y)
    torch.testing.assert_close(lx[:, : t + 1], ly[:, : t + 1], rtol=0, atol=1e-6)
    assert (lx[:, t + 1 :] - ly[:, t + 1 :]).abs().max() > 1e-4


def test_transformer_bidirectional_states_see_the_future():
    """causal=False: position 0 changes when the last token changes; causal=True: it does not."""
    model = small_transformer()
    x = tokens(2)
    y = x.clone()
    y[:, -1] = 3  # <eos> -> a digit
    with torch.no_grad():
        ex, ey = model.embed(x), model.embed(y)
        bi_x, bi_y = model.hidden_states(ex, causal=False), model.hidden_states(ey, causal=False)
        ca_x, ca_y = model.hidden_states(ex, causal=True), model.hidden_states(ey, causal=True)
    assert (bi_x[:, 0] - bi_y[:, 0]).abs().max() > 1e-4
    torch.testing.assert_close(ca_x[:, :-1], ca_y[:, :-1], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- SelfAttention vs torch's SDPA
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_self_attention_matches_sdpa(causal, dropout):
    """Same q, k, v projections through F.scaled_dot_product_attention (eval mode: dropout is off)."""
    torch.manual_seed(0)
    attn = SelfAttention(d_model=24, n_heads=3, dropout=dropout).double().eval()
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    B, T, C, H = 2, 7, 24, 3
    q, k, v = attn.qkv(x).split(C, dim=2)
    q, k, v = (z.view(B, T, H, C // H).transpose(1, 2) for z in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    ref = attn.proj(ref.transpose(1, 2).reshape(B, T, C))
    with torch.no_grad():
        torch.testing.assert_close(attn(x, causal=causal), ref, rtol=0, atol=1e-12)
    # and the mask matters: causal and bidirectional results differ after position 0
    if causal:
        with torch.no_grad():
            assert (attn(x, causal=False)[:, 1:] - ref[:, 1:]).abs().max() > 1e-4


# ---------------------------------------------------------------- the lm_nll head
def test_lm_nll_head_matches_explicit_loop():
    """E(x) = sum over c positions of -log p(x_t | x_<t) + readout(h_last), valid and arbitrary sequences."""
    model = small_transformer(head="lm_nll", seed=1)
    for x in (tokens(3, seed=2), random_tokens(3, seed=3)):
        with torch.no_grad():
            got = model.energy(x).tolist()
            ref = [a + b for a, b in zip(nll_reference(model, x, TASK.c_positions), readout_reference(model, x))]
        assert got == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_lm_nll_with_zero_readout_is_the_nll():
    """With the read-out zeroed, the lm_nll energy is exactly the answer NLL."""
    model = small_transformer(head="lm_nll", seed=2)
    with torch.no_grad():
        model.energy_readout.weight.zero_()
        model.energy_readout.bias.zero_()
        x = tokens(4, seed=5)
        assert model.energy(x).tolist() == pytest.approx(nll_reference(model, x, TASK.c_positions), rel=1e-6, abs=1e-6)


def test_a_fresh_read_out_is_zero_so_lm_nll_starts_as_the_nll():
    """Untrained read-out: lm_nll is exactly the answer NLL (a residual starting at 0); mean/eos are 0."""
    torch.manual_seed(2)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=32, head="lm_nll").eval()
    x = tokens(4, seed=5)
    with torch.no_grad():
        assert model.energy(x).tolist() == pytest.approx(nll_reference(model, x, TASK.c_positions), rel=1e-6, abs=1e-6)
        for head in ("mean", "eos"):
            model.head = head
            assert torch.equal(model.energy(x), torch.zeros(4))


def test_lm_nll_default_answer_positions_cover_every_position_after_the_first():
    torch.manual_seed(3)
    model = TransformerEnergy(TASK.vocab_size, TASK.seq_len, d_model=16, n_heads=2, ff_dim=16, head="lm_nll").eval()
    x = tokens(2, seed=4)
    with torch.no_grad():
        ref = [a + b for a, b in zip(nll_reference(model, x, range(1, TASK.seq_len)), readout_reference(model, x))]
        assert model.energy(x).tolist() == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_for_task_answer_positions_are_the_c_digits():
    """for_task reads c at 2n+3 .. 3n+3 (n=2: 7, 8, 9)."""
    model = small_transformer(head="lm_nll")
    assert model.config["answer_positions"] == list(TASK.c_positions) == [7, 8, 9]
    assert model.config["seq_len"] == TASK.seq_len and model.config["vocab_size"] == 14


def test_lm_nll_energy_is_float64_accurate_in_double():
    """Cast to float64, the lm_nll energy matches a float64 reference to ~1e-12 (no silent float32 round trip)."""
    model = small_transformer(head="lm_nll", seed=1).double()
    x = tokens(3, seed=2)
    with torch.no_grad():
        got = model.energy(x)
        ref = [a + b for a, b in zip(nll_reference(model, x, TASK.c_positions), readout_reference(model, x))]
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx(ref, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- errors
def test_unknown_head_raises_in_constructor_and_setter():
    with pytest.raises(ValueError, match="head must be one of"):
        small_transformer(head="max")
    model = small_transformer(head="eos")
    with pytest.raises(ValueError, match="'sum'"):
        model.head = "sum"
    assert model.head == "eos" and model.config["head"] == "eos"


def test_lm_nll_needs_tokens():
    model = small_transformer(head="lm_nll")
    x = tokens(2)
    with pytest.raises(ValueError, match="needs the tokens"):
        model.energy_from_embeds(model.embed(x))
    with pytest.raises(ValueError, match="do not match"):
        model.energy_from_embeds(model.embed(x), x[:1])


@pytest.mark.parametrize("positions", [[], [0], [TASK.seq_len], [-1], [3, TASK.seq_len + 4]])
def test_bad_answer_positions(positions):
    with pytest.raises(ValueError, match="answer_positions"):
        TransformerEnergy(TASK.vocab_size, TASK.seq_len, d_model=16, n_heads=2, answer_positions=positions)


def test_d_model_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        TransformerEnergy(TASK.vocab_size, TASK.seq_len, d_model=130, n_heads=4)


def test_hidden_states_rejects_too_long_or_wrong_rank():
    model = small_transformer()
    with pytest.raises(ValueError, match="embeds must be"):
        model.hidden_states(torch.zeros(1, TASK.seq_len + 1, 16), causal=True)
    with pytest.raises(ValueError, match="embeds must have 3 dimensions"):
        model.hidden_states(torch.zeros(TASK.seq_len, 16), causal=True)


# ---------------------------------------------------------------- switching the head
def test_switching_head_keeps_parameters_and_changes_energy():
    model = small_transformer(head="mean", seed=4)
    x = random_tokens(3, seed=1)
    keys, energies = [], {}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for head in HEADS:
        model.head = head
        assert model.head == head and model.config["head"] == head
        keys.append(list(model.state_dict()))
        with torch.no_grad():
            energies[head] = model.energy(x)
    assert keys[0] == keys[1] == keys[2]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for h1, h2 in [("mean", "eos"), ("eos", "lm_nll"), ("mean", "lm_nll")]:
        assert (energies[h1] - energies[h2]).abs().max() > 1e-4
    fresh = small_transformer(head="eos", seed=4)
    assert list(fresh.state_dict()) == keys[0]
    with torch.no_grad():
        torch.testing.assert_close(fresh.energy(x), energies["eos"], rtol=0, atol=1e-6)
    assert set(ENERGY_HEADS) == set(HEADS)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("head", HEADS)
def test_double_backward_through_energy(head):
    """Gradient penalty ||dE/d embeds||^2: backward gives finite grads; for mean/eos it is 2-homogeneous in w."""
    model = small_transformer(head=head, seed=5).train()
    x = tokens(3)
    embeds = model.embed(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model.energy_from_embeds(embeds, x).sum(), embeds, create_graph=True)
    penalty = (g**2).sum()
    penalty.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(v).all() for v in grads.values())
    for name in ["blocks.0.attn.qkv.weight", "blocks.1.mlp.0.weight", "position_embedding.weight", "energy_readout.weight"]:
        assert name in grads and grads[name].abs().max() > 0, name
    # the bias shifts E but not dE/d embeds: no gradient of the penalty
    b = model.energy_readout.bias.grad
    assert b is None or torch.all(b == 0)
    if head in ("mean", "eos"):
        # E = w . h(embeds) + b, so the penalty is a quadratic form in w and w . dP/dw = 2P (Euler)
        w = model.energy_readout.weight
        assert (w * w.grad).sum().item() == pytest.approx(2 * penalty.item(), rel=1e-4)


@pytest.mark.parametrize("head", ["mean", "eos", "lm_nll"])
def test_energy_gradient_matches_central_difference(head, eps=1e-5, atol=1e-7):
    """dE/d embeds vs (E(e + eps) - E(e - eps)) / 2 eps in float64 on a few coordinates."""
    model = small_transformer(head=head, seed=6).double()
    x = tokens(2, seed=1)
    embeds = model.embed(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model.energy_from_embeds(embeds, x).sum(), embeds)
    coords = [(0, 1, 3), (1, 8, 11), (0, TASK.seq_len - 1, 0), (1, 0, 7)]
    checked_nonzero = 0
    with torch.no_grad():
        for i, t, d in coords:
            plus, minus = embeds.detach().clone(), embeds.detach().clone()
            plus[i, t, d] += eps
            minus[i, t, d] -= eps
            fd = (model.energy_from_embeds(plus, x)[i] - model.energy_from_embeds(minus, x)[i]).item() / (2 * eps)
            assert g[i, t, d].item() == pytest.approx(fd, rel=1e-6, abs=atol), (i, t, d)
            checked_nonzero += abs(fd) > 1e-3
    assert checked_nonzero >= 2


# ---------------------------------------------------------------- sizes from Table 1
def test_lstm_default_sizes_table_1():
    """P_LM: embedding 256, hidden 256, one LSTM layer, output over the 14 symbols."""
    model = LSTMLanguageModel(TASK.vocab_size)
    assert model.token_embedding.num_embeddings == 14
    assert model.token_embedding.embedding_dim == 256
    assert (model.lstm.input_size, model.lstm.hidden_size, model.lstm.num_layers) == (256, 256, 1)
    assert model.lstm.batch_first and not model.lstm.bidirectional
    assert (model.lm_head.in_features, model.lm_head.out_features) == (256, 14)


def test_transformer_default_sizes_table_1():
    """E_theta: d_model 128, 2 blocks, 4 heads."""
    model = TransformerEnergy.for_task(AdditionTask(10))
    assert model.token_embedding.embedding_dim == 128
    assert model.position_embedding.num_embeddings == AdditionTask(10).seq_len == 35
    assert len(model.blocks) == 2
    for block in model.blocks:
        assert block.attn.n_heads == 4
        assert (block.attn.qkv.in_features, block.attn.qkv.out_features) == (128, 384)
        assert block.ln_attn.normalized_shape == (128,)
    assert (model.lm_head.in_features, model.energy_readout.in_features, model.energy_readout.out_features) == (128, 128, 1)
