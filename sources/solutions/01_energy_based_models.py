# ---
# jupyter:
#   jupytext:
#     formats: solutions///ipynb,sources/solutions///py:percent
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
# # Solutions · 01 Energy-based models, exactly
#
# Model solutions to the exercises of notebook 01, each checked by the same checker as in the
# notebook, and model answers to its question.

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

from advebm_teach.teaching.exercises.ebm import check_log_partition, check_model_term
from advebm_teach.toy.ebm import ToyEBM

torch.set_num_threads(1)

# %% [markdown]
# ### Exercise 01.1
# `log_partition(energies)` without overflow: with $m = \max_x(-E(x))$,
# $\log\sum_x e^{-E(x)} = m + \log\sum_x e^{-E(x) - m}$, and every exponent is then $\le 0$.

# %%
# Solution to Exercise 01.1
def log_partition(energies: torch.Tensor) -> torch.Tensor:
    """log Z = log sum_x exp(-E(x)) (eq. 2), for energies (N,), computed without overflow."""
    m = (-energies).max()
    return m + torch.log(torch.exp(-energies - m).sum())


check_log_partition(log_partition)

# %% [markdown]
# ### Exercise 01.2
# The model term from negatives: the gradient of the weighted sum of their energies, the weights
# detached (they are constants of the estimate, even when they were computed from $E_\theta$).

# %%
# Solution to Exercise 01.2
def model_term(model: ToyEBM, negatives: torch.Tensor,
               weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """sum_k w_k grad_theta E_theta(x_k), the model term of eq. 3 from negatives (K, T);
    w_k = 1/K when weights is None. One tensor per parameter, in model.parameters() order."""
    energies = model.energy(negatives)                        # (K,)
    if weights is None:
        weights = torch.full_like(energies, 1 / len(negatives))
    surrogate = (weights.detach() * energies).sum()           # sum_k w_k E(x_k)
    return list(torch.autograd.grad(surrogate, list(model.parameters())))


check_model_term(model_term)

# %% [markdown]
# ### Question 01.a
# With P_LM's samples and equal weights the estimate converges to $\mathbb{E}_{q}[\nabla_\theta
# E_\theta(x)]$, the model term of a model equal to $q$, not of $P_\theta$. It is biased, and the
# bias does not shrink with $K$. It raises the energy where P_LM writes often, whatever $P_\theta$
# thinks of those states, and it never raises the energy of a state P_LM rarely writes, even one
# where $P_\theta$ has put a lot of mass: a spurious mode outside P_LM's reach stays. Fixing the
# weights to $w_k \propto e^{-E_\theta(x_k)}/q(x_k)$ (importance sampling) removes the bias in the
# limit, but a state P_LM never writes still never gets a weight.
