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
# # Solutions · 04 Paying less for the inner max, and virtual adversaries
#
# Model solutions to the exercises of notebook 04, each checked by the same checker as in the
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
import torch.nn.functional as F

from advebm_teach.perturb import ascend
from advebm_teach.teaching.exercises.embedding import check_freelb_loss, check_symmetric_kl

# %% [markdown]
# ### Exercise 04.1
# Each pass: a fresh leaf $\delta$, the loss at $e + \delta$, its gradient with respect to
# $\delta$ only (keeping the graph, which the training step backpropagates later), the loss
# divided by $K$ into the total, then the ascent step. Returning only the last pass's loss is
# PGD's objective, not FreeLB's; forgetting the $1/K$ trains with a $K$ times larger step.

# %%
# Solution to Exercise 04.1
def freelb_loss(loss_fn, embeds: torch.Tensor, delta0: torch.Tensor, epsilon: float,
                eta: float, steps: int) -> torch.Tensor:
    """(1/K) sum_t L(e + delta_{t-1}), delta_t = Pi_eps(delta_{t-1} + eta g_t / ||g_t||),
    g_t = grad_delta L(e + delta_{t-1}) held fixed, K = steps."""
    delta, total = delta0, 0.0
    for _ in range(steps):
        delta = delta.detach().requires_grad_(True)
        loss = loss_fn(embeds + delta)
        (gradient,) = torch.autograd.grad(loss, delta, retain_graph=True)
        total = total + loss / steps
        delta = ascend(delta.detach(), gradient, eta, epsilon)
    return total


check_freelb_loss(freelb_loss)

# %% [markdown]
# ### Exercise 04.2
# With $\log p = (\log\sigma(-l), \log\sigma(l))$, the two KLs sum to
# $\sum_c (p_c - q_c)(\log p_c - \log q_c)$; `logsigmoid` keeps the logarithms finite for large
# logits.

# %%
# Solution to Exercise 04.2
def symmetric_kl_term(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """mean_n KL(p_n || q_n) + KL(q_n || p_n), p_n = (1 - sigmoid(l_n), sigmoid(l_n))."""
    log_p = torch.stack([F.logsigmoid(-logits_p), F.logsigmoid(logits_p)], dim=-1)
    log_q = torch.stack([F.logsigmoid(-logits_q), F.logsigmoid(logits_q)], dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1).mean()


check_symmetric_kl(symmetric_kl_term)

# %% [markdown]
# ### Question 04.a
# FreeAT's $\delta$ was found for the parameters before the last optimizer step. It matters
# little when one step changes the model little: a small learning rate, a smooth loss, and
# replays of the same mini-batch (the gradient at $e + \delta$ barely moves between two of
# them). It matters more with a large learning rate, early in training when the parameters move
# fast, and at the first replay of a *new* mini-batch, where the carried-over $\delta$ was
# computed for other sequences altogether (a perturbation for sequence $b$ of the last batch is
# applied to sequence $b$ of this one); there it is closer to random noise in the ball than to
# an adversary, and the next replays have to repair it.
#
# ### Question 04.b
# FGM's loss $L(e + \delta)$ needs the label $y$ of each input: it asks the model to stay
# *right* under the perturbation. In pre-training on raw text there is no task label (the only
# targets are the text's own next tokens, which a language model can use, but a sentence
# classifier cannot). SMART's and ALUM's term $D(f(e), f(e + \delta))$ compares the model with
# *itself*: it asks the prediction not to move, whatever it is. The clean prediction $f(e)$ plays
# the label's role, so the term applies to any output distribution on any text, labelled or
# not: that is why ALUM can use it in every stage, pre-training included.
