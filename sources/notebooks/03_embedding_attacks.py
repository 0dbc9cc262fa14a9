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
# # 02 · Embedding perturbations: FGSM, FGM, PGD, FreeAT, YOPO, FreeLB, SMART, ALUM and the gradient penalty
#
# Adversarial training asks a model to be right not only on its data but on the worst input within a small
# distance of it. For text, "a small distance" has no meaning in token space; it does in embedding space.
# This notebook builds the embedding-space adversaries used to fine-tune language models, measures what
# each costs, and asks whether they help an energy model against the sequences that fool it.
#
# **Learning goals.** By the end you can
# 1. write adversarial training as a min–max problem and say why text is perturbed at its embeddings;
# 2. compute FGSM, FGM and PGD perturbations of a batch and keep PGD inside its ε-ball (L2 or L∞);
# 3. show numerically that training on FGM's perturbation is training with a gradient penalty, to first order;
# 4. explain how FreeAT, YOPO and FreeLB pay less for the inner maximisation, and read their measured cost;
# 5. use SMART's and ALUM's virtual adversarial terms, and keep dropout from spoiling an ascent;
# 6. judge, from a 5-seed experiment, what embedding-space adversarial training does for an energy model.

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
import copy
import math

import torch

from advebm_teach import TransformerEnergy, load_pretrained, make_task, sample_lm
from advebm_teach.config import TrainConfig, pick
from advebm_teach.perturb import (ascend, embedding_gradient, fgm, fgsm, gradient_penalty,
                                  kl_divergence, pgd, symmetric_kl)
from advebm_teach.perturb_steps import FGM, Clean
from advebm_teach.trainer import classifier_objective
from advebm_teach.teaching.exercises import check_fgm_perturbation, check_l2_projection
from advebm_teach.teaching.plots import cost_bars, interval_dots, loglog_curves
from advebm_teach.teaching.widgets import PerturbationExplorer
from advebm_teach.experiments.bench import bench_perturb_cost
from advebm_teach.experiments.perturb_study import METRICS, train_classifier
from advebm_teach.experiments.shipping import load_result

task = make_task("course")
plm = load_pretrained("plm")

# %% [markdown]
# ## The model we attack
#
# The energy model of notebooks 03 and 05 is a Transformer pre-trained as a language model (notebook 00), read
# out as a scalar: $E(x) = w \cdot \operatorname{mean}_t h_t + b$. The Residual-EBM baseline fine-tunes it as a
# classifier of true sums against P_LM's samples, with logit $-E(x)$ for "data" and the logistic loss
# $L = \operatorname{softplus}(E(x^+)) + \operatorname{softplus}(-E(x^-))$. The course ships that baseline
# (`energy_bce`, trained by `advebm-teach reproduce`); we attack it.

# %%
energy_model = load_pretrained("energy_bce")
test_data, test_negatives = task.sample(100, seed=2), sample_lm(plm, task, 100, seed=3)
batch = classifier_objective(energy_model, test_data, test_negatives)  # 100 true sums, then 100 P_LM samples
embeds = batch.embed().detach()


def accuracy(objective, embeds: torch.Tensor) -> float:
    """(P(E < 0 | true sum) + P(E > 0 | P_LM sample)) / 2 for the 100 + 100 test sequences embedded as ``embeds``."""
    with torch.no_grad():
        energy = -objective.forward(embeds)
    return 0.5 * ((energy[:100] < 0).float().mean() + (energy[100:] > 0).float().mean()).item()


with torch.no_grad():
    print(f"held-out loss {batch.loss_fn(embeds):.3f}, accuracy {accuracy(batch, embeds):.3f}")

# %% [markdown]
# ## 1. The min–max problem, and why text is perturbed at its embeddings
#
# Adversarial training (Madry et al.) minimises the loss at the worst point of a small ball around each input:
#
# $$\min_\theta \; \mathbb{E}_{(x, y)} \Big[ \max_{\|\delta\| \le \varepsilon} L(x + \delta, y; \theta) \Big].$$
#
# The inner max makes the input as bad as it can within the ball; the outer min trains on it. For an image, $x$
# is a vector of pixel intensities and $x + \delta$ is another image. Text is a sequence of one-hot vectors:

# %%
one_hot = torch.eye(task.vocab_size)
pairs = torch.cdist(one_hot, one_hot)[~torch.eye(task.vocab_size, dtype=torch.bool)]
print(f"distance between two different one-hot tokens: min {pairs.min():.3f}, max {pairs.max():.3f}")
table = energy_model.token_embedding.weight.detach()
digits = torch.cdist(table[:10], table[:10])[~torch.eye(10, dtype=torch.bool)]
print(f"distance between two digit embeddings: min {digits.min():.2f}, max {digits.max():.2f}; "
      f"a digit embedding's norm {table[:10].norm(dim=1).mean():.2f}; a sequence's embeddings {embeds[0].norm():.2f}")

# %% [markdown]
# Every two tokens are $\sqrt 2$ apart: there is no input "close to" a sentence but a different sentence. The
# embeddings $e_t = W_{x_t}$ are continuous, so Miyato et al. perturb them instead: $L(e + \delta)$ with
# $\delta$ shaped like $e$, `(B, T, D)`, and a ball per sequence, $\|\delta_b\|_2 \le \varepsilon$ over all its
# tokens. The course's models split at exactly that seam (`model.embed(tokens)`, then
# `energy_from_embeds(embeds, tokens)`), so every adversary here takes `loss_fn(embeds) -> L` and returns
# $\delta$; no embedding table is edited. The price: $e + \delta$ is no sentence at all. Map each perturbed
# embedding back to its nearest token and see how much of the text even a large perturbation (norm 0.5, a third
# of the sequence's own norm) changes:

# %%
delta = fgm(batch.loss_fn, embeds, 0.5)
nearest = torch.cdist(embeds + delta, table.expand(len(embeds), -1, -1)).argmin(dim=-1)
print(f"positions whose nearest token changed: {(nearest != batch.tokens).float().mean():.1%}")

# %% [markdown]
# (Almost) none: the perturbation moves the loss without writing another sentence. Embedding-space adversarial
# training regularises the model around its data; it does not show it new texts. Section 7 asks whether that
# helps against the *textual* adversaries of notebooks 03–05.
#
# ## 2. FGSM, FGM and PGD on one batch
#
# Linearise the loss around $e$, with $g = \nabla_e L$: the best step in the L∞ ball is FGSM's
# $\delta = \varepsilon \operatorname{sign}(g)$ (Goodfellow et al.); in the L2 ball of each sequence, FGM's
# $\delta_b = \varepsilon\, g_b / \|g_b\|_2$ (Miyato et al.). Both cost one forward and one backward pass.
# PGD does not trust the linearisation: $K$ smaller steps, each projected back onto the ball,
# $\delta_{k+1} = \Pi_\varepsilon(\delta_k + \alpha\, g_k / \|g_k\|)$, for $K$ passes. To compare them, FGSM gets
# the cube whose corners lie at L2 distance $\varepsilon$ ($\varepsilon / \sqrt{TD}$ per entry):

# %%
eps = 0.05
deltas = {"FGSM": fgsm(batch.loss_fn, embeds, eps / math.sqrt(embeds[0].numel())),
          "FGM": fgm(batch.loss_fn, embeds, eps),
          "PGD-10": pgd(batch.loss_fn, embeds, eps, alpha=eps / 4, steps=10)}
with torch.no_grad():
    print(f"clean: loss {batch.loss_fn(embeds):.3f}, accuracy {accuracy(batch, embeds):.3f}")
    for name, delta in deltas.items():
        norms = delta.flatten(1).norm(dim=1)
        print(f"{name:6s}: ||delta_b|| in [{norms.min():.3f}, {norms.max():.3f}], "
              f"loss {batch.loss_fn(embeds + delta):.3f}, accuracy {accuracy(batch, embeds + delta):.3f}")
groups = {"a": task.a_positions, "b": task.b_positions, "c": task.c_positions,
          "format tokens": [t for t in range(task.seq_len) if not task.digit_slots[t]]}
for name, delta in deltas.items():
    squares = delta.pow(2).sum(dim=-1)  # ||delta_{b,t}||^2, (B, T)
    print(f"{name:6s} puts its ||delta||^2 on " + ", ".join(
        f"{group} {squares[:, list(positions)].sum() / squares.sum():.0%}" for group, positions in groups.items()))

# %% [markdown]
# FGM's norm is exactly $\varepsilon$ for every sequence, PGD's never exceeds it, and within the same ball PGD
# finds the larger loss. Explore: drag ε and PGD's steps. The top plot follows the loss along each
# perturbation, $L(e + s\,\delta)$ for $s$ from 0 to 1; the heatmap shows where a method puts its budget,
# $\|\delta_{b,t}\|$ per token (pick the method above it).

# %%
# NBVAL_IGNORE_OUTPUT
PerturbationExplorer.for_classifier(energy_model, task, test_data[:4], test_negatives[:4], epsilon=eps, steps=5)

# %% [markdown]
# FGSM spreads its budget evenly over every coordinate (its shares above are just the positions' counts: 5 a,
# 5 b and 6 c digits and 4 format tokens out of 20). FGM and PGD follow the gradient: less on the answer digits
# than their count would give them, more on `a`, `b` and the format tokens, which every position attends to.
# Along FGM's direction the loss rises fastest at first (it is the steepest direction at $e$), then bends;
# PGD's path ends higher, having found curvature the gradient at $e$ cannot see. Drag ε to 0.2: the gap grows.
#
# ### Exercise 02.1
# Write `fgm_perturbation(gradient, epsilon)`: for a gradient of shape `(B, T, D)`, FGM's perturbation
# $\varepsilon\, g_b / \|g_b\|_2$, each sequence normalised over all its tokens.

# %%
def fgm_perturbation(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    ...  # your code here


check_fgm_perturbation(fgm_perturbation)

# %% [markdown]
# <details><summary>One solution</summary>
#
# `epsilon * gradient / gradient.flatten(1).norm(dim=1)[:, None, None]`
# </details>

# %%
def fgm_perturbation(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    return epsilon * gradient / gradient.flatten(1).norm(dim=1)[:, None, None]


check_fgm_perturbation(fgm_perturbation)

# %% [markdown]
# ### Exercise 02.2
# PGD's projection: write `project_l2(delta, epsilon)`, which rescales each sequence's $\delta_b$ onto the
# ball $\|\delta_b\|_2 \le \varepsilon$ when it lies outside and leaves it alone when it lies inside.

# %%
def project_l2(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    ...  # your code here


check_l2_projection(project_l2)

# %% [markdown]
# <details><summary>One solution</summary>
#
# `delta * (epsilon / delta.flatten(1).norm(dim=1)).clamp(max=1.0)[:, None, None]`
# </details>

# %%
def project_l2(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    return delta * (epsilon / delta.flatten(1).norm(dim=1)).clamp(max=1.0)[:, None, None]


check_l2_projection(project_l2)

# %% [markdown]
# ## 3. FGM is a gradient penalty, to first order
#
# Train on $L(e + \delta)$ with $\delta$ held fixed at $\varepsilon g$, $g = \nabla_e L$ (the blog's unnormalised
# FGM). Expanding, $L(e + \delta) \approx L(e) + g \cdot \delta$, so the parameter gradient is
#
# $$\nabla_\theta L + \varepsilon\, (\nabla_\theta g)^\top g = \nabla_\theta \Big(L + \tfrac{\varepsilon}{2}\|\nabla_e L\|^2\Big):$$
#
# adversarial training with a gradient step is training with a *gradient penalty* (and FGM's normalised
# $\delta_b = \varepsilon g_b/\|g_b\|$ is the penalty $\varepsilon \sum_b \|g_b\|$). Check it: the two parameter
# gradients' corrections to $\nabla_\theta L$ should agree up to a relative error that shrinks like ε.
# The penalty needs a gradient of a gradient (`gradient_penalty` keeps the first backward's graph: double
# backward). In float64, so that rounding does not hide the trend:

# %%
model64 = copy.deepcopy(energy_model).double()
batch64 = classifier_objective(model64, test_data[:8], test_negatives[:8])


def parameter_gradient(loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(loss, list(model64.parameters()), allow_unused=True, materialize_grads=True)
    return torch.cat([g.flatten() for g in grads])  # (the LM head is unused by this energy: zero)


def correction_error(delta: torch.Tensor, penalty) -> float:
    """||adversarial - penalised|| / ||penalised - clean||, parameter gradients of L(e + delta) and L + penalty()."""
    adversarial = parameter_gradient(batch64.loss_fn(batch64.embed() + delta))
    penalised = parameter_gradient(batch64.loss_fn(batch64.embed()) + penalty())
    return ((adversarial - penalised).norm() / (penalised - clean_gradient).norm()).item()


def sum_of_gradient_norms() -> torch.Tensor:
    """sum_b ||grad_{e_b} L||, differentiable (a double backward, as the gradient penalty)."""
    e = batch64.embed()
    (g,) = torch.autograd.grad(batch64.loss_fn(e), e, create_graph=True)
    return g.flatten(1).norm(dim=1).sum()


clean_gradient = parameter_gradient(batch64.loss_fn(batch64.embed()))
epsilons = [10.0 ** -k for k in range(0, 7)]
errors = {"delta = eps g  vs  L + eps/2 ||g||^2": [], "FGM, normalised  vs  L + eps sum_b ||g_b||": []}
for eps_ in epsilons:
    gradient = embedding_gradient(batch64.loss_fn, batch64.embed())
    errors[list(errors)[0]].append(correction_error(
        eps_ * gradient, lambda: eps_ / 2 * gradient_penalty(batch64.loss_fn, batch64.embed())))
    errors[list(errors)[1]].append(correction_error(
        fgm(batch64.loss_fn, batch64.embed(), eps_), lambda: eps_ * sum_of_gradient_norms()))
for name, values in errors.items():
    slope = math.log(values[-1] / values[-2]) / math.log(epsilons[-1] / epsilons[-2])
    print(f"{name}: relative error {values[0]:.0e} at eps = 1, {values[-1]:.0e} at eps = 1e-6; "
          f"it shrinks like eps^{slope:.1f}")

# %%
# NBVAL_IGNORE_OUTPUT
loglog_curves(epsilons, errors, title="Adversarial vs gradient-penalty parameter gradient", xaxis="eps",
              yaxis="relative error of the correction", slope=1)

# %% [markdown]
# Slope one on a log-log plot: the error is $O(\varepsilon)$ relative to a correction that is itself
# $O(\varepsilon)$. For small ε the two trainings are the same; for large ε the adversary sees curvature the
# penalty does not. (The unnormalised step $\varepsilon g$ is tiny here, since $g$ is the gradient of a batch
# *mean*; its errors leave the linear regime only at ε near 1.)
#
# ## 4. Paying less for the inner max: FreeAT, YOPO, FreeLB
#
# A training step with PGD-K costs K + 1 forward and backward passes: K to find $\delta$, one to train on it.
# Three ideas cut that cost, each a `Strategy` in `advebm_teach.perturb` that a training loop takes as one
# argument (`train_classifier(..., strategy)`):
#
# * **FreeAT** (Shafahi et al.): replay each mini-batch m times. Each replay's single backward gives both
#   $\nabla_\theta$ (an optimizer step) and $\nabla_\delta$ (an ascent step $\delta \leftarrow \Pi(\delta + \varepsilon\,\hat g)$);
#   $\delta$ carries over to the next batch. Run $1/m$ of the epochs and the whole training costs what clean
#   training costs; the price is that $\delta$ is always one parameter update stale.
# * **YOPO** (Zhang et al.): only the first layer depends on $\delta$ directly. After a full pass, hold the
#   gradient $p$ at the first layer's output fixed and take n cheap steps through the first layer only; m
#   full passes then give m·n ascent steps. Here the "first layer" is the sum $e + \delta$, linear in $\delta$,
#   so the cheap steps cost nothing but also know nothing new (they re-project steps along $p$): a documented
#   simplification, and the reason YOPO's speed-up needs a non-linear first layer.
# * **FreeLB** (Zhu et al.): K ascent steps whose parameter gradients are *averaged*, then one optimizer step:
#   $\min_\theta \frac1K \sum_{t=1}^K L(e + \delta_{t-1})$. Every pass trains, so K passes buy a K-times larger
#   virtual batch of adversarial examples instead of one.
#
# What each costs, measured by `advebm-teach bench perturb-cost`: one training step of every strategy timed
# round-robin in one run (median), relative to a clean step, against its ideal pass count:

# %%
cost = load_result("perturb_cost")
print(f"{cost['sequences']} sequences per batch, {cost['threads']} threads, median of {cost['repeats']} rounds "
      f"({cost['command']})")
for name, row in cost["strategies"].items():
    print(f"  {name:37s} ratio {row['ratio']:5.2f}   ideal {row['ideal']}   ratio / ideal {row['ratio'] / row['ideal']:.2f}")
print("the passes they are made of, relative to one forward + backward:")
for name, ratio in cost["passes"].items():
    print(f"  {name:36s} {ratio:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT
names = list(cost["strategies"])
cost_bars(names, [cost["strategies"][n]["ratio"] for n in names], [cost["strategies"][n]["ideal"] for n in names])

# %% [markdown]
# The same measurement, live and small, on this machine (timings vary from run to run):

# %%
# NBVAL_IGNORE_OUTPUT
live = bench_perturb_cost(pairs=pick(100, 20), repeats=pick(10, 3))
print({name: round(row["ratio"], 2) for name, row in live["strategies"].items()})

# %% [markdown]
# FGSM and both FGMs cost their two passes, FreeAT, YOPO and FreeLB their three. PGD-3 and SMART/ALUM come in
# *under* their pass counts: their ascent passes only need $\nabla_\delta$, so the backward skips every weight
# gradient (the "backward to the input" pass above costs about 0.7 of a full one). The gradient penalty is the
# one strategy above its ideal: its first-order twin FGM pays two passes, but differentiating a gradient (the
# double backward) costs more than a second pass through the network. Section 3's equivalence, read backwards,
# is the cure: $\nabla_\theta L(e + c\,g) = \nabla_\theta\big(L + \tfrac{c}{2}\|g\|^2\big) + O(c^2)$, so one pass that
# finds $g$ (backward to the input only) and one training pass at $e + c\,g$, with $c = \lambda N$, give the
# penalty's gradient to first order: `GradientPenalty(weight, method="finite_difference")`, FGM with an
# unnormalised step. It costs less than FGM's two passes, since its first backward stops at the input.
#
# ## 5. SMART and ALUM: virtual adversaries
#
# Neither needs a label. Both add a smoothness term, the divergence between the model's predictions at $e$
# and at the worst nearby $e + \delta$:
#
# $$\min_\theta L(e) + \lambda \max_{\|\delta\| \le \varepsilon} D\big(f(e), f(e + \delta)\big),$$
#
# SMART (Jiang et al.) with the symmetric KL and K ascent steps, ALUM (Liu et al.) with the KL of virtual
# adversarial training, one ascent step, switched on after some epochs of clean training. The ascent cannot
# start at $\delta = 0$: the divergence is at its minimum there, and its gradient vanishes.

# %%
target = batch.forward(embeds).detach()
at_zero = embedding_gradient(lambda x: symmetric_kl(target, batch.forward(x)), embeds)
start = 1e-5 * torch.randn(embeds.shape, generator=torch.Generator().manual_seed(0))  # SMART's and ALUM's sigma
step = embedding_gradient(lambda x: symmetric_kl(target, batch.forward(x)), embeds + start)
moved = ascend(start, step, alpha=eps, epsilon=eps)
with torch.no_grad():
    at_start = symmetric_kl(target, batch.forward(embeds + start))
    after_step = batch.forward(embeds + moved)
print(f"gradient of D at delta = 0: largest entry < 1e-6: {bool(at_zero.abs().max() < 1e-6)}")
# float32 resolves a divergence this small only to its order of magnitude (it is rounding noise)
print(f"random start, sigma = 1e-5: symmetric KL < 1e-6: {bool(at_start < 1e-6)}")
print(f"after one ascent step, ||delta|| = eps: symmetric KL {symmetric_kl(target, after_step):.1f}, "
      f"KL {kl_divergence(target, after_step):.1f}")

# %% [markdown]
# One step from a random start finds a direction that moves the prediction many orders of magnitude more than
# the random start did: the virtual adversarial direction. `SMART` and `ALUM` train on it for K + 2 passes (K
# ascent passes, then the clean and perturbed forwards with one backward through both).
#
# ## 6. The dropout caveat
#
# Every ascent step assumes the same network. With dropout on, each forward pass draws a new mask, so the
# direction found under one mask is an attack on a *different* network. Load the same weights with dropout 0.1:

# %%
dropped = TransformerEnergy(**{**energy_model.config, "dropout": 0.1})
dropped.load_state_dict(energy_model.state_dict())
dropped.train()
noisy = classifier_objective(dropped, test_data, test_negatives)


def under_mask(seed: int, fn):
    torch.manual_seed(seed)  # the dropout masks of the next forward pass
    return fn()


g_a = under_mask(0, lambda: embedding_gradient(noisy.loss_fn, embeds))
g_a_again = under_mask(0, lambda: embedding_gradient(noisy.loss_fn, embeds))
g_b = under_mask(1, lambda: embedding_gradient(noisy.loss_fn, embeds))
cosine = torch.nn.functional.cosine_similarity
print(f"cosine of the gradients: same mask {cosine(g_a.flatten(), g_a_again.flatten(), dim=0):.3f}, "
      f"another mask {cosine(g_a.flatten(), g_b.flatten(), dim=0):.3f}")
delta_a = eps * g_a / g_a.flatten(1).norm(dim=1)[:, None, None]  # FGM under mask A
with torch.no_grad():
    for seed, label in ((0, "the mask it was found under"), (1, "another mask")):
        rise = (under_mask(seed, lambda: noisy.loss_fn(embeds + delta_a)) - under_mask(seed, lambda: noisy.loss_fn(embeds)))
        print(f"FGM's delta raises the loss by {rise:.3f} under {label}")

# %% [markdown]
# Under another mask the perturbation is a weaker attack, and each of PGD's or FreeLB's K steps would chase a
# different network. FreeLB's fix, which `FreeLB` implements: rewind the random generators before each of its K
# passes, so that all of them draw the same mask (the tests check that its averaged gradient equals the mean of
# K separate gradients under one mask). The course's energy model has no dropout (`dropout=0.0`), so the
# experiment below is unaffected.
#
# ## 7. Does it help an energy model?
#
# The experiment behind `advebm-teach bench perturb`, 5 seeds: per seed, train the BCE baseline (clean steps, as
# above), then fine-tune a copy of it with every strategy for a few more epochs (`clean` continues without an
# adversary: the control). Each energy is judged on held-out sequences: clean accuracy; accuracy under
# embedding-space PGD (10 steps in the L2 ball of 0.05, the training ball); and what the discrete, token-space
# attack of notebook 04 (tabu search) does to wrong P_LM samples: how often, and after how many steps, it finds a
# *spurious mode*, a sequence that is not a correct sum yet has lower energy than the median true sum. A small
# live version first (FGM against clean fine-tuning, one seed, a few steps):

# %%
small = pick(1000, 100)
data, negatives = task.sample(small, seed=10), sample_lm(plm, task, small, seed=11)
for strategy in (Clean(), FGM(eps)):
    model = copy.deepcopy(energy_model)
    train_classifier(model, data, negatives, strategy, TrainConfig(epochs=pick(4, 1), batch_size=100, lr=3e-4))
    check = classifier_objective(model, test_data, test_negatives)
    attacked = embeds + pgd(check.loss_fn, embeds, eps, alpha=eps / 4, steps=10)
    print(f"{strategy.name:15s} clean accuracy {accuracy(check, embeds):.3f}, under PGD {accuracy(check, attacked):.3f}")

# %% [markdown]
# And the stored experiment, 5 seeds, every strategy:

# %%
results = load_result("perturb")
protocol = results["protocol"]
print(f"{len(results['seeds'])} seeds, {results['wall_s'] / 60:.0f} min on {results['threads']} threads "
      f"({results['command']}); {protocol['note']}")
labels = {"clean_accuracy": "clean acc.", "pgd_accuracy": "PGD acc.", "spurious_found": "spurious found",
          "steps_to_spurious": "steps to spurious"}
print(f"{'strategy':37s}" + "".join(f"{labels[key]:>22s}" for key in METRICS))
for name, row in results["summary"].items():
    print(f"{name:37s}" + "".join(f"{row[key][0]:8.3f} [{row[key][1]:.3f},{row[key][2]:.3f}]" for key in METRICS))

# %%
# NBVAL_IGNORE_OUTPUT
names = list(results["summary"])
interval_dots(names, {labels[key]: tuple([results["summary"][n][key][i] for n in names] for i in range(3))
                      for key in METRICS},
              title="Embedding-space adversarial training of the BCE energy (mean, 95 % interval over seeds)")

# %% [markdown]
# Read the table row by row against `clean` (the same number of extra epochs without an adversary):
#
# * **Embedding-space robustness** rises: every strategy that attacks each sequence's embeddings (FGM, PGD,
#   FreeAT, YOPO, FreeLB) roughly doubles the accuracy under PGD, and clean accuracy stays where clean
#   training leaves it (the intervals overlap). The cheaper inner maximisations come close to PGD-3; FreeAT
#   does it in less than half of PGD-3's training time (`runs[...]["train_seconds"]` in the JSON). SMART and
#   ALUM, which only ask for smooth predictions, gain less; FGM on the *table*, one perturbation per token
#   shared by the whole batch, barely more than clean training.
# * **The gradient penalty** does not match FGM here, unlike in the blog's text classifiers: the squared norm is
#   dominated by the few sequences whose input gradients are largest, and at the weight used
#   (`PerturbStudyProtocol.penalty_weight`) it already costs clean accuracy (some seeds much: see its interval) without
#   buying robustness. Its finite-difference form, at the same λ, behaves like the FGM it is: clean accuracy
#   kept, a little robustness. The two agree to first order in λ (a test checks it on a small model), and here
#   they do not: the steps $\lambda N g$ of the sequences with the largest gradients leave the region where
#   the loss is linear, and the exact penalty's gradient is dominated by those sequences' curvature. First-order
#   equivalences hold where the first order does.
# * **Spurious modes stay.** After every strategy, the token-space attack still turns nearly every wrong P_LM
#   sample into a wrong sequence the energy rates above the typical true sum, in about as many steps as
#   before (the intervals overlap). Embedding-space adversaries explore a tiny ball around the *data*; the
#   spurious modes are other token sequences, far away in that geometry (one digit swap moves an embedding
#   by about its own norm). Adversarial training smooths the embedding space; it does not show the model the
#   sequences that fool it. That is the job of the discrete attack inside training: Algorithm 1 (notebook 05).
#
# **Summary.** Text is perturbed at its embeddings, where small moves exist; FGSM, FGM and PGD approximate the
# inner max with one or K gradient steps in a ball, and FGM is a gradient penalty to first order. FreeAT, YOPO
# and FreeLB make the inner max cheaper (or make every pass train); SMART and ALUM regularise smoothness without
# labels; dropout must be held fixed across an ascent. Notebooks 03–05 turn to the adversaries that write real
# sequences.
