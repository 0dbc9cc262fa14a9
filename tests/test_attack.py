"""DiscreteAttack against the naive reference (advebm_teach.attack_reference.naive_attack), and its invariants.

The reference attacks one sequence at a time with batch-of-1 forwards and plain Python tie-breaking; the
batched attack must make the same choice at every step: identical tokens and positions, and the same
energies, saliencies and candidate energies (inf where inf). Random models are compared in float64, where
near-ties are vanishingly rare; the shipped pre-trained model in float32.
"""

import functools
import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advebm_teach import AdditionTask, TransformerEnergy, load_pretrained, make_task, sample_lm
from advebm_teach.attack import DiscreteAttack
from advebm_teach.attack_reference import naive_attack
from advebm_teach.trace import AttackTrace

TASK = AdditionTask(2)
SHIPPED_TASK = make_task("course")  # n = 5, seq_len 20
HEADS = ["mean", "eos", "lm_nll"]
OPTIONS = [
    dict(positions=p, include_current=c, tabu=t, candidates=k)
    for p, c, t, k in itertools.product(["digits", "answer"], [True, False], [False, True], [None, 3])
]
FIELDS = ("tokens", "energy", "position", "saliency", "candidate_energy")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py


# ---------------------------------------------------------------- models, sequences, helpers
@functools.lru_cache(maxsize=None)
def small_model(seed: int = 0, head: str = "mean") -> TransformerEnergy:
    """A small float64 model with a random read-out (a fresh read-out is zero), shared between tests."""
    torch.manual_seed(seed)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=32, head=head).eval()
    torch.nn.init.normal_(model.energy_readout.weight, std=0.5)
    torch.nn.init.normal_(model.energy_readout.bias, std=0.5)
    return model.double()


@functools.lru_cache(maxsize=None)
def shipped_model() -> TransformerEnergy:
    model = load_pretrained("energy_lm")
    model.head = "lm_nll"
    return model


@functools.lru_cache(maxsize=None)
def plm_samples(n: int, seed: int) -> torch.Tensor:
    return sample_lm(load_pretrained("plm"), SHIPPED_TASK, n, seed=seed)


def corrupted(task: AdditionTask, n: int, seed: int, p: float = 0.3) -> torch.Tensor:
    """Correct task samples with each digit replaced by a random digit with probability p (still well formed)."""
    g = torch.Generator().manual_seed(seed)
    x = task.sample(n, generator=g)
    replace = (torch.rand(x.shape, generator=g) < p) & task.digit_slots
    return torch.where(replace, torch.randint(0, 10, x.shape, generator=g), x)


def batched(model, task, x, steps, **options) -> AttackTrace:
    return DiscreteAttack(model, task, steps, **options).attack(x)


IMPLEMENTATIONS = {"batched": batched, "naive": naive_attack}


def assert_close_with_infs(got, ref, rtol, atol, what):
    assert got.shape == ref.shape and got.dtype == ref.dtype, (what, got.shape, ref.shape, got.dtype, ref.dtype)
    assert torch.equal(torch.isposinf(got), torch.isposinf(ref)), what
    assert torch.equal(torch.isneginf(got), torch.isneginf(ref)), what
    finite = torch.isfinite(ref)
    assert torch.isfinite(got[finite]).all(), what
    torch.testing.assert_close(got[finite], ref[finite], rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def assert_same_trace(got: AttackTrace, ref: AttackTrace, rtol: float, atol: float) -> None:
    got = AttackTrace(*(getattr(got, f).cpu() for f in FIELDS))
    ref = AttackTrace(*(getattr(ref, f).cpu() for f in FIELDS))
    assert got.tokens.shape == ref.tokens.shape and got.tokens.dtype == ref.tokens.dtype == torch.long
    assert got.position.shape == ref.position.shape and got.position.dtype == ref.position.dtype == torch.long
    for s in range(ref.steps + 1):  # report the first step that differs
        assert torch.equal(got.tokens[s], ref.tokens[s]), f"tokens differ after step {s}"
        if s < ref.steps:
            assert torch.equal(got.position[s], ref.position[s]), f"positions differ at step {s}"
    for name in ("energy", "saliency", "candidate_energy"):
        assert_close_with_infs(getattr(got, name), getattr(ref, name), rtol, atol, name)


def assert_identical(got: AttackTrace, ref: AttackTrace) -> None:
    for f in FIELDS:
        assert torch.equal(getattr(got, f), getattr(ref, f)), f


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- the central test: batched == naive
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("head", HEADS)
def test_batched_equals_naive_on_random_float64_models(head, options):
    model = small_model(seed=HEADS.index(head), head=head)
    x = torch.cat([corrupted(TASK, 2, seed=1), corrupted(TASK, 1, seed=2, p=0.9)])
    steps = 5
    ref = naive_attack(model, TASK, x, steps, **options)
    got = batched(model, TASK, x, steps, **options)
    assert_same_trace(got, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_batched_equals_naive_on_the_shipped_model(options):
    """The pre-trained energy model with its lm_nll head, on P_LM samples and corrupted task samples (float32)."""
    model = shipped_model()
    x = torch.cat([plm_samples(3, seed=0), corrupted(SHIPPED_TASK, 2, seed=3)])
    steps = 6
    ref = naive_attack(model, SHIPPED_TASK, x, steps, **options)
    got = batched(model, SHIPPED_TASK, x, steps, **options)
    assert_same_trace(got, ref, rtol=1e-4, atol=1e-4)


def test_batched_equals_naive_through_exhausted_tabu():
    """positions='answer' with tabu: sequences reach a local minimum (position -1) at different steps."""
    model = shipped_model()
    x = torch.cat([SHIPPED_TASK.sample(2, seed=4), corrupted(SHIPPED_TASK, 2, seed=5), plm_samples(2, seed=1)])
    options = dict(positions="answer", tabu=True)
    ref = naive_attack(model, SHIPPED_TASK, x, 9, **options)
    assert (ref.position == -1).any() and (ref.position[-1] != -1).any()  # some stuck, some still going
    assert_same_trace(batched(model, SHIPPED_TASK, x, 9, **options), ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- invariants (hypothesis)
MODELS = ["mean", "eos", "lm_nll", "shipped"]


def model_and_task(name: str, seed: int):
    if name == "shipped":
        return shipped_model(), SHIPPED_TASK
    return small_model(seed=seed % 2, head=name), TASK


def check_invariants(trace: AttackTrace, model, task: AdditionTask, x: torch.Tensor, steps: int, options: dict):
    """Everything the trace must satisfy whatever the model: see the AttackTrace docstring and the spec."""
    positions, k = options["positions"], options["candidates"]
    include_current, tabu = options["include_current"], options["tabu"]
    B, T, V = x.shape[0], task.seq_len, task.vocab_size
    dtype = next(model.parameters()).dtype
    tr = AttackTrace(*(getattr(trace, f).cpu() for f in FIELDS))
    # shapes and dtypes
    assert tr.tokens.shape == (steps + 1, B, T) and tr.tokens.dtype == torch.long
    assert tr.energy.shape == (steps + 1, B) and tr.energy.dtype == dtype
    assert tr.position.shape == (steps, B) and tr.position.dtype == torch.long
    assert tr.saliency.shape == (steps, B, T) and tr.saliency.dtype == dtype
    assert tr.candidate_energy.shape == (steps, B, V) and tr.candidate_energy.dtype == dtype
    assert torch.equal(tr.tokens[0], x)
    editable = task.editable_mask(x, positions)[0]
    with torch.no_grad():
        true_energy = torch.stack([model.energy(tr.tokens[s]).cpu() for s in range(steps + 1)])
    torch.testing.assert_close(tr.energy, true_energy, rtol=1e-4, atol=1e-4)
    for s in range(steps + 1):
        assert task.is_well_formed(tr.tokens[s]).all()
    assert torch.equal(tr.tokens[:, :, ~editable], x[None, :, ~editable].expand(steps + 1, -1, -1))

    for b in range(B):
        tabu_set: set[int] = set()
        for s in range(steps):
            before, after = tr.tokens[s, b], tr.tokens[s + 1, b]
            changed = (before != after).nonzero().flatten().tolist()
            assert len(changed) <= 1  # at most one position per step
            p = int(tr.position[s, b])
            sal, cand = tr.saliency[s, b], tr.candidate_energy[s, b]
            allowed = editable.clone()
            allowed[list(tabu_set)] = False
            if p == -1:  # nothing left to try
                assert tabu and not allowed.any()
                assert torch.isneginf(sal).all() and torch.isposinf(cand).all()
                assert not changed and tr.energy[s + 1, b] == tr.energy[s, b]
                continue
            assert allowed[p] and changed in ([], [p])
            assert torch.equal(torch.isneginf(sal), ~allowed) and torch.isfinite(sal[allowed]).all()
            assert sal[p] == sal.max() and int(sal.argmax()) == p  # first maximum
            evaluated = torch.isfinite(cand).nonzero().flatten().tolist()
            assert set(evaluated) <= set(range(10))  # digits only: format tokens stay +inf
            assert torch.isposinf(cand[10:]).all()
            current = int(before[p])
            assert (current in evaluated) == include_current
            expected = (9 if k is None else k) + include_current
            assert len(evaluated) == expected
            if include_current:
                assert cand[current] == tr.energy[s, b]  # the current token keeps its known energy
                assert tr.energy[s + 1, b] <= tr.energy[s, b]  # never rises
            new = int(after[p])
            assert cand[new] == cand.min() == tr.energy[s + 1, b]
            assert new == int(cand.argmin())  # ties toward the lower id
            if not include_current:
                assert changed == [p]
            if tabu:
                if changed:
                    tabu_set = set()
                else:
                    tabu_set.add(p)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(MODELS),
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 3),
    steps=st.integers(0, 6),
    positions=st.sampled_from(["digits", "answer"]),
    candidates=st.sampled_from([None, 1, 2, 5, 9]),
    include_current=st.booleans(),
    tabu=st.booleans(),
    train_mode=st.booleans(),
)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_attack_invariants(impl, name, seed, batch, steps, positions, candidates, include_current, tabu, train_mode):
    model, task = model_and_task(name, seed)
    x = corrupted(task, batch, seed=seed, p=0.4)
    options = dict(positions=positions, candidates=candidates, include_current=include_current, tabu=tabu)
    before = snapshot(model)
    model.train(train_mode)
    try:
        trace = IMPLEMENTATIONS[impl](model, task, x, steps, **options)
        assert model.training == train_mode and all(m.training == train_mode for m in model.modules())
        again = IMPLEMENTATIONS[impl](model, task, x, steps, **options)
    finally:
        model.eval()
    assert_untouched(model, before)
    assert_identical(trace, again)  # deterministic
    check_invariants(trace, model, task, x, steps, options)


# ---------------------------------------------------------------- specific behaviours
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_attack_runs_in_eval_mode(impl):
    """With dropout, a train-mode forward is random: the attack of a model in train mode is its eval-mode attack."""
    torch.manual_seed(11)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=32, head="eos", dropout=0.3).double()
    torch.nn.init.normal_(model.energy_readout.weight, std=0.5)
    x = corrupted(TASK, 3, seed=12)
    options = dict(candidates=3, tabu=True)
    reference = IMPLEMENTATIONS[impl](model.eval(), TASK, x, 4, **options)
    before = snapshot(model)
    trace = IMPLEMENTATIONS[impl](model.train(), TASK, x, 4, **options)
    assert model.training and all(m.training for m in model.modules())
    assert_untouched(model, before)
    assert_identical(trace, reference)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_steps_zero(impl):
    model = small_model(0, "eos")
    x = corrupted(TASK, 3, seed=6)
    trace = IMPLEMENTATIONS[impl](model, TASK, x, 0)
    assert trace.tokens.shape == (1, 3, TASK.seq_len) and torch.equal(trace.tokens[0].cpu(), x)
    assert trace.energy.shape == (1, 3) and trace.energy.dtype == torch.float64
    assert trace.position.shape == (0, 3) and trace.position.dtype == torch.long
    assert trace.saliency.shape == (0, 3, TASK.seq_len) and trace.saliency.dtype == torch.float64
    assert trace.candidate_energy.shape == (0, 3, TASK.vocab_size) and trace.candidate_energy.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(trace.energy[0].cpu(), model.energy(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(trace.final.cpu(), x) and trace.steps == 0


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", ["lm_nll", "shipped"])
def test_nine_candidates_is_exact_mode(impl, name):
    """candidates=9 keeps every alternative: the same search as candidates=None."""
    model, task = model_and_task(name, 1)
    x = corrupted(task, 3, seed=7)
    for include_current in (True, False):
        exact = IMPLEMENTATIONS[impl](model, task, x, 4, include_current=include_current)
        pruned = IMPLEMENTATIONS[impl](model, task, x, 4, candidates=9, include_current=include_current)
        assert_identical(pruned, exact)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_pruning_keeps_the_best_first_order_candidates(impl):
    """candidates=k evaluates the k alternatives of highest first-order score g . (E_v - e_x) at the chosen position."""
    model = small_model(0, "mean")
    x = corrupted(TASK, 3, seed=8)
    trace = IMPLEMENTATIONS[impl](model, TASK, x, 1, candidates=3, include_current=False)
    embeds = model.embed(x).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(-model.energy_from_embeds(embeds, x).sum(), embeds)
    table = model.token_embedding.weight.detach()
    for b in range(3):
        p = int(trace.position[0, b])
        current = int(x[b, p])
        score = {v: torch.dot(grad[b, p], table[v] - table[current]).item() for v in range(10) if v != current}
        best = sorted(score, key=lambda v: -score[v])[:3]
        assert torch.isfinite(trace.candidate_energy[0, b]).nonzero().flatten().tolist() == sorted(best)


def test_paper_attack_repeats_a_position_after_a_no_change_step():
    """tabu=False (the paper's Algorithm 1): when the current token is already the best at i*, the sequence
    does not change, so the next step sees the same gradient and picks the same position again, forever."""
    model = shipped_model()
    x = plm_samples(4, seed=0)
    trace = batched(model, SHIPPED_TASK, x, 6)
    ref = naive_attack(model, SHIPPED_TASK, x, 6)
    assert torch.equal(trace.tokens, ref.tokens.cpu()) and torch.equal(trace.position, ref.position.cpu())
    stalls = [
        (s, b)
        for s in range(5)
        for b in range(4)
        if not trace.changed[s, b] and trace.position[s + 1, b] == trace.position[s, b]
    ]
    assert stalls, "expected the paper's attack to stall on a shipped-model example"
    for s, b in stalls:  # once stalled, stalled for good
        assert not trace.changed[s:, b].any()
        assert (trace.position[s:, b] == trace.position[s, b]).all()


def test_a_greedy_attack_that_stalls_everywhere_stops_computing_and_still_matches_naive(monkeypatch):
    """The paper's attack on P_LM samples: every sequence stops moving within a few steps; the
    steps after that are neither computed nor stored, and the trace still equals the reference's."""
    from advebm_teach import attack as attack_module

    model, x, steps = shipped_model(), plm_samples(4, seed=0), 15
    real, passes = attack_module.energy_and_gradient, []
    monkeypatch.setattr(attack_module, "energy_and_gradient",
                        lambda *args, **kwargs: passes.append(1) or real(*args, **kwargs))
    trace = batched(model, SHIPPED_TASK, x, steps)
    assert_same_trace(trace, naive_attack(model, SHIPPED_TASK, x, steps), rtol=1e-4, atol=1e-4)
    last_move = int(trace.changed.any(dim=1).nonzero().max())
    assert len(passes) == last_move + 2 < steps  # the steps up to the last move, and one that moves nothing
    assert trace.recorded_steps == last_move + 2


def test_a_million_greedy_steps_store_only_the_steps_computed():
    """Chunks of 2 sequences stop at different steps; the trace stores the steps up to the longest
    chunk's and stands for all 10**6 (each chunk's last step repeats), read back as the reference."""
    model = small_model(0, "eos")
    x = corrupted(TASK, 6, seed=1)
    stops = [batched(model, TASK, x[i : i + 2], 50).recorded_steps for i in range(0, 6, 2)]
    assert len(set(stops)) > 1 and max(stops) < 30
    many = batched(model, TASK, x, 10**6, batch_size=2)
    assert many.steps == 10**6 and many.recorded_steps == max(stops)
    few = batched(model, TASK, x, 30, batch_size=2)
    assert few.recorded_steps == max(stops)
    assert_same_trace(few, naive_attack(model, TASK, x, 30), rtol=1e-9, atol=1e-10)
    assert torch.equal(many.final, few.final) and torch.equal(many.final, few.tokens[-1])
    changed = many.changed
    assert changed.shape == (10**6, 6) and torch.equal(changed[:30], few.changed)
    assert not changed[30:].any()


def test_a_trace_repeats_its_last_recorded_step():
    """From R recorded steps for S > R steps, every field reads as if the R-th had been copied."""
    full = batched(small_model(0, "eos"), TASK, corrupted(TASK, 3, seed=1), 12)
    recorded = full.recorded_steps
    assert recorded < 12 and not full.changed[recorded - 1 :].any()
    record = [getattr(full, name)[: recorded + (name in ("tokens", "energy"))] for name in FIELDS]
    short = AttackTrace(*record, steps=12)
    for name in FIELDS:
        assert torch.equal(getattr(short, name), getattr(full, name)), name
    assert short.steps == 12 and torch.equal(short.changed, full.changed)
    assert torch.equal(short.final, full.final)
    with pytest.raises(ValueError, match="steps"):
        AttackTrace(*record, steps=recorded - 1)
    with pytest.raises(ValueError, match=r"position has shape"):
        AttackTrace(*record[:2], full.position[:2], *record[3:])


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_tabu_skips_a_stalled_position_until_the_sequence_changes(impl):
    model = shipped_model()
    x = plm_samples(4, seed=0)
    steps = 8
    plain = IMPLEMENTATIONS[impl](model, SHIPPED_TASK, x, steps)
    trace = IMPLEMENTATIONS[impl](model, SHIPPED_TASK, x, steps, tabu=True)
    stalls, escaped = 0, False
    for b in range(4):
        tabu_set: set[int] = set()
        for s in range(steps):
            p = int(trace.position[s, b])
            assert p not in tabu_set and torch.isneginf(trace.saliency[s, b, list(tabu_set)]).all()
            if trace.changed[s, b]:
                tabu_set = set()
            else:
                stalls += 1
                tabu_set.add(p)
        escaped |= bool(trace.energy[-1, b] < plain.energy[-1, b])
    assert stalls > 0 and escaped  # the example exercises tabu, and tabu gets further than the paper's attack


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_a_local_minimum_gives_position_minus_one(impl):
    """Correct sums under the shipped model: no single c digit lowers the energy, so with tabu every answer
    position fails once (n + 1 steps), then there is nothing left to try."""
    model = shipped_model()
    x = SHIPPED_TASK.sample(2, seed=9)
    n_answer = len(SHIPPED_TASK.c_positions)
    trace = IMPLEMENTATIONS[impl](model, SHIPPED_TASK, x, n_answer + 2, positions="answer", tabu=True)
    assert not trace.changed.any()
    assert sorted(trace.position[:n_answer, 0].tolist()) == list(SHIPPED_TASK.c_positions)
    assert (trace.position[n_answer:] == -1).all()
    assert torch.isneginf(trace.saliency[n_answer:]).all() and torch.isposinf(trace.candidate_energy[n_answer:]).all()
    assert (trace.energy == trace.energy[0]).all()


# ---------------------------------------------------------------- errors
def call(impl, model, task, x, steps=2, **options):
    return IMPLEMENTATIONS[impl](model, task, x, steps, **options)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=1.5), TypeError, "steps"),
        (dict(steps="3"), TypeError, "steps"),
        (dict(positions="all"), ValueError, "positions"),
        (dict(positions="c"), ValueError, "positions"),
        (dict(candidates=0), ValueError, "candidates"),
        (dict(candidates=10), ValueError, "candidates"),
        (dict(candidates=-2), ValueError, "candidates"),
        (dict(candidates=2.5), TypeError, "candidates"),
    ],
)
def test_bad_options_raise(impl, change, error, match):
    model = small_model(0, "mean")
    with pytest.raises(error, match=match):
        call(impl, model, TASK, corrupted(TASK, 2, seed=0), **change)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_bad_tokens_raise(impl):
    model = small_model(0, "mean")
    x = corrupted(TASK, 2, seed=0)
    malformed = x.clone()
    malformed[1, TASK.plus_position] = 3  # a digit where '+' goes
    with pytest.raises(ValueError, match="well.formed"):
        call(impl, model, TASK, malformed)
    no_digit = x.clone()
    no_digit[0, TASK.c_positions[0]] = TASK.token_id["="]  # a format token in a digit slot
    with pytest.raises(ValueError, match="well.formed"):
        call(impl, model, TASK, no_digit)
    with pytest.raises(ValueError, match="shape|length|batch"):
        call(impl, model, TASK, x[0])  # (T,): one sequence, not a batch
    with pytest.raises(ValueError, match="shape|length"):
        call(impl, model, TASK, x[None])  # (1, B, T)
    with pytest.raises(ValueError, match="shape|length"):
        call(impl, model, TASK, x[:, :-1])  # too short
    with pytest.raises(ValueError, match="shape|length"):
        call(impl, model, TASK, SHIPPED_TASK.sample(2, seed=0))  # another task's sequences
