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
# # Solutions · 03 Adversarial examples where gradients work
#
# Model solutions to the exercises of notebook 03, each checked by the same checker as in the
# notebook, and model answers to its questions.

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

from advebm_teach.teaching.exercises.embedding import (check_fgm_perturbation,
                                                       check_fgm_training_loss,
                                                       check_l2_projection,
                                                       check_pgd_perturbation)

# %% [markdown]
# ### Exercise 03.1
# One norm per sequence: flatten every dimension but the batch one, then give the vector of B
# norms two trailing axes so that it broadcasts against `(B, T, d)`.

# %%
# Solution to Exercise 03.1
def fgm_perturbation(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    """delta_b = eps g_b / ||g_b||_2 for each sequence b, the norm over all its T x d entries."""
    norms = gradient.flatten(1).norm(dim=1)  # (B,)
    return epsilon * gradient / norms[:, None, None]


check_fgm_perturbation(fgm_perturbation)

# %% [markdown]
# ### Exercise 03.2
# The scale $\min(1, \varepsilon / \|\delta_b\|)$: `clamp(max=1.0)` leaves a perturbation inside
# the ball alone.

# %%
# Solution to Exercise 03.2
def project_l2(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Pi_eps(delta): delta_b * min(1, eps / ||delta_b||_2) for each sequence b."""
    scale = (epsilon / delta.flatten(1).norm(dim=1)).clamp(max=1.0)  # (B,)
    return delta * scale[:, None, None]


check_l2_projection(project_l2)

# %% [markdown]
# ### Exercise 03.3
# The clean loss is backpropagated twice (once by `torch.autograd.grad` for $g$, once by the
# training step), so the first call keeps the graph. The gradient it returns carries no graph,
# so $\delta$ is held fixed without a `detach`. Forgetting the clean term, normalising per token,
# or asking for `create_graph=True` (a gradient would then flow through $\delta$) are the
# mistakes the checker names.

# %%
# Solution to Exercise 03.3
def fgm_training_loss(loss_fn, embeds: torch.Tensor, epsilon: float) -> torch.Tensor:
    """L(e) + L(e + delta), delta_b = eps g_b / ||g_b||, g = grad_e L(e), delta held fixed."""
    clean = loss_fn(embeds)
    (gradient,) = torch.autograd.grad(clean, embeds, retain_graph=True)
    delta = fgm_perturbation(gradient, epsilon)  # no graph: held fixed
    return clean + loss_fn(embeds + delta)


check_fgm_training_loss(fgm_training_loss)

# %% [markdown]
# ### Exercise 03.4
# A fresh leaf at $e + \delta_k$ each step; the step is FGM's direction scaled by $\eta$, then
# the projection.

# %%
# Solution to Exercise 03.4
def pgd_perturbation(loss_fn, embeds: torch.Tensor, epsilon: float, eta: float,
                     steps: int) -> torch.Tensor:
    """delta_K of PGD: delta_{k+1} = Pi_eps(delta_k + eta g_k / ||g_k||), g_k at e + delta_k."""
    delta = torch.zeros_like(embeds)
    for _ in range(steps):
        point = (embeds + delta).detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss_fn(point), point)
        delta = project_l2(delta + fgm_perturbation(gradient, eta), epsilon)
    return delta


check_pgd_perturbation(pgd_perturbation)

# %% [markdown]
# ### Question 03.a
# No. An adversarial example in Goodfellow et al.'s sense is an *input* the model could receive,
# changed imperceptibly, that it gets wrong. $e + \delta$ maps back to the same tokens (6 of 4,000
# positions changed even at a norm of 0.5), so it is no input at all: the model never sees it at
# test time. Training on it asks the loss to be flat in a small ball around each training
# sequence's embeddings (a smoothness, gradient-penalty-like regulariser), which can make the
# model generalise better and resist embedding-space attacks. It cannot teach the model anything
# about *other token sequences*: a wrong sum that is one digit away lies about a whole embedding
# norm away, far outside the ball, so the energy's behaviour there is untouched.
#
# ### Question 03.b
# FGM's adversarial loss $L(e + \delta)$ evaluates the loss *at* the perturbed point, so it
# includes every order of the Taylor expansion along $\delta$: the curvature. The penalty keeps
# only the first-order term $\varepsilon \sum_b \|g_b\|$, a statement about the gradient at $e$.
# At large ε, where the table of section 3 shows the real rise far above the linear one, the
# penalty underestimates the damage. To be robust to PGD at that ε, train on the adversary
# itself, best PGD's own $\delta_K$ (the min–max problem taken literally), at $K + 1$ passes a
# step; FGM is the cheaper compromise, the penalty the cheapest and the least faithful there.
