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
# # Solutions · 08 Attacks or MCMC?
#
# Model solutions of the exercises of `notebooks/08_attacks_or_mcmc.ipynb`. Try them yourself
# first.

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

from advebm_teach.teaching.exercises.mcmc import (check_acceptance_probability,
                                                  check_gwg_proposal_probs)

# %% [markdown]
# ### Exercise 08.1

# %%
# Solution to Exercise 08.1
def gwg_proposal_probs(scores: torch.Tensor, tokens: torch.Tensor,
                       allowed: torch.Tensor) -> torch.Tensor:
    """q(i, v | x) = softmax over the allowed (i, v) with v != x_i of d[i, v] / 2, 0 elsewhere:
    scores (T, V), tokens (T,), allowed (T, V) bool -> (T, V)."""
    logits = (scores / 2).masked_fill(~allowed, float("-inf"))
    logits[torch.arange(len(tokens)), tokens] = float("-inf")  # staying is not a move
    # one softmax over every (i, v) at once (it subtracts the largest logit: no overflow)
    return torch.softmax(logits.flatten(), dim=0).view_as(scores)


check_gwg_proposal_probs(gwg_proposal_probs)

# %% [markdown]
# ### Exercise 08.2

# %%
# Solution to Exercise 08.2
def acceptance_probability(energy: torch.Tensor, proposed_energy: torch.Tensor,
                           forward_log_q: torch.Tensor,
                           reverse_log_q: torch.Tensor) -> torch.Tensor:
    """min(1, r), log r = U(x) - U(x') + log q(x | x') - log q(x' | x); all (B,)."""
    log_ratio = energy - proposed_energy + reverse_log_q - forward_log_q
    return log_ratio.clamp(max=0).exp()  # exp(min(log r, 0)): never exp of a large number


check_acceptance_probability(acceptance_probability)
