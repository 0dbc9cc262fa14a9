# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#   jupytext:
#     formats: solutions///ipynb,sources/solutions///py:percent
#     notebook_metadata_filter: accelerator,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions · 05 Discrete attacks
#
# Model solutions to the exercises of notebook 05, each checked against the library's reference
# attack (`naive_attack`), and model answers to its questions for discussion.

# %%
# Course setup: the same first cell in every notebook. On Colab it installs the course, keeping
# every package Colab already has (its torch, numpy, ipywidgets) at its version; anywhere else it
# installs nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess
    import tempfile
    from importlib import metadata, util

    if util.find_spec("advebm_teach") is None:
        installed = {dist.metadata["Name"]: dist.version for dist in metadata.distributions()}
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
            keep.writelines(f"{name}=={version}\n" for name, version in installed.items() if name)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", keep.name,
                        "advebm-teach @ git+https://github.com/advebm-teach/advebm-teach@main"],
                       check=True)

import advebm_teach

print(advebm_teach.setup_notebook())

# %%
import torch

from advebm_teach import load_pretrained, make_task, pick_device, sample_lm
from advebm_teach.saliency import token_saliency
from advebm_teach.teaching.exercises.discrete import check_attack_step, check_run_attack

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)
samples = sample_lm(plm, task, 256, seed=0)  # the notebook's samples
energy_model = load_pretrained("energy_lm").to(device)
energy_model.head = "lm_nll"

# %% [markdown]
# ### Exercise 05.1
#
# One attack step for a batch, with a tabu mask.

# %%
# Solution to Exercise 05.1
def attack_step(energy_model, task, tokens: torch.Tensor, tabu: torch.Tensor):
    """One attack step on every row of tokens (B, T): at i* = argmax over allowed i of
    ||grad_{e_i}(-E(x))||_1 (eq. 4), the digit v of lowest E(x with v at i*) (eqs. 5-6).

    allowed = task.editable_mask(tokens) & ~tabu. Returns (new_tokens (B, T), position (B,));
    a row with no allowed position is returned unchanged, with position -1.
    """
    device = next(energy_model.parameters()).device  # work where the model is
    tokens, tabu = tokens.to(device), tabu.to(device)
    allowed = task.editable_mask(tokens) & ~tabu
    saliency = token_saliency(energy_model, tokens, mask=allowed)  # (B, T), -inf if not allowed
    position = saliency.argmax(dim=1)  # i*, (B,)
    active = allowed.any(dim=1)  # rows with a position left to try
    rows = torch.arange(len(tokens), device=device)
    digits = task.writable_tokens().to(device)  # L(x_i): the ten digits
    energies = []
    for v in digits:  # the candidate set C, one batch per digit
        candidate = tokens.clone()
        candidate[rows, position] = v
        with torch.no_grad():
            energies.append(energy_model.energy(candidate))
    # (B, 10) -> (B,); argmin returns the first minimum: the lower digit on ties
    best = digits[torch.stack(energies, dim=1).argmin(dim=1)]
    new_tokens = tokens.clone()
    new_tokens[rows[active], position[active]] = best[active]
    return new_tokens, torch.where(active, position, -1)


check_attack_step(attack_step, energy_model, task, samples[:8])

# %% [markdown]
# ### Exercise 05.2
#
# The $S$-step loop, with or without a tabu list.

# %%
# Solution to Exercise 05.2
def run_attack(energy_model, task, tokens: torch.Tensor, steps: int, tabu: bool = True):
    """S = steps attack steps from tokens (B, T) (Algorithm 1, lines 8-13), with a tabu list
    if tabu; returns every state, (S + 1, B, T), state 0 = tokens."""
    device = next(energy_model.parameters()).device  # work where the model is
    states = [tokens.to(device)]
    tabu_mask = torch.zeros_like(states[0], dtype=torch.bool)
    rows = torch.arange(len(tokens), device=device)
    for _ in range(steps):
        new_tokens, position = attack_step(energy_model, task, states[-1], tabu_mask)
        if tabu:
            changed = (new_tokens != states[-1]).any(dim=1)
            stalled = ~changed & (position >= 0)
            tabu_mask = tabu_mask & ~changed[:, None]  # a change empties the row's list
            tabu_mask[rows[stalled], position[stalled]] = True  # a failed position becomes tabu
        states.append(new_tokens)
    return torch.stack(states)


check_run_attack(run_attack, energy_model, task, samples[:8])

# %% [markdown]
# ### Question 1
#
# *Against this energy the attack prefers to rewrite $a$ or $b$. Why is changing one operand
# digit often a better move, for the energy, than changing one answer digit?*
#
# The energy is the negative log-likelihood of the answer digits given everything before them.
# P_LM's answers are wrong in most of their digits (its samples' average correctness is 0.24), so
# fixing the answer takes several edits, and each single edit fixes one term of the sum while the
# other wrong digits stay expensive. One operand digit, in contrast, conditions *every* answer
# digit: rewriting it can make the whole written answer the right sum of the new question at once,
# and every term of the energy drops together. The saliency says the same thing: the gradient is
# largest at the inputs, because each input embedding feeds the prediction of all answer digits.
# The greedy choice of "the best single swap" therefore favours the question.
#
# ### Question 2
#
# *The paper trains its energy on negatives made by this attack. If the attack edits mostly the
# question, what kind of wrong sequences does the energy get to see, and what might it then fail
# to learn? What would the answer-only attack change?*
#
# Against an energy being trained, the attack looks for wrong sequences of low energy. If it
# rewrites mostly operands, its negatives are P_LM's (wrong) answers paired with rewritten
# questions: sums that are wrong in ways the current energy cannot see from the operands' side.
# The energy learns to push those up, but it sees few negatives that keep a question and only get
# the answer subtly wrong (one carry), which is exactly the mistake P_LM makes and the one a
# generator that keeps its question must avoid. And because correctness is measured against the
# sequence's own $a$ and $b$, a generator built on the full attack can look good by rewriting
# questions. The answer-only attack (`positions="answer"`) produces negatives that share P_LM's
# question and differ only in the answer, so the energy must learn the sum itself; its
# correctness after the attack measures what the energy knows about addition rather than how
# consistent it can make a sequence.
