"""Every public function refuses a bad argument with a clear error (issue 14, item 5).

``CASES`` is a table of bad calls, one row per (module.function, what is wrong): the call, the
exception it must raise (``TypeError`` for an argument of the wrong kind, ``ValueError`` for one
out of range) and a phrase its message must contain (the argument's name, or what it names). A row
passes when the call raises exactly that: a clear error. ``outcome_table()`` runs the whole table
and counts, per module, the clear errors and anything else (another exception, a message without
the phrase, no error at all); print it with

    ADVEBM_FAST=1 python -m pytest tests/test_bad_inputs.py -q -s -p no:randomly -k covers

Models are tiny (d_model 8) and shared, so the table runs in seconds.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch

from advebm_teach import attack_reference, perturb, perturb_steps, saliency, sampling
from advebm_teach.toy import ebm as toy
from advebm_teach.toy import estimators
from advebm_teach.attack import DiscreteAttack, attack_generate
from advebm_teach.config import seed_everything
from advebm_teach.models import LSTMLanguageModel, TransformerEnergy
from advebm_teach.prefix_cache import energy_of_substitutions
from advebm_teach.task import AdditionTask, check_task
from advebm_teach.trace import AttackTrace
from advebm_teach.teaching.widgets import AttackStepper, PerturbationExplorer

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.py

VE, TE = ValueError, TypeError  # out of range; the wrong kind


@dataclass(frozen=True)
class Case:
    """One bad call: ``id`` is ``module.function:what is wrong``."""

    id: str
    call: Callable[[], Any]
    error: type[Exception]
    phrase: str

    @property
    def module(self) -> str:
        return self.id.split(".")[0]


CASES: list[Case] = []
Row = tuple[str, Callable[[], Any], type[Exception], str]


def table(where: str, rows: list[Row]) -> None:
    """Add ``rows`` (what is wrong, call, error, phrase) of ``where`` (``module.function``); in a
    row's ``"function: what"``, the function is appended to ``where``."""
    for what, call, error, phrase in rows:
        function, _, wrong = what.rpartition(": ")
        name = f"{where}.{function}" if function else where
        CASES.append(Case(f"{name}:{wrong}", call, error, phrase))


# ---------------------------------------------------------------------------- tiny shared inputs
TASK = AdditionTask(2)  # T = 11, V = 14
OTHER_TASK = AdditionTask(3)  # T = 14, the same vocabulary
torch.manual_seed(0)
LM = LSTMLanguageModel(TASK.vocab_size, embed_dim=8, hidden_dim=8)
WIDE_LM = LSTMLanguageModel(20, embed_dim=8, hidden_dim=8)  # another vocabulary
SMALL = dict(d_model=8, n_heads=2, ff_dim=8)
HEADS = ("mean", "eos", "lm_nll")
ENERGY = {head: TransformerEnergy.for_task(TASK, head=head, **SMALL) for head in HEADS}
E = ENERGY["lm_nll"]
LONG_ENERGY = TransformerEnergy.for_task(OTHER_TASK, **SMALL)  # seq_len 14
WIDE_ENERGY = TransformerEnergy(20, TASK.seq_len, **SMALL)  # vocab_size 20
X = TASK.sample(3, seed=0)
EMBEDS = E.embed(X).detach()
OTHER_X = OTHER_TASK.sample(2, seed=0)
MALFORMED = X.clone()
MALFORMED[0, TASK.plus_position] = 3


def with_id(tokens: torch.Tensor, value: int) -> torch.Tensor:
    bad = tokens.clone()
    bad[0, 1] = value
    return bad


def non_finite_energy(value: float) -> TransformerEnergy:
    """A model whose every energy is ``value`` (its read-out bias)."""
    model = TransformerEnergy.for_task(TASK, **SMALL)
    torch.nn.init.constant_(model.energy_readout.bias, value)
    return model


# (what is wrong, value, error) for token ids (B, T) of TASK
BAD_TOKENS = [
    ("float ids", X.float(), TE),
    ("bool ids", X > 5, TE),
    ("id = vocab_size", with_id(X, TASK.vocab_size), VE),
    ("negative id", with_id(X, -1), VE),
    ("too short", X[:, :-1], VE),
    ("another task's length", OTHER_X, VE),
    ("a list", X.tolist(), TE),
]
ANY_LENGTH = [bad for bad in BAD_TOKENS if bad[0] not in ("too short", "another task's length")]
# seeds are ints in [0, 2**32)
BAD_SEEDS = [("a string", "1", TE), ("a float", 1.5, TE), ("a bool", True, TE),
             ("-1", -1, VE), ("2**32", 2**32, VE), ("2**64", 2**64, VE)]
# counts n >= 1
BAD_COUNTS = [("0", 0, VE), ("-1", -1, VE), ("a float", 2.0, TE), ("a bool", True, TE),
              ("a string", "3", TE)]
# sizes n >= 0
BAD_SIZES = [("-1", -1, VE), ("a float", 2.0, TE), ("a bool", True, TE)]
# positive finite numbers
BAD_POSITIVES = [("0", 0.0, VE), ("negative", -0.1, VE), ("NaN", math.nan, VE),
                 ("inf", math.inf, VE), ("a string", "0.1", TE), ("a bool", True, TE)]

# ---------------------------------------------------------------------------- task
table("task.AdditionTask", [
    (f"n_digits {what}", lambda n=n: AdditionTask(n), error, "n_digits")
    for what, n, error in [("0", 0, VE), ("-1", -1, VE), ("a float", 2.5, TE),
                           ("a bool", True, TE), ("a string", "3", TE), ("None", None, TE)]])
table("task.AdditionTask.encode", [
    ("an int", lambda: TASK.encode(5), TE, "text"),
    ("an empty list", lambda: TASK.encode([]), VE, "text"),
    ("a list with an int", lambda: TASK.encode(["12+39=051", 5]), TE, "text"),
    ("wrong length", lambda: TASK.encode("1+2=03"), VE, "text"),
    ("unknown symbol", lambda: TASK.encode("12+39=05x"), VE, "text"),
])
for method in ("check_tokens", "decode", "is_well_formed", "digit_correct", "correctness",
               "editable_mask"):
    table(f"task.AdditionTask.{method}", [
        (what, lambda m=method, b=bad: getattr(TASK, m)(b), error, "tokens")
        for what, bad, error in BAD_TOKENS])
DIGITS, C = torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)
table("task.AdditionTask", [
    ("decode: strip a string", lambda: TASK.decode(X, strip="yes"), TE, "strip"),
    ("editable_mask: unknown positions", lambda: TASK.editable_mask(X, "all"), VE, "positions"),
    *[(f"sample: n {what}", lambda n=n: TASK.sample(n, seed=0), error, "n must")
      for what, n, error in BAD_SIZES],
    *[(f"sample: seed {what}", lambda s=seed: TASK.sample(2, seed=s), error, "seed")
      for what, seed, error in BAD_SEEDS],
    ("sample: seed and generator", lambda: TASK.sample(2, seed=1, generator=torch.Generator()), VE,
     "seed or generator"),
    ("sample: generator an int", lambda: TASK.sample(2, generator=5), TE, "generator"),
    ("assemble: float digits", lambda: TASK.assemble(DIGITS.float(), DIGITS, C), TE, "a must"),
    ("assemble: a digit 10", lambda: TASK.assemble(DIGITS + 10, DIGITS, C), VE, "a must"),
    ("assemble: c too short", lambda: TASK.assemble(DIGITS, DIGITS, DIGITS), VE, "c must"),
    ("assemble: rows differ", lambda: TASK.assemble(DIGITS, DIGITS[:1], C), VE, "rows"),
    ("add_digits: shapes differ", lambda: AdditionTask.add_digits(DIGITS, DIGITS[:, :1]), VE,
     "same shape"),
    ("add_digits: negative digit", lambda: AdditionTask.add_digits(DIGITS - 1, DIGITS),
     VE, "a must"),
    ("check_model: another vocabulary", lambda: TASK.check_model("lm", WIDE_LM),
     VE, "vocab_size=20"),
    ("check_model: another length", lambda: TASK.check_model("m", LONG_ENERGY), VE, "seq_len=14"),
    ("check_model: not a model", lambda: TASK.check_model("lm", object()), TE, "lm"),
])
table("task.check_task", [("an int", lambda: check_task(5), TE, "task")])

# ---------------------------------------------------------------------------- models
table("models.LSTMLanguageModel", [
    (what, lambda k=kwargs: LSTMLanguageModel(**k), error, phrase)
    for what, kwargs, error, phrase in [
        ("vocab_size 0", dict(vocab_size=0), VE, "vocab_size"),
        ("vocab_size 1", dict(vocab_size=1), VE, "vocab_size"),
        ("vocab_size a float", dict(vocab_size=14.0), TE, "vocab_size"),
        ("embed_dim 0", dict(vocab_size=14, embed_dim=0), VE, "embed_dim"),
        ("hidden_dim a string", dict(vocab_size=14, hidden_dim="8"), TE, "hidden_dim"),
    ]])
table("models.TransformerEnergy", [
    (what, lambda k=kwargs: TransformerEnergy(**{"vocab_size": 14, "seq_len": 11, **SMALL, **k}),
     error, phrase)
    for what, kwargs, error, phrase in [
        ("n_heads 0", dict(n_heads=0), VE, "n_heads"),
        ("n_heads not dividing d_model", dict(d_model=10, n_heads=4), VE, "d_model=10"),
        ("d_model 0", dict(d_model=0), VE, "d_model"),
        ("n_layers 0", dict(n_layers=0), VE, "n_layers"),
        ("ff_dim -1", dict(ff_dim=-1), VE, "ff_dim"),
        ("dropout 1", dict(dropout=1.0), VE, "dropout"),
        ("dropout NaN", dict(dropout=math.nan), VE, "dropout"),
        ("dropout a string", dict(dropout="0.1"), TE, "dropout"),
        ("unknown head", dict(head="max"), VE, "head"),
        ("seq_len 1", dict(seq_len=1), VE, "seq_len"),
        ("vocab_size a bool", dict(vocab_size=True), TE, "vocab_size"),
        ("answer position 0", dict(answer_positions=[0]), VE, "answer_positions"),
        ("answer position past the end", dict(answer_positions=[11]), VE, "answer_positions"),
        ("answer positions a string", dict(answer_positions="12"), TE, "answer_positions"),
        ("answer position a float", dict(answer_positions=[2.0]), TE, "answer_positions"),
    ]])
for what, bad, error in ANY_LENGTH:  # embed reads any length
    table("models", [
        (f"LSTMLanguageModel.embed: {what}", lambda b=bad: LM.embed(b), error, "tokens"),
        (f"TransformerEnergy.embed: {what}", lambda b=bad: E.embed(b), error, "tokens")])
for head, model in ENERGY.items():
    table(f"models.TransformerEnergy.energy[{head}]", [
        (what, lambda m=model, b=bad: m.energy(b), error, "tokens")
        for what, bad, error in BAD_TOKENS])
    table(f"models.TransformerEnergy.energy_from_embeds[{head}]", [
        ("too short", lambda m=model: m.energy_from_embeds(EMBEDS[:, :-1], X[:, :-1]),
         VE, "embeds"),
        ("ids out of range", lambda m=model: m.energy_from_embeds(EMBEDS, with_id(X, 99)), VE,
         "tokens"),
    ])
table("models.TransformerEnergy", [
    ("energy_from_embeds: lm_nll without tokens", lambda: E.energy_from_embeds(EMBEDS),
     VE, "tokens"),
    ("energy_from_embeds: one-hot of another vocabulary",
     lambda: E.energy_from_embeds(EMBEDS, torch.zeros(3, 11, 20)), VE, "tokens"),
    ("energy_from_embeds: embeds of ids", lambda: E.energy_from_embeds(X, X), TE, "embeds"),
    ("energy_from_embeds: embeds too wide", lambda: E.energy_from_embeds(torch.zeros(3, 11, 9), X),
     VE, "embeds"),
    ("for_task: not a task", lambda: TransformerEnergy.for_task(5), TE, "task"),
    ("head: unknown head", lambda: setattr(E, "head", "sum"), VE, "head"),
    ("hidden_states: too long", lambda: E.hidden_states(torch.zeros(1, 12, 8), True),
     VE, "embeds"),
    ("hidden_states: causal a string", lambda: E.hidden_states(EMBEDS, "yes"), TE, "causal"),
    ("next_token_logits: a batch of sequences", lambda: E.next_token_logits(X), VE, "tokens"),
    ("next_token_logits: past seq_len", lambda: E.next_token_logits(X[:, 0], (11, None)), VE,
     "seq_len=11"),
])
table("prefix_cache.energy_of_substitutions", [
    ("energy_of_substitutions: no cache",
     lambda: energy_of_substitutions(E, None, torch.ones(3, dtype=torch.long), X[:, :2]), TE,
     "cache"),
    ("energy_of_substitutions: a bidirectional read-out",
     lambda: energy_of_substitutions(ENERGY["mean"], None, torch.ones(3, dtype=torch.long), X[:, :2]), VE,
     "model must be a TransformerEnergy with a causal read-out"),
])
table("models.LSTMLanguageModel", [
    ("next_token_logits: id out of range", lambda: LM.next_token_logits(X[:, 0] + 20),
     VE, "tokens"),
    ("forward_embeds: embeds of ids", lambda: LM.forward_embeds(X), TE, "embeds"),
    ("forward_embeds: embeds too wide", lambda: LM.forward_embeds(torch.zeros(1, 3, 9)), VE,
     "embeds"),
])

# ---------------------------------------------------------------------------- saliency
for what, bad, error in BAD_TOKENS:
    table("saliency", [
        (f"token_saliency: {what}", lambda b=bad: saliency.token_saliency(E, b), error, "tokens"),
        (f"first_order_scores: {what}", lambda b=bad: saliency.first_order_scores(E, b), error,
         "tokens"),
    ])
table("saliency", [
    ("token_saliency: a language model", lambda: saliency.token_saliency(LM, X),
     TE, "energy_model"),
    ("token_saliency: mask of ints", lambda: saliency.token_saliency(E, X, mask=X), TE, "mask"),
    ("token_saliency: mask of another shape",
     lambda: saliency.token_saliency(E, X, mask=torch.ones(3, 5, dtype=torch.bool)), VE, "mask"),
    ("token_saliency: unknown norm", lambda: saliency.token_saliency(E, X, norm="l3"), VE, "norm"),
    ("first_order_scores: not a model", lambda: saliency.first_order_scores(object(), X), TE,
     "energy_model"),
    ("saliency_from_gradient: gradient of ints",
     lambda: saliency.saliency_from_gradient(X[..., None]), TE, "gradient"),
    ("saliency_from_gradient: gradient (B, T)", lambda: saliency.saliency_from_gradient(X.float()),
     VE, "gradient"),
    ("embedding_table: vocab_size 0", lambda: saliency.embedding_table(E, 0, "cpu"), VE,
     "vocab_size"),
])


# ------------------------------------------------------------------------- attack, its reference
def discrete_attack(model: Any = E, task: Any = TASK, steps: Any = 1, tokens: Any = X,
                    **options: Any) -> AttackTrace:
    return DiscreteAttack(model, task, steps, **options).attack(tokens)


def naive(model: Any = E, task: Any = TASK, steps: Any = 1, tokens: Any = X,
          **options: Any) -> AttackTrace:
    return attack_reference.naive_attack(model, task, tokens, steps, **options)


BAD_ATTACKS = [
    *[(f"steps {what}", dict(steps=steps), error, "steps") for what, steps, error in
      [("-1", -1, VE), ("a float", 1.5, TE), ("a string", "3", TE), ("a bool", True, TE)]],
    ("unknown positions", dict(positions="all"), VE, "positions"),
    ("candidates 0", dict(candidates=0), VE, "candidates"),
    ("candidates 10", dict(candidates=10), VE, "candidates"),
    ("candidates a float", dict(candidates=2.5), TE, "candidates"),
    ("include_current a string", dict(include_current="yes"), TE, "include_current"),
    ("tabu an int", dict(tabu=1), TE, "tabu"),
    ("a model for a longer task", dict(model=LONG_ENERGY), VE, "seq_len=14"),
    ("a model for another vocabulary", dict(model=WIDE_ENERGY), VE, "vocab_size=20"),
    ("not a model", dict(model=object()), TE, "energy_model"),
    ("not a task", dict(task=5), TE, "task"),
    ("malformed sequences", dict(tokens=MALFORMED), VE, "well formed"),
    ("one sequence (T,)", dict(tokens=X[0]), VE, "tokens"),
    *[(what, dict(tokens=bad), error, "tokens") for what, bad, error in BAD_TOKENS],
]
for where, attack in (("attack.DiscreteAttack", discrete_attack),
                      ("attack_reference.naive_attack", naive)):
    table(where, [(what, lambda a=attack, o=options: a(**o), error, phrase)
                  for what, options, error, phrase in BAD_ATTACKS])
table("attack.DiscreteAttack", [
    ("batch_size 0", lambda: DiscreteAttack(E, TASK, 1, batch_size=0), VE, "batch_size"),
    ("batch_size a float", lambda: DiscreteAttack(E, TASK, 1, batch_size=1.5), TE, "batch_size"),
])

# ---------------------------------------------------------------------------- trace
RECORD = discrete_attack(steps=2, tabu=True)
FIELDS = ("tokens", "energy", "position", "saliency", "candidate_energy")


def trace_with(steps: Any = None, **changes: Any) -> AttackTrace:
    fields = {name: getattr(RECORD, name) for name in FIELDS}
    return AttackTrace(**{**fields, **changes}, steps=steps)


table("trace.AttackTrace", [
    ("tokens (B, T)", lambda: trace_with(tokens=X), VE, "tokens"),
    ("a step short of position", lambda: trace_with(position=RECORD.position[:1]), VE, "position"),
    ("energy a list", lambda: trace_with(energy=RECORD.energy.tolist()), TE, "energy"),
    ("steps below the recorded", lambda: trace_with(steps=1), VE, "steps"),
    ("steps a string", lambda: trace_with(steps="3"), TE, "steps"),
    ("concatenate: different steps",
     lambda: AttackTrace.concatenate([RECORD, discrete_attack(steps=3)]),
     VE, "steps"),
])

# ---------------------------------------------------------------------------- sampling
table("sampling.sample_lm", [
    *[(f"n {what}", lambda n=n: sampling.sample_lm(LM, TASK, n), error, "n must")
      for what, n, error in BAD_SIZES],
    *[(f"batch_size {what}", lambda b=b: sampling.sample_lm(LM, TASK, 2, batch_size=b), error,
       "batch_size") for what, b, error in BAD_COUNTS],
    *[(f"temperature {what}", lambda t=t: sampling.sample_lm(LM, TASK, 2, temperature=t), error,
       "temperature") for what, t, error in BAD_POSITIVES],
    *[(f"seed {what}", lambda s=s: sampling.sample_lm(LM, TASK, 2, seed=s), error, "seed")
      for what, s, error in BAD_SEEDS],
    ("seed and generator",
     lambda: sampling.sample_lm(LM, TASK, 2, seed=1, generator=torch.Generator()),
     VE, "seed or generator"),
    ("generator an int", lambda: sampling.sample_lm(LM, TASK, 2, generator=5), TE, "generator"),
    ("constrained a string", lambda: sampling.sample_lm(LM, TASK, 2, constrained="no"), TE,
     "constrained"),
    ("an LM of another vocabulary", lambda: sampling.sample_lm(WIDE_LM, TASK, 2),
     VE, "vocab_size=20"),
    ("a model for a longer task", lambda: sampling.sample_lm(LONG_ENERGY, TASK, 2),
     VE, "seq_len=14"),
    ("not a model", lambda: sampling.sample_lm(object(), TASK, 2), TE, "lm"),
    ("not a task", lambda: sampling.sample_lm(LM, 5, 2), TE, "task"),
])
for what, bad, error in BAD_TOKENS:
    table("sampling", [
        (f"lm_log_prob: {what}", lambda b=bad: sampling.lm_log_prob(LM, TASK, b), error, "tokens"),
        (f"energies_of: {what}", lambda b=bad: sampling.energies_of(E, b), error, "tokens"),
    ])
table("sampling", [
    ("lm_log_prob: an LM of another vocabulary",
     lambda: sampling.lm_log_prob(WIDE_LM, TASK, X), VE,
     "vocab_size=20"),
    ("lm_log_prob: malformed sequences", lambda: sampling.lm_log_prob(LM, TASK, MALFORMED), VE,
     "well formed"),
    ("lm_log_prob: batch_size 0", lambda: sampling.lm_log_prob(LM, TASK, X, batch_size=0), VE,
     "batch_size"),
    ("energies_of: not an energy model", lambda: sampling.energies_of(object(), X), TE,
     "energy_model"),
    ("energies_of: batch_size a float", lambda: sampling.energies_of(E, X, batch_size=1.5), TE,
     "batch_size"),
])
POOL, POOL_ENERGY = X[None].expand(2, 3, -1), torch.zeros(2, 3)


def resample(pool: Any = POOL, energy: Any = POOL_ENERGY, n: Any = 3,
             generator: Any = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    return sampling.resample_from_pool(pool, energy, n, generator)


def energies_with(value: float) -> torch.Tensor:
    return torch.tensor([[0.0, value, 0.0]] * 2)


table("sampling.resample_from_pool", [(what, lambda k=kwargs: resample(**k), error, phrase)
                                      for what, kwargs, error, phrase in [
    ("n_candidates 0", dict(n=0), VE, "n_candidates"),
    ("n_candidates above the pool's", dict(n=4), VE, "n_candidates"),
    ("n_candidates a float", dict(n=1.5), TE, "n_candidates"),
    ("pool of floats", dict(pool=POOL.float()), TE, "pool"),
    ("pool_energy of another shape", dict(energy=torch.zeros(2, 4)), VE, "pool_energy"),
    ("pool_energy NaN", dict(energy=energies_with(math.nan)), VE, "pool_energy"),
    ("pool_energy +inf", dict(energy=energies_with(math.inf)), VE, "pool_energy"),
    ("pool_energy -inf", dict(energy=energies_with(-math.inf)), VE, "pool_energy"),
    ("generator an int", dict(generator=5), TE, "generator"),
]])
table("sampling.importance_resample", [
    (what, lambda a=args: sampling.importance_resample(LM, E, TASK, *a), error, phrase)
    for what, args, error, phrase in [
        ("n_candidates 0", (0, 2, 0), VE, "n_candidates"),
        ("n_candidates a float", (1.5, 2, 0), TE, "n_candidates"),
        ("n_out -1", (2, -1, 0), VE, "n_out"),
        ("n_out a string", (2, "2", 0), TE, "n_out"),
        *[(f"seed {what}", (2, 2, seed), error, "seed")
          for what, seed, error in [*BAD_SEEDS, ("None", None, TE)]],
    ]])
table("sampling.importance_resample", [
    *[(f"energies {what}",
       lambda v=v: sampling.importance_resample(LM, non_finite_energy(v), TASK, 2, 2, 0), VE,
       "energies") for what, v in (("NaN", math.nan), ("+inf", math.inf), ("-inf", -math.inf))],
    ("a model for a longer task",
     lambda: sampling.importance_resample(LM, LONG_ENERGY, TASK, 2, 2, 0),
     VE, "seq_len=14"),
    ("an LM of another vocabulary",
     lambda: sampling.importance_resample(WIDE_LM, E, TASK, 2, 2, 0),
     VE, "vocab_size=20"),
])
table("attack.attack_generate", [
    (what, lambda a=args, k=kwargs: attack_generate(*a, **k), error, phrase)
    for what, args, kwargs, error, phrase in [
        ("steps -1", (LM, E, TASK, -1, 2, 0), {}, VE, "steps"),
        ("n -1", (LM, E, TASK, 1, -1, 0), {}, VE, "n must"),
        ("seed a string", (LM, E, TASK, 1, 2, "0"), {}, TE, "seed"),
        ("seed 2**64", (LM, E, TASK, 1, 2, 2**64), {}, VE, "seed"),
        ("a model for a longer task", (LM, LONG_ENERGY, TASK, 1, 2, 0), {}, VE, "seq_len=14"),
        ("an LM of another vocabulary", (WIDE_LM, E, TASK, 1, 2, 0), {}, VE, "vocab_size=20"),
        ("candidates 0", (LM, E, TASK, 1, 2, 0), dict(candidates=0), VE, "candidates"),
    ]])

# ---------------------------------------------------------------------------- perturb
EMB = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
EMB_TOKENS = torch.zeros(2, 3, dtype=torch.long)


def square(embeds: torch.Tensor) -> torch.Tensor:
    """A loss_fn: the sum of squares."""
    return embeds.pow(2).sum()


def times(value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """A loss_fn whose gradient is ``value`` everywhere."""
    return lambda embeds: (embeds * value).sum()


for name in ("fgsm", "fgm"):
    adversary = getattr(perturb, name)
    table(f"perturb.{name}", [
        *[(f"epsilon {what}", lambda a=adversary, v=v: a(square, EMB, v), error, "epsilon")
          for what, v, error in BAD_POSITIVES],
        *[(what, lambda a=adversary, c=args: a(*c), error, phrase)
          for what, args, error, phrase in [
            ("embeds of ids", (square, X, 0.1), TE, "embeds"),
            ("embeds (D,)", (square, EMB[0, 0], 0.1), VE, "embeds"),
            ("embeds a list", (square, EMB.tolist(), 0.1), TE, "embeds"),
            ("loss_fn not callable", (5, EMB, 0.1), TE, "loss_fn"),
            ("loss_fn gives a vector", (lambda e: e.sum(dim=-1), EMB, 0.1), VE, "loss_fn"),
            ("loss_fn gives a float", (lambda e: 1.0, EMB, 0.1), TE, "loss_fn"),
            ("a NaN gradient", (times(math.nan), EMB, 0.1), VE, "loss_fn's gradient"),
            ("an infinite gradient", (times(math.inf), EMB, 0.1), VE, "loss_fn's gradient"),
        ]],
    ])
table("perturb.pgd", [
    (what, lambda k=kwargs: perturb.pgd(**{"loss_fn": square, "embeds": EMB, "epsilon": 0.1,
                                           "alpha": 0.05, "steps": 2, **k}), error, phrase)
    for what, kwargs, error, phrase in [
        ("alpha 0", dict(alpha=0.0), VE, "alpha"),
        ("steps 0", dict(steps=0), VE, "steps"),
        ("steps a float", dict(steps=1.5), TE, "steps"),
        ("unknown norm", dict(norm="l1"), VE, "norm"),
        ("random_start a string", dict(random_start="yes"), TE, "random_start"),
        ("generator an int", dict(generator=5), TE, "generator"),
        ("a NaN gradient", dict(loss_fn=times(math.nan)), VE, "loss_fn's gradient"),
    ]])
OBJECTIVE_OF_EMB = perturb_steps.Objective(lambda: EMB, square, square)
table("perturb", [
    ("project: epsilon 0", lambda: perturb.project(EMB, 0.0), VE, "epsilon"),
    ("project: delta of ids", lambda: perturb.project(X, 1.0), TE, "delta"),
    ("project: unknown norm", lambda: perturb.project(EMB, 1.0, norm="l3"), VE, "norm"),
    ("ascend: alpha NaN", lambda: perturb.ascend(EMB, EMB, math.nan, 1.0), VE, "alpha"),
    ("ascent_direction: gradient a list", lambda: perturb.ascent_direction(EMB.tolist()), TE,
     "gradient"),
    ("random_in_ball: epsilon -1", lambda: perturb.random_in_ball(EMB, -1.0), VE, "epsilon"),
    ("random_in_ball: like of ids", lambda: perturb.random_in_ball(X, 1.0), TE, "like"),
    ("random_in_ball: generator a string", lambda: perturb.random_in_ball(EMB, 1.0, generator="g"),
     TE, "generator"),
    ("embedding_matrix_fgm: float tokens",
     lambda: perturb.embedding_matrix_fgm(square, EMB, EMB_TOKENS.float(), 0.1), TE, "tokens"),
    ("embedding_matrix_fgm: negative tokens",
     lambda: perturb.embedding_matrix_fgm(square, EMB, EMB_TOKENS - 1, 0.1), VE, "tokens"),
    ("embedding_matrix_fgm: tokens of another shape",
     lambda: perturb.embedding_matrix_fgm(square, EMB, EMB_TOKENS[:, :2], 0.1), VE, "tokens"),
    ("table_perturbation: epsilon 0", lambda: perturb.table_perturbation(EMB, EMB_TOKENS, 0.0), VE,
     "epsilon"),
    ("gradient_penalty: loss_fn None", lambda: perturb.gradient_penalty(None, EMB), TE, "loss_fn"),
    ("gradient_penalty: embeds of ids", lambda: perturb.gradient_penalty(square, X), TE, "embeds"),
    ("kl_divergence: shapes differ", lambda: perturb.kl_divergence(EMB, EMB[:1]), VE, "logits_p"),
    ("kl_divergence: logits of ids", lambda: perturb.kl_divergence(X, X), TE, "logits_p"),
])
table("perturb_steps", [
    ("Objective: embed not callable", lambda: perturb_steps.Objective(5, square, square), TE, "embed"),
    ("Objective: loss None", lambda: perturb_steps.Objective(lambda: EMB, square, None), TE, "loss"),
    ("Objective: float tokens", lambda: perturb_steps.Objective(lambda: EMB, square, square, EMB), TE,
     "tokens"),
    ("FGSM: epsilon 0", lambda: perturb_steps.FGSM(0.0), VE, "epsilon"),
    ("FGM: epsilon a string", lambda: perturb_steps.FGM("0.1"), TE, "epsilon"),
    ("PGD: steps 0", lambda: perturb_steps.PGD(0.1, 0.05, 0), VE, "steps"),
    ("FreeAT: replays 0", lambda: perturb_steps.FreeAT(0.1, 0), VE, "replays"),
    ("YOPO: cheap_updates a float", lambda: perturb_steps.YOPO(0.1, 0.05, 2, 1.5), TE, "cheap_updates"),
    ("FreeLB: generator an int", lambda: perturb_steps.FreeLB(0.1, 0.05, 2, generator=5), TE,
     "generator"),
    ("SMART: weight 0", lambda: perturb_steps.SMART(0.1, 0.05, weight=0.0), VE, "weight"),
    ("ALUM: warmup_steps -1", lambda: perturb_steps.ALUM(0.1, 0.05, warmup_steps=-1),
     VE, "warmup_steps"),
    ("VirtualAdversarial: symmetric a string",
     lambda: perturb_steps.VirtualAdversarial(0.1, 0.05, 1.0, 1, symmetric="yes"), TE, "symmetric"),
    ("GradientPenalty: weight NaN", lambda: perturb_steps.GradientPenalty(math.nan), VE, "weight"),
    ("GradientPenalty: unknown method", lambda: perturb_steps.GradientPenalty(1.0, method="exact"), VE,
     "method"),
    ("Clean.step: not an objective",
     lambda: perturb_steps.Clean().step(5, torch.optim.SGD([EMB], lr=0.1)),
     TE, "objective"),
    ("FreeAT.step: not an optimizer",
     lambda: perturb_steps.FreeAT(0.1, 1).step(OBJECTIVE_OF_EMB, None), TE, "optimizer"),
    ("FGSM.backward: a NaN gradient",
     lambda: perturb_steps.FGSM(0.1).backward(perturb_steps.Objective(lambda: EMB, square, times(math.nan))),
     VE, "loss_fn's gradient"),
])

# ---------------------------------------------------------------------------- toy
TOY = toy.ToyEBM(3, 3)
PROBS = toy.closed_walk_distribution(3, 3)
ALL = toy.all_states(3, 3)
BIGRAM = toy.BigramLM.fit(PROBS, 3, 3)
STATES = torch.tensor([[0, 1, 2], [1, 1, 1]])
BAD_STATES = [
    ("float symbols", STATES.float(), TE),
    ("symbol 3", with_id(STATES, 3), VE),
    ("negative symbol", with_id(STATES, -1), VE),
    ("(T,)", STATES[0], VE),
    ("too short", STATES[:, :2], VE),
    ("no sequence", STATES[:0], VE),
    ("a list", STATES.tolist(), TE),
]
for what, bad, error in BAD_STATES:
    table("toy", [
        (f"check_states: {what}", lambda b=bad: toy.check_states(b, 3, 3), error, "x must"),
        (f"ToyEBM.energy: {what}", lambda b=bad: TOY.energy(b), error, "x must"),
        (f"BigramLM.log_prob: {what}", lambda b=bad: BIGRAM.log_prob(b), error, "x must"),
        (f"ToyEBM.contrast_grad: negatives {what}",
         lambda b=bad: TOY.contrast_grad(STATES, b), error,
         "negatives"),
    ])
for what, seed, error in BAD_SEEDS:
    table("toy", [(f"as_generator: {what}", lambda s=seed: toy.as_generator(s), error, "seed"),
                  (f"ToyEBM: seed {what}",
                   lambda s=seed: toy.ToyEBM(3, 3, seed=s), error, "seed")])
table("toy", [
    ("all_states: n_symbols 1", lambda: toy.all_states(1, 3), VE, "n_symbols"),
    ("all_states: n_symbols a float", lambda: toy.all_states(3.0, 2), TE, "n_symbols"),
    ("all_states: length 0", lambda: toy.all_states(3, 0), VE, "length"),
    ("all_states: too many states", lambda: toy.all_states(10, 6), VE, "n_symbols**length"),
    ("sample_states: n 0", lambda: toy.sample_states(ALL, PROBS, 0, 0), VE, "n must"),
    ("sample_states: probs of another size", lambda: toy.sample_states(ALL, PROBS[:5], 2, 0), VE,
     "probs"),
    ("sample_states: probs of ints", lambda: toy.sample_states(ALL, PROBS.long(), 2, 0),
     TE, "probs"),
    ("exact_kl: other states", lambda: toy.exact_kl(PROBS, PROBS[:5]),
     VE, "same states"),
    ("exact_kl: ints", lambda: toy.exact_kl(PROBS.long(), PROBS), TE, "p must"),
    ("closed_walk_distribution: stay 0", lambda: toy.closed_walk_distribution(3, 3, stay=0.0), VE,
     "stay"),
    ("closed_walk_distribution: stay NaN",
     lambda: toy.closed_walk_distribution(3, 3, stay=math.nan),
     VE, "stay"),
    ("closed_walk_distribution: stay a string",
     lambda: toy.closed_walk_distribution(3, 3, stay="2"),
     TE, "stay"),
    ("BigramLM: initial of ints",
     lambda: toy.BigramLM(torch.ones(2, dtype=torch.long), torch.eye(2), 3), TE, "initial"),
    ("BigramLM: rows not summing to 1", lambda: toy.BigramLM(torch.ones(2), torch.eye(2), 3), VE,
     "initial"),
    ("BigramLM: length 0", lambda: toy.BigramLM(torch.full((2,), 0.5), torch.full((2, 2), 0.5), 0),
     VE, "length"),
    ("BigramLM.fit: smoothing 0", lambda: toy.BigramLM.fit(PROBS, 3, 3, smoothing=0.0), VE,
     "smoothing"),
    ("BigramLM.sample: n 0", lambda: BIGRAM.sample(0, 0), VE, "n must"),
    ("BigramLM.sample: seed -1", lambda: BIGRAM.sample(2, -1), VE, "seed"),
    ("ToyEBM: n_symbols 1", lambda: toy.ToyEBM(1, 3), VE, "n_symbols"),
    ("ToyEBM: hidden 0", lambda: toy.ToyEBM(3, 3, hidden=0), VE, "hidden"),
    ("ToyEBM.embed: float symbols", lambda: TOY.embed(STATES.float()), TE, "tokens"),
    ("ToyEBM.embed: symbol 3", lambda: TOY.embed(STATES + 1), VE, "tokens"),
    ("ToyEBM.energy_from_embeds: ids", lambda: TOY.energy_from_embeds(STATES), TE, "embeds"),
    ("ToyEBM.energy_from_embeds: another shape",
     lambda: TOY.energy_from_embeds(torch.zeros(2, 3, 4).double()), VE, "embeds"),
    ("ToyEBM.sample: n 0", lambda: TOY.sample(0, 0), VE, "n must"),
    ("ToyEBM.contrast_grad: weights of another shape",
     lambda: TOY.contrast_grad(STATES, STATES, torch.ones(3).double()), VE, "weights"),
    ("ToyEBM.contrast_grad: weights of ints",
     lambda: TOY.contrast_grad(STATES, STATES, torch.ones(2).long()), TE, "weights"),
    ("ToyEBM.with_spurious_mode: depth 0", lambda: TOY.with_spurious_mode(STATES[0], 0.0), VE,
     "depth"),
    ("ToyEBM.with_spurious_mode: depth inf",
     lambda: TOY.with_spurious_mode(STATES[0], math.inf), VE,
     "depth"),
    ("ToyEBM.with_spurious_mode: two states", lambda: TOY.with_spurious_mode(STATES, 1.0), VE,
     "state"),
])

# ---------------------------------------------------------------------------- estimators
OTHER_BIGRAM = toy.BigramLM.fit(toy.closed_walk_distribution(2, 3), 2, 3)
for name in ("gibbs", "gibbs_with_gradients", "importance_sampling", "nce", "adversarial"):
    table(f"estimators.{name}", [
        (what, lambda f=getattr(estimators, name), a=args: f(*a), error, phrase)
        for what, args, error, phrase in [
            ("not a ToyEBM", (E, STATES, BIGRAM, 2, 0), TE, "model"),
            ("float data", (TOY, STATES.float(), BIGRAM, 2, 0), TE, "data"),
            ("data symbol 3", (TOY, STATES + 1, BIGRAM, 2, 0), VE, "data"),
            ("not a proposal", (TOY, STATES, PROBS, 2, 0), TE, "proposal"),
            ("a proposal over other states", (TOY, STATES, OTHER_BIGRAM, 2, 0), VE, "proposal"),
            ("n 0", (TOY, STATES, BIGRAM, 0, 0), VE, "n must"),
            ("seed a string", (TOY, STATES, BIGRAM, 2, "0"), TE, "seed"),
        ]])
table("estimators", [
    ("exact: not a ToyEBM", lambda: estimators.exact(object(), STATES), TE, "model"),
    ("exact: data (T,)", lambda: estimators.exact(TOY, STATES[0]), VE, "data"),
    ("gibbs: sweeps -1", lambda: estimators.gibbs(TOY, STATES, BIGRAM, 2, 0, sweeps=-1), VE,
     "sweeps"),
    ("gibbs_with_gradients: steps a float",
     lambda: estimators.gibbs_with_gradients(TOY, STATES, BIGRAM, 2, 0, steps=1.5), TE, "steps"),
    ("adversarial: steps -2",
     lambda: estimators.adversarial(TOY, STATES, BIGRAM, 2, 0, steps=-2), VE,
     "steps"),
    ("gibbs_sweeps: init symbol 3", lambda: estimators.gibbs_sweeps(TOY, STATES + 1, 1, 0), VE,
     "init"),
    ("gibbs_sweeps: sweeps a bool", lambda: estimators.gibbs_sweeps(TOY, STATES, True, 0), TE,
     "sweeps"),
    ("gibbs_sweeps: seed 2**64", lambda: estimators.gibbs_sweeps(TOY, STATES, 1, 2**64),
     VE, "seed"),
    ("gwg_steps: not a ToyEBM", lambda: estimators.gwg_steps(E, STATES, 1, 0), TE, "model"),
    ("gwg_steps: steps -1", lambda: estimators.gwg_steps(TOY, STATES, -1, 0), VE, "steps"),
    ("adversarial: steps a string", lambda: estimators.adversarial(TOY, STATES, BIGRAM, 2, 0, "1"),
     TE, "steps"),
    ("nce_loss: noise symbol 3", lambda: estimators.nce_loss(TOY, STATES, STATES + 1, BIGRAM), VE,
     "noise"),
    ("error_table: repeats 0", lambda: estimators.error_table(TOY, STATES, {}, [2], repeats=0), VE,
     "repeats"),
    ("error_table: seed -1", lambda: estimators.error_table(TOY, STATES, {}, [2], 1, seed=-1), VE,
     "seed"),
    ("error_table: an estimator not callable",
     lambda: estimators.error_table(TOY, STATES, {"x": 5}, [2], 1), TE, "estimators['x']"),
    ("error_table: sample count 0", lambda: estimators.error_table(TOY, STATES, {}, [0], 1), VE,
     "sample_counts"),
])


def train(**changes: Any) -> Any:
    arguments = {"model": TOY, "data": STATES, "n": 2, "steps": 1, "lr": 0.1, "target": PROBS,
                 "estimator": lambda m, d, n, s: estimators.exact(m, d)}
    return estimators.train(**{**arguments, **changes})


table("estimators.train", [(what, lambda k=kwargs: train(**k), error, phrase)
                           for what, kwargs, error, phrase in [
    ("steps -1", dict(steps=-1), VE, "steps"),
    ("lr 0", dict(lr=0.0), VE, "lr"),
    ("lr NaN", dict(lr=math.nan), VE, "lr"),
    ("estimator None", dict(estimator=None), TE, "estimator"),
    ("seed a float", dict(seed=0.5), TE, "seed"),
    ("target of ints", dict(target=PROBS.long()), TE, "target"),
    ("not a ToyEBM", dict(model=E), TE, "model"),
]])


# ---------------------------------------------------------------------------- widgets
@functools.cache
def stepper() -> AttackStepper:
    return AttackStepper(RECORD, TASK, renderer="html")


OBJECTIVE = perturb_steps.Objective(embed=lambda: E.embed(X), loss=lambda energies: energies.mean(),
                              forward=lambda e: E.energy_from_embeds(e, X))
LABELS, SYMBOLS = TASK.position_labels(), [[TASK.vocab[t] for t in row] for row in X.tolist()]


def explore(**kwargs: Any) -> PerturbationExplorer:
    return PerturbationExplorer(OBJECTIVE, LABELS, SYMBOLS, **{"renderer": "html", **kwargs})


@functools.cache
def explorer() -> PerturbationExplorer:
    return explore(steps=2)


for_classifier = PerturbationExplorer.for_classifier
table("widgets.AttackStepper", [
    ("trace a tensor", lambda: AttackStepper(RECORD.tokens, TASK), TE, "trace"),
    ("task an int", lambda: AttackStepper(RECORD, 5), TE, "task"),
    ("another task's length", lambda: AttackStepper(RECORD, OTHER_TASK), VE, "seq_len"),
    ("sequence -1", lambda: AttackStepper(RECORD, TASK, sequence=-1), VE, "sequence"),
    ("sequence 3", lambda: AttackStepper(RECORD, TASK, sequence=3), VE, "sequence"),
    ("sequence a bool", lambda: AttackStepper(RECORD, TASK, sequence=True), TE, "sequence"),
    ("renderer unknown", lambda: AttackStepper(RECORD, TASK, renderer="plotly"), VE, "renderer"),
    ("from_attack: steps -1", lambda: AttackStepper.from_attack(E, TASK, X, steps=-1),
     VE, "steps"),
    ("from_attack: float tokens",
     lambda: AttackStepper.from_attack(E, TASK, X.float(), steps=1), TE,
     "tokens"),
    ("show_step: -1", lambda: stepper().show_step(-1), VE, "step"),
    ("show_step: past the last", lambda: stepper().show_step(3), VE, "step"),
    ("show_step: a string", lambda: stepper().show_step("1"), TE, "step"),
    ("show_sequence: 3", lambda: stepper().show_sequence(3), VE, "sequence"),
    ("show_sequence: a float", lambda: stepper().show_sequence(1.0), TE, "sequence"),
])
table("widgets.PerturbationExplorer", [
    ("objective an int", lambda: PerturbationExplorer(5, [], []), TE, "objective"),
    ("epsilon 0", lambda: explore(epsilon=0.0), VE, "epsilon"),
    ("epsilon above max_epsilon", lambda: explore(epsilon=0.5), VE, "epsilon"),
    ("steps above max_steps", lambda: explore(steps=21), VE, "steps"),
    ("steps a float", lambda: explore(steps=2.0), TE, "steps"),
    ("unknown method", lambda: explore(method="HotFlip"), VE, "method"),
    ("renderer a bool", lambda: explore(renderer=False), VE, "renderer"),
    ("max_epsilon NaN", lambda: explore(max_epsilon=math.nan), VE, "max_epsilon"),
    ("symbols of another shape", lambda: PerturbationExplorer(OBJECTIVE, [], [["1"]]),
     VE, "symbols"),
    ("set: epsilon 5", lambda: explorer().set(epsilon=5.0), VE, "epsilon"),
    ("set: steps 0", lambda: explorer().set(steps=0), VE, "steps"),
    ("set: steps a float", lambda: explorer().set(steps=1.5), TE, "steps"),
    ("set: unknown method", lambda: explorer().set(method="x"), VE, "method"),
    ("for_classifier: float data", lambda: for_classifier(E, TASK, X.float(), X), TE, "data"),
    ("for_classifier: another task's negatives", lambda: for_classifier(E, TASK, X, OTHER_X), VE,
     "negatives"),
    ("for_classifier: a model for a longer task",
     lambda: for_classifier(LONG_ENERGY, TASK, X, X), VE,
     "seq_len=14"),
])

# ---------------------------------------------------------------------------- exercises, config
#: every checker of every topic module, by name
exercises = SimpleNamespace(**{
    name: getattr(module, name)
    for module in (importlib.import_module(f"advebm_teach.teaching.exercises.{topic}")
                   for topic in ("algorithm1", "discrete", "ebm", "embedding", "estimators",
                                 "spurious", "task"))
    for name in dir(module) if name.startswith("check_") or name == "digits_of"})
for name in ("answer_digits", "carries", "l1_saliency", "log_partition", "importance_weights",
             "logistic_ebm_loss", "fgm_perturbation", "model_term", "fgm_training_loss",
             "pgd_perturbation", "freelb_loss", "count_spurious", "pick_probability",
             "correctness", "algorithm1_update"):
    table(f"exercises.check_{name}", [
        ("not a function", lambda n=name: getattr(exercises, f"check_{n}")(5), TE, name)])
table("exercises", [
    ("check_l2_projection: not a function", lambda: exercises.check_l2_projection(None), TE,
     "project_l2"),
    ("check_best_digit: not a function", lambda: exercises.check_best_digit(5, E, X), TE,
     "best_digit"),
    ("check_best_digit: not an energy model", lambda: exercises.check_best_digit(max, object(), X),
     TE, "energy_model"),
    ("check_best_digit: float sequences",
     lambda: exercises.check_best_digit(max, E, X.float()), TE,
     "sequences"),
    ("check_best_digit: another task's sequences",
     lambda: exercises.check_best_digit(max, E, OTHER_X), VE, "sequences"),
    ("check_gibbs_conditional: not a function", lambda: exercises.check_gibbs_conditional(5, TOY),
     TE, "gibbs_conditional"),
    ("check_gibbs_conditional: not a ToyEBM",
     lambda: exercises.check_gibbs_conditional(max, E), TE,
     "model"),
    ("digits_of: negative x", lambda: exercises.digits_of(-1, 2), VE, "x must"),
    ("digits_of: x too long", lambda: exercises.digits_of(123, 2), VE, "x must"),
    ("digits_of: n_digits 0", lambda: exercises.digits_of(1, 0), VE, "n_digits"),
    ("digits_of: x a float", lambda: exercises.digits_of(1.5, 2), TE, "x must"),
])
table("config.seed_everything", [(what, lambda s=seed: seed_everything(s), error, "seed")
                                 for what, seed, error in BAD_SEEDS])


# ---------------------------------------------------------------------------- running the table
def outcome(bad: Case) -> str:
    """``"clear"`` if the call raised ``bad.error`` (exactly) with ``bad.phrase`` in its message,
    else what happened instead."""
    try:
        bad.call()
    except Exception as error:  # every other outcome is reported, not raised
        if type(error) is bad.error and bad.phrase in str(error):
            return "clear"
        return f"{type(error).__name__}: {error}"
    return "no error"


def outcome_table() -> list[dict[str, Any]]:
    """Per module: the number of bad calls, how many ended in a clear error, and the others."""
    rows: dict[str, dict[str, Any]] = {}
    for bad in CASES:
        row = rows.setdefault(bad.module, {"module": bad.module, "cases": 0, "clear": 0,
                                           "other": []})
        result = outcome(bad)
        row["cases"] += 1
        if result == "clear":
            row["clear"] += 1
        else:
            row["other"].append(f"{bad.id}: {result}")
    return list(rows.values())


def format_table(rows: list[dict[str, Any]]) -> str:
    """The outcome table as text: module, cases, clear, other, and the totals."""
    counts = [(row["module"], row["cases"], row["clear"], len(row["other"])) for row in rows]
    counts.append(("total", *(sum(column) for column in list(zip(*counts))[1:])))
    header = ("module", "cases", "clear", "other")
    return "\n".join(f"{module:<18}{cases:>7}{clear:>7}{other:>7}"
                     for module, cases, clear, other in [header, *counts])


@pytest.mark.parametrize("bad", CASES, ids=[bad.id for bad in CASES])
def test_a_bad_call_raises_a_clear_error(bad):
    with pytest.raises(bad.error) as raised:
        bad.call()
    assert type(raised.value) is bad.error, f"{type(raised.value).__name__}: {raised.value}"
    assert bad.phrase in str(raised.value), f"{bad.phrase!r} not in {str(raised.value)!r}"


def test_the_table_covers_every_module_and_every_case_is_clear():
    ids = [bad.id for bad in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    rows = outcome_table()
    print("\n" + format_table(rows))
    assert {row["module"] for row in rows} == {
        "task", "models", "prefix_cache", "saliency", "attack", "attack_reference", "trace", "sampling",
        "perturb", "perturb_steps",
        "toy", "estimators", "widgets", "exercises", "config"}
    assert [other for row in rows for other in row["other"]] == []
