"""A discrete attack's record: every step's tokens, energies, choices and candidate energies."""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import torch

from .checks import check_int, check_tensor

FIELDS = ("tokens", "energy", "position", "saliency", "candidate_energy")


class AttackTrace:
    """What ``DiscreteAttack.attack`` returns for S steps on B sequences of length T over V tokens.

    * ``tokens (S+1, B, T)``: the sequences before step 1 (index 0) and after each step;
    * ``energy (S+1, B)``: E of those sequences (non-increasing when the current token is a
      candidate);
    * ``position (S, B)``: the position each step chose (by saliency), ``-1`` when a sequence had
      no position left to try (every editable position is tabu: a local minimum of single
      substitutions);
    * ``saliency (S, B, T)``: ||grad_{e_i} (-E)|| per position at each step, ``-inf`` where the
      attack may not edit (format tokens, tabu positions);
    * ``candidate_energy (S, B, V)``: the energy of the sequence with token v at the chosen
      position, ``+inf`` for tokens that were not evaluated (not candidates, or pruned away).

    Only the steps an attack computed are stored: built from R < ``steps`` recorded steps (R+1 and
    R rows), the trace stands for ``steps`` steps whose last S - R repeat the R-th, a step that
    changed nothing (the greedy attack at a fixed point repeats it exactly). The five fields are
    built from the record on first access; ``final``, ``steps`` and ``changed`` never build them.

    A trace keeps its tensors on the device they were given on: ``DiscreteAttack.attack`` and
    ``naive_attack`` give CPU tensors, so the task reads a trace on the CPU.
    """

    def __init__(self, tokens: torch.Tensor, energy: torch.Tensor, position: torch.Tensor,
                 saliency: torch.Tensor, candidate_energy: torch.Tensor,
                 steps: int | None = None) -> None:
        record = dict(zip(FIELDS, (tokens, energy, position, saliency, candidate_energy)))
        check_tensor("tokens", tokens, dims=(3,))
        check_tensor("candidate_energy", candidate_energy, dims=(3,))
        rows, batch, length = tokens.shape
        recorded = rows - 1
        expected = {"energy": (rows, batch), "position": (recorded, batch),
                    "saliency": (recorded, batch, length),
                    "candidate_energy": (recorded, batch, candidate_energy.shape[-1])}
        for name, shape in expected.items():
            if tuple(check_tensor(name, record[name]).shape) != shape:
                raise ValueError(f"{name} has shape {tuple(record[name].shape)}, expected {shape} "
                                 f"for {recorded} recorded steps, B={batch}, T={length} "
                                 f"(tokens: {tuple(tokens.shape)})")
        self._steps = recorded if steps is None else check_int("steps", steps, max(recorded, 0))
        if recorded < 0 or (recorded == 0 < self._steps):
            raise ValueError(f"tokens must hold the first sequences and, for steps={self._steps}, "
                             f"at least one recorded step; got shape {tuple(tokens.shape)}")
        self._record = record

    @staticmethod
    def concatenate(traces: Sequence["AttackTrace"]) -> "AttackTrace":
        """The traces of several batches of sequences (the same ``steps``), side by side."""
        steps = {trace.steps for trace in traces}
        if len(steps) != 1:
            raise ValueError(f"traces must share one number of steps, got {sorted(steps)}")
        recorded = max(trace.recorded_steps for trace in traces)
        rows = {name: recorded + (name in ("tokens", "energy")) for name in FIELDS}
        return AttackTrace(*(torch.cat([_repeat_last(trace._record[name], rows[name])
                                        for trace in traces], dim=1) for name in FIELDS),
                           steps=steps.pop())

    @cached_property
    def tokens(self) -> torch.Tensor:
        return _repeat_last(self._record["tokens"], self._steps + 1)

    @cached_property
    def energy(self) -> torch.Tensor:
        return _repeat_last(self._record["energy"], self._steps + 1)

    @cached_property
    def position(self) -> torch.Tensor:
        return _repeat_last(self._record["position"], self._steps)

    @cached_property
    def saliency(self) -> torch.Tensor:
        return _repeat_last(self._record["saliency"], self._steps)

    @cached_property
    def candidate_energy(self) -> torch.Tensor:
        return _repeat_last(self._record["candidate_energy"], self._steps)

    @property
    def final(self) -> torch.Tensor:
        """``(B, T)``: the sequences after the last step."""
        return self._record["tokens"][-1]

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def recorded_steps(self) -> int:
        """How many steps the trace stores (at most ``steps``; the later ones repeat the last)."""
        return len(self._record["position"])

    @property
    def changed(self) -> torch.Tensor:
        """``(S, B)`` bool: whether step s changed sequence b."""
        tokens = self._record["tokens"]
        changed = (tokens[1:] != tokens[:-1]).any(dim=-1)
        repeated = changed.new_zeros(self._steps - len(changed), changed.shape[1])  # repeats: no
        return torch.cat([changed, repeated])

    def __repr__(self) -> str:
        _, batch, length = self._record["tokens"].shape
        return (f"AttackTrace(steps={self._steps}, sequences={batch}, length={length}, "
                f"recorded_steps={self.recorded_steps})")


def _repeat_last(recorded: torch.Tensor, rows: int) -> torch.Tensor:
    """``recorded`` with its last row repeated until it has ``rows`` rows."""
    if len(recorded) >= rows:
        return recorded
    return torch.cat([recorded, recorded[-1:].expand(rows - len(recorded), *recorded.shape[1:])])
