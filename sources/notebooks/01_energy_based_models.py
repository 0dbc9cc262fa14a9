# ---
# jupyter:
#   jupytext:
#     formats: notebooks///ipynb,sources/notebooks///py:percent
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
# # 01 · Energy-based models, exactly
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/01_energy_based_models.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/01_energy_based_models.ipynb) · or locally, `advebm-teach lab`
#
# An energy-based model (EBM) scores a whole sequence with one number, its energy $E_\theta(x)$,
# and turns energies into probabilities. Learning it means lowering the energy of data and raising
# it everywhere else (paper, section 2.1). "Everywhere else" is the hard part: on text it is a sum
# over more sequences than there are atoms. This notebook works in a world small enough to
# enumerate, 4 symbols and sequences of length 5, 1,024 states in all, where every quantity of the
# paper's section 2.1 can be computed exactly. The next notebook uses these exact values as the
# ground truth against which every practical approximation is measured.
#
# **Learning goals.** By the end you can
# 1. write the Gibbs distribution (eq. 1) and its partition function $Z_\theta$ (eq. 2) as code,
#    and compute $\log Z_\theta$ without overflow;
# 2. tell the *Gibbs distribution* (what an energy defines) from *Gibbs sampling* (a way to draw
#    from it);
# 3. derive the likelihood gradient (eq. 3) as a data term minus a model term, and check it against
#    autograd;
# 4. estimate the model term from samples, and see its error shrink as the samples grow.

# %% [markdown]
# **Prerequisites.** Notebook 00 (P_LM, the left-to-right language model, and the idea of an
# energy that scores a whole sequence). Python, PyTorch tensors and `torch.autograd.grad`; the
# softmax and the log-sum-exp; expectations as weighted sums. Symbols follow the course's
# [notation](../docs/notation.md) table.
#
# Run the setup cell first.

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
import itertools
import math

import torch

from advebm_teach.teaching.exercises.ebm import check_log_partition, check_model_term
from advebm_teach.teaching.plots import curves_by_step, state_heatmaps
from advebm_teach.toy.ebm import (BigramLM, ToyEBM, all_states, closed_walk_distribution, exact_kl,
                                  sample_states)
from advebm_teach.toy.estimators import exact, relative_error, train

torch.set_num_threads(1)  # every tensor here is tiny: one thread is fastest

# %% [markdown]
# ## 1. A world small enough to enumerate
#
# A state is a sequence $x = (x_1, \dots, x_5)$ of symbols 0–3. The **data** are *walks that come
# home*: every step stays on a symbol or moves to a neighbouring one ($|x_{t+1} - x_t| \le 1$,
# staying twice as likely as moving), and the last symbol equals the first. The step rule is
# *local*; coming home is *global*, like a sum whose answer must fit both operands.
#
# The toy computes exactly, in float64, and on the CPU whatever device the setup cell named: its
# tensors are far too small to gain from a GPU, and Apple's MPS has no float64.

# %%
V, T = 4, 5
states = all_states(V, T)                       # (1024, 5): every sequence, in order
p_data = closed_walk_distribution(V, T)         # (1024,): P_data of each state
data = sample_states(states, p_data, 256, seed=1)            # the training set
support = p_data > 0


def show(x):
    return "".join(str(s) for s in x.tolist())


print(f"{len(states)} states; {int(support.sum())} have data probability > 0")
print("data samples:", " ".join(show(x) for x in data[:8]))

# %% [markdown]
# **P_LM's role** is played by a bigram language model, $q(x) = q(x_1)\prod_t q(x_{t+1} \mid x_t)$:
# locally normalised, fitted to the data by maximum likelihood (with a little smoothing, so that
# $q > 0$ everywhere, as a softmax would have it). It learns the step rule perfectly and cannot
# know about coming home: like notebook 00's LSTM with its sums, its samples are *locally* right
# and often *globally* wrong.

# %%
plm = BigramLM.fit(p_data, V, T, smoothing=1e-3)
q = plm.distribution()
plm_samples = plm.sample(2000, seed=2)
print("P_LM samples:", " ".join(show(x) for x in plm_samples[:8]))
print(f"P_LM's mass on the data's support: {q[support].sum():.3f}; "
      f"KL(P_data || q) = {exact_kl(p_data, q):.3f} nats")

# %% [markdown]
# The **energy model** is `ToyEBM`: $E_\theta(x) = w \cdot \mathrm{relu}(A\,\mathrm{onehot}(x) +
# b) + c$, one hidden layer of 32 units on the one-hot symbols ($A$ is the hidden layer's weight
# matrix, `hidden_weight`; $b$, $w$ and $c$ are `hidden_bias`, `out_weight` and `offset`), its
# weights drawn from a seed. Its parameters $\theta = (A, b, w, c)$ are what learning changes.

# %%
model = ToyEBM(V, T, seed=0)
with torch.no_grad():
    p_model = model.distribution()
print(f"untrained model: mass on the data's support {p_model[support].sum():.3f}, "
      f"KL(P_data || P_theta) = {exact_kl(p_data, p_model):.3f} nats")
print("parameters:", ", ".join(f"{name} {tuple(p.shape)}" for name, p in model.named_parameters()))

# %%
# NBVAL_IGNORE_OUTPUT
state_heatmaps({"data: closed walks": p_data.tolist(), "P_LM (bigram)": q.tolist(),
                "energy model, untrained": p_model.tolist()}, V, T,
               title="Every state, three distributions")

# %% [markdown]
# Each panel shows all 1,024 states, one cell each (rows: the first two symbols; columns: the last
# three; colour: log10 of the probability; empty: probability exactly 0). The data's 54 states form
# a sparse pattern; P_LM covers it and much else besides; the untrained energy model spreads its
# mass over everything.
#
# ## 2. The Gibbs distribution and its partition function (eqs. 1 and 2)
#
# An energy defines a distribution, the **Gibbs distribution** (also called the Boltzmann
# distribution):
#
# $$P_\theta(x) = \frac{e^{-E_\theta(x)}}{Z_\theta}, \qquad Z_\theta = \sum_x e^{-E_\theta(x)}.$$
#
# Low energy means probable. $Z_\theta$, the **partition function**, makes the probabilities sum to
# one; it sums over *every* state. Do not confuse the Gibbs *distribution* with **Gibbs sampling**,
# a method for drawing samples from a distribution one position at a time (we meet it in the next
# notebook): both carry Gibbs's name, and only the first is a model.
#
# On text the sum runs over about $10^{35}$ sequences; here over 1,024, so `model.log_partition()`
# is one `logsumexp` over `model.states()`. Check it against a plain Python loop over every
# sequence written out by `itertools.product`:

# %%
with torch.no_grad():
    log_z = float(model.log_partition())
    every_sequence = itertools.product(range(V), repeat=T)
    brute = math.log(math.fsum(math.exp(-float(model.energy(torch.tensor([x]))))
                               for x in every_sequence))
    total = float(model.log_prob(states).exp().sum())
print(f"log Z = {log_z:.6f}; by a Python loop over all {V ** T} sequences: {brute:.6f}")
print(f"sum of P_theta over all states: {total:.6f}")

# %% [markdown]
# ### Exercise 01.1
# Write `log_partition(energies)`: $\log Z = \log \sum_x e^{-E(x)}$ for a vector of energies, one
# per state. The checker includes energies around $-1000$: $e^{1000}$ overflows a float, so compute
# it without ever forming that number (and do not call `torch.logsumexp`, which would do the work
# for you).

# %%
def log_partition(energies: torch.Tensor) -> torch.Tensor:
    """log Z = log sum_x exp(-E(x)) (eq. 2), for energies (N,), computed without overflow."""
    # your code here
    raise NotImplementedError


check_log_partition(log_partition)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Take the largest of the values $-E(x)$ out of the sum, as a factor: every exponent left inside is
# then at most zero, and the largest term is exactly one.
# </details>
#
# ## 3. The likelihood gradient: data term minus model term (eq. 3)
#
# Learning maximises the mean log-likelihood of the data, $\mathbb{E}_{data}[-E_\theta(x)] - \log
# Z_\theta$. The first part's gradient is $\mathbb{E}_{data}[-\nabla_\theta E_\theta(x)]$. For the
# second,
#
# $$\nabla_\theta \log Z_\theta
#   = \frac{1}{Z_\theta}\sum_x e^{-E_\theta(x)}\,\big(-\nabla_\theta E_\theta(x)\big)
#   = -\,\mathbb{E}_{P_\theta}[\nabla_\theta E_\theta(x)].$$
#
# So gradient *descent* on the negative log-likelihood (NLL) follows
#
# $$\nabla_\theta\,\mathrm{NLL}
#   = \underbrace{\mathbb{E}_{data}[\nabla_\theta E_\theta(x)]}_{\text{data term}}
#   - \underbrace{\mathbb{E}_{P_\theta}[\nabla_\theta E_\theta(x)]}_{\text{model term}}:$$
#
# lower the energy where the data are (the *positive phase*), raise it where the model puts its
# mass (the *negative phase*; the states used for it are the **negative samples**, or negatives).
# `model.exact_grad(data)` computes it with the model term summed over every state. Autograd,
# differentiating $\log Z_\theta$ through `logsumexp`, must agree:

# %%
parameters = list(model.parameters())
eq3 = model.exact_grad(data)
autograd = torch.autograd.grad(-model.log_prob(data).mean(), parameters)
print("eq. (3) and autograd agree to 1e-10:",
      all(torch.allclose(a, b, rtol=0, atol=1e-10) for a, b in zip(eq3, autograd)))
with torch.no_grad():
    weights = model.distribution()
data_term = torch.autograd.grad(model.energy(data).mean(), parameters)
exact_model_term = torch.autograd.grad((weights * model.energy(states)).sum(), parameters)


def norm(grads):
    return float(torch.cat([g.flatten() for g in grads]).norm())


print(f"|data term| = {norm(data_term):.3f}, |model term| = {norm(exact_model_term):.3f}, "
      f"|data term - model term| = {norm(eq3):.3f}")
print(f"gradient of the offset c: {abs(float(eq3[-1])):.3f} "
      f"(adding a constant to E changes no probability)")

# %% [markdown]
# The two terms are of similar size and mostly cancel: learning is driven by their *difference*.
# The offset $c$ shows it best: it lowers every energy alike, so its data term and model term are
# both exactly 1 and the gradient is 0.
#
# The model term above needed $P_\theta$ of all 1,024 states. For text that is out of reach, and
# every practical method replaces $\mathbb{E}_{P_\theta}[\nabla_\theta E_\theta]$ by a weighted
# average over $K$ negative samples $x_1, \dots, x_K$:
#
# $$\mathbb{E}_{P_\theta}[\nabla_\theta E_\theta(x)]
#   \approx \sum_{k=1}^{K} w_k\, \nabla_\theta E_\theta(x_k),
#   \qquad \sum_k w_k = 1,$$
#
# with equal weights $w_k = 1/K$ when the $x_k$ are samples of $P_\theta$ itself.
#
# ### Exercise 01.2
# Write `model_term(model, negatives, weights=None)`: the estimate
# $\sum_k w_k \nabla_\theta E_\theta(x_k)$ for negatives `(K, T)` and weights `(K,)` (equal weights
# $1/K$ when `weights` is None). Return one tensor per parameter, in `model.parameters()` order
# (a list of four: $A, b, w, c$), and leave the parameters as they are. The checker compares with
# $-\nabla_\theta \log Z_\theta$ by autograd when the negatives are all the states weighted by
# $P_\theta$ (then the estimate is exact), and with a Python loop over the negatives otherwise.

# %%
def model_term(model: ToyEBM, negatives: torch.Tensor,
               weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """sum_k w_k grad_theta E_theta(x_k), the model term of eq. 3 from negatives (K, T);
    w_k = 1/K when weights is None. One tensor per parameter, in model.parameters() order."""
    # your code here
    raise NotImplementedError


check_model_term(model_term)

# %% [markdown]
# <details><summary>Hint</summary>
#
# The gradient is linear: the weighted sum of the gradients is the gradient of the weighted sum of
# the energies, so one call of torch.autograd.grad on a single number does it. Keep the weights out
# of the gradient (they are constants here).
# </details>
#
# ## 4. The model term from samples
#
# When the negatives *are* samples of $P_\theta$, the estimate is unbiased: its error is noise, and
# it shrinks like $1/\sqrt{K}$. The toy can draw exact samples of $P_\theta$ (from the enumerated
# distribution, `model.sample`), so we can watch that happen. The library's
# `model.contrast_grad(data, negatives)` is the data term minus your `model_term`:

# %%
reference = model.exact_grad(data)
print(f"{'K':>6s}  relative error |estimate - exact| / |exact|, mean of 8 seeds")
for K in (16, 256, 4096):
    errors = [relative_error(model.contrast_grad(data, model.sample(K, seed=100 + r)), reference)
              for r in range(8)]
    print(f"{K:6d}  {sum(errors) / len(errors):.2g}")

# %% [markdown]
# Sixteen times more samples, about four times less error: the $1/\sqrt{K}$ of an average of
# independent terms. The catch is in *exact samples of* $P_\theta$: on text nobody can draw them.
# The next notebook replaces them by what can be drawn (short Markov chains, reweighted P_LM
# samples, a classifier, attacked P_LM samples), and measures the price.
#
# ### Question 01.a
# P_LM's samples are easy to draw. Suppose you use them as the negatives, with equal weights $1/K$.
# What does the estimate converge to as $K$ grows, and where would it raise the energy that it
# should not (and fail to raise it where it should)?
#
# ## 5. Learning with the exact gradient
#
# With the exact gradient in hand, training is plain gradient descent (here Adam, learning rate
# $\alpha = 0.02$, for 200 steps). After every step, the toy also gives the exact
# $\mathrm{KL}(P_{data} \,\|\, P_\theta)$, how far the model still is from the data:

# %%
trained, history = train(model, data, lambda m, d, n, s: exact(m, d), n=0, steps=200, lr=0.02,
                         target=p_data)
for row in history[::50]:
    print(f"step {row['step']:3d}: mean log-likelihood {row['log_likelihood']:7.3f} nats, "
          f"KL {row['kl']:.3f} nats")
with torch.no_grad():
    p_trained = trained.distribution()
print(f"the trained model's mass on the data's support: {p_trained[support].sum():.3f}")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({"exact gradient": [row["kl"] for row in history]},
               title="KL(P_data || P_theta) while training with the exact gradient",
               yaxis="KL (nats)")

# %% [markdown]
# The KL falls fast in the first 50 steps, is lowest near step 100, and then creeps up again while
# the training log-likelihood still rises: the model has started to fit the 256 training
# sequences, sampling noise included, rather than $P_{data}$ (overfitting; the exact gradient is
# exact for the *training set*). The heatmap shows where the trained model's mass went:

# %%
# NBVAL_IGNORE_OUTPUT
state_heatmaps({"data: closed walks": p_data.tolist(),
                "energy model, 200 exact steps": p_trained.tolist()}, V, T,
               title="The data and the exactly trained model")

# %% [markdown]
# The trained model's brightest cells are the data's; what remains elsewhere is faint. A state that
# is not data and still gets high probability is called a **spurious mode**; the exact model term
# finds every such state, because it weighs every state by $P_\theta$. An estimate of the model
# term from samples finds only the states its samples visit, which is the question the rest of the
# course keeps asking.

# %% [markdown]
# ## Summary
#
# - An energy $E_\theta$ defines the Gibbs distribution $P_\theta = e^{-E_\theta}/Z_\theta$ (eq.
#   1); the partition function $Z_\theta$ (eq. 2) sums over every state, and $\log Z_\theta$ is
#   computed stably by shifting by the largest $-E$. Gibbs *sampling* is something else: a way to
#   draw samples.
# - The likelihood gradient (eq. 3) is a data term minus a model term,
#   $\mathbb{E}_{data}[\nabla E] - \mathbb{E}_{P_\theta}[\nabla E]$; on the toy it matches
#   autograd of the exact NLL.
# - The model term is an expectation under $P_\theta$: from $K$ exact samples its estimate is
#   unbiased and its error falls like $1/\sqrt{K}$. Exact samples are what text does not allow.
# - Trained with the exact gradient, the toy model moves its mass onto the data; a spurious mode is
#   a non-data state that keeps high probability.
#
# What comes next: estimating the model term when $P_\theta$ cannot be sampled exactly.

# %% [markdown]
# ## References
#
# - Xuwang Yin (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training*. Preprint (the paper this course reproduces; section 2.1, eqs. 1–3).
# - Yuntian Deng, Anton Bakhtin, Myle Ott, Arthur Szlam, Marc'Aurelio Ranzato (2020). *Residual
#   Energy-Based Models for Text Generation*. ICLR 2020, arXiv:2004.11714.
# - Anton Bakhtin, Yuntian Deng, Sam Gross, Myle Ott, Marc'Aurelio Ranzato, Arthur Szlam (2021).
#   *Residual Energy-Based Models for Text*. Journal of Machine Learning Research 22(40).
# - Geoffrey E. Hinton (2002). *Training Products of Experts by Minimizing Contrastive Divergence*.
#   Neural Computation 14(8), 1771–1800 (the data term minus model term view of EBM learning).
