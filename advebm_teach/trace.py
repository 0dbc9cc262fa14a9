"""The record of a discrete attack: every step's tokens, energies, choices and candidate energies."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AttackTrace:
    """What ``DiscreteAttack.attack`` returns, for S steps on B sequences of length T over V tokens.

    * ``tokens (S+1, B, T)``: the sequences before step 1 (index 0) and after each step;
    * ``energy (S+1, B)``: E of those sequences (non-increasing when the current token is a candidate);
    * ``position (S, B)``: the position each step chose (by saliency), ``-1`` when a sequence had no
      position left to try (every editable position is tabu: a local minimum of single substitutions);
    * ``saliency (S, B, T)``: ||grad_{e_i} (-E)|| per position at each step, ``-inf`` where the attack
      may not edit (format tokens, tabu positions);
    * ``candidate_energy (S, B, V)``: the energy of the sequence with token v at the chosen position,
      ``+inf`` for tokens that were not evaluated (not candidates, or pruned away).
    """

    tokens: torch.Tensor
    energy: torch.Tensor
    position: torch.Tensor
    saliency: torch.Tensor
    candidate_energy: torch.Tensor

    @property
    def final(self) -> torch.Tensor:
        """``(B, T)``: the sequences after the last step."""
        return self.tokens[-1]

    @property
    def steps(self) -> int:
        return self.position.shape[0]

    @property
    def changed(self) -> torch.Tensor:
        """``(S, B)`` bool: whether step s changed sequence b."""
        return (self.tokens[1:] != self.tokens[:-1]).any(dim=-1)
