"""The paper's iterative attack (section 2.2, Algorithm 1 lines 8-13), as plain as the pseudo-code.

``naive_attack`` is the trusted reference for the tests of ``DiscreteAttack`` and the baseline of
the benchmark. It is slow on purpose: one sequence at a time, one step at a time, one forward pass
per candidate (batch size 1), the gradient from a batch-of-1 forward with ``torch.autograd.grad``,
and plain Python loops for every argmax, argmin and tie-break. Use ``DiscreteAttack`` for real
work.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attack import AttackableTask, check_attack_options
from .models import evaluation_mode
from .trace import AttackTrace


def _energy_of_one(energy_model: nn.Module, x: torch.Tensor) -> float:
    """E(x) for one sequence ``x (T,)``, from a batch-of-1 forward."""
    with torch.no_grad():
        return energy_model.energy(x[None])[0].item()


def _gradient_of_one(energy_model: nn.Module, x: torch.Tensor, vocab_size: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(g, e, t)`` for one sequence ``x (T,)``: g = grad_e (-E(x)) ``(T, D)``, the embeddings
    e ``(T, D)``, and t = grad (-E(x)) with respect to the tokens as one-hot prediction targets
    ``(T, V)``."""
    embeds = energy_model.embed(x[None]).detach().requires_grad_(True)  # (1, T, D)
    targets = (torch.nn.functional.one_hot(x[None], vocab_size)  # (1, T, V)
               .to(embeds.dtype).requires_grad_(True))
    negative_energy = -energy_model.energy_from_embeds(embeds, targets)[0]
    grad, target_grad = torch.autograd.grad(negative_energy, [embeds, targets], allow_unused=True)
    if target_grad is None:  # the scalar heads do not read targets
        target_grad = torch.zeros_like(targets)
    return grad[0], embeds.detach()[0], target_grad[0]


def naive_attack(
    energy_model: nn.Module,
    task: AttackableTask,
    tokens: torch.Tensor,
    steps: int,
    positions: str | None = None,
    candidates: int | None = None,
    include_current: bool = True,
    tabu: bool = False,
) -> AttackTrace:
    """Attack every sequence of ``tokens (B, T)`` for ``steps`` steps, as ``DiscreteAttack`` does.

    Each step: i* = the allowed position with the largest ||grad_{e_i}(-E(x))||_1 (first on ties);
    the candidates are the task's writable tokens (for ``AdditionTask`` the digits) at i* (without
    the current token if ``include_current=False``; with ``candidates=k`` the k other tokens of
    highest first-order score g_i* . (E_v - e_x_i*) + t_i*[v] - t_i*[x_i*] (t: the gradient with
    respect to the one-hot target, nonzero only for ``lm_nll``), ties toward the lower id, plus the
    current token if included); the new sequence is the candidate of lowest energy (ties toward the
    lower id), the current token keeping its known energy. ``tabu=True`` forbids a position whose
    step changed nothing until the sequence changes; with no position left the step is skipped
    (position -1).

    The tokens are moved to the model's device; the trace lives on the CPU, as
    ``DiscreteAttack``'s does.
    """
    positions = check_attack_options(energy_model, task, steps, positions, candidates,
                                     include_current, tabu)
    parameter = next(energy_model.parameters())
    device, dtype = parameter.device, parameter.dtype
    tokens = task.check_sequences(tokens).to(device)
    B, T = tokens.shape
    V = task.vocab_size

    # the trace, on the CPU
    trace_tokens = torch.empty(steps + 1, B, T, dtype=torch.long)
    trace_energy = torch.empty(steps + 1, B, dtype=dtype)
    trace_position = torch.empty(steps, B, dtype=torch.long)
    trace_saliency = torch.empty(steps, B, T, dtype=dtype)
    trace_candidate_energy = torch.empty(steps, B, V, dtype=dtype)

    with evaluation_mode(energy_model):
        with torch.no_grad():
            embedding_table = [energy_model.embed(torch.tensor([v], device=device))[0]
                               for v in range(V)]  # V rows E_v, each (D,)
        editable = task.editable_mask(tokens[:1], positions)[0].tolist()
        writable = task.writable_tokens().tolist()

        for b in range(B):  # each sequence on its own
            x = tokens[b].clone()
            energy = _energy_of_one(energy_model, x)
            trace_tokens[0, b] = x
            trace_energy[0, b] = energy
            tabu_positions: set[int] = set()

            for s in range(steps):
                # 1. where the attack may edit
                allowed = [editable[i] and i not in tabu_positions for i in range(T)]

                # 2. nothing left to try: the sequence stays as it is
                if not any(allowed):
                    trace_position[s, b] = -1
                    trace_saliency[s, b] = -math.inf
                    trace_candidate_energy[s, b] = math.inf
                    trace_tokens[s + 1, b] = x
                    trace_energy[s + 1, b] = energy
                    continue

                # 3. saliency s_i = ||grad_{e_i}(-E(x))||_1 and the most salient allowed position
                # (Algorithm 1 line 9, eq. 4)
                grad, embeds, target_grad = _gradient_of_one(energy_model, x, V)
                saliency = [grad[i].abs().sum().item() if allowed[i] else -math.inf
                            for i in range(T)]
                best = None
                for i in range(T):
                    if allowed[i] and (best is None or saliency[i] > saliency[best]):
                        best = i
                current = int(x[best])

                # 4. the candidate tokens (line 10, eq. 5)
                others = [v for v in writable if v != current]
                if candidates is not None:
                    score = {}
                    # first-order estimate of the energy decrease: g . (E_v - e_x) + t[v] - t[x]
                    for v in others:
                        score[v] = (torch.dot(grad[best], embedding_table[v] - embeds[best])
                                    + target_grad[best, v] - target_grad[best, current]).item()
                    # stable: ties keep the lower id first
                    ranked = sorted(others, key=lambda v: -score[v])
                    others = ranked[:candidates]
                chosen_tokens = sorted(others + [current]) if include_current else sorted(others)

                # 5. the energy of every candidate (the current token's is already known)
                candidate_energy = {}
                for v in chosen_tokens:
                    if v == current:
                        candidate_energy[v] = energy
                    else:
                        x_new = x.clone()
                        x_new[best] = v
                        candidate_energy[v] = _energy_of_one(energy_model, x_new)

                # 6. the candidate of lowest energy, ties toward the lower id (line 11, eq. 6)
                winner = None
                for v in chosen_tokens:  # in increasing id order
                    if winner is None or candidate_energy[v] < candidate_energy[winner]:
                        winner = v

                trace_position[s, b] = best
                trace_saliency[s, b] = torch.tensor(saliency, dtype=dtype)
                trace_candidate_energy[s, b] = math.inf
                for v in chosen_tokens:
                    trace_candidate_energy[s, b, v] = candidate_energy[v]

                # 7. tabu bookkeeping, then move (line 12)
                if winner == current:
                    if tabu:
                        tabu_positions.add(best)
                else:
                    x = x.clone()
                    x[best] = winner
                    tabu_positions = set()
                energy = candidate_energy[winner]
                trace_tokens[s + 1, b] = x
                trace_energy[s + 1, b] = energy

    return AttackTrace(
        tokens=trace_tokens,
        energy=trace_energy,
        position=trace_position,
        saliency=trace_saliency,
        candidate_energy=trace_candidate_energy,
    )
