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
# # 03 · Adversarial examples where gradients work: FGSM, FGM and PGD on embeddings
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/03_embedding_attacks.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/03_embedding_attacks.ipynb) · or locally, `advebm-teach lab`
#
# Adversarial training asks a model to be right not only on its data but on the worst input
# within a small distance of it. For text, "a small distance" has no meaning in token space; it
# does in embedding space, where the gradient tells us which way is worst. This notebook attacks
# the course's energy model there, one gradient step (FGSM, FGM) or several (PGD), and trains on
# what the attack finds.
#
# **Learning goals.** By the end you can
# 1. write adversarial training as a min–max problem and say why text is perturbed at its
#    embeddings (and what a small embedding gradient buys: the Lipschitz view);
# 2. compute FGSM, FGM and PGD perturbations of a batch and keep PGD inside its ε-ball;
# 3. write the loss of an FGM training step, $L(e) + L(e + \delta)$, exactly as the library
#    trains it, and PGD's inner loop;
# 4. show numerically that training on FGM's perturbation is training with a gradient penalty,
#    to first order;
# 5. say why dropout spoils a multi-step ascent, and how to keep it from doing so.
#
# **Prerequisites.** Notebook 00 (the addition task `a + b = c`, P_LM, and the Transformer
# pre-trained as a language model that becomes our energy) and notebook 01 (an energy $E(x)$:
# low means "looks like data"). PyTorch autograd (`torch.autograd.grad`, `backward`, `detach`);
# gradients, norms and a first-order Taylor expansion. Symbols as in the
# [notation](../docs/notation.md) table: $e$ the embeddings, $\delta$ a perturbation,
# $\varepsilon$ the radius, $\eta$ PGD's step, $K$ its steps, $\lambda$ a regulariser's weight.

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

from advebm_teach import TransformerEnergy, load_pretrained, make_task, pick_device, sample_lm
from advebm_teach.perturb import embedding_gradient, fgm, fgsm, gradient_penalty, pgd
from advebm_teach.trainer import classifier_objective
from advebm_teach.teaching.exercises.embedding import (check_fgm_perturbation,
                                                       check_fgm_training_loss,
                                                       check_l2_projection,
                                                       check_pgd_perturbation)
from advebm_teach.teaching.plots import loglog_curves
from advebm_teach.teaching.widgets import PerturbationExplorer

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)

# %% [markdown]
# ## 1. The model we attack
#
# Notebook 00 pre-trained a small Transformer as a language model on true sums. Read out as one
# number, it becomes an energy: $E(x) = w \cdot \operatorname{mean}_t h_t + b$, the mean of its
# final hidden states $h_t$ through a linear layer. The course then fine-tunes it as a
# **classifier of true sums against P_LM's samples**: the logit for "data" is $-E(x)$, and the
# loss is the binary cross-entropy (BCE)
#
# $$L = \operatorname{mean}_{x^+} \operatorname{softplus}\big(E(x^+)\big)
#      + \operatorname{mean}_{x^-} \operatorname{softplus}\big(-E(x^-)\big),$$
#
# with $x^+$ true sums and $x^-$ sequences P_LM wrote. This is how a *Residual EBM* is trained
# (Deng et al. 2020): an energy that learns what the language model gets wrong. The course ships
# the result (`energy_bce`); we attack it on 100 held-out true sums and 100 fresh P_LM samples.
# Its accuracy is the mean of the two halves' hit rates: the fraction of true sums with $E < 0$
# and the fraction of P_LM's samples with $E > 0$.

# %%
energy_model = load_pretrained("energy_bce").to(device)
test_data, test_negatives = task.sample(100, seed=2), sample_lm(plm, task, 100, seed=3)
batch = classifier_objective(energy_model, test_data, test_negatives)  # 100 + 100 sequences
embeds = batch.embed().detach()  # e = W[x], (200, T, d)


def accuracy(objective, embeds: torch.Tensor) -> float:
    """(P(E < 0 | true sum) + P(E > 0 | P_LM sample)) / 2 over the 100 + 100 test sequences."""
    with torch.no_grad():
        energy = -objective.forward(embeds)
    return 0.5 * ((energy[:100] < 0).float().mean() + (energy[100:] > 0).float().mean()).item()


with torch.no_grad():
    print(f"held-out loss {batch.loss_fn(embeds):.2f}, accuracy {accuracy(batch, embeds):.3f}")

# %% [markdown]
# ## 2. The min–max problem, and why text is perturbed at its embeddings
#
# Adversarial training (Madry et al. 2018) minimises the loss at the worst point of a small ball
# around each input:
#
# $$\min_\theta \; \mathbb{E}_{(x, y)} \Big[ \max_{\|\delta\| \le \varepsilon}
#   L(x + \delta, y; \theta) \Big].$$
#
# The inner max makes the input as bad as it can within the ball; the outer min trains on it (the
# Kolter–Madry tutorial derives the whole picture at length). For an image, $x$ is a vector of
# pixel intensities and $x + \delta$ is another image. Text is a sequence of one-hot vectors:

# %%
one_hot = torch.eye(task.vocab_size)
pairs = torch.cdist(one_hot, one_hot)[~torch.eye(task.vocab_size, dtype=torch.bool)]
print(f"distance between two different one-hot tokens: min {pairs.min():.3f}, "
      f"max {pairs.max():.3f}")
table = energy_model.token_embedding.weight.detach()  # W, (|V|, d)
digits = torch.cdist(table[:10], table[:10])[~torch.eye(10, dtype=torch.bool)]
print(f"distance between two digit embeddings: min {digits.min():.2f}, max {digits.max():.2f}; "
      f"a digit embedding's norm {table[:10].norm(dim=1).mean():.2f}; "
      f"a whole sequence's embeddings {embeds[0].norm():.2f}")

# %% [markdown]
# Every two tokens are $\sqrt 2$ apart: there is no input "close to" a sentence but a different
# sentence. The embeddings $e_t = W_{x_t}$ are continuous, so Miyato et al. (2017) perturb them
# instead: $L(e + \delta)$ with $\delta$ shaped like $e$, `(B, T, d)`, and a ball per sequence,
# $\|\delta_b\|_2 \le \varepsilon$ over all its tokens. The course's models split at exactly that
# seam (`model.embed(tokens)`, then `energy_from_embeds(embeds, tokens)`), so every adversary
# here takes `loss_fn(embeds) -> L` and returns $\delta$; no embedding table is edited. The
# price: $e + \delta$ is no sentence at all. Map each perturbed embedding back to its nearest
# token and count how much of the text even a large perturbation (norm 0.5 per sequence, a third
# of the sequence's own norm) changes:

# %%
delta = fgm(batch.loss_fn, embeds, 0.5)
nearest = torch.cdist(embeds + delta, table.expand(len(embeds), -1, -1)).argmin(dim=-1)
changed = int((nearest != batch.tokens).sum())
print(f"positions whose nearest token changed: {changed} of {batch.tokens.numel()}")

# %% [markdown]
# (Almost) none: the perturbation moves the loss without writing another sentence.
# Embedding-space adversarial training regularises the model *around its data*; it does not show
# it new texts.
#
# Two pictures of what that regularisation does (both from Su's 2020 essay on adversarial
# training, the course's seed text on FGM):
#
# * **Holes in the embedding space.** A classifier "digs a hole" for each class and puts the
#   class's examples in it. Adversarial training asks for more: each example should sit at the
#   *bottom* of its hole, where the loss is flat ($\nabla_e L = 0$), so that a nudge of size
#   $\varepsilon$ cannot push it over the rim.
# * **The Lipschitz view.** If $\|\nabla_e L\| \le G$ everywhere in the ball, the mean-value
#   theorem bounds the damage: $|L(e + \delta) - L(e)| \le G\,\|\delta\| \le G\,\varepsilon$. A
#   model whose loss has small input gradients near its data cannot be moved much by a small
#   perturbation. To first order, with $g_b = \nabla_{e_b} L$ the gradient at sequence $b$'s
#   embeddings and one ball per sequence,
#   $$\max_{\|\delta_b\| \le \varepsilon} L(e + \delta) - L(e) \approx
#     \varepsilon \sum_b \|g_b\|,$$
#   so $\sum_b \|g_b\|$ is the slope at which an attacker raises the loss. Section 3 measures how
#   far the real rise follows it.
#
# ## 3. FGSM, FGM and PGD on one batch
#
# Linearise the loss around $e$, with $g = \nabla_e L$: the best step in the L∞ ball is FGSM's
# $\delta = \varepsilon \operatorname{sign}(g)$ (Goodfellow et al. 2015); in the L2 ball of each
# sequence it is FGM's $\delta_b = \varepsilon\, g_b / \|g_b\|_2$ (Miyato et al. 2017). Both cost
# one forward and one backward pass. **PGD** (projected gradient descent, here ascent; Madry et
# al. 2018) does not trust the linearisation: $K$ smaller steps of size $\eta$, each projected
# back onto the ball,
#
# $$\delta_0 = 0, \qquad \delta_{k+1} = \Pi_\varepsilon\big(\delta_k + \eta\, g_k / \|g_k\|\big),
#   \qquad g_k = \nabla_e L(e + \delta_k),$$
#
# for $K$ passes ($\Pi_\varepsilon$ rescales each $\delta_b$ whose norm exceeds $\varepsilon$ back
# onto the sphere). To compare them, FGSM gets the cube whose corners lie at L2 distance
# $\varepsilon$ ($\varepsilon / \sqrt{Td}$ per entry):

# %%
eps = 0.05
deltas = {"FGSM": fgsm(batch.loss_fn, embeds, eps / math.sqrt(embeds[0].numel())),
          "FGM": fgm(batch.loss_fn, embeds, eps),
          "PGD-10": pgd(batch.loss_fn, embeds, eps, alpha=eps / 4, steps=10)}  # eta = eps / 4
with torch.no_grad():
    print(f"clean : loss {batch.loss_fn(embeds):.2f}, accuracy {accuracy(batch, embeds):.3f}")
    for name, delta in deltas.items():
        norms = delta.flatten(1).norm(dim=1)
        print(f"{name:6s}: ||delta_b|| in [{norms.min():.3f}, {norms.max():.3f}], "
              f"loss {batch.loss_fn(embeds + delta):.2f}, "
              f"accuracy {accuracy(batch, embeds + delta):.3f}")

# %% [markdown]
# FGM's norm is exactly $\varepsilon$ for every sequence, PGD's never exceeds it, and within the
# same ball PGD finds the larger loss. Where does each put its budget? The share of
# $\|\delta\|^2$ on each group of positions:

# %%
groups = {"a": task.a_positions, "b": task.b_positions, "c": task.c_positions,
          "format tokens": [t for t in range(task.seq_len) if not task.digit_slots[t]]}
for name, delta in deltas.items():
    squares = delta.pow(2).sum(dim=-1)  # ||delta_{b,t}||^2, (B, T)
    print(f"{name:6s} puts its ||delta||^2 on " + ", ".join(
        f"{group} {squares[:, list(positions)].sum() / squares.sum():.0%}"
        for group, positions in groups.items()))

# %% [markdown]
# FGSM spreads its budget evenly over every coordinate (its shares are just the positions'
# counts). FGM and PGD follow the gradient: less on the answer digits `c` than their count would
# give them, more on `a`, `b` and the format tokens, which every position attends to.
#
# How well does the first-order slope $\varepsilon \sum_b \|g_b\|$ of section 2 predict the rise
# of the loss? Per radius, the predicted rise beside FGM's and PGD's real ones:

# %%
slope = embedding_gradient(batch.loss_fn, embeds).flatten(1).norm(dim=1).sum()
print(f"sum_b ||g_b|| = {slope:.1f}")
print("   eps   first-order rise   FGM's rise   PGD-10's rise")
with torch.no_grad():
    clean_loss = batch.loss_fn(embeds)
for radius in (0.001, 0.01, 0.05):
    rises = [batch.loss_fn(embeds + delta).detach() - clean_loss for delta in (
        fgm(batch.loss_fn, embeds, radius),
        pgd(batch.loss_fn, embeds, radius, alpha=radius / 4, steps=10))]
    print(f"{radius:6.3f}   {radius * slope:16.3g}   {rises[0]:10.3g}   {rises[1]:13.3g}")

# %% [markdown]
# At $\varepsilon = 0.001$ the three agree: the gradient at $e$ says it all, and FGM is the best
# attack in the ball. At $\varepsilon = 0.05$ the real rise is far above the linear prediction:
# the loss curves upwards, and PGD, which re-reads the gradient at every step, exploits that
# curvature best.
#
# Explore: drag ε and PGD's steps in the widget below. The top plot follows the loss along each
# perturbation, $L(e + s\,\delta)$ for $s$ from 0 to 1; the heatmap shows where a method puts its
# budget, $\|\delta_{b,t}\|$ per token (pick the method above it). It runs on the first 4 true
# sums and 4 P_LM samples.

# %%
# NBVAL_IGNORE_OUTPUT
PerturbationExplorer.for_classifier(energy_model, task, test_data[:4], test_negatives[:4],
                                    epsilon=eps, steps=5)

# %% [markdown]
# At first the loss rises fastest along FGM's direction (the steepest one at $e$), then the curve
# bends; PGD's path ends higher, having found the curvature the gradient at $e$ cannot see. Drag
# ε to 0.2: the gap between FGM's and PGD's end points grows, as in the table above.
#
# ### Exercise 03.1
# Write `fgm_perturbation(gradient, epsilon)`: for a gradient of shape `(B, T, d)`, FGM's
# perturbation $\varepsilon\, g_b / \|g_b\|_2$, each sequence normalised over all its tokens
# (not each token on its own, and not the whole batch at once).

# %%
def fgm_perturbation(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    """delta_b = eps g_b / ||g_b||_2 for each sequence b, the norm over all its T x d entries."""
    # your code here
    raise NotImplementedError


check_fgm_perturbation(fgm_perturbation)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Flatten every dimension but the batch one to take one norm per sequence, then reshape that
# vector of B norms so that it broadcasts against the (B, T, d) gradient.
# </details>
#
# ### Exercise 03.2
# PGD's projection: write `project_l2(delta, epsilon)`, which rescales each sequence's
# $\delta_b$ onto the ball $\|\delta_b\|_2 \le \varepsilon$ when it lies outside and leaves it
# alone when it lies inside.

# %%
def project_l2(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Pi_eps(delta): delta_b * min(1, eps / ||delta_b||_2) for each sequence b."""
    # your code here
    raise NotImplementedError


check_l2_projection(project_l2)

# %% [markdown]
# <details><summary>Hint</summary>
#
# One scale factor per sequence, the ratio of the radius to the sequence's norm, capped at 1 so
# that a perturbation inside the ball is not stretched onto the sphere.
# </details>
#
# ## 4. Training on the adversary: one FGM step, and PGD's inner loop
#
# So far we only attacked. An adversarial **training step** also updates $\theta$. The library's
# FGM step (`perturb_steps.FGM`, after Miyato et al.) minimises the clean and the adversarial
# loss together:
#
# $$L_{\text{FGM}}(\theta) = L(e) + L(e + \delta), \qquad
#   \delta_b = \varepsilon\, \frac{g_b}{\|g_b\|}, \quad g = \nabla_e L(e),$$
#
# with $\delta$ **held fixed**: it is computed from the current parameters, and no gradient flows
# through it into $\theta$ (the inner max chooses $\delta$; the outer min only sees where it
# landed). In passes: (1) a forward and backward at $e$ give $\nabla_\theta L(e)$ and, from the
# same backward, $g$; (2) $\delta$ from $g$; (3) a forward and backward at $e + \delta$ add
# $\nabla_\theta L(e + \delta)$; (4) one optimizer step. Two passes; the embedding table $W$
# trains too, through both terms, since $e = W_x$.
#
# ### Exercise 03.3
# Write `fgm_training_loss(loss_fn, embeds, epsilon)`: the scalar loss whose backward gives the
# FGM step's parameter gradients. `embeds` is the model's embedding output, still attached to
# the table (so do not detach it); `loss_fn(embeds)` is the batch's BCE loss. The checker runs
# your function and the library's FGM step on a tiny Transformer energy and compares the loss
# value and the gradient of every parameter.

# %%
def fgm_training_loss(loss_fn, embeds: torch.Tensor, epsilon: float) -> torch.Tensor:
    """L(e) + L(e + delta), delta_b = eps g_b / ||g_b||, g = grad_e L(e), delta held fixed."""
    # your code here
    raise NotImplementedError


check_fgm_training_loss(fgm_training_loss)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Compute the clean loss once. Its gradient with respect to the embeddings comes from
# torch.autograd.grad; since you will backpropagate the clean loss again later, that call must
# keep the graph (retain_graph). A gradient returned by torch.autograd.grad carries no graph
# unless you ask for one, so the perturbation built from it is already held fixed. Then add the
# loss at the perturbed embeddings.
# </details>
#
# The PGD step (`perturb_steps.PGD`) trains on $L(e) + L(e + \delta_K)$ the same way; only its
# $\delta$ costs more: the $K$-step loop of section 3.
#
# ### Exercise 03.4
# Write PGD's inner loop, `pgd_perturbation(loss_fn, embeds, epsilon, eta, steps)`: from
# $\delta_0 = 0$, `steps` $= K$ projected ascent steps
# $\delta_{k+1} = \Pi_\varepsilon(\delta_k + \eta\, g_k / \|g_k\|)$ with
# $g_k = \nabla_e L(e + \delta_k)$ re-computed at every step (norms per sequence). Return
# $\delta_K$. The checker compares it with `perturb.pgd` on a tiny model.

# %%
def pgd_perturbation(loss_fn, embeds: torch.Tensor, epsilon: float, eta: float,
                     steps: int) -> torch.Tensor:
    """delta_K of PGD: delta_{k+1} = Pi_eps(delta_k + eta g_k / ||g_k||), g_k at e + delta_k."""
    # your code here
    raise NotImplementedError


check_pgd_perturbation(pgd_perturbation)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Each step needs a fresh leaf tensor at e + delta that requires grad, so that
# torch.autograd.grad can give the gradient there. Your two earlier functions are the step's
# direction and its projection (the library's perturb.ascend does both at once, if you prefer).
# </details>
#
# ## 5. FGM is a gradient penalty, to first order
#
# Train on $L(e + \delta)$ with $\delta$ held fixed at $\varepsilon g$, $g = \nabla_e L$ (the
# unnormalised FGM of Su's essay). Expanding, $L(e + \delta) \approx L(e) + g \cdot \delta$, so
# the parameter gradient is
#
# $$\nabla_\theta L + \varepsilon\, (\nabla_\theta g)^\top g
#   = \nabla_\theta \Big(L + \tfrac{\varepsilon}{2}\|\nabla_e L\|^2\Big):$$
#
# adversarial training with one gradient step is training with a **gradient penalty** (and FGM's
# normalised $\delta_b = \varepsilon g_b/\|g_b\|$ is the penalty $\varepsilon \sum_b \|g_b\|$):
# exactly the Lipschitz picture of section 2, asking for small input gradients near the data.
# Check it: the two parameter gradients' corrections to $\nabla_\theta L$ should agree up to a
# relative error that shrinks like ε. The penalty needs a gradient of a gradient
# (`gradient_penalty` keeps the first backward's graph: a *double backward*). In float64, so
# that rounding does not hide the trend, on the CPU (Apple's MPS has no float64), on 8 + 8
# sequences:

# %%
model64 = copy.deepcopy(energy_model).to("cpu", torch.float64)
batch64 = classifier_objective(model64, test_data[:8], test_negatives[:8])


def parameter_gradient(loss: torch.Tensor) -> torch.Tensor:
    """grad_theta of ``loss``, all parameters flattened into one vector."""
    grads = torch.autograd.grad(loss, list(model64.parameters()), allow_unused=True,
                                materialize_grads=True)
    return torch.cat([g.flatten() for g in grads])  # (the LM head is unused by this energy: 0)


def correction_error(delta: torch.Tensor, penalty) -> float:
    """||adversarial - penalised|| / ||penalised - clean||: the parameter gradients of
    L(e + delta) and of L + penalty(), each compared with the clean one."""
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
errors = {"delta = eps g  vs  L + eps/2 ||g||^2": [],
          "FGM, normalised  vs  L + eps sum_b ||g_b||": []}
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
loglog_curves(epsilons, errors, title="Adversarial vs gradient-penalty parameter gradient",
              xaxis="eps", yaxis="relative error of the correction", slope=1)

# %% [markdown]
# Both curves fall along the dashed slope-one line: the error is $O(\varepsilon)$ relative to a
# correction that is itself $O(\varepsilon)$. For small ε the two trainings are the same; for
# large ε the adversary sees curvature the penalty does not. (The unnormalised step
# $\varepsilon g$ is tiny here, since $g$ is the gradient of a batch *mean*; its errors leave the
# linear regime only at ε near 1.)
#
# ## 6. The dropout caveat
#
# Every ascent step assumes the same network. With dropout on, each forward pass draws a new
# mask, so the direction found under one mask is an attack on a *different* network. Load the
# same weights with dropout 0.1:

# %%
dropped = TransformerEnergy(**{**energy_model.config, "dropout": 0.1}).to(device)
dropped.load_state_dict(energy_model.state_dict())
dropped.train()
noisy = classifier_objective(dropped, test_data, test_negatives)


def under_mask(seed: int, fn):
    """fn() with torch's generator seeded first: the seed fixes the dropout masks."""
    torch.manual_seed(seed)
    return fn()


g_a = under_mask(0, lambda: embedding_gradient(noisy.loss_fn, embeds))
g_a_again = under_mask(0, lambda: embedding_gradient(noisy.loss_fn, embeds))
g_b = under_mask(1, lambda: embedding_gradient(noisy.loss_fn, embeds))
cosine = torch.nn.functional.cosine_similarity
print(f"cosine of the gradients: same mask "
      f"{cosine(g_a.flatten(), g_a_again.flatten(), dim=0):.2f}, "
      f"another mask {cosine(g_a.flatten(), g_b.flatten(), dim=0):.1f}")
delta_a = eps * g_a / g_a.flatten(1).norm(dim=1)[:, None, None]  # FGM under mask A
with torch.no_grad():
    for seed, label in ((0, "the mask it was found under"), (1, "another mask")):
        rise = (under_mask(seed, lambda: noisy.loss_fn(embeds + delta_a))
                - under_mask(seed, lambda: noisy.loss_fn(embeds)))
        print(f"FGM's delta raises the loss by {rise:.1f} under {label}")

# %% [markdown]
# Under another mask the perturbation is a much weaker attack, and each of PGD's $K$ steps would
# chase a different network. The fix (Zhu et al. 2020 apply it in FreeLB): rewind the random
# generators before each pass of the ascent, so that all of them draw the same mask. The course's
# energy model has no dropout (`dropout=0.0`), so nothing in this course is affected.
#
# ### Questions
# * **03.a** The nearest-token check of section 2 changed almost no token. Is $e + \delta$ then
#   an adversarial example in Goodfellow et al.'s sense? What does training on it teach the
#   model, and what can it not teach it?
# * **03.b** At large ε the FGM and gradient-penalty gradients part ways (section 5). Which one
#   sees the curvature of the loss inside the ball, and which would you use to make the model
#   robust to PGD at that ε?

# %% [markdown]
# ## Summary
#
# * Text has no small perturbations in token space (every two one-hot vectors are $\sqrt 2$
#   apart), so adversarial training for text perturbs the embeddings, $L(e + \delta)$ with
#   $\|\delta_b\| \le \varepsilon$ per sequence; the perturbed embeddings are no sentence.
# * Small input gradients bound how much the loss can change in the ball (Lipschitz view); to
#   first order the attacker's best rise is $\varepsilon \sum_b \|g_b\|$, reached by FGM.
# * FGSM and FGM take one linearised step (L∞, L2); PGD takes $K$ projected steps of size $\eta$
#   and finds more of the curvature, at $K$ times the cost.
# * An FGM training step minimises $L(e) + L(e + \delta)$ with $\delta$ held fixed (two passes);
#   PGD's step the same with $\delta_K$ ($K + 1$ passes).
# * FGM's training is a gradient penalty to first order in ε (a relative error that shrinks like
#   ε); dropout must draw the same mask across an ascent.

# %% [markdown]
# ## References
#
# * Goodfellow, I. J., Shlens, J. & Szegedy, C. (2015). Explaining and Harnessing Adversarial
#   Examples. ICLR 2015, arXiv:1412.6572.
# * Miyato, T., Dai, A. M. & Goodfellow, I. (2017). Adversarial Training Methods for
#   Semi-Supervised Text Classification. ICLR 2017, arXiv:1605.07725.
# * Madry, A., Makelov, A., Schmidt, L., Tsipras, D. & Vladu, A. (2018). Towards Deep Learning
#   Models Resistant to Adversarial Attacks. ICLR 2018, arXiv:1706.06083.
# * Zhu, C., Cheng, Y., Gan, Z., Sun, S., Goldstein, T. & Liu, J. (2020). FreeLB: Enhanced
#   Adversarial Training for Natural Language Understanding. ICLR 2020, arXiv:1909.11764.
# * Deng, Y., Bakhtin, A., Ott, M., Szlam, A. & Ranzato, M. (2020). Residual Energy-Based Models
#   for Text Generation. ICLR 2020, arXiv:2004.11714.
# * Kolter, Z. & Madry, A. (2018). Adversarial Robustness: Theory and Practice. NeurIPS 2018
#   tutorial, https://adversarial-ml-tutorial.org.
# * Su, J. (2020). 对抗训练浅谈：意义、方法和思考 (A brief talk on adversarial training:
#   meaning, methods and reflections). Blog post, kexue.fm, 1 March 2020 (the course's seed
#   text 001: FGM, the gradient penalty, holes and the Lipschitz view).
