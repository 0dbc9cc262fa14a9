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
# # Solutions · 02 Estimating the gradient
#
# Model solutions to the exercises of notebook 02, each checked by the same checker as in the
# notebook.

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

from advebm_teach.teaching.exercises.estimators import (check_gibbs_conditional,
                                                        check_importance_weights)
from advebm_teach.toy.ebm import ToyEBM, all_states, closed_walk_distribution, sample_states
from advebm_teach.toy.estimators import exact, train

torch.set_num_threads(1)

V, T = 4, 5
p_data = closed_walk_distribution(V, T)
data = sample_states(all_states(V, T), p_data, 256, seed=1)
sharp, _ = train(ToyEBM(V, T, seed=0), data, lambda m, d, n, s: exact(m, d), n=0, steps=30,
                 lr=0.02, target=p_data)                   # the notebook's sharper model

# %% [markdown]
# ### Exercise 02.1
# The conditional of position `i`: write every symbol at `i` into $V$ copies of `x`; the
# conditional is the softmax of minus their energies. $Z_\theta$ cancels, and so does every factor
# that does not depend on $x_i$.

# %%
# Solution to Exercise 02.1
def gibbs_conditional(model: ToyEBM, x: torch.Tensor, i: int) -> torch.Tensor:
    """P_theta(x_i = v | x without i) for v = 0..V-1, shape (V,), for one sequence x (T,)."""
    variants = x.repeat(model.n_symbols, 1)                  # (V, T): V copies of x
    variants[:, i] = torch.arange(model.n_symbols)           # symbol v at position i in row v
    with torch.no_grad():
        return torch.softmax(-model.energy(variants), dim=0)


check_gibbs_conditional(gibbs_conditional, sharp)

# %% [markdown]
# ### Exercise 02.2
# The weights are a softmax of the log-weights $-E_k - \log q_k$; the softmax subtracts their
# maximum before exponentiating, so nothing overflows.

# %%
# Solution to Exercise 02.2
def importance_weights(energies: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights w_k, proportional to exp(-E_k) / q_k, summing to 1."""
    return torch.softmax(-energies - log_q, dim=0)


check_importance_weights(importance_weights)
