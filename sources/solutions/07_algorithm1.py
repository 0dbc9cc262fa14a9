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
# # Solutions · 07 Algorithm 1
#
# Model solutions of the exercises of `notebooks/07_algorithm1.ipynb`, and model answers to its
# questions. Try them yourself first.

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
import torch.nn.functional as F

from advebm_teach.experiments.reproduce import load_results
from advebm_teach.experiments.statistics import interval
from advebm_teach.teaching.exercises.algorithm1 import (check_algorithm1_update,
                                                        check_logistic_ebm_loss)

# %% [markdown]
# ### Exercise 07.1

# %%
# Solution to Exercise 07.1
def logistic_ebm_loss(energy_data: torch.Tensor, energy_negative: torch.Tensor) -> torch.Tensor:
    """mean_b softplus(E(x+_b)) + mean_b softplus(-E(x-_b)): the BCE of the classifier whose
    logit for "data" is -E; finite for energies of +-800."""
    # F.softplus computes log(1 + e^z) as max(z, 0) + log1p(e^-|z|) (and returns z itself for
    # large z), so e^800 is never formed
    return F.softplus(energy_data).mean() + F.softplus(-energy_negative).mean()


check_logistic_ebm_loss(logistic_ebm_loss)

# %% [markdown]
# ### Exercise 07.2

# %%
# Solution to Exercise 07.2
def algorithm1_update(energy_model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      x_data: torch.Tensor, x_negative: torch.Tensor) -> float:
    """One update of Algorithm 1 with the logistic loss
    L = mean softplus(E(x_data)) + mean softplus(-E(x'*)): theta <- theta - alpha grad L.
    Returns L before the step."""
    optimizer.zero_grad()  # the .grad fields still hold the previous step's gradients
    loss = logistic_ebm_loss(energy_model.energy(x_data), energy_model.energy(x_negative))
    loss.backward()        # line 17: the gradients of both energy terms at once
    optimizer.step()       # line 18: SGD's step is theta <- theta - alpha * theta.grad
    return loss.item()


check_algorithm1_update(algorithm1_update)

# %% [markdown]
# ### Question 1: is Algorithm 1 ahead at every S?
#
# Count, at every $S$ of the greedy attack, the seeds in which the paper family's Algorithm-1
# energy beats its BCE energy, with the paired interval:

# %%
results = load_results("course")
for s in results["attack"]["adversarial"]:
    alg1, bce = results["attack"]["adversarial"][s], results["attack"]["bce"][s]
    differences = [a - b for a, b in zip(alg1, bce)]
    mean, low, high = interval(differences)
    print(f"S={s:>2}: Alg.1 - BCE {mean:+.3f} [{low:+.3f}, {high:+.3f}], ahead in "
          f"{sum(d > 0 for d in differences)} of {len(differences)} seeds")

# %% [markdown]
# At $S=0$ both are $P_{LM}$'s samples, so the difference is exactly 0. From the first step on,
# the Algorithm-1 energy is ahead in most seeds and the paired interval lies above 0; from $S=5$
# on nothing changes, because the greedy attack has stalled on both energies. Seed 8 is the one
# seed behind at $S=10$.
#
# ### Question 2: when does pairing not help?
#
# For the difference $d_k = a_k - b_k$, $\mathrm{var}(d) = \mathrm{var}(a) + \mathrm{var}(b) -
# 2\,\mathrm{cov}(a, b)$. Pairing narrows the interval only through the covariance: when the two
# methods' results are uncorrelated over seeds (correlation near 0), the paired interval is as
# wide as the interval of two independent groups, $\sqrt{h_a^2 + h_b^2}$ for half-widths $h_a$,
# $h_b$; with a negative correlation it is wider. Here the correlation is 0.73, because both
# energies of a seed share its data and Algorithm 1 starts from that seed's BCE energy:

# %%
alg1, bce = results["attack"]["adversarial"]["10"], results["attack"]["bce"]["10"]
a, b = torch.tensor(alg1, dtype=torch.float64), torch.tensor(bce, dtype=torch.float64)
print(f"sd of the difference if independent: {(a.var() + b.var()).sqrt():.3f}; paired, "
      f"as measured: {(a - b).std():.3f}")

# %% [markdown]
# Note also that even for two *independent* groups, overlapping 95 % intervals are no test: the
# difference's half-width is $\sqrt{h_a^2 + h_b^2}$, about $1.4\,h$ for equal $h$, not $2h$, so
# two intervals can overlap by up to about a quarter of their width while the difference's
# interval still excludes 0.
#
# ### Question 3: giving Algorithm 1 more to do in the improved family
#
# The `lm_nll` energy starts from the pre-trained model's likelihood of the answer, which already
# reaches 0.964 at $S=20$ under the tabu attack before any fine-tuning: it has few spurious modes
# left for Algorithm 1 to remove, and fine-tuning at $\alpha = 10^{-5}$ for a few epochs barely
# moves it. Ways to give Algorithm 1 room, each to be measured, not assumed: start from a weaker
# energy (a shorter pre-training, or the scalar `mean` read-out on top of the pre-trained
# blocks); attack the training negatives for as many steps as the test attack ($S=10$ or 20
# instead of 3), so that training meets the spurious modes generation reaches; train longer (the
# paper's 55 epochs) with a larger learning rate; or judge with the answer-only attack of section
# 4, where the energies are further from perfect.
#
# ### Question 4: the answer-only attack
#
# The improved energy's read-out is the pre-trained model's negative log-likelihood of the
# answer given the question: it learned to add from 100,000 sums, so it can rank answer digits.
# The paper family's `mean` read-out was fine-tuned on 1,000 sums to tell data from $P_{LM}$'s
# samples; it learned what distinguishes $P_{LM}$'s mistakes, which helps a little but is not
# addition. Even the improved energy does worse on the answer alone than on every digit: with
# only $c$ editable each wrong answer digit must be rewritten to the one right digit, at the
# position saliency happens to pick, and a carry can make several digits wrong at once; with
# every digit editable, any of $a_i$, $b_i$ or $c_i$ can make a column consistent, so there are
# far more ways to succeed in $S=10$ steps.
