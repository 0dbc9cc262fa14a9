# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#   jupytext:
#     formats: notebooks///ipynb,sources/notebooks///py:percent
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
# # 05 · Discrete attacks: saliency, substitution and the iterative attack
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/05_discrete_attacks.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/05_discrete_attacks.ipynb) · or locally, `advebm-teach lab`
#
# Notebooks 03 and 04 attacked a model through its embeddings, where a small step along the
# gradient is always possible. A sentence has no small steps: a token is either there or replaced.
# Yet the paper (Yin 2023) makes both its training negatives and its generator with an attack on
# the energy in *token* space: edit a sequence one token at a time toward lower energy (section
# 2.2; Algorithm 1, lines 8–13). This notebook builds that attack from its pieces, has you write
# one step of it and then the whole loop, and watches it work, stall, and work again.
#
# **Learning goals.** By the end you can
# 1. explain why a gradient step cannot be followed in token space, and what the paper uses the
#    gradient for instead;
# 2. compute the saliency of each position (eq. 4) and read it as a heatmap;
# 3. write one attack step for a batch (most salient allowed position, every token of the synonym
#    set $\mathbb{L}$ there, lowest energy), then the $S$-step loop, and match the library's
#    reference attack;
# 4. recognise the greedy attack's stall and fix it with a tabu list;
# 5. say what the attack's edits are (mostly the question, not the answer) and what correctness
#    after the attack therefore measures;
# 6. say what HotFlip's first-order estimate $g_i \cdot (W_v - e_i)$ gets wrong here, and what
#    pruning the candidates with it costs.

# %% [markdown]
# **Prerequisites.** Notebook 00: the addition task `a+b=c`, P_LM and its samples, the
# correctness metric, and the pre-trained Transformer with its `lm_nll` read-out.
# Notebook 01: an energy $E(x)$ is low for sequences the model believes. Notebook 03: the
# embeddings $e_i = W_{x_i}$ of the tokens, the model's `embed` / `energy_from_embeds` seam, and
# gradients with respect to the embeddings. (Notebook 02 ran a tiny version of this attack on its
# toy world; here it meets the real task.) Python and PyTorch: boolean masks, `argmax`/`argmin`
# along a dimension, indexing with a row index, `torch.no_grad`. Symbols follow the course's
# [notation](../docs/notation.md) table; in particular $W$ is the embedding table and $E$ always
# the energy.
#
# Run the setup cell first.

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
from advebm_teach.attack import DiscreteAttack
from advebm_teach.attack_reference import naive_attack
from advebm_teach.saliency import first_order_scores, token_saliency
from advebm_teach.teaching.exercises.discrete import check_attack_step, check_run_attack
from advebm_teach.teaching.plots import curves_by_step, prediction_scatter, saliency_grid
from advebm_teach.teaching.widgets import AttackStepper

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)
samples = sample_lm(plm, task, 256, seed=0)  # the samples `advebm-teach bench attack` uses
labels = task.position_labels()  # <bos>, a5..a1, +, b5..b1, =, c6..c1, <eos>
print(f"{len(samples)} P_LM samples, e.g. {task.decode(samples[0], strip=True)}; "
      f"average correctness {task.correctness(samples).mean():.2f}")

# %% [markdown]
# ## The energy we attack
#
# Later the attack runs against energies being trained; here it attacks one that needs no
# training: the pre-trained Transformer's negative log-likelihood of the answer digits (the
# `lm_nll` read-out of notebook 00), $E(x) = -\sum_{i \in c} \log p_\theta(x_i \mid x_{<i})$.
# It is low on right sums, so an attack that lowers it should *repair* P_LM's samples, and
# every step of the attack is easy to judge.

# %%
energy_model = load_pretrained("energy_lm").to(device)
energy_model.head = "lm_nll"
with torch.no_grad():
    print(f"mean energy: true sums {energy_model.energy(task.sample(200, seed=1)).mean():.1f}, "
          f"P_LM samples {energy_model.energy(samples).mean():.1f} nats")

# %% [markdown]
# ## 1. Why the gradient cannot be followed in token space
#
# The energy is a function of the token embeddings $e_i = W_{x_i}$, so its gradient
# $g_i = \nabla_{e_i} E(x)$ exists. But a gradient step $e_i - \eta\, g_i$ leaves the 14 points
# $\{W_v\}$ that are tokens. Take each sample's most salient position $i^*$ (defined in section 2),
# step along $-g_i$, map the result back to the nearest digit, and compare with the best digit
# there, found by trying all ten (the library's attack does that; section 3 builds it, and its
# trace holds the energy of every digit at $i^*$):

# %%
first = DiscreteAttack(energy_model, task, steps=1).attack(samples)  # built in section 3
rows, i_star = torch.arange(len(samples)), first.position[0]
energy_of_digit = first.candidate_energy[0, :, :10]  # E with digit v at i*, (B, 10)
current, best = samples[rows, i_star], energy_of_digit.argmin(dim=1)
embeds = energy_model.embed(samples).detach().requires_grad_(True)
(g,) = torch.autograd.grad(energy_model.energy_from_embeds(embeds, samples).sum(), embeds)
W = energy_model.embed(torch.arange(task.vocab_size)).detach()  # the embedding table (V, d)
e, g_i = embeds.detach()[rows, i_star], g[rows, i_star]  # (B, d) each
exact_decrease = (first.energy[0] - first.energy[1]).mean()
print(f"trying all ten digits lowers the energy by {exact_decrease:.1f} nats on average")
print("step along -g_i  moved off the digit  landed on the best  energy went down  mean decrease")
for length in (0.5, 1.0, 2.0, 5.0, 10.0):
    moved = e - length * e.norm(dim=1, keepdim=True) * g_i / g_i.norm(dim=1, keepdim=True)
    nearest = torch.cdist(moved, W[:10]).argmin(dim=1).cpu()  # nearest digit (B,), on the CPU
    decrease = first.energy[0] - energy_of_digit[rows, nearest]
    print(f"{length:5.1f} x ||e_i||  {(nearest != current).sum():13d} "
          f"{(nearest == best).sum():18d} {(decrease > 0).sum():17d} {decrease.mean():10.1f} nats")
print(f"(of {len(samples)} samples)")

# %% [markdown]
# Short steps map back to the digit already there: nothing happens. Longer steps do land on
# other digits, but on the best one in under a fifth of the samples, and the longest ones *raise*
# the energy about as often as they lower it; on average they gain a nat at most, where trying
# every digit gains about fifteen. Token space has no small moves, and the gradient's direction
# says little about which far-away digit is good. The paper uses the gradient only to *choose
# where* to edit, then tries the substitutes exactly.
#
# ## 2. Saliency: where the energy is most sensitive
#
# The **saliency** of position $i$ is the size of the gradient there (eq. 4 of the paper),
#
# $$s_i = \lVert \nabla_{e_i}(-E(x)) \rVert_1 = \lVert g_i \rVert_1 ,$$
#
# how much the energy changes, to first order, per unit move of $e_i$ (the sign of $E$ does not
# change a norm). The attack edits the most salient position $i^* = \arg\max_i s_i$, taken over
# the positions it may edit: the digits of $a$, $b$ and $c$ (`task.editable_mask`; `<bos>`, `+`,
# `=` and `<eos>` get $-\infty$). Where does this energy look?

# %%
shown = samples[:8]
saliency = token_saliency(energy_model, shown, mask=task.editable_mask(shown))
wrong = ~task.digit_correct(shown)
for row, text in enumerate(task.decode(shown, strip=True)):
    top = int(saliency[row].argmax())
    if top in task.c_positions:
        kind = "a wrong answer digit" if wrong[row, top - task.c_positions[0]] else "a right one"
    else:
        kind = "an input digit"
    print(f"{text}  most salient: {labels[top]:>3} ({kind})")

# %%
# NBVAL_IGNORE_OUTPUT
saliency_grid(labels, [[task.vocab[t] for t in row] for row in shown.tolist()],
              saliency.tolist(), title="Saliency ||g_i||_1 of P_LM samples (text: the token)")

# %% [markdown]
# In the heatmap (rows: samples, columns: positions; darker is more salient), the darkest cells
# sit mostly on the digits of `a` and `b`, and the last answer digit `c1` is always white.
# Changing one input digit changes what every answer digit should be, so the energy is most
# sensitive there; and `c1` feeds the prediction of no answer digit, so this energy's gradient
# there is exactly zero.
#
# ## 3. The synonym set, the candidates, and one step by hand
#
# Having chosen $i^*$, the attack tries replacements there. The paper's **synonym set**
# $\mathbb{L}(x_i)$ is the set of tokens allowed in place of $x_i$. Each
# $v \in \mathbb{L}(x_{i^*})$ gives a **candidate** (eq. 5)
#
# $$x' = (x_1, \dots, x_{i^*-1}, v, x_{i^*+1}, \dots, x_T),$$
#
# the candidates form the set $C$, and the attack keeps the one of lowest energy,
# $x'^* = \arg\max_{x' \in C} (-E(x'))$ (eq. 6). In this task $\mathbb{L}(x_i)$ is simply the ten
# digits (`task.writable_tokens()`), the current one included, so the energy never rises.
#
# **In real text** $\mathbb{L}(x_i)$ holds synonyms of the word $x_i$, found in a thesaurus or
# among its nearest neighbours in a word-embedding space (Alzantot et al. 2018; Jin et al. 2020).
# There an adversarial example is meant to keep the sentence's meaning, so that the model's
# changed answer is a *mistake*; Morris et al. (2020) had people read such attacks' outputs and
# found that many swaps did not preserve the meaning or made the sentence ungrammatical; once they
# tightened the constraints (closer synonyms, similar sentence encodings, no new grammar errors),
# the attacks succeeded far less often. The paper points to those richer attacks for real text.
# Our task is the opposite case: every digit swap changes the meaning, on purpose. The attack
# looks for *wrong* sequences the energy likes (negatives to train on), or, against an energy
# that is already good, for the nearby *right* sequence (a generator).
#
# Algorithm 1's lines 9–12 for one sequence: (9) the most salient position $i^*$; (10) the
# candidates, every digit written at $i^*$; (11) the candidate of lowest energy; (12) continue
# from it.

# %%
x = samples[:1]
saliency = token_saliency(energy_model, x, mask=task.editable_mask(x))  # line 9
i_star = int(saliency.argmax())
candidates = x.repeat(10, 1)  # line 10: C, one row per digit
candidates[:, i_star] = task.writable_tokens()
with torch.no_grad():
    energies = energy_model.energy(candidates)  # line 11
by_hand = candidates[int(energies.argmin())]  # line 12
print(f"position {labels[i_star]}: energies of digits 0-9 "
      f"{[round(e, 1) for e in energies.tolist()]}")
print(f"{task.decode(x[0], strip=True)} -> {task.decode(by_hand, strip=True)}")

# %% [markdown]
# The library has this attack twice. `advebm_teach/attack_reference.py` (`naive_attack`) writes
# the pseudo-code as plainly as it can, one sequence and one candidate at a time; it is the
# reference the library's attack is tested against and the one your exercises are checked against.
# `DiscreteAttack` does the same for a whole batch at once and returns a **trace** of every step
# (`trace.tokens`, `trace.position`, `trace.saliency`, `trace.candidate_energy`); it also skips
# recomputing what a substitution cannot change (`prefix_cache.py`, safe to skip on a first
# read). One step of each gives the sequence built by hand:

# %%
naive = naive_attack(energy_model, task, x, steps=1)
trace = DiscreteAttack(energy_model, task, steps=1).attack(x)
print("naive_attack:", torch.equal(naive.tokens[1, 0], by_hand),
      "| DiscreteAttack:", torch.equal(trace.final[0], by_hand))

# %% [markdown]
# ## 4. The iterative attack, and its stall
#
# Repeat the step $S$ times (the paper's Figure 1a), from each of the 256 samples. The attack is
# deterministic; its trace keeps every intermediate sequence, so correctness can be read off at
# every step.

# %%
steps = 20
paper = DiscreteAttack(energy_model, task, steps).attack(samples)


def correctness_by_step(trace):
    """Average correctness of the attacked sequences after each step, (S + 1,)."""
    return task.correctness(trace.tokens.flatten(0, 1)).view(trace.steps + 1, -1).mean(dim=1)


shown_steps = (0, 1, 2, 5, 10, 20)
print("average correctness after S steps:",
      "  ".join(f"S={s}: {correctness_by_step(paper)[s]:.2f}" for s in shown_steps))
print(f"steps that changed a digit: {paper.changed.float().mean():.0%}")

# %% [markdown]
# The paper's attack stops improving after a few steps, and most of its steps change nothing.
# Here is why: when the current digit is already the best one at the most salient position, the
# sequence does not change, so the gradient does not change, so the next step picks the same
# position again, forever.

# %%
stalled = ((~paper.changed[0]) & (paper.position[1] == paper.position[0])).nonzero().flatten()
b = int(stalled[0])
print(f"sequence {b}: positions chosen at steps 1-6: "
      f"{[labels[p] for p in paper.position[:6, b].tolist()]}, "
      f"changed: {paper.changed[:6, b].tolist()}")

# %% [markdown]
# A **tabu list** fixes it (the name comes from *tabu search*, Glover 1989, a local search that
# forbids recent moves so it cannot cycle): a position whose step failed to change the sequence
# becomes tabu, skipped by that sequence's later steps, until some digit of the sequence changes
# and the list is emptied. The search then keeps moving until no single substitution at any
# position lowers the energy (a local minimum; the trace then records position $-1$). The third
# attack below also keeps the tabu list but may edit only the answer digits (`positions="answer"`),
# so that the question $a + b$ stays as P_LM wrote it.

# %%
tabu = DiscreteAttack(energy_model, task, steps, tabu=True).attack(samples)
answer_only = DiscreteAttack(energy_model, task, steps, tabu=True,
                             positions="answer").attack(samples)
print(f"sequence {b} with the tabu list: "
      f"{[labels[p] if p >= 0 else '-' for p in tabu.position[:6, b].tolist()]}, "
      f"changed: {tabu.changed[:6, b].tolist()}")
traces = {"paper's attack": paper, "with a tabu list": tabu, "tabu, answer only": answer_only}
curves = {name: correctness_by_step(trace) for name, trace in traces.items()}
print(f"\n{'average correctness':20s}" + "".join(f"{f'S={s}':>7s}" for s in shown_steps)
      + "   steps that changed a digit")
for name, curve in curves.items():
    print(f"{name:20s}" + "".join(f"{curve[s]:7.2f}" for s in shown_steps)
          + f"   {traces[name].changed.float().mean():.0%}")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: curve.tolist() for name, curve in curves.items()},
               title="Average correctness of attacked P_LM samples", yaxis="average correctness")

# %% [markdown]
# The paper's attack flattens within a few steps; with the tabu list the curve keeps climbing to
# near 1. Held to the answer digits, the attack starts more slowly (one wrong carry can take
# several edits to undo) and is still climbing at $S = 20$.
#
# ## 5. Write the attack yourself
#
# You now have every piece: saliency, the editable positions, the tabu list, the synonym set and
# the candidates. Write one step for a whole batch, then the loop.

# %% [markdown]
# ### Exercise 05.1
#
# Write `attack_step(energy_model, task, tokens, tabu)`: one step of the attack for every row of
# `tokens` (shape `(B, T)`), where `tabu` (`(B, T)`, bool) marks the positions each row may not
# edit now. Return the pair `(new_tokens, position)`, shapes `(B, T)` and `(B,)`:
#
# 1. the allowed positions: editable (`task.editable_mask(tokens)`) and not tabu;
# 2. $i^*$ per row: the allowed position of largest saliency (eq. 4);
# 3. every digit of $\mathbb{L}$ (`task.writable_tokens()`) written at $i^*$, and the energy of
#    each candidate (eq. 5);
# 4. the candidate of lowest energy (eq. 6; on a tie, the lower digit);
# 5. a row with no allowed position left stays as it is, with position $-1$.
#
# Do not edit `tokens` in place. The checker runs your step on 8 samples: from the samples
# themselves, from each state the reference attack `naive_attack` (with a tabu list) reaches in 5
# steps, with the tabu list it had there, and with rows whose positions are all, or all but one,
# tabu. It names the first row where your choice differs, and why. Its tokens and tabu masks may
# be on the CPU while `energy_model` is on `device`: work on the model's device
# (`next(energy_model.parameters()).device`), moving the inputs there and making new tensors there.

# %%
def attack_step(energy_model, task, tokens: torch.Tensor, tabu: torch.Tensor):
    """One attack step on every row of tokens (B, T): at i* = argmax over allowed i of
    ||grad_{e_i}(-E(x))||_1 (eq. 4), the digit v of lowest E(x with v at i*) (eqs. 5-6).

    allowed = task.editable_mask(tokens) & ~tabu. Returns (new_tokens (B, T), position (B,));
    a row with no allowed position is returned unchanged, with position -1.
    """
    # your code here
    raise NotImplementedError


check_attack_step(attack_step, energy_model, task, samples[:8])

# %% [markdown]
# <details><summary>Hint</summary>
#
# `token_saliency` takes a `mask` and puts minus infinity outside it, so an argmax over each row
# never lands on a forbidden position; a row that has no allowed position at all shows up in
# `allowed.any(dim=1)`. For the candidates, make one copy of the whole batch per digit and write
# that digit at each row's own position (index with the row numbers
# `torch.arange(B, device=device)` and the positions together); the ten energies, stacked side by
# side, give a `(B, 10)` table whose argmin along the digits is the winner, and the first minimum
# is the lower digit.
# </details>

# %% [markdown]
# ### Exercise 05.2
#
# Write `run_attack(energy_model, task, tokens, steps, tabu=True)`: $S$ = `steps` steps of your
# `attack_step`, returning every state as one tensor of shape `(S + 1, B, T)`, state 0 being
# `tokens` itself. With `tabu=True` keep a tabu mask, all False at first: after each step, a row
# whose step changed nothing (and had a position) marks that position tabu; a row that changed
# empties its list. With `tabu=False` the mask stays empty: the paper's greedy attack. The checker
# compares your states with `naive_attack`'s, 6 steps on 8 samples, with and without tabu. Work on
# the model's device, as in Exercise 05.1.

# %%
def run_attack(energy_model, task, tokens: torch.Tensor, steps: int, tabu: bool = True):
    """S = steps attack steps from tokens (B, T) (Algorithm 1, lines 8-13), with a tabu list
    if tabu; returns every state, (S + 1, B, T), state 0 = tokens."""
    # your code here
    raise NotImplementedError


check_run_attack(run_attack, energy_model, task, samples[:8])

# %% [markdown]
# <details><summary>Hint</summary>
#
# Keep a list of states that starts with `tokens`, and a boolean tabu mask shaped like `tokens`.
# A row changed when any of its tokens differs from the previous state; for the rows that did not
# change but had a position, set the mask at that row and position; for the rows that changed,
# clear the whole row of the mask. `torch.stack` turns the list of states into one tensor.
# </details>

# %% [markdown]
# The rest of the notebook uses the library's `DiscreteAttack`, not your functions.
#
# ## 6. Stepping through the attack
#
# Play the tabu attack on four samples. Each step shows the saliency heatmap (the chosen position
# outlined), the energy of every candidate digit at that position, the energy along the steps, and
# which answer digits are right.

# %%
# NBVAL_IGNORE_OUTPUT
AttackStepper.from_attack(energy_model, task, samples[:4], steps=12, tabu=True)

# %% [markdown]
# At step 0 (the picture stored above, before you run the cell) the outlined cell is the position
# the first step will edit, and the candidate bars show the energy each digit would give there:
# the shortest bar wins. Drag the slider: the energy line only goes down, and at the last step the
# widget says the attack finished instead of choosing again.
#
# ## 7. What the attack's "repairs" are
#
# Correctness checks $c$ against the $a$ and $b$ written *in the same sequence*. The attack may
# edit $a$ and $b$ too, and section 2 showed that the energy is most sensitive there. So where do
# the swaps land? The first 5 steps of the paper's attack on these 256 samples are exactly the
# measurement `advebm-teach bench attack` reports (256 P_LM samples of seed 0, 5 steps, the
# `lm_nll` energy; see `docs/benchmarks.md`):

# %%
regions = {"a": list(task.a_positions), "b": list(task.b_positions), "c": list(task.c_positions)}
operands = regions["a"] + regions["b"]


def share_of_swaps(trace, first_steps):
    """{region: fraction of the swaps of the first steps that edited it}, and the swap count."""
    edited = trace.position[:first_steps][trace.changed[:first_steps]]
    return {name: torch.isin(edited, torch.tensor(where)).float().mean()
            for name, where in regions.items()}, len(edited)


for name, trace, first in (("paper's attack", paper, 5), ("paper's attack", paper, steps),
                           ("with a tabu list", tabu, steps)):
    share, count = share_of_swaps(trace, first)
    print(f"{name}, steps 1-{first}: {count} swaps, {share['a'] + share['b']:.0%} of them rewrite "
          f"a digit of a or b, {share['c']:.0%} one of c")
print()
for name, trace in traces.items():
    kept = (trace.final[:, operands] == samples[:, operands]).all(dim=1).float().mean()
    print(f"{name:18s}: correctness after S={steps} {correctness_by_step(trace)[-1]:.2f}, "
          f"question a + b kept in {kept:.0%} of the sequences")

# %% [markdown]
# 97 % of the exact attack's swaps rewrite an operand digit. Its "repairs" mostly change the
# *question* until P_LM's answer fits it. That is what the paper's generation task asks (write any
# consistent sum), so correctness after the attack measures how consistent the generated
# sequences are; it does not say that P_LM's question got the right answer. The answer-only attack
# keeps every question and rewrites answers: what it reaches is what this energy knows about
# addition itself. Two examples of the same sample attacked both ways:

# %%
print(f"{'P_LM sample':29s}{'with a tabu list':29s}tabu, answer only")
for row in range(3):
    print("    ".join(f"{task.decode(x[row], strip=True)} "
                    f"({task.correctness(x[row:row + 1])[0]:.2f})"
                    for x in (samples, tabu.final, answer_only.final)))
print("(in brackets: the correctness of each sequence)")

# %% [markdown]
# ## 8. Cheaper candidates: the first-order estimate, and what it gets wrong
#
# Trying all ten digits costs ten forward passes per step. **HotFlip** (Ebrahimi et al. 2018)
# predicts every substitution's effect from the gradient already computed for the saliency: to
# first order in the embedding, writing token $v$ at position $i$ moves $e_i$ to $W_v$, so
#
# $$E(x') \approx E(x) + g_i \cdot (W_v - e_i), \qquad \text{predicted decrease }
# -g_i \cdot (W_v - e_i) ,$$
#
# one backward pass for all candidates (`first_order_scores` returns the predicted decrease; for
# `lm_nll` it adds the exact change of an answer digit's own likelihood term). Pruning then
# evaluates only the $k$ best predicted (`candidates=k`). How good is the prediction? Compare it
# with the true change for every other digit at the position each sample's first step chose:

# %%
scores = first_order_scores(energy_model, samples).cpu()  # to the CPU, with the trace
position, rows = paper.position[0], torch.arange(len(samples))
predicted = scores[rows, position, :10]  # predicted energy decrease, (B, 10)
actual = paper.energy[0][:, None] - paper.candidate_energy[0, :, :10]  # true decrease, (B, 10)
other = torch.arange(10)[None] != samples[rows, position][:, None]  # not the current digit
correlation = torch.corrcoef(torch.stack([predicted[other], actual[other]]))[0, 1]
best_predicted = predicted.masked_fill(~other, -torch.inf).argmax(dim=1)
best_actual = actual.masked_fill(~other, -torch.inf).argmax(dim=1)
print(f"correlation of predicted and true energy decrease: {correlation:.2f}")
print(f"the predicted best digit is the true best in {(best_predicted == best_actual).sum()} "
      f"of {len(samples)} samples (chance: about 1 in 9)")

# %%
# NBVAL_IGNORE_OUTPUT
prediction_scatter(predicted[other].tolist(), actual[other].tolist(),
                   title="First-order prediction vs true energy decrease (every other digit)")

# %% [markdown]
# Each dot is one digit at one sample's chosen position; a good estimate would put them on the
# diagonal. They form a cloud instead: a digit swap is not a small move ($W_v - e_i$ is as long as
# the embeddings themselves) and this energy is sharply curved (one right digit, nine wrong ones),
# so the linear prediction ranks the digits poorly. Pruning with it makes each step cheaper and
# the attack worse:

# %%
pruned = DiscreteAttack(energy_model, task, steps, candidates=3, tabu=True).attack(samples)
print(f"exact + tabu:           correctness after S={steps} {correctness_by_step(tabu)[-1]:.2f}")
print(f"first-order k=3 + tabu: correctness after S={steps} {correctness_by_step(pruned)[-1]:.2f}")

# %% [markdown]
# ### Questions for discussion
#
# 1. Against this energy the attack prefers to rewrite $a$ or $b$. Why is changing one operand
#    digit often a better move, for the energy, than changing one answer digit?
# 2. The paper trains its energy on negatives made by this attack. If the attack edits mostly the
#    question, what kind of wrong sequences does the energy get to see, and what might it then
#    fail to learn? What would the answer-only attack change?
#
# ## Summary
#
# - A gradient step in embedding space lands between tokens; the paper uses the gradient only to
#   choose *where* to edit: the saliency $\lVert g_i \rVert_1$ (eq. 4) over the editable positions.
# - At $i^*$ every token of the synonym set $\mathbb{L}(x_{i^*})$ (here the digits) is tried
#   exactly, and the candidate of lowest energy is kept (eqs. 5–6). In real text $\mathbb{L}$
#   holds synonyms, which must preserve the meaning (Morris et al. 2020); here every swap changes
#   it on purpose.
# - The greedy attack stalls at a position whose best digit it already has; a tabu list keeps it
#   moving until no single substitution helps, and against this energy it repairs nearly all of
#   P_LM's samples.
# - About 97 % of the exact attack's swaps rewrite the question, so correctness after the attack
#   measures consistency; the answer-only attack shows what the energy knows about the sum itself.
# - HotFlip's first-order estimate $-g_i \cdot (W_v - e_i)$ is one backward pass for all
#   candidates, but ranks digits poorly here; pruning with it costs correctness.
# - You wrote one step and the loop and matched `naive_attack`, the plainest form of the paper's
#   pseudo-code. The last notebook of the course trains energies with this attack (Algorithm 1).

# %% [markdown]
# ## References
#
# - Xuwang Yin (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training*. Preprint (the paper this course reproduces; section 2.2, eqs. 4–6, Algorithm 1).
# - Javid Ebrahimi, Anyi Rao, Daniel Lowd, Dejing Dou (2018). *HotFlip: White-Box Adversarial
#   Examples for Text Classification*. ACL 2018, arXiv:1712.06751.
# - John X. Morris, Eli Lifland, Jack Lanchantin, Yangfeng Ji, Yanjun Qi (2020). *Reevaluating
#   Adversarial Examples in Natural Language*. Findings of EMNLP 2020, arXiv:2004.14174.
# - John X. Morris, Eli Lifland, Jin Yong Yoo, Jake Grigsby, Di Jin, Yanjun Qi (2020). *TextAttack:
#   A Framework for Adversarial Attacks, Data Augmentation, and Adversarial Training in NLP*.
#   EMNLP 2020 (System Demonstrations), arXiv:2005.05909 (the attacks the paper points to).
# - Moustafa Alzantot, Yash Sharma, Ahmed Elgohary, Bo-Jhang Ho, Mani Srivastava, Kai-Wei Chang
#   (2018). *Generating Natural Language Adversarial Examples*. EMNLP 2018, arXiv:1804.07998.
# - Di Jin, Zhijing Jin, Joey Tianyi Zhou, Peter Szolovits (2020). *Is BERT Really Robust? A Strong
#   Baseline for Natural Language Attack on Text Classification and Entailment*. AAAI 2020,
#   arXiv:1907.11932.
# - Fred Glover (1989). *Tabu Search—Part I*. ORSA Journal on Computing 1(3), 190–206.
