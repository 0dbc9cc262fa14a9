"""The discrete attack of the paper (section 2.2, Algorithm 1 lines 8-13), batched and traced.

One step, for every sequence x at once:

1. i* = argmax_i ||grad_{e_i}(-E(x))||_1 over the positions the attack may edit (eq. 4);
2. candidates C: the digits at i* (all of them, or the k best by first-order score
   g_i . (E_v - e_{x_i})) (eq. 5);
3. x <- argmin_{x' in C} E(x') (eq. 6), ties toward the lower token id.

With ``include_current=True`` the current token is a candidate (at its known energy), so the energy
never rises; ``include_current=False`` is the paper's "alternative token" reading: the position
always changes. The paper's greedy search stalls: when the current digit is already the best at the
most salient position, the next step picks the same position again. ``tabu=True`` skips, for that
sequence, a position that failed to improve until some digit changes.

Work skipped rather than only batched: the current token's energy is never recomputed; for a causal
energy (heads ``eos`` and ``lm_nll``) a candidate differs from x only from i* on, so the keys and
values of the prefix, and the NLL terms before i*, come from the gradient pass
(``prefix_cache.PrefixCache``); and once the greedy attack (current token a candidate, no tabu)
leaves a whole batch unchanged, it stops: every remaining step would compute exactly the same
thing, so the trace records the steps up to that one (``AttackTrace`` repeats it on access) and
memory follows the steps computed.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from .checks import check_bool, check_choice, check_int, check_seed, model_device
from .models import evaluation_mode
from .prefix_cache import energy_of_substitutions
from .saliency import (embedding_table, energy_and_gradient, first_order_from_gradients,
                       saliency_from_gradient)
from .sampling import sample_lm
from .task import AdditionTask
from .trace import AttackTrace


class AttackableTask(Protocol):
    """What an attack needs of a task, and nothing else.

    TextAttack's split: the energy is the goal, ``writable_tokens`` the transformation,
    ``editable_mask`` the constraint; the search is the attack's.

    ``AdditionTask`` is one (it writes digits, at the digit positions or the answer's); the toy
    world's ``toy.ebm.SymbolSequences`` is another (any symbol, anywhere).
    """

    vocab_size: int
    position_sets: tuple[str, ...]  # the names ``positions`` may take; the first is the default

    def check_model(self, name: str, model: nn.Module) -> nn.Module: ...

    # -> a valid (B, T) batch, long
    def check_sequences(self, tokens: torch.Tensor) -> torch.Tensor: ...

    # -> (B, T) bool
    def editable_mask(self, tokens: torch.Tensor, positions: str) -> torch.Tensor: ...

    def writable_tokens(self) -> torch.Tensor: ...  # (K,) the token ids an attack may write


class DiscreteAttack:
    """``DiscreteAttack(energy_model, task, steps).attack(tokens) -> AttackTrace``.

    ``task``: any ``AttackableTask``. ``positions``: one of ``task.position_sets`` (default: the
    first; for ``AdditionTask`` ``"digits"``, a, b and c, the paper's reading, or ``"answer"``, c
    only); ``candidates``: None (every writable token) or k in 1..K-1 (the k best alternatives by
    first-order score; for ``AdditionTask`` K = 10 digits);
    ``batch_size``: sequences per chunk (default: 256 on CPU, 4096 on a GPU).
    The model runs in eval mode and its mode is restored; no parameter or embedding table is
    touched.
    """

    def __init__(self, energy_model: nn.Module, task: AttackableTask, steps: int,
                 positions: str | None = None, candidates: int | None = None,
                 include_current: bool = True, tabu: bool = False,
                 batch_size: int | None = None) -> None:
        self.positions = check_attack_options(energy_model, task, steps, positions, candidates,
                                              include_current, tabu)
        self.energy_model, self.task, self.steps = energy_model, task, int(steps)
        self.candidates = None if candidates is None else int(candidates)
        self.include_current, self.tabu = include_current, tabu
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)

    def attack(self, tokens: torch.Tensor) -> AttackTrace:
        """Run ``steps`` steps on ``tokens (B, T)`` (well-formed, on any device: they are checked
        where they are, then attacked on the model's device); the trace lives on the CPU."""
        tokens = self.task.check_sequences(tokens)
        device = model_device(self.energy_model)
        batch_size = self.batch_size or (4096 if device.type == "cuda" else 256)
        with evaluation_mode(self.energy_model):
            return AttackTrace.concatenate([self._attack_batch(chunk.to(device))
                                            for chunk in tokens.split(batch_size)])

    def _attack_batch(self, x: torch.Tensor) -> AttackTrace:
        B, T = x.shape
        V = self.task.vocab_size
        rows = torch.arange(B, device=x.device)
        editable = self.task.editable_mask(x, self.positions).to(x.device)
        tabu = torch.zeros_like(editable)
        table = embedding_table(self.energy_model, V, x.device)
        energy = None
        history: dict[str, list[torch.Tensor]] = {
            name: [] for name in ("position", "saliency", "candidate_energy")}
        states, energies = [x], []
        # Algorithm 1 lines 7-8: every sequence of the batch at once, for S steps
        for _ in range(self.steps):
            # grad_e(-E(x)) (B, T, D) from one forward and one backward
            grads = energy_and_gradient(self.energy_model, x, keep_cache=True,
                                        target_gradient=self.candidates is not None)
            # E(x) (B,); later steps keep the value that won: monotone
            energy = grads.energy if energy is None else energy
            energies.append(energy)
            allowed = editable & ~tabu
            # line 9, eq. 4: i* = argmax_i ||grad_{e_i}(-E(x))||_1 over the allowed positions
            saliency = saliency_from_gradient(grads.gradient, allowed)  # (B, T)
            # a sequence with no position left to try (all tabu) stays as it is
            active = allowed.any(dim=1)
            # i* (B,); an inactive sequence points at any digit slot (and is skipped)
            position = torch.where(active, saliency.argmax(dim=1), editable.int().argmax(dim=1))
            current = x[rows, position]  # (B,)
            # line 10, eq. 5: the candidates C, token v in place of x_{i*}
            others = self._alternatives(grads, table, x, position, current)  # (B, K)
            # E of each candidate, +inf for tokens not evaluated: (B, V)
            candidate_energy = torch.full((B, V), float("inf"), dtype=energy.dtype,
                                          device=x.device)
            live = active.nonzero().flatten()
            if len(live):
                candidate_energy[live[:, None], others[live]] = self._substitution_energies(
                    x[live], grads.cache, live, position[live], others[live])
            if self.include_current:
                candidate_energy[rows, current] = energy
            candidate_energy[~active] = float("inf")
            # line 11, eq. 6: x'* = argmax_{x' in C} -E(x') = argmin E
            chosen = candidate_energy.argmin(dim=1)  # first minimum: ties go to the lower token id
            # line 12: x <- x'* for the next step
            x = x.clone()
            x[live, position[live]] = chosen[live]
            energy = torch.where(active, candidate_energy[rows, chosen], energy)
            if self.tabu:
                stalled = active & (chosen == current)
                tabu[stalled, position[stalled]] = True
                tabu[active & ~stalled] = False
            history["position"].append(torch.where(active, position, -1))
            history["saliency"].append(saliency)
            history["candidate_energy"].append(candidate_energy)
            states.append(x)
            if self.include_current and not self.tabu and torch.equal(x, states[-2]):
                # Nothing moved, and without a tabu list the next step sees the same x, the same
                # saliency and the same candidates: every remaining step repeats this one exactly,
                # as the trace assumes of its last recorded step.
                break
        energies.append(energy if energy is not None else self._energy(x))  # after the last step
        # tokens (S+1, B, T), energy (S+1, B), position (S, B), saliency (S, B, T),
        # candidate_energy (S, B, V); S = the steps computed
        return AttackTrace(
            torch.stack(states).cpu(), torch.stack(energies).cpu(),
            _stack(history["position"], (0, B), torch.long, x.device).cpu(),
            _stack(history["saliency"], (0, B, T), table.dtype, x.device).cpu(),
            _stack(history["candidate_energy"], (0, B, V), table.dtype, x.device).cpu(),
            steps=self.steps,
        )

    def _alternatives(self, grads, table: torch.Tensor, x: torch.Tensor, position: torch.Tensor,
                      current: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` token ids to evaluate besides the current one, in ascending order.

        Every other writable token, or the k with the highest first-order score
        (``saliency.first_order_from_gradients``).
        """
        writable = self.task.writable_tokens().to(current.device).expand(len(current), -1)
        others = writable[writable != current[:, None]].view(len(current), writable.shape[1] - 1)
        if self.candidates is None:
            return others
        rows = torch.arange(len(x), device=x.device)
        scores = first_order_from_gradients(grads, table, x)[rows, position].gather(1, others)
        best = scores.argsort(dim=1, descending=True, stable=True)[:, : self.candidates]
        return others.gather(1, best).sort(dim=1).values

    def _substitution_energies(self, x: torch.Tensor, cache, rows: torch.Tensor,
                               position: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """``(n, K)``: E of x with each candidate at its position; reuses the prefix if it can."""
        if cache is not None:
            return energy_of_substitutions(self.energy_model, cache.select(rows), position,
                                           candidates)
        n, k = candidates.shape
        variants = x.repeat_interleave(k, dim=0)  # (n, T) -> (n * K, T), one row per candidate
        variants[torch.arange(n * k, device=x.device),
                 position.repeat_interleave(k)] = candidates.flatten()
        with torch.no_grad():
            return torch.cat([self.energy_model.energy(chunk)
                              for chunk in variants.split(4096)]).view(n, k)  # (n * K,) -> (n, K)

    @torch.no_grad()
    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy_model.energy(x)


def check_attack_options(energy_model: nn.Module, task: AttackableTask, steps: int,
                         positions: str | None, candidates: int | None, include_current: bool,
                         tabu: bool) -> str:
    """The options of ``DiscreteAttack`` (and ``naive_attack``), each named when it is refused;
    returns the positions to edit (the task's default for None)."""
    missing = [name for name in ("vocab_size", "position_sets", "check_model", "check_sequences",
                                 "editable_mask", "writable_tokens") if not hasattr(task, name)]
    if missing:
        raise TypeError(f"task must be an AdditionTask or another AttackableTask; a "
                        f"{type(task).__name__} has no {', '.join(missing)}")
    task.check_model("energy_model", energy_model)
    check_int("steps", steps, 0)
    if candidates is not None:  # alternatives to the current token
        check_int("candidates", candidates, 1, len(task.writable_tokens()) - 1)
    check_bool("include_current", include_current)
    check_bool("tabu", tabu)
    return (task.position_sets[0] if positions is None
            else check_choice("positions", positions, task.position_sets))


def _stack(items: list[torch.Tensor], empty_shape: tuple[int, ...], dtype: torch.dtype,
           device) -> torch.Tensor:
    return torch.stack(items) if items else torch.empty(empty_shape, dtype=dtype, device=device)


def attack_generate(lm: nn.Module, energy_model: nn.Module, task: AdditionTask, steps: int, n: int,
                    seed: int, **attack_options) -> torch.Tensor:
    """The paper's generator (section 2.4): ``n`` P_LM samples, each attacked for ``steps`` steps
    toward low energy."""
    attack = DiscreteAttack(energy_model, task, steps, **attack_options)  # options checked first
    return attack.attack(sample_lm(lm, task, n, seed=check_seed("seed", seed))).final
