# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 04 · Discrete attacks: saliency, substitution, and the iterative attack
#
# The paper's negatives and its generator are both made by an *attack* on the energy: edit a sequence,
# one token at a time, toward lower energy (section 2.2, Algorithm 1 lines 8-13). This notebook builds
# that attack from its pieces and watches it work, stall, and work again.
#
# **Learning goals.** By the end you can
# 1. explain why a gradient cannot be followed in token space, and what the paper uses it for instead;
# 2. compute per-token saliency $\|\nabla_{e_i}(-E(x))\|_1$ (eq. 4) and read it as a heatmap;
# 3. do one attack step by hand (most salient position, every substitute digit, lowest energy) and match
#    the batched `DiscreteAttack`;
# 4. recognise the greedy attack's stall and fix it with a tabu list;
# 5. say what the first-order estimate $g_i \cdot (E_v - e_{x_i})$ (HotFlip) gets wrong, and what pruning with it costs.

# %%
# Course setup: the same first cell in every notebook.
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("advebm_teach") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "advebm-teach @ git+https://github.com/advebm-teach/advebm-teach"], check=True)

import advebm_teach

print(advebm_teach.setup_notebook())

# %%
import torch

from advebm_teach import load_pretrained, make_task, sample_lm
from advebm_teach.attack import DiscreteAttack
from advebm_teach.config import pick
from advebm_teach.teaching.exercises import check_best_digit, check_l1_saliency
from advebm_teach.teaching.plots import curves_by_step, prediction_scatter, saliency_grid
from advebm_teach.saliency import first_order_scores, token_saliency
from advebm_teach.teaching.widgets import AttackStepper

task = make_task("course")
plm = load_pretrained("plm")
samples = sample_lm(plm, task, pick(400, 100), seed=0)

# %% [markdown]
# ## The energy we attack
#
# Notebooks 03 and 05 fine-tune energies; here we attack one that needs no fine-tuning: the pre-trained
# Transformer's negative log-likelihood of the answer digits (notebook 00, section 5),
# $E(x) = -\sum_{i \in c} \log p_\theta(x_i \mid x_{<i})$. It is low on right sums, so an attack that
# lowers it should *repair* P_LM's samples. That makes every step of the attack easy to judge.

# %%
energy_model = load_pretrained("energy_lm")
energy_model.head = "lm_nll"
with torch.no_grad():
    print(f"mean energy: true sums {energy_model.energy(task.sample(200, seed=1)).mean():.1f}, "
          f"P_LM samples {energy_model.energy(samples).mean():.1f} nats")

# %% [markdown]
# ## 1. Why the gradient cannot be followed in token space
#
# The energy is a function of the token *embeddings* $e_i = E_{x_i}$, so $\nabla_{e_i} E$ exists. But a
# gradient step $e_i - \eta\,\nabla_{e_i} E$ leaves the 14 points $\{E_v\}$ that are tokens. Map the step
# back to the nearest token and see what happens as the step grows, at the most salient position of
# one P_LM sample:

# %%
x = samples[:1]
editable = task.editable_mask(x)
saliency = token_saliency(energy_model, x, mask=editable)
i_star = int(saliency.argmax())
embeds = energy_model.embed(x).detach().requires_grad_(True)
(gradient,) = torch.autograd.grad(-energy_model.energy_from_embeds(embeds, x).sum(), embeds)  # g = grad(-E)
table = energy_model.embed(torch.arange(task.vocab_size)).detach()
digits = table[:10]
print(f"sequence {task.decode(x[0], strip=True)}, most salient position {task.position_labels()[i_star]} "
      f"(token {task.vocab[x[0, i_star]]})")
e, g = embeds[0, i_star].detach(), gradient[0, i_star]
cosines = torch.cosine_similarity(g[None], digits - e, dim=1)
print("cosine of -grad E with the way to each digit:", " ".join(f"{c:+.2f}" for c in cosines.tolist()))
for eta in (0.5, 2.0, 3.0, 10.0):
    moved = e + eta * e.norm() * g / g.norm()  # a step of eta * ||e|| along -grad E: lowers E to first order
    nearest = int(torch.cdist(moved[None], digits).argmin())
    y = x.clone()
    y[0, i_star] = nearest
    with torch.no_grad():
        print(f"  step {eta:4.2f} x ||e||: nearest digit {nearest}, energy {energy_model.energy(x)[0]:.1f} -> "
              f"{energy_model.energy(y)[0]:.1f}")

# %% [markdown]
# The gradient points at none of the other digits (the cosines are small), so small and medium steps map
# back to the same token: nothing happens. A large enough step jumps to whichever digit lies least far off
# that direction, and that need not lower the energy. Token space has no small moves. The paper uses the
# gradient only to *choose where* to edit, then tries the substitutes exactly.
#
# ## 2. Saliency: where the energy is most sensitive
#
# $s_i = \|\nabla_{e_i}(-E(x))\|_1$ (eq. 4), over the positions an attack may edit (the digits; `<bos>`,
# `+`, `=`, `<eos>` are masked to $-\infty$). Where does this energy look?

# %%
shown = samples[:8]
saliency = token_saliency(energy_model, shown, mask=task.editable_mask(shown))
wrong = ~task.digit_correct(shown)
for row, text in enumerate(task.decode(shown, strip=True)):
    top = int(saliency[row].argmax())
    label = task.position_labels()[top]
    verdict = ("a wrong answer digit" if label.startswith("c") and wrong[row, list(task.c_positions).index(top)]
               else "a right answer digit" if label.startswith("c") else "an input digit")
    print(f"{text}  most salient: {label:>3} ({verdict})")

# %%
# NBVAL_IGNORE_OUTPUT
saliency_grid(task.position_labels(), [[task.vocab[t] for t in row] for row in shown.tolist()], saliency.tolist(),
              title="Saliency ||grad_e(-E)||_1 of P_LM samples (text: the token)")

# %% [markdown]
# Mostly at the *inputs*: changing one digit of `a` or `b` changes what every answer digit should be, so
# the energy is most sensitive there. The paper lets the attack edit every digit (`positions="digits"`),
# so expect it to repair a wrong sum by rewriting the question as often as the answer; correctness,
# measured against the sequence's own `a` and `b`, accepts both. (`positions="answer"` restricts it.)
#
# ## 3. One attack step by hand
#
# Algorithm 1, lines 9-12: (9) the most salient position $i^*$; (10) the candidates, here every digit
# written at $i^*$; (11) the candidate of lowest energy; (12) continue from it.

# %%
x = samples[:1]
saliency = token_saliency(energy_model, x, mask=task.editable_mask(x))        # line 9
i_star = int(saliency.argmax())
candidates = x.repeat(10, 1)                                                  # line 10
candidates[:, i_star] = torch.arange(10)
with torch.no_grad():
    energies = energy_model.energy(candidates)                                # line 11
best = int(energies.argmin())
by_hand = candidates[best]                                                    # line 12
print(f"position {task.position_labels()[i_star]}: energies of digits 0-9 "
      f"{[round(e, 1) for e in energies.tolist()]}")
print(f"{task.decode(x[0], strip=True)} -> {task.decode(by_hand, strip=True)}")

# %% [markdown]
# Read the whole attack as plainly as this first: `advebm_teach/attack_reference.py` (`naive_attack`)
# writes every step of the pseudo-code for one sequence and one candidate at a time, and is the
# reference the library's attack is tested against. The library's `DiscreteAttack` does the same for
# a whole batch at once (and returns a trace of every step); it skips recomputing what a substitution
# cannot change (`prefix_cache.py`, safe to skip on a first read). One step of it gives exactly the
# sequence we built by hand:

# %%
trace = DiscreteAttack(energy_model, task, steps=1).attack(x)
print("same as by hand:", torch.equal(trace.final[0], by_hand))

# %% [markdown]
# ### Exercise 04.1
# Saliency is a norm per position. Write `l1_saliency(gradient)` for a gradient of shape `(B, T, D)`,
# returning `(B, T)`.

# %%
def l1_saliency(gradient: torch.Tensor) -> torch.Tensor:
    ...  # your code here


check_l1_saliency(l1_saliency)

# %% [markdown]
# <details><summary>One solution</summary>
#
# `gradient.abs().sum(dim=-1)`
# </details>

# %%
def l1_saliency(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.abs().sum(dim=-1)


check_l1_saliency(l1_saliency)

# %% [markdown]
# ## 4. The iterative attack, and its stall
#
# Repeat the step S times (the paper's Figure 1a). The batched attack is deterministic; its trace keeps
# every intermediate sequence, so correctness can be read off at every step.

# %%
steps = pick(20, 10)
paper = DiscreteAttack(energy_model, task, steps).attack(samples)
tabu = DiscreteAttack(energy_model, task, steps, tabu=True).attack(samples)
answer_only = DiscreteAttack(energy_model, task, steps, tabu=True, positions="answer").attack(samples)


def correctness_by_step(trace):
    return task.correctness(trace.tokens.flatten(0, 1)).view(trace.steps + 1, -1).mean(dim=1)


traces = {"paper's attack": paper, "with a tabu list": tabu, "tabu, answer only": answer_only}
curves = {name: correctness_by_step(trace) for name, trace in traces.items()}
for name, trace in traces.items():
    curve = curves[name]
    edited = trace.position[trace.changed]
    on_answer = torch.isin(edited, torch.tensor(list(task.c_positions))).float().mean()
    print(f"{name:17s}", "  ".join(f"S={s}: {curve[s]:.3f}" for s in (0, 1, 2, 5, 10, 20) if s <= steps),
          f"| steps that changed a digit {trace.changed.float().mean():.0%}, of those in the answer {on_answer:.0%}")

# %% [markdown]
# The paper's attack stops improving after a few steps, and most of its steps change nothing. Here is
# why: when the current digit is already the best one at the most salient position, the sequence does not
# change, so the gradient does not change, so the next step picks the same position again, forever.

# %%
stalled = ((~paper.changed[0]) & (paper.position[1] == paper.position[0])).nonzero().flatten()
b = int(stalled[0])
print(f"sequence {b}: positions chosen at steps 1-6: "
      f"{[task.position_labels()[p] for p in paper.position[:6, b].tolist()]}, changed: {paper.changed[:6, b].tolist()}")
print(f"with the tabu list:                  "
      f"{[task.position_labels()[p] if p >= 0 else '-' for p in tabu.position[:6, b].tolist()]}, "
      f"changed: {tabu.changed[:6, b].tolist()}")

# %% [markdown]
# A *tabu list* fixes it: a position that failed to improve is skipped, for that sequence, until some
# digit changes. The search then keeps moving until no single substitution at any position lowers the
# energy (a local minimum). Most of its edits rewrite `a` or `b`; held to the answer digits, it repairs
# the answers themselves, more slowly (one wrong carry can take several edits to undo).

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: curve.tolist() for name, curve in curves.items()},
               title="Average correctness of attacked P_LM samples", yaxis="average correctness")

# %% [markdown]
# ## 5. Stepping through the attack
#
# Play the attack on a few samples: the saliency heatmap (the chosen position outlined), the energy of
# every candidate digit at that step, the energy along the steps, and which answer digits are right.

# %%
# NBVAL_IGNORE_OUTPUT
AttackStepper.from_attack(energy_model, task, samples[:4], steps=pick(12, 8), tabu=True)

# %% [markdown]
# ### Exercise 04.2
# Write `best_digit(energy_model, x, position)`: the digit that gives the sequence `x` (shape `(T,)`)
# the lowest energy when written at `position` (ties to the lower digit). This is line 11 for one position.

# %%
def best_digit(energy_model, x: torch.Tensor, position: int) -> int:
    ...  # your code here


check_best_digit(best_digit, energy_model, samples[:2])

# %% [markdown]
# <details><summary>One solution</summary>
#
# Write all ten digits into ten copies of `x` and take the argmin of their energies (under `torch.no_grad()`).
# </details>

# %%
def best_digit(energy_model, x: torch.Tensor, position: int) -> int:
    candidates = x.repeat(10, 1)
    candidates[:, position] = torch.arange(10)
    with torch.no_grad():
        return int(energy_model.energy(candidates).argmin())


check_best_digit(best_digit, energy_model, samples[:2])

# %% [markdown]
# ## 6. Cheaper candidates: the first-order estimate, and what it gets wrong
#
# Trying all ten digits costs ten forward passes per step. HotFlip's idea: the same gradient predicts
# every substitution's effect to first order, $-E(x') + E(x) \approx g_i \cdot (E_v - e_{x_i})$, so evaluate
# only the $k$ best predicted (`candidates=k`). How good is the prediction? Compare it with the true change
# for every digit at the chosen position of each sample:

# %%
scores = first_order_scores(energy_model, samples)
positions = paper.position[0]
rows = torch.arange(len(samples))
predicted = scores[rows, positions, :10]                                        # predicted energy decrease
actual = paper.energy[0][:, None] - paper.candidate_energy[0, :, :10]          # true decrease, exact attack
keep = torch.isfinite(actual)
correlation = torch.corrcoef(torch.stack([predicted[keep], actual[keep]]))[0, 1]
best_predicted = predicted.masked_fill(~keep, -float("inf")).argmax(dim=1)
best_actual = actual.masked_fill(~keep, -float("inf")).argmax(dim=1)
print(f"correlation of predicted and true energy decrease: {correlation:.2f}")
print(f"the predicted best digit is the true best digit in {(best_predicted == best_actual).float().mean():.0%} of samples")

# %%
# NBVAL_IGNORE_OUTPUT
prediction_scatter(predicted[keep].tolist(), actual[keep].tolist(),
                   title="First-order prediction vs true energy decrease (every digit at the chosen position)")

# %% [markdown]
# A digit swap is not a small move: $E_v - e_{x_i}$ is as long as the embeddings themselves, and this
# energy is sharply curved (one right digit, nine wrong ones), so the linear prediction ranks the digits
# poorly. Pruning with it makes each step cheaper and the attack much worse:

# %%
pruned = DiscreteAttack(energy_model, task, steps, candidates=3, tabu=True).attack(samples)
print(f"exact + tabu:         S={steps} correctness {correctness_by_step(tabu)[-1]:.3f}")
print(f"first-order k=3 + tabu: S={steps} correctness {correctness_by_step(pruned)[-1]:.3f}")

# %% [markdown]
# **Summary.** Gradients locate *where* to edit (saliency), not *what* to write; the paper tries every
# substitute exactly. Its greedy attack stalls at a position whose best digit it already has; a tabu list
# keeps it moving, and on this energy it repairs most of P_LM's answers. The first-order estimate that
# makes HotFlip cheap ranks digits poorly here. Notebook 05 trains energies with these attacks
# (Algorithm 1) and measures them against the paper's figures; `advebm-teach bench attack` measures
# what batching and prefix reuse buy over the naive loop.
