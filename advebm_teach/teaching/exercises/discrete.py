"""Checkers of notebook 05's exercises (discrete attacks).

Exercise 05.1 (one attack step with a tabu mask) and 05.2 (the S-step loop) are checked against
``attack_reference.naive_attack``: the paper's attack (section 2.2, Algorithm 1 lines 8-13) written
as plainly as its pseudo-code, one sequence and one candidate at a time. A mismatch is explained
in the sequence's own terms: which batch row, which position (``a3``, ``c1``...), which digit, and
what the reference saw there (the saliency of the two positions, the energy of the two digits).

Two choices of the reference are too close to call in float32 when two positions have saliencies
within 1e-4 (relative) or two candidates energies within 1e-4 nats: the student's batched
arithmetic may order them either way, so such (step, row) pairs are not compared.

``check_l1_saliency`` and ``check_best_digit`` are warm-ups (the L1 norm of eq. 4; line 11 for one
position), kept for instructors who want a smaller first exercise.
"""

from __future__ import annotations

from typing import Any, Callable

from ...checks import check_callable, check_int, check_token_ids, model_config
from .verdict import Verdict, failed_call, verdict_of_tensors

#: two saliencies closer than this (relative) or two energies closer than this (nats) are a tie
NEAR_TIE_SALIENCY = 1e-4
NEAR_TIE_ENERGY = 1e-4


# ------------------------------------------------------------------------------- shared helpers
def _check_attack_inputs(energy_model: Any, task: Any, sequences: Any) -> Any:
    """``sequences`` as a long ``(B, T)`` batch of well-formed sequences for ``task``, once
    ``energy_model`` and ``task`` are known to fit the attack (TypeError/ValueError naming the
    argument otherwise)."""
    from ...attack import check_attack_options

    for name in ("energy", "embed", "energy_from_embeds"):
        if not callable(getattr(energy_model, name, None)):
            raise TypeError(f"energy_model must be an energy model (with embed, "
                            f"energy_from_embeds and energy), got {type(energy_model).__name__}")
    check_attack_options(energy_model, task, 1, None, None, True, True)
    sequences = task.check_sequences(sequences)
    if len(sequences) < 2:
        raise ValueError(f"sequences must hold at least 2 rows, got {len(sequences)}")
    return sequences


class _Words:
    """How the messages name a row, a position and a token of ``task``."""

    def __init__(self, task: Any) -> None:
        self.task = task
        labels = getattr(task, "position_labels", None)
        self.labels = labels() if callable(labels) else None
        self.vocab = getattr(task, "vocab", None)

    def position(self, i: int) -> str:
        if i < 0:
            return "-1 (no position)"
        return f"{self.labels[i]} (index {i})" if self.labels else f"{i}"

    def token(self, v: int) -> str:
        return repr(self.vocab[v]) if self.vocab and 0 <= v < len(self.vocab) else str(v)

    def row(self, tokens: Any) -> str:
        decode = getattr(self.task, "decode", None)
        return decode(tokens, strip=True) if callable(decode) else str(tokens.tolist())


def _tabu_before_each_step(trace: Any, editable: Any) -> list[Any]:
    """The tabu mask ``(B, T)`` each step of a ``tabu=True`` trace started from: a position whose
    step changed nothing joins its row's list; a change empties the row's list."""
    import torch

    tabu = torch.zeros_like(editable)
    masks = []
    for s in range(trace.steps):
        masks.append(tabu.clone())
        changed = (trace.tokens[s + 1] != trace.tokens[s]).any(dim=1)
        for b, p in enumerate(trace.position[s].tolist()):
            if changed[b]:
                tabu[b] = False
            elif p >= 0:
                tabu[b, p] = True
    return masks


def _clear_choices(trace: Any) -> Any:
    """``(S, B)`` bool: whether the reference's choice at step s of row b is clear of near ties
    (its position's saliency and its winner's energy beat the runner-up by the margins above)."""
    import torch

    clear = torch.ones(trace.steps, trace.tokens.shape[1], dtype=torch.bool)
    for s in range(trace.steps):
        for b in range(trace.tokens.shape[1]):
            if int(trace.position[s, b]) < 0:
                continue
            saliency = trace.saliency[s, b]
            saliency = saliency[torch.isfinite(saliency)].double().sort(descending=True).values
            if len(saliency) > 1 and (saliency[0] - saliency[1]
                                      <= NEAR_TIE_SALIENCY * saliency[0].abs().clamp(min=1e-12)):
                clear[s, b] = False
            energy = trace.candidate_energy[s, b]
            energy = energy[torch.isfinite(energy)].double().sort().values
            if len(energy) > 1 and energy[1] - energy[0] <= NEAR_TIE_ENERGY:
                clear[s, b] = False
    return clear


def _call(name: str, call: str, function: Callable[..., Any], arguments: tuple,
          energy_model: Any) -> tuple[Any, Verdict | None]:
    """``function(*arguments)`` in eval mode; the verdict instead when it raised, returned None
    or edited its input tokens in place."""
    from ...models import evaluation_mode

    tokens = arguments[2]
    before = tokens.clone()
    try:
        with evaluation_mode(energy_model):
            result = function(*arguments)
    except Exception as error:  # the student's code raised: say so, do not crash the notebook
        return None, failed_call(name, call, error)
    if result is None:
        return None, Verdict(False, f"✗ not yet: {call} returned None; write the body of {name}")
    if not bool((tokens == before).all()):
        return None, Verdict(False, f"✗ not yet: {call} changed its argument tokens in place; "
                                    f"edit a copy (tokens.clone()) instead")
    return result, None


def _as_long_tensor(name: str, call: str, value: Any, shape: tuple[int, ...],
                    dims: str) -> tuple[Any, Verdict | None]:
    """``value`` as a long tensor of ``shape``, or the verdict that says what is wrong with it."""
    import torch

    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, torch.Tensor) for v in value):
        value = torch.stack(list(value))
    if not isinstance(value, torch.Tensor):
        return None, Verdict(False, f"✗ wrong: {call} returned {type(value).__name__} as {name}, "
                                    f"expected a tensor of shape {shape} ({dims})")
    if tuple(value.shape) != shape:
        return None, Verdict(False, f"✗ wrong: {call} returned {name} of shape "
                                    f"{tuple(value.shape)}, expected {shape} ({dims})")
    if value.is_floating_point() or value.is_complex():
        return None, Verdict(False, f"✗ wrong: {call} returned {name} as {value.dtype}, expected "
                                    f"integer token ids or positions (torch.long)")
    return value.long().cpu(), None


# ------------------------------------------------------------------------------- Exercise 05.1
def check_attack_step(attack_step: Callable[..., Any], energy_model: Any, task: Any,
                      sequences: Any, steps: int = 5) -> Verdict:
    """Exercise 05.1: ``attack_step(energy_model, task, tokens (B, T), tabu (B, T) bool)
    -> (new_tokens (B, T), position (B,))``, one step of the attack.

    allowed = ``task.editable_mask(tokens)`` and not ``tabu``; i* = argmax over allowed i of
    s_i = ||grad_{e_i}(-E(x))||_1 (eq. 4); C = x with every digit v of L(x_{i*}) at i* (eq. 5);
    the new sequence is argmin_{x' in C} E(x') (eq. 6), ties toward the lower digit. A row with
    no allowed position stays as it is, with position -1.

    Reference: ``naive_attack(energy_model, task, sequences, steps, tabu=True)``. The student's
    step runs from the sequences (no tabu), from each state the reference reached, with the tabu
    list the reference had there, and from the sequences with row 0 entirely tabu and row 1 tabu
    everywhere but one position (that row's best digit there found by trying all ten).
    """
    import torch

    from ...attack_reference import naive_attack
    from ...models import evaluation_mode

    check_callable("attack_step", attack_step)
    sequences = _check_attack_inputs(energy_model, task, sequences).cpu()
    check_int("steps", steps, 1)
    words = _Words(task)
    B, T = sequences.shape
    editable = task.editable_mask(sequences).cpu()
    no_tabu = torch.zeros(B, T, dtype=torch.bool)

    # the student's function first: a stub answers at once, before any reference is computed
    first_call = "attack_step(energy_model, task, sequences, tabu=no position)"
    result, verdict = _call("attack_step", first_call, attack_step,
                            (energy_model, task, sequences.clone(), no_tabu.clone()), energy_model)
    if verdict is not None:
        return verdict

    reference = naive_attack(energy_model, task, sequences, steps, tabu=True)
    clear = _clear_choices(reference)
    tabus = _tabu_before_each_step(reference, editable)

    # row 0: every editable position tabu; row 1: one position left, its best digit by brute force
    cornered = no_tabu.clone()
    cornered[0] = editable[0]
    left = int(editable[1].nonzero().flatten()[-1])
    cornered[1] = editable[1]
    cornered[1, left] = False
    with evaluation_mode(energy_model), torch.no_grad():
        energies = []
        for digit in range(10):
            candidate = sequences[1].clone()
            candidate[left] = digit
            energies.append(float(energy_model.energy(candidate[None])[0]))
    ranked = sorted(range(10), key=lambda d: (energies[d], d))
    row1 = sequences[1].clone()
    row1[left] = ranked[0]

    cases = [(first_call, sequences, no_tabu, reference.tokens[1], reference.position[0],
              clear[0], 0, result)]
    for s in range(1, steps):
        cases.append((f"attack_step(energy_model, task, the sequences after {s} reference "
                      f"step{'s' if s > 1 else ''}, tabu=the reference's tabu list then)",
                      reference.tokens[s], tabus[s], reference.tokens[s + 1],
                      reference.position[s], clear[s], s, None))
    expected_tokens = reference.tokens[1].clone()
    expected_tokens[0], expected_tokens[1] = sequences[0], row1
    expected_position = reference.position[0].clone()
    expected_position[0], expected_position[1] = -1, left
    clear_cornered = clear[0].clone()
    clear_cornered[0] = True
    clear_cornered[1] = energies[ranked[1]] - energies[ranked[0]] > NEAR_TIE_ENERGY
    cases.append(("attack_step(energy_model, task, sequences, tabu=every digit of row 0 and all "
                  f"but {words.position(left)} of row 1)", sequences, cornered, expected_tokens,
                  expected_position, clear_cornered, None, None))

    for call, tokens, tabu, want_tokens, want_position, compare, step, result in cases:
        if result is None:
            result, verdict = _call("attack_step", call, attack_step,
                                    (energy_model, task, tokens.clone(), tabu.clone()),
                                    energy_model)
            if verdict is not None:
                return verdict
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return Verdict(False, f"✗ wrong: {call} returned {type(result).__name__}; return a "
                                  f"pair (new_tokens (B, T), position (B,))")
        got_tokens, verdict = _as_long_tensor("new_tokens", call, result[0], (B, T),
                                              "batch row, position")
        if verdict is not None:
            return verdict
        got_position, verdict = _as_long_tensor("position", call, result[1], (B,), "batch row")
        if verdict is not None:
            return verdict
        for b in range(B):
            if not compare[b]:
                continue
            message = _explain_step(words, b, tokens[b], tabu[b], editable[b],
                                    got_tokens[b], int(got_position[b]), want_tokens[b],
                                    int(want_position[b]), reference, step)
            if message is not None:
                return Verdict(False, f"✗ wrong: {call}: {message}")
    compared = sum(int(case[5].sum()) for case in cases)
    return Verdict(True, f"✓ right: attack_step makes the reference attack's choice in all "
                         f"{compared} (row, step) cases compared")


def _explain_step(words: _Words, b: int, x: Any, tabu: Any, editable: Any, got: Any,
                  got_position: int, want: Any, want_position: int, reference: Any,
                  step: int | None) -> str | None:
    """None when one row of a step matches the reference, else what differs and why."""
    import torch

    where = f"batch row {b} ({words.row(x)})"
    if got_position != want_position:
        if want_position < 0:
            return (f"{where} has every editable position tabu, so it must stay as it is with "
                    f"position -1; you returned position {words.position(got_position)}")
        if got_position < 0:
            return (f"you returned position -1 for {where}, but {int((editable & ~tabu).sum())} "
                    f"of its positions are allowed; the reference chose "
                    f"{words.position(want_position)}")
        why = ""
        if not 0 <= got_position < len(x):
            why = ", which is not a position of the sequence"
        elif not editable[got_position]:
            why = (", which the attack may not edit: only the digits of a, b and c are "
                   "editable (task.editable_mask)")
        elif tabu[got_position]:
            why = ", which is tabu for this row"
        elif step is not None:
            saliency = reference.saliency[step, b]
            why = (f": saliency {float(saliency[got_position]):.4g} there, "
                   f"{float(saliency[want_position]):.4g} at the reference's; i* is the allowed "
                   f"position of largest ||grad_(e_i) (-E(x))||_1")
        return (f"for {where} you chose position {words.position(got_position)}, the reference "
                f"{words.position(want_position)}{why}")
    differs = (got != want).nonzero().flatten().tolist()
    if not differs:
        return None
    if want_position < 0:
        return f"{where} must stay as it is (every editable position is tabu); you changed it"
    others = [i for i in differs if i != want_position]
    if others:
        i = others[0]
        return (f"for {where} you changed position {words.position(i)} "
                f"({words.token(int(x[i]))} -> {words.token(int(got[i]))}); a step edits only "
                f"i* = {words.position(want_position)}")
    got_token, want_token = int(got[want_position]), int(want[want_position])
    energies = ""
    if step is not None and 0 <= got_token < reference.candidate_energy.shape[-1]:
        candidate = reference.candidate_energy[step, b]
        energies = (f" (E = {float(candidate[got_token]):.4f} with yours, "
                    f"{float(candidate[want_token]):.4f} with the reference's: keep the "
                    f"candidate of lowest energy, the current digit included)")
    elif not torch.isin(torch.tensor(got_token), torch.arange(10)):
        energies = " (only digits may be written there)"
    return (f"for {where} you wrote {words.token(got_token)} at "
            f"{words.position(want_position)}, the reference {words.token(want_token)}"
            f"{energies}")


# ------------------------------------------------------------------------------- Exercise 05.2
def check_run_attack(run_attack: Callable[..., Any], energy_model: Any, task: Any,
                     sequences: Any, steps: int = 6) -> Verdict:
    """Exercise 05.2: ``run_attack(energy_model, task, tokens (B, T), steps, tabu)
    -> (steps + 1, B, T)``, every state of the S-step attack (row 0 the input).

    Reference: ``naive_attack(energy_model, task, sequences, steps, tabu=tabu).tokens``, with
    ``tabu=True`` (a position whose step changed nothing is skipped for that row until the row
    changes) and ``tabu=False`` (the paper's greedy attack).
    """
    import torch

    from ...attack_reference import naive_attack

    check_callable("run_attack", run_attack)
    sequences = _check_attack_inputs(energy_model, task, sequences).cpu()
    check_int("steps", steps, 1)
    words = _Words(task)
    B, T = sequences.shape

    results = {}
    for tabu in (True, False):
        call = f"run_attack(energy_model, task, sequences, steps={steps}, tabu={tabu})"
        result, verdict = _call("run_attack", call, run_attack,
                                (energy_model, task, sequences.clone(), steps, tabu), energy_model)
        if verdict is not None:
            return verdict
        result, verdict = _as_long_tensor("its states", call, result, (steps + 1, B, T),
                                          "step, batch row, position")
        if verdict is not None:
            return verdict
        results[tabu] = (call, result)

    references = {tabu: naive_attack(energy_model, task, sequences, steps, tabu=tabu)
                  for tabu in (True, False)}
    clear = _clear_choices(references[True]).all(dim=0) & _clear_choices(
        references[False]).all(dim=0)
    for tabu in (True, False):
        call, got = results[tabu]
        want, other = references[tabu].tokens, references[not tabu].tokens
        for s in range(steps + 1):
            for b in range(B):
                if not clear[b] or torch.equal(got[s, b], want[s, b]):
                    continue
                where = f"batch row {b}, after step {s}"
                message = (f"✗ wrong: {call}: {where}: you have {words.row(got[s, b])}, the "
                           f"reference attack {words.row(want[s, b])}")
                if s == 0:
                    return Verdict(False, message + "; state 0 is the input, before any step")
                if torch.equal(got[: s + 1, b], other[: s + 1, b]):
                    hint = ("a step that changes nothing makes its position tabu for that row, "
                            "until the row changes" if tabu else
                            "without tabu no position is ever skipped")
                    return Verdict(False, f"{message}. Your steps so far are those of the attack "
                                          f"with tabu={not tabu}: {hint}")
                return Verdict(False, f"{message}. The reference's step {s}: "
                                      f"{_edit(words, want[s - 1, b], want[s, b])}; yours: "
                                      f"{_edit(words, got[s - 1, b], got[s, b])}"
                                      + ("; remember that any change empties the row's tabu "
                                         "list" if tabu else ""))
    return Verdict(True, f"✓ right: run_attack follows the reference attack step by step "
                         f"({steps} steps, with and without tabu, {int(clear.sum())} of {B} rows "
                         f"compared)")


def _edit(words: _Words, before: Any, after: Any) -> str:
    """What one step did to one row: ``"a3: '4' -> '7'"`` or ``"no change"``."""
    changed = (before != after).nonzero().flatten().tolist()
    if not changed:
        return "no change"
    return ", ".join(f"{words.position(i)}: {words.token(int(before[i]))} -> "
                     f"{words.token(int(after[i]))}" for i in changed)


# ------------------------------------------------------------------------------- warm-ups
def check_l1_saliency(l1_saliency: Callable[[Any], Any]) -> Verdict:
    """Warm-up: ``l1_saliency(gradient (B, T, D)) -> (B, T)``, the L1 norm of each position's
    gradient (eq. 4 before the argmax).

    Reference: an explicit loop summing absolute values.
    """
    check_callable("l1_saliency", l1_saliency)
    import torch

    generator = torch.Generator().manual_seed(0)
    trials = []
    for shape in ((1, 3, 2), (4, 20, 128), (2, 5, 7)):
        gradient = torch.randn(shape, generator=generator)
        expected = torch.tensor([[sum(abs(float(g)) for g in gradient[b, t])
                                  for t in range(shape[1])]
                                 for b in range(shape[0])])
        trials.append((f"l1_saliency(gradient of shape {shape})", expected,
                       lambda g=gradient: l1_saliency(g)))
    return verdict_of_tensors("l1_saliency", trials,
                              dims=("batch row", "position"))


def check_best_digit(best_digit: Callable[[Any, Any, int], Any], energy_model: Any,
                     sequences: Any) -> Verdict:
    """Warm-up: ``best_digit(energy_model, x (T,), position) -> int``, the digit of lowest
    energy at ``position`` (Algorithm 1 line 11 for one position).

    Reference: every digit written in, one sequence at a time; ties go to the lower digit.
    """
    import torch

    check_callable("best_digit", best_digit)
    if not callable(getattr(energy_model, "energy", None)):
        raise TypeError(f"energy_model must be an energy model (with energy), "
                        f"got {type(energy_model).__name__}")
    config = model_config(energy_model)
    check_token_ids("sequences", sequences, config.get("vocab_size"), config.get("seq_len"), (2,))

    trials = []
    for x in sequences:
        for position in (int(p) for p in torch.nonzero(x < 10).flatten()[::4]):
            energies = []
            for digit in range(10):
                candidate = x.clone()
                candidate[position] = digit
                with torch.no_grad():
                    energies.append(float(energy_model.energy(candidate[None])[0]))
            expected = torch.tensor(min(range(10), key=lambda d: (energies[d], d)))
            trials.append((f"best_digit(energy_model, x, {position})", expected,
                           lambda x=x, p=position: best_digit(energy_model, x, p)))
    return verdict_of_tensors("best_digit", trials)


__all__ = ["check_attack_step", "check_run_attack", "check_l1_saliency", "check_best_digit"]
