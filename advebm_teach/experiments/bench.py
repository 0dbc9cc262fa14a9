"""Benchmarks that measure side by side in one run and print ratios (timings alone mean little).

``advebm-teach bench attack [--fast]``: the naive attack (one forward per sequence per candidate,
the tests' reference), the batched exact attack and the first-order-pruned attack (k = 3) on the
same P_LM samples and the shipped energy model, plus a dense matmul of the model's own shape timed
in the same run to estimate what this machine's BLAS can do. The last line printed is one JSON
object.

``advebm-teach bench perturb [--fast]``: the embedding-space adversarial training experiment
(``perturb_study``), every strategy over seeds.

``advebm-teach bench perturb-cost [--fast]``: the time of one training step of each strategy
relative to a clean step, timed round-robin in one run, against its ideal pass count.

Each writes ``<target>.json`` under ``runs/bench/course`` (``-fast`` in fast mode); ``--ship`` then
copies it over the shipped ``results/`` (``shipping.py``).
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from typing import Callable

import torch

from ..attack import DiscreteAttack
from ..attack_reference import naive_attack
from ..checkpoints import load_pretrained
from ..config import fast_mode, make_task, pick
from ..models import TransformerEnergy
from ..sampling import sample_lm


def forward_flops_per_token(model: TransformerEnergy, length: int) -> float:
    """Multiply-adds x 2 of one token position's forward pass through the blocks and LM head."""
    d, ff, vocab = model.config["d_model"], model.config["ff_dim"], model.config["vocab_size"]
    # qkv, proj, mlp, attention
    per_block = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * ff + 2 * 2 * length * d
    return model.config["n_layers"] * per_block + 2 * d * vocab


def best_time(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed runs, after one warm-up run (seconds)."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_flops_per_second(rows: int, inner: int, cols: int, repeats: int) -> float:
    """FLOP/s of a dense (rows x inner) @ (inner x cols) float32 matmul on this machine."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    return 2 * rows * inner * cols / best_time(lambda: a @ b, repeats * 5)


def bench_attack(n_sequences: int | None = None, steps: int | None = None,
                 repeats: int | None = None, head: str = "lm_nll") -> dict[str, float]:
    """Measure the three attacks on the same sequences; returns the figures (see the module
    docstring)."""
    n = n_sequences or pick(256, 24)
    steps = steps or pick(5, 2)
    repeats = repeats or pick(3, 1)
    task = make_task("course")
    model = load_pretrained("energy_lm")
    model.head = head
    x = sample_lm(load_pretrained("plm"), task, n, seed=0)
    T = task.seq_len

    naive_s = best_time(lambda: naive_attack(model, task, x, steps), 1 if repeats < 3 else 2)
    exact = DiscreteAttack(model, task, steps)
    exact_s = best_time(lambda: exact.attack(x), repeats)
    pruned = DiscreteAttack(model, task, steps, candidates=3)
    pruned_s = best_time(lambda: pruned.attack(x), repeats)

    reference, trace = naive_attack(model, task, x, steps), exact.attack(x)
    # Agreement: from every state the exact attack visited, does one pruned step make the
    # same swap?
    states, successors = trace.tokens[:-1].reshape(-1, T), trace.tokens[1:].reshape(-1, T)

    def agreement(k: int) -> float:
        one_step = DiscreteAttack(model, task, 1, candidates=k).attack(states)
        return (one_step.final == successors).all(dim=1).float().mean().item()

    agreement_by_k = {k: agreement(k) for k in (1, 3, 5, 7)}
    edited = trace.position[trace.changed]
    answer_share = torch.isin(edited, torch.tensor(list(task.c_positions))).float().mean().item()

    per_token = forward_flops_per_token(model, T)
    # The problem's size, as the naive attack does it: a forward and a backward (~2 forwards) for
    # the gradient, then one forward per alternative digit (9), over all T positions.
    nominal = n * steps * (3 + 9) * T * per_token
    # What the exact attack executes: candidates are recomputed only from the substituted
    # position on.
    suffix = T if head == "mean" else (T - trace.position.clamp(min=1)).float().mean().item()
    executed = n * steps * (3 * T + 9 * suffix) * per_token
    matmul = matmul_flops_per_second(n * T, model.config["d_model"], 3 * model.config["d_model"],
                                     repeats)
    return {
        "head": head, "sequences": n, "steps": steps, "seq_len": T,
        "threads": torch.get_num_threads(),
        "naive_seq_per_s": n * steps / naive_s,
        "exact_seq_per_s": n * steps / exact_s,
        "pruned_seq_per_s": n * steps / pruned_s,
        "exact_speedup": naive_s / exact_s,
        "pruned_speedup": naive_s / pruned_s,
        "pruned_agreement": agreement_by_k[3],
        "pruned_agreement_by_k": agreement_by_k,
        "exact_changes_in_answer": answer_share,
        "exact_matches_naive": bool(torch.equal(reference.tokens.cpu(), trace.tokens)),
        "matmul_gflop_per_s": matmul / 1e9,
        "exact_gflop_per_s_nominal": nominal / exact_s / 1e9,
        "exact_gflop_per_s_executed": executed / exact_s / 1e9,
        "exact_fraction_of_matmul_peak": nominal / exact_s / matmul,
        "exact_executed_fraction_of_matmul_peak": executed / exact_s / matmul,
    }


def report_attack(figures: dict[str, float]) -> None:
    """Print a short table, then the figures as one JSON line (the last line)."""
    print(f"attack benchmark: {figures['sequences']} P_LM samples x {figures['steps']} steps, "
          f"energy head {figures['head']}, {figures['threads']} threads")
    for name in ("naive", "exact", "pruned"):
        speedup = "" if name == "naive" else f"  ({figures[name + '_speedup']:.1f}x naive)"
        print(f"  {name:7s} {figures[name + '_seq_per_s']:9.0f} sequence-steps/s{speedup}")
    by_k = ", ".join(f"k={k}: {a:.0%}" for k, a in figures["pruned_agreement_by_k"].items())
    print(f"  pruned makes the exact attack's swap in {by_k} of steps "
          f"({figures['exact_changes_in_answer']:.0%} of the exact swaps are in the answer "
          f"digits)")
    print(f"  matmul {figures['matmul_gflop_per_s']:.0f} GFLOP/s; exact attack "
          f"{figures['exact_gflop_per_s_nominal']:.0f} GFLOP/s of the naive problem "
          f"({figures['exact_fraction_of_matmul_peak']:.0%}), "
          f"{figures['exact_gflop_per_s_executed']:.0f} "
          f"GFLOP/s executed ({figures['exact_executed_fraction_of_matmul_peak']:.0%})")
    def rounded(value):
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return round(value, 4) if isinstance(value, float) else value

    print(json.dumps(rounded(figures)))


# ------------------------------------------------------------ embedding-space adversarial training
def bench_perturb_cost(pairs: int | None = None, repeats: int | None = None) -> dict:
    """Time one training step of every strategy of the perturbation experiment, side by side in one
    run.

    Every strategy trains its own copy of the shipped energy model (``mean`` read-out) on the same
    batch of ``pairs`` true sums and as many P_LM samples, with the experiment's settings. Steps
    are timed round-robin, the starting strategy rotating each round, for ``repeats`` rounds after
    two warm-up steps each; a strategy's time is its median. ratio = its time / the clean step's
    time; ideal = its forward+backward passes (``Strategy.passes``).

    The same rounds time the passes the steps are made of, relative to one forward and full
    backward pass (``passes``): a forward alone, a backward to the input only (an ascent step: no
    weight gradients), the gradient penalty's double backward, and a clean step (a pass plus the
    optimizer's step).
    """
    from ..perturb import embedding_gradient, loss_and_gradient_penalty
    from .perturb_study import PerturbStudyProtocol, strategies
    from ..trainer import classifier_objective

    pairs = pairs or pick(100, 10)
    repeats = repeats or pick(40, 2)
    task, plm = make_task("course"), load_pretrained("plm")
    pretrained = load_pretrained("energy_lm")
    pretrained.head = "mean"
    data, negatives = task.sample(pairs, seed=0), sample_lm(plm, task, pairs, seed=1)
    protocol = PerturbStudyProtocol()
    rows = strategies(protocol, sequence_numel=task.seq_len * pretrained.config["d_model"])
    runs = {}
    for name, strategy in rows.items():
        model = copy.deepcopy(pretrained).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=protocol.lr,
                                      weight_decay=protocol.weight_decay)
        objective = classifier_objective(model, data, negatives)
        runs[name] = (lambda s=strategy, o=objective, opt=optimizer: s.step(o, opt))
    probe = copy.deepcopy(pretrained).train()
    batch = classifier_objective(probe, data, negatives)

    def forward() -> None:
        with torch.no_grad():
            batch.loss_fn(batch.embed())

    def full_pass() -> None:
        probe.zero_grad(set_to_none=True)
        batch.loss_fn(batch.embed()).backward()

    def double_backward() -> None:
        probe.zero_grad(set_to_none=True)
        sum(loss_and_gradient_penalty(batch.loss_fn, batch.embed())).backward()

    passes = {"forward": forward,
              "forward + backward to the input": lambda: embedding_gradient(batch.loss_fn,
                                                                            batch.embed()),
              "forward + backward": full_pass, "forward + double backward": double_backward}
    runs.update({f"pass: {name}": run for name, run in passes.items()})
    for run in runs.values():
        for _ in range(2):
            run()
    names, times = list(runs), {name: [] for name in runs}
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            started = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    full = median["pass: forward + backward"]
    return {"strategies": {name: {"ratio": median[name] / median["clean"],
                                  "ideal": rows[name].passes, "ms": 1000 * median[name]}
                           for name in rows},
            "passes": {**{name: median[f"pass: {name}"] / full for name in passes},
                       "clean step (pass + optimizer step)": median["clean"] / full},
            "sequences": 2 * pairs, "repeats": repeats, "threads": torch.get_num_threads(),
            "fast_mode": fast_mode()}


def report_perturb_cost(figures: dict) -> None:
    """Print the table of ratios against ideal pass counts, then the figures as one JSON line (the
    last line)."""
    print(f"training-step cost of each strategy vs a clean step: {figures['sequences']} "
          f"sequences per batch, median of {figures['repeats']} round-robin rounds, "
          f"{figures['threads']} threads")
    print(f"  {'strategy':<38}{'ms':>8}{'ratio':>8}{'ideal':>7}{'ratio/ideal':>13}")
    for name, row in figures["strategies"].items():
        print(f"  {name:<38}{row['ms']:8.1f}{row['ratio']:8.2f}{row['ideal']:7d}"
              f"{row['ratio'] / row['ideal']:13.2f}")
    print("  the passes they are made of, relative to one forward + backward: " + ", ".join(
        f"{name} {ratio:.2f}" for name, ratio in figures["passes"].items()))
    print(json.dumps({**figures,
                      "passes": {name: round(ratio, 3)
                                 for name, ratio in figures["passes"].items()},
                      "strategies": {name: {key: round(value, 3) if isinstance(value, float)
                                            else value for key, value in row.items()}
                                     for name, row in figures["strategies"].items()}}))


def bench_perturb(command: str = "advebm-teach bench perturb") -> dict:
    """Run the perturbation experiment (``perturb_study.run_experiment``); returns its results."""
    from .perturb_study import run_experiment

    return run_experiment(command=command)
