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
# # 04 · Paying less for the inner max, and virtual adversaries
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/04_cheaper_and_virtual_adversaries.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/04_cheaper_and_virtual_adversaries.ipynb) · or locally, `advebm-teach lab`
#
# PGD finds strong perturbations, but a PGD-$K$ training step costs $K + 1$ forward and backward
# passes where clean training costs one. This notebook reads the code of three ideas that pay
# less for the inner maximisation (FreeAT, YOPO, FreeLB), and of two that change what is
# maximised: SMART and ALUM perturb the embeddings to change the model's *prediction* most, which
# needs no label. Each comes as a few lines that we check against the library's training step,
# and we end with what each costs, measured.
#
# **Learning goals.** By the end you can
# 1. explain how FreeAT reuses one backward pass for both $\theta$ and $\delta$, and what
#    "stale" means for its perturbation;
# 2. say where YOPO's saving comes from (the first layer's gradient) and why it vanishes here;
# 3. write FreeLB's objective, the average of $K$ adversarial losses, from its random start;
# 4. measure how locally linear the loss is, and write SMART's symmetric-KL smoothness term;
# 5. say how ALUM differs from SMART and where it is used (pre-training as well as fine-tuning);
# 6. read the measured cost of every strategy from the shipped benchmark.
#
# **Prerequisites.** Notebook 03: the min–max problem on embeddings, FGM, PGD and its
# projection, and the training step $L(e) + L(e + \delta)$ with $\delta$ held fixed; the model we
# attack (the BCE energy, `energy_bce`). Notebook 00 for the task and P_LM. PyTorch autograd;
# the KL divergence of two distributions. Symbols as in the [notation](../docs/notation.md)
# table: $\varepsilon$ the radius, $\eta$ the step of an ascent, $K$ the number of inner steps
# (PGD's and FreeLB's ascent steps, FreeAT's replays, YOPO's full passes), $\lambda$ a
# regulariser's weight, $B$ the batch size. A **pass** is one forward and one backward through
# the network.

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
import copy
import math

import torch

from advebm_teach import load_pretrained, make_task, pick_device, sample_lm
from advebm_teach.perturb import (ascend, embedding_gradient, kl_divergence, pgd, random_in_ball,
                                  symmetric_kl)
from advebm_teach.perturb_steps import ALUM, SMART, YOPO, FreeAT
from advebm_teach.trainer import classifier_objective
from advebm_teach.experiments.shipping import load_result
from advebm_teach.teaching.exercises.embedding import check_freelb_loss, check_symmetric_kl
from advebm_teach.teaching.plots import cost_bars

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)
energy_model = load_pretrained("energy_bce").to(device)  # notebook 03's model: the BCE energy
test_data, test_negatives = task.sample(100, seed=2), sample_lm(plm, task, 100, seed=3)
batch = classifier_objective(energy_model, test_data, test_negatives)  # 100 + 100 sequences
embeds = batch.embed().detach()
eps = 0.05


def mini_batch(model, index: int):
    """The classifier objective of ``model`` on mini-batch ``index``: 16 true sums, 16 P_LM
    samples of the test set."""
    rows = slice(16 * index, 16 * (index + 1))
    return classifier_objective(model, test_data[rows], test_negatives[rows])


def parameters_of(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def gradients_of(model) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in model.parameters()])

# %% [markdown]
# ## 1. FreeAT: one backward pass, two uses
#
# A pass's backward can give the gradient with respect to the parameters *and* with respect to
# $\delta$ at no extra cost. FreeAT (Shafahi et al. 2019) uses both: it **replays** each
# mini-batch $K$ times, and each replay is one pass at $e + \delta$ whose backward feeds an
# optimizer step ($\theta$ descends) and an FGSM-like step on $\delta$ ($\delta$ ascends,
# $\delta \leftarrow \Pi_\varepsilon(\delta + \varepsilon\, g / \|g\|)$). $\delta$ is not reset
# between mini-batches. To keep the total cost of training that of clean training, FreeAT runs
# $\lceil N / K \rceil$ epochs instead of $N$. The price: each $\delta$ was computed for the
# parameters *before* the last update, so it is always one step **stale**. The loop over one
# mini-batch, checked against the library's `FreeAT` step on two mini-batches:

# %%
def free_at_batch(objective, optimizer, delta: torch.Tensor, epsilon: float,
                  replays: int) -> torch.Tensor:
    """FreeAT on one mini-batch: K replays, each one pass at e + delta whose backward gives both
    grad_theta (an optimizer step) and grad_delta (delta <- Pi_eps(delta + eps g/||g||)).
    Returns delta, which the next mini-batch starts from."""
    for _ in range(replays):
        optimizer.zero_grad()
        delta = delta.detach().requires_grad_(True)
        objective.loss_fn(objective.embed() + delta).backward()  # one backward ...
        optimizer.step()  # ... trains theta
        delta = ascend(delta.detach(), delta.grad, epsilon, epsilon)  # ... and moves delta
    return delta


ours, theirs = copy.deepcopy(energy_model), copy.deepcopy(energy_model)
ours_optimizer = torch.optim.SGD(ours.parameters(), lr=0.1)
theirs_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1)
library_step = FreeAT(eps, replays=3)
delta = torch.zeros_like(mini_batch(ours, 0).embed().detach())
for index in (0, 1):
    delta = free_at_batch(mini_batch(ours, index), ours_optimizer, delta, eps, replays=3)
    library_step.step(mini_batch(theirs, index), theirs_optimizer)
print("same parameters as the library's FreeAT after two mini-batches:",
      torch.allclose(parameters_of(ours), parameters_of(theirs), atol=1e-6))

# %% [markdown]
# ## 2. YOPO: only the first layer sees $\delta$
#
# YOPO (Zhang et al. 2019) starts from optimal control: Pontryagin's maximum principle treats a
# network as a dynamical system, layer after layer, in which the perturbation enters **only the
# first layer**, $x_0 = f_0(e + \delta)$. Let $p = \nabla_{x_0} L$ be the gradient at the first
# layer's output (the *co-state*). If $p$ changes slowly with $\delta$, hold it fixed and update
# $\delta$ $n$ times by ascending $p \cdot f_0(e + \delta)$, which needs only the first layer, not
# the whole network. $K$ full passes then give $K \cdot n$ ascent steps, where PGD-$r$'s $r$ passes
# give $r$; the paper finds YOPO-$K$-$n$ about as strong as PGD-$r$ once $K n$ is a little above
# $r$ (the course's seed article, 002, summarises this). The $K$ full passes' parameter gradients
# are averaged into one optimizer step. (FreeLB's authors note that the analysis assumes a twice
# continuously differentiable loss, which ReLU networks are not.)
#
# Here the "first layer" is the sum $x_0 = e + \delta$ itself, linear in $\delta$: then
# $\nabla_\delta (p \cdot x_0) = p$, and the $n$ cheap updates re-project steps along the same
# $p$. They cost nothing, but they know nothing new either: YOPO's speed-up needs a first layer
# with its own non-linearity. The library's simplified `YOPO`, re-written and checked:

# %%
def yopo_backward(objective, delta: torch.Tensor, epsilon: float, eta: float, full_passes: int,
                  cheap_updates: int) -> None:
    """YOPO-K-n: K full passes at e + delta, their parameter gradients averaged; after each,
    n updates of delta along the co-state p = grad_{x0} L, held fixed (no model pass)."""
    for _ in range(full_passes):
        delta = delta.detach().requires_grad_(True)
        (objective.loss_fn(objective.embed() + delta) / full_passes).backward()
        costate = delta.grad  # p at x0 = e + delta
        for _ in range(cheap_updates):
            delta = ascend(delta.detach(), costate, eta, epsilon)


ours, theirs = copy.deepcopy(energy_model), copy.deepcopy(energy_model)
start = random_in_ball(embeds[:32], eps, "l2", torch.Generator().manual_seed(0))  # YOPO's delta_0
yopo_backward(mini_batch(ours, 0), start, eps, eps / 4, full_passes=3, cheap_updates=3)
YOPO(eps, eps / 4, 3, 3, generator=torch.Generator().manual_seed(0)).backward(
    mini_batch(theirs, 0))
print("same parameter gradient as the library's YOPO-3-3:",
      torch.allclose(gradients_of(ours), gradients_of(theirs), atol=1e-6))

# %% [markdown]
# ## 3. FreeLB: every ascent step trains
#
# PGD throws away the parameter gradients of its first $K - 1$ passes and trains only on the
# last perturbation. FreeLB (Zhu et al. 2020) keeps them all: $K$ ascent steps, each a full pass
# whose parameter gradient is accumulated, then one optimizer step on their average,
#
# $$\min_\theta \frac1K \sum_{t=1}^{K} L(e + \delta_{t-1}), \qquad
#   \delta_t = \Pi_\varepsilon\big(\delta_{t-1} + \eta\, g_t / \|g_t\|\big), \quad
#   g_t = \nabla_\delta L(e + \delta_{t-1}),$$
#
# as if the batch were $K$ times larger, made of $e + \delta_0, \dots, e + \delta_{K-1}$.
# Three details matter:
#
# * **The random start.** $\delta_0$ is not 0 but uniform noise, each entry drawn from
#   $U(-\varepsilon, \varepsilon) / \sqrt{Td}$ (the library's reading of Zhu et al.'s
#   initialisation), so the first pass already trains on a perturbed input.
# * **The radius.** Every $\delta_t$ is projected back onto the ball of radius $\varepsilon$
#   around $e$, as in PGD.
# * **Dropout.** All $K$ passes must draw the same dropout mask (notebook 03, section 6); the
#   library's `FreeLB` rewinds the random generators before each pass.
#
# How far from $e$ does the random start put a sequence? Each of the $Td$ entries has variance
# $\varepsilon^2 / (3Td)$, so $\|\delta_{0,b}\|^2$ is close to $\varepsilon^2/3$:

# %%
delta_0 = (random_in_ball(embeds, eps, "linf", torch.Generator().manual_seed(0))
           / math.sqrt(embeds[0].numel()))
ratios = delta_0.flatten(1).norm(dim=1) / eps
print(f"||delta_0,b|| / eps over {len(ratios)} sequences: from {ratios.min():.2f} to "
      f"{ratios.max():.2f}; 1/sqrt(3) = {1 / math.sqrt(3):.2f}")

# %% [markdown]
# A start well inside the ball, at 58 % of its radius in a random direction: the ascent steps
# then take $\delta$ towards the sphere.
#
# ### Exercise 04.1
# Write `freelb_loss(loss_fn, embeds, delta0, epsilon, eta, steps)`: FreeLB's objective
# $\frac1K \sum_{t=1}^K L(e + \delta_{t-1})$ from the given random start $\delta_0$, with $K$ =
# `steps` projected ascent steps as above (use the library's `ascend(delta, g, eta, epsilon)`,
# which is $\Pi_\varepsilon(\delta + \eta\, g / \|g\|)$). Backpropagating the value you return
# must give FreeLB's averaged parameter gradient; `embeds` is still attached to the embedding
# table. The checker compares the loss value and every parameter gradient with the library's
# `FreeLB` step on a tiny Transformer energy.

# %%
def freelb_loss(loss_fn, embeds: torch.Tensor, delta0: torch.Tensor, epsilon: float,
                eta: float, steps: int) -> torch.Tensor:
    """(1/K) sum_t L(e + delta_{t-1}), delta_t = Pi_eps(delta_{t-1} + eta g_t / ||g_t||),
    g_t = grad_delta L(e + delta_{t-1}) held fixed, K = steps."""
    # your code here
    raise NotImplementedError


check_freelb_loss(freelb_loss)

# %% [markdown]
# <details><summary>Hint</summary>
#
# In each of the K passes make delta a fresh leaf that requires grad, compute the loss at
# e + delta, and take its gradient with respect to delta only, keeping the graph, since the
# same loss is backpropagated into the parameters later. Add each pass's loss, divided by K,
# to a running total, then move delta with ascend.
# </details>
#
# ## 4. How linear is the loss? SMART and ALUM's virtual adversaries
#
# FGM trusts the first-order expansion $L(e + \delta) \approx L(e) + g \cdot \delta$. Qin et al.
# (2019) measure how far that trust is misplaced with the worst **linearity gap** in the ball,
#
# $$\gamma(\varepsilon) = \max_{\|\delta_b\| \le \varepsilon}
#   \big|L(e + \delta) - L(e) - g \cdot \delta\big|,$$
#
# and propose to penalise it, so that the loss stays locally linear and a one-step adversary
# stays a good one (the seed article 002 presents it beside SMART's smoothness term). PGD on the
# gap itself finds it, from a random start: at $\delta = 0$ the gap is at its minimum, 0, and its
# gradient $\nabla_e L(e) - g$ vanishes, so an ascent from there would never move.

# %%
gradient = embedding_gradient(batch.loss_fn, embeds)
with torch.no_grad():
    clean_loss = batch.loss_fn(embeds)


def linearity_gap(x: torch.Tensor) -> torch.Tensor:
    """|L(x) - L(e) - g . (x - e)|, how far the loss is from its tangent plane at e."""
    return (batch.loss_fn(x) - clean_loss - (gradient * (x - embeds)).sum()).abs()


for radius in (0.01, 0.02, 0.05):
    delta = pgd(linearity_gap, embeds, radius, alpha=radius / 4, steps=10, random_start=True,
                generator=torch.Generator().manual_seed(0))
    gap = linearity_gap(embeds + delta).detach()
    print(f"eps = {radius:.2f}: gap {gap:.3g}, gap / eps^2 = {gap / radius ** 2:.2g}")

# %% [markdown]
# The gap grows like $\varepsilon^2$ (the ratio stays put), the signature of curvature. At the
# training radius 0.05 it is larger than the whole first-order rise $\varepsilon \sum_b \|g_b\|$
# (1.48 in notebook 03's table, on the same batch): which is why PGD found so much more than FGM
# there.
#
# **Virtual adversaries.** SMART (Jiang et al. 2020) and ALUM (Liu et al. 2020) regularise a
# different quantity: how much the model's *prediction* changes, not its loss. With $f(e)$ the
# model's outputs (here the logits $-E(x)$) and $D$ a divergence between the distributions they
# define,
#
# $$\min_\theta \; L(e) + \lambda \max_{\|\delta_b\| \le \varepsilon}
#   D\big(f(e), f(e + \delta)\big),$$
#
# with $\lambda$ the regulariser's weight. No label appears in the second term: this is *virtual*
# adversarial training (Miyato et al. 2017), usable on unlabelled text. The ascent cannot start
# at $\delta = 0$: the divergence is at its minimum there, and its gradient vanishes. Both
# methods start from tiny noise, $\sigma = 10^{-5}$ per entry:

# %%
target = batch.forward(embeds).detach()  # f(e), held fixed during the ascent
at_zero = embedding_gradient(lambda x: symmetric_kl(target, batch.forward(x)), embeds)
noise = 1e-5 * torch.randn(embeds.shape, generator=torch.Generator().manual_seed(0)).to(device)
step = embedding_gradient(lambda x: symmetric_kl(target, batch.forward(x)), embeds + noise)
moved = ascend(noise, step, eps, eps)  # one ascent step of size eta = eps
with torch.no_grad():
    at_noise = symmetric_kl(target, batch.forward(embeds + noise))
    after_step = batch.forward(embeds + moved)
print(f"gradient of D at delta = 0: largest entry below 1e-6: {bool(at_zero.abs().max() < 1e-6)}")
# float32 resolves a divergence this small only to its order of magnitude (it is rounding noise)
print(f"random start, sigma = 1e-5: symmetric KL below 1e-6: {bool(at_noise < 1e-6)}")
print(f"after one ascent step, ||delta_b|| = eps: "
      f"symmetric KL {symmetric_kl(target, after_step):.1f}, "
      f"KL {kl_divergence(target, after_step):.1f}")

# %% [markdown]
# One step from the noise finds a direction that moves the prediction many orders of magnitude
# more than the noise did: the virtual adversarial direction.
#
# SMART's divergence for a classifier is the **symmetric KL**. For a binary classifier with
# logit $l$, the two-class distribution is $p = (1 - \sigma(l), \sigma(l))$ ($\sigma$ the
# logistic function), and for each sequence $n$
#
# $$D_n = \mathrm{KL}(p_n \,\|\, q_n) + \mathrm{KL}(q_n \,\|\, p_n), \qquad
#   \mathrm{KL}(p \,\|\, q) = \sum_{c} p_c \log \frac{p_c}{q_c},$$
#
# averaged over the batch.
#
# ### Exercise 04.2
# Write `symmetric_kl_term(logits_p, logits_q)` for two tensors of binary logits of shape
# `(N,)`: the batch mean of $D_n$ above. The checker compares it with a plain Python
# computation, pair by pair.

# %%
def symmetric_kl_term(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """mean_n KL(p_n || q_n) + KL(q_n || p_n), p_n = (1 - sigmoid(l_n), sigmoid(l_n))."""
    # your code here
    raise NotImplementedError


check_symmetric_kl(symmetric_kl_term)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Both classes count: the term of class 0 uses 1 - sigmoid(l) = sigmoid(-l). The two KLs add up
# to the sum over classes of (p_c - q_c)(log p_c - log q_c); logsigmoid gives the logarithms
# without computing a sigmoid first.
# </details>
#
# **SMART and ALUM in a few lines.** SMART takes $K$ ascent steps on the symmetric KL, with
# $f(e)$ held fixed, then trains on $L(e) + \lambda D$ with gradients through *both* sides. ALUM
# uses the one-sided KL of virtual adversarial training, $\mathrm{KL}(f(e) \,\|\, f(e + \delta))$
# with $f(e)$ held fixed, a single ascent step ($K = 1$), and a curriculum: plain training
# first, the adversarial term switched on later (the library's `warmup_steps`). One function
# covers both, checked against the library's `SMART` and `ALUM` steps:

# %%
def virtual_adversarial_loss(objective, epsilon: float, eta: float, weight: float, steps: int,
                             symmetric: bool, generator: torch.Generator) -> torch.Tensor:
    """L(e) + lambda D(f(e), f(e + delta)), delta from K ascent steps on D from N(0, sigma^2)
    noise; D = symmetric KL (SMART) or KL with f(e) held fixed (ALUM)."""
    embeds = objective.embed()
    outputs = objective.forward(embeds)  # f(e)
    target, point = outputs.detach(), embeds.detach()
    divergence = symmetric_kl if symmetric else kl_divergence
    delta = 1e-5 * torch.randn(point.shape, generator=generator).to(point.device)  # sigma = 1e-5
    for _ in range(steps):  # ascent passes: backward to the input only
        g = embedding_gradient(lambda x: divergence(target, objective.forward(x)), point + delta)
        delta = ascend(delta, g, eta, epsilon)
    perturbed = objective.forward(embeds + delta)
    regulariser = (symmetric_kl(outputs, perturbed) if symmetric
                   else kl_divergence(target, perturbed))
    return objective.loss(outputs) + weight * regulariser


for name, library, options in (
        ("SMART, K = 2", SMART(eps, eps, weight=1.0, steps=2,
                              generator=torch.Generator().manual_seed(0)),
         dict(steps=2, symmetric=True)),
        ("ALUM", ALUM(eps, eps, weight=1.0, generator=torch.Generator().manual_seed(0)),
         dict(steps=1, symmetric=False))):
    ours, theirs = copy.deepcopy(energy_model), copy.deepcopy(energy_model)
    loss = virtual_adversarial_loss(mini_batch(ours, 0), eps, eps, 1.0,
                                    generator=torch.Generator().manual_seed(0), **options)
    loss.backward()
    value = library.backward(mini_batch(theirs, 0))
    print(f"{name}: same loss value and parameter gradient as the library: "
          f"{bool(torch.isclose(loss.detach(), value, rtol=1e-5))}, "
          f"{torch.allclose(gradients_of(ours), gradients_of(theirs), atol=1e-6)}")

# %% [markdown]
# **ALUM in pre-training.** Liu et al. (2020; the seed digest 003) apply this term in *every*
# stage of a language model's life: pre-training from scratch, continued pre-training of an
# already trained model (RoBERTa), and task-specific fine-tuning. Their claim is that
# adversarial **pre-training** improves both **generalisation** (accuracy on the standard
# benchmarks) and **robustness** (on adversarial test sets such as ANLI and Adversarial SQuAD),
# whereas earlier work often found that adversarial training buys robustness at the cost of
# generalisation. Since the term needs no label, it applies to a language model's own outputs:
# in this course it would perturb the embeddings of notebook 00's pre-training and compare the
# next-token distributions at $e$ and $e + \delta$.
#
# ## 5. What each costs, measured
#
# `advebm-teach bench perturb-cost` times one training step of every strategy, round-robin in
# one run on 200 sequences (median of 40 rounds), relative to a clean step; the perturbation
# study (`advebm-teach bench perturb`) records how long each strategy's 4 fine-tuning epochs on
# 1,000 pairs took (mean of 5 seeds; FreeAT-3 runs $\lceil 4/3 \rceil = 2$ epochs, each replaying
# every mini-batch 3 times). Both are shipped with the course:

# %%
cost, study = load_result("perturb_cost"), load_result("perturb")
shown = ["clean", "FGM", "PGD-3", "FreeAT-3", "YOPO-3-3", "FreeLB-3", "SMART", "ALUM",
         "gradient penalty", "gradient penalty (finite difference)"]
print(f"{'strategy':38s}{'passes':>7s}{'time a step':>13s}{'4 epochs':>10s}")
for name in shown:
    row, seconds = cost["strategies"][name], study["runs"][name]["train_seconds"]
    print(f"{name:38s}{row['ideal']:7d}{row['ratio']:12.2f}x"
          f"{sum(seconds) / len(seconds):9.1f}s")

# %%
# NBVAL_IGNORE_OUTPUT
cost_bars(shown, [cost["strategies"][n]["ratio"] for n in shown],
          [cost["strategies"][n]["ideal"] for n in shown])

# %% [markdown]
# Each bar is a step's measured time, in clean steps, beside its ideal pass count: most
# strategies cost their passes, PGD-3, SMART and ALUM a little less, the exact gradient penalty
# more.
#
# * **FreeAT** pays three passes a step but runs a third of the epochs: its fine-tuning took
#   3.1 s against PGD-3's 7.0 s, close to clean training's 2.1 s, for a perturbation refined on
#   every replay.
# * **YOPO** and **FreeLB** cost their three passes; here YOPO's cheap updates are free but add
#   nothing (section 2), while FreeLB trains on every pass.
# * **PGD-3, SMART and ALUM** come in *under* their pass counts: their ascent passes only need
#   $\nabla_\delta$, so the backward skips every weight gradient (about 0.7 of a full pass, the
#   benchmark finds).
# * **The gradient penalty** $\frac{\lambda}{2}\|\nabla_e L\|^2$ (FGM's first-order twin from
#   notebook 03) is the one strategy above its ideal: differentiating a gradient (a double
#   backward) costs more than a second pass. Notebook 03's equivalence, read backwards, is the
#   cure: $\nabla_\theta L(e + c\,g) = \nabla_\theta\big(L + \tfrac{c}{2}\|g\|^2\big) + O(c^2)$,
#   so a pass that finds $g$ (backward to the input only) and one training pass at $e + c\,g$,
#   with $c = \lambda B$ for a batch-mean loss over $B$ sequences, give the penalty's gradient to
#   first order (`GradientPenalty(weight, method="finite_difference")`: FGM with an unnormalised
#   step), for less than FGM's two passes.
#
# Whether these cheaper or label-free adversaries make the energy model better at what it is for
# is a question the course returns to once it has attacks that write real sequences.
#
# ### Questions
# * **04.a** FreeAT's $\delta$ is always one optimizer step stale. When does that matter little,
#   and when much?
# * **04.b** Why can SMART's and ALUM's regulariser be used while pre-training a language model
#   on raw text, where FGM's adversarial loss $L(e + \delta)$ would need something it does not
#   have there? (Think about what $L$ needs and what $D$ needs.)

# %% [markdown]
# ## Summary
#
# * FreeAT replays each mini-batch $K$ times and uses every backward twice, for $\theta$ and for
#   $\delta$; over $\lceil N/K \rceil$ epochs it costs about what clean training costs, with a
#   stale $\delta$.
# * YOPO freezes the gradient at the first layer's output (the co-state) and updates $\delta$
#   through the first layer only: $K$ passes, $K n$ ascent steps, a saving that needs a
#   non-linear first layer.
# * FreeLB averages the parameter gradients of all $K$ ascent passes, from a random start inside
#   the ball, under one dropout mask: a $K$-times larger virtual batch for PGD's price.
# * The loss is far from linear at the training radius (the linearity gap grows like
#   $\varepsilon^2$); SMART and ALUM penalise how much the prediction changes in the ball
#   (symmetric KL; one-sided KL, one step, after a warm-up), which needs no label, so ALUM
#   applies it in pre-training too.
# * Measured: FreeAT's fine-tuning 3.1 s against PGD-3's 7.0 s; ascent-only passes cost about 0.7
#   of a full pass; the exact gradient penalty costs more than its two passes, its finite
#   difference less.

# %% [markdown]
# ## References
#
# * Shafahi, A., Najibi, M., Ghiasi, A., Xu, Z., Dickerson, J., Studer, C., Davis, L. S.,
#   Taylor, G. & Goldstein, T. (2019). Adversarial Training for Free! NeurIPS 2019,
#   arXiv:1904.12843.
# * Zhang, D., Zhang, T., Lu, Y., Zhu, Z. & Dong, B. (2019). You Only Propagate Once:
#   Accelerating Adversarial Training via Maximal Principle. NeurIPS 2019, arXiv:1905.00877.
# * Zhu, C., Cheng, Y., Gan, Z., Sun, S., Goldstein, T. & Liu, J. (2020). FreeLB: Enhanced
#   Adversarial Training for Natural Language Understanding. ICLR 2020, arXiv:1909.11764.
# * Jiang, H., He, P., Chen, W., Liu, X., Gao, J. & Zhao, T. (2020). SMART: Robust and
#   Efficient Fine-Tuning for Pre-trained Natural Language Models through Principled
#   Regularized Optimization. ACL 2020, arXiv:1911.03437.
# * Liu, X., Cheng, H., He, P., Chen, W., Wang, Y., Poon, H. & Gao, J. (2020). Adversarial
#   Training for Large Neural Language Models. arXiv:2004.08994.
# * Qin, C., Martens, J., Gowal, S., Krishnan, D., Dvijotham, K., Fawzi, A., De, S.,
#   Stanforth, R. & Kohli, P. (2019). Adversarial Robustness through Local Linearization.
#   NeurIPS 2019, arXiv:1907.02610.
# * Miyato, T., Dai, A. M. & Goodfellow, I. (2017). Adversarial Training Methods for
#   Semi-Supervised Text Classification. ICLR 2017, arXiv:1605.07725.
# * Madry, A., Makelov, A., Schmidt, L., Tsipras, D. & Vladu, A. (2018). Towards Deep Learning
#   Models Resistant to Adversarial Attacks. ICLR 2018, arXiv:1706.06083.
# * The course's seed texts: 002, 一文搞懂NLP中的對抗訓練 (Understanding adversarial training
#   in NLP; FGSM to SMART, with pseudo-code), 深度學習自然語言處理 (WeChat account), 2020; 003, a
#   digest of Liu et al. 2020 (ALUM).
