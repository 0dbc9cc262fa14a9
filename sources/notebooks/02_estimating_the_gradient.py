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
# # 02 · Estimating the gradient
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/02_estimating_the_gradient.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/02_estimating_the_gradient.ipynb) · or locally, `advebm-teach lab`
#
# Notebook 01 computed the likelihood gradient of an energy-based model exactly: a data term minus
# a model term, $\mathbb{E}_{data}[\nabla_\theta E_\theta] - \mathbb{E}_{P_\theta}[\nabla_\theta
# E_\theta]$. The model term needs samples of $P_\theta$, which for text nobody can draw. This
# notebook meets the practical stand-ins, each in a few lines of code on the same toy world: Gibbs
# sampling, Metropolis–Hastings, Gibbs-with-Gradients, importance sampling, noise-contrastive
# estimation and the paper's adversarial negatives. Then, because the toy knows the exact gradient,
# it measures each one's bias and variance, trains with each side by side, and plants a spurious
# mode to see which of them can find it.
#
# **Learning goals.** By the end you can
# 1. write one Gibbs-sampling sweep and one Metropolis–Hastings step, and say why both leave
#    $P_\theta$ unchanged;
# 2. explain Gibbs-with-Gradients' proposal (a first-order estimate of the energy change) and
#    self-normalised importance sampling's weights, and compute both;
# 3. state the NCE loss of the Residual EBM and why its gradient is not the likelihood gradient;
# 4. run the tiny discrete attack (most salient position, every symbol tried, tabu) that makes the
#    paper's adversarial negatives;
# 5. measure an estimator's bias and spread against the exact gradient, and explain why only the
#    estimators that *move* samples find a spurious mode P_LM never writes.

# %% [markdown]
# **Prerequisites.** Notebook 01: the toy world (walks that come home, the bigram P_LM, `ToyEBM`),
# the Gibbs distribution $P_\theta = e^{-E_\theta}/Z_\theta$, eq. 3 as data term minus model term,
# and the model term as a weighted average over negative samples (`model.contrast_grad`). Notebook
# 00 for P_LM's role. Maths: conditional probabilities, expectations, the logistic function
# $\sigma$ and binary cross-entropy, a first-order Taylor expansion. Symbols follow the course's
# [notation](../docs/notation.md) table ($q$ is the proposal, here P_LM).
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
import torch
import torch.nn.functional as F

from advebm_teach.attack import DiscreteAttack
from advebm_teach.config import pick
from advebm_teach.saliency import first_order_scores
from advebm_teach.teaching.exercises.estimators import (check_gibbs_conditional,
                                                        check_importance_weights)
from advebm_teach.teaching.plots import (curves_against, curves_by_step, prediction_scatter,
                                         state_heatmaps)
from advebm_teach.toy.ebm import (BigramLM, ToyEBM, all_states, closed_walk_distribution,
                                  sample_states, state_index)
from advebm_teach.toy.estimators import (adversarial, cosine, error_table, exact, flat, gibbs,
                                         gibbs_sweeps, gibbs_with_gradients, gwg_steps,
                                         importance_sampling, nce, nce_loss, relative_error, train)

torch.set_num_threads(1)  # every tensor here is tiny: one thread is fastest

# %% [markdown]
# ## 1. The toy world again, and a sharper model
#
# The same world as in notebook 01: sequences of 5 symbols 0–3, the data are walks that come home,
# P_LM is a bigram model. The untrained energy spreads its mass thinly over all 1,024 states
# (notebook 01's heatmap); a sampler is better tested on a model with sharper modes, so the primer
# below samples from the untrained model after 30 steps of exact-gradient training (`sharp`). As in
# notebook 01, the toy runs exactly, in float64, on the CPU (too small to gain from a GPU; Apple's
# MPS has no float64).

# %%
V, T = 4, 5
states = all_states(V, T)
p_data = closed_walk_distribution(V, T)
data = sample_states(states, p_data, 256, seed=1)            # the training set
support = p_data > 0
plm = BigramLM.fit(p_data, V, T, smoothing=1e-3)             # P_LM's stand-in, q
model = ToyEBM(V, T, seed=0)                                 # untrained
sharp, _ = train(model, data, lambda m, d, n, s: exact(m, d), n=0, steps=30, lr=0.02,
                 target=p_data)
with torch.no_grad():
    p_sharp = sharp.distribution()                           # its exact P_theta, (1024,)


def show(x):
    return "".join(str(s) for s in x.tolist())


def distance(samples, probs):
    """Total variation distance between the samples' histogram and probs: half the L1 distance."""
    counts = torch.bincount(state_index(samples, V), minlength=len(probs)).double()
    return 0.5 * float((counts / counts.sum() - probs).abs().sum())


exact_samples = sharp.sample(4000, seed=2)
print(f"sharp model: mass on the data's support {p_sharp[support].sum():.2f}")
print(f"distance of 4000 exact samples of P_theta to P_theta: "
      f"{distance(exact_samples, p_sharp):.2f}"
      f" (what 4000 exact draws typically show)")
print(f"distance of 4000 P_LM samples to P_theta: "
      f"{distance(plm.sample(4000, seed=3), p_sharp):.2f}")

# %% [markdown]
# The **total variation distance** between two distributions is half the sum of their absolute
# differences: 0 when equal, 1 when disjoint. Even exact samples sit at some distance from
# $P_\theta$ (a histogram of 4,000 draws over 1,024 states is noisy); P_LM's samples sit much
# further. Every method below starts from P_LM samples and tries to close that gap, or to correct
# for it.
#
# ## 2. A primer: six ways to get negatives
#
# ### 2.1 Gibbs sampling
#
# **Gibbs sampling** (a Markov chain Monte Carlo, **MCMC**, method: a random walk over states whose
# long-run distribution is $P_\theta$) visits the positions in turn and redraws each symbol from
# its conditional given all the others:
#
# $$P_\theta(x_i = v \mid x_{\setminus i}) = \frac{e^{-E_\theta(x \text{ with } v \text{ at } i)}}
#   {\sum_{u} e^{-E_\theta(x \text{ with } u \text{ at } i)}}.$$
#
# $Z_\theta$ cancels: $V$ energies per position suffice. One pass over all positions is a
# **sweep**. A redraw from the exact conditional leaves $P_\theta$ unchanged (if $x \sim P_\theta$
# before, it still is after), so the chains approach $P_\theta$, however slowly.
#
# ### Exercise 02.1
# Write `gibbs_conditional(model, x, i)`: the probabilities
# $P_\theta(x_i = v \mid \text{the other symbols of } x)$ for $v = 0, \dots, V-1$, for one sequence
# `x` of shape `(T,)`. The checker compares with the enumerated joint distribution
# `model.distribution()`, restricted to the $V$ states that differ from `x` only at `i`, and
# renormalised.

# %%
def gibbs_conditional(model: ToyEBM, x: torch.Tensor, i: int) -> torch.Tensor:
    """P_theta(x_i = v | x without i) for v = 0..V-1, shape (V,), for one sequence x (T,)."""
    # your code here
    raise NotImplementedError


check_gibbs_conditional(gibbs_conditional, sharp)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Build the V sequences that agree with x everywhere but at position i, one for each symbol; their
# energies are all you need, since the partition function and every factor that does not depend
# on the symbol at i cancel in the ratio.
# </details>
#
# The library's `gibbs_sweeps` does the same for a batch of chains at once. From 4,000 P_LM
# samples, how far are the chains from $P_\theta$ after a few sweeps?

# %%
chains, done, generator = plm.sample(4000, seed=3), 0, torch.Generator().manual_seed(4)
print(f"sweeps 0: distance to P_theta {distance(chains, p_sharp):.2f}")
for sweeps in (1, 2, 5, 20):
    chains, _ = gibbs_sweeps(sharp, chains, sweeps - done, generator)
    done = sweeps
    print(f"sweeps {sweeps}: distance to P_theta {distance(chains, p_sharp):.2f}")

# %% [markdown]
# One sweep removes most of P_LM's distance; after two to five the chains are as close to
# $P_\theta$ as exact samples are, as far as 4,000 samples can tell. Section 4 measures what is
# left on the gradient itself, which sees finer differences.
#
# ### 2.2 Metropolis–Hastings
#
# **Metropolis–Hastings** (MH) needs no conditional at all: propose a change $x \to x'$ from some
# proposal $q(x' \mid x)$ and accept it with probability
# $\min\big(1, \frac{P_\theta(x')\,q(x \mid x')}{P_\theta(x)\,q(x' \mid x)}\big)$, where
# $P_\theta(x')/P_\theta(x) = e^{E_\theta(x) - E_\theta(x')}$ ($Z_\theta$ cancels again). This
# acceptance rule is what keeps $P_\theta$ unchanged, whatever the proposal. The simplest proposal
# writes a random symbol at a random position; it is symmetric, $q(x \mid x') = q(x' \mid x)$, so
# the ratio is just $e^{E_\theta(x) - E_\theta(x')}$. One step, for a batch of chains:

# %%
def mh_step(model, x, generator):
    """One Metropolis-Hastings step per row of x: a random symbol at a random position,
    accepted with probability min(1, exp(E(x) - E(x')))."""
    rows = torch.arange(len(x))
    proposed = x.clone()
    proposed[rows, torch.randint(0, T, (len(x),), generator=generator)] = torch.randint(
        0, V, (len(x),), generator=generator)
    with torch.no_grad():
        log_ratio = model.energy(x) - model.energy(proposed)      # log P(x') / P(x)
    accept = torch.rand(len(x), generator=generator, dtype=log_ratio.dtype).log() < log_ratio
    return torch.where(accept[:, None], proposed, x), accept


chains, generator = plm.sample(4000, seed=3), torch.Generator().manual_seed(5)
for step in range(1, 101):
    chains, accept = mh_step(sharp, chains, generator)
    if step in (1, 5, 20, 100):
        print(f"MH steps {step:3d}: distance to P_theta {distance(chains, p_sharp):.2f}, "
              f"accepted this step {float(accept.double().mean()):.2f}")

# %% [markdown]
# A random proposal is cheap (two energies per step) but blind: about half of its proposals are
# rejected, and it needs 100 steps (200 energies per chain) to get as close as two Gibbs sweeps
# (40 energies per chain: one sweep evaluates $V \cdot T = 20$).
#
# ### 2.3 Gibbs-with-Gradients (GWG)
#
# **Gibbs-with-Gradients** (Grathwohl et al., 2021) is MH with a *smart* proposal: it proposes the
# substitutions that would lower the energy most, estimated from one gradient. Think of the
# one-hot vectors $h_i = \mathrm{onehot}(x_i)$ as the energy's input. Writing $v$ at position $i$
# changes $h_i$ by $\mathrm{onehot}(v) - \mathrm{onehot}(x_i)$, so to first order (a Taylor
# expansion in $h_i$)
#
# $$E_\theta(x \text{ with } v \text{ at } i) \approx E_\theta(x) - \big(g_i[v] - g_i[x_i]\big),
#   \qquad g_i = \nabla_{h_i}\big(-E_\theta(x)\big).$$
#
# The **first-order score** $S[i, v] = g_i[v] - g_i[x_i]$ predicts the energy *decrease* of every
# substitution at once, from one backward pass. In code:

# %%
x = plm.sample(200, seed=6)
onehot = sharp.embed(x).requires_grad_(True)                       # h: (B, T, V)
g = torch.autograd.grad(-sharp.energy_from_embeds(onehot).sum(), onehot)[0]   # (B, T, V)
scores = g - g.gather(2, x[..., None])                             # S[b, i, v] = g_i[v] - g_i[x_i]
print("the same as the library's first_order_scores:",
      torch.allclose(scores, first_order_scores(sharp, x)))
true_decrease = torch.empty_like(scores)
with torch.no_grad():
    for i in range(T):
        for v in range(V):
            y = x.clone()
            y[:, i] = v
            true_decrease[:, i, v] = sharp.energy(x) - sharp.energy(y)
pairs = torch.stack([scores.flatten(), true_decrease.flatten()])
print(f"correlation of predicted and true energy decrease: {torch.corrcoef(pairs)[0, 1]:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT
prediction_scatter(scores.flatten()[:2000].tolist(), true_decrease.flatten()[:2000].tolist(),
                   title="First-order score against the true energy decrease",
                   xaxis="predicted decrease S[i, v]", yaxis="true decrease E(x) - E(x')")

# %% [markdown]
# Each dot is one substitution in one P_LM sample. The points follow the diagonal with a wide
# scatter: the first-order score ranks substitutions well enough to propose them, not well enough
# to trust (a ReLU network is not linear in its input). GWG proposes $(i, v)$, $v \ne x_i$, with
# probability proportional to $e^{S[i, v]/2}$ and then accepts or rejects with the MH ratio
# (which now includes $q(x \mid x')/q(x' \mid x)$, the proposal being asymmetric), so a wrong
# prediction costs a rejection, never correctness. The library's `gwg_steps` does it:

# %%
for steps in (5, 25):
    chains, _, acceptance = gwg_steps(sharp, plm.sample(4000, seed=3), steps, seed=7)
    print(f"GWG steps {steps:2d}: distance to P_theta {distance(chains, p_sharp):.2f}, "
          f"acceptance rate {acceptance:.2f}")

# %% [markdown]
# Its proposals go where the energy is predicted to fall, so each step does more: 5 GWG steps get
# closer than 20 blind MH steps, and 25 come within 0.01 of the distance of exact samples, where
# blind MH needed 100, at one forward and one backward pass per step.
#
# ### 2.4 Self-normalised importance sampling (SNIS)
#
# **Importance sampling** does not move samples; it *reweights* them. Draw $x_1, \dots, x_K$ from
# the proposal $q$ (here P_LM) and give each the weight $e^{-E_\theta(x_k)}/q(x_k)$: then
# $\frac{1}{K}\sum_k \frac{e^{-E_\theta(x_k)}}{q(x_k)} f(x_k)$ estimates
# $Z_\theta\,\mathbb{E}_{P_\theta}[f]$. Dividing by the sum of the weights removes the unknown
# $Z_\theta$: **self-normalised importance sampling** (SNIS),
#
# $$\mathbb{E}_{P_\theta}[f] \approx \sum_k w_k f(x_k), \qquad
#   w_k = \frac{e^{-E_\theta(x_k)}/q(x_k)}{\sum_j e^{-E_\theta(x_j)}/q(x_j)}.$$
#
# It is consistent (right as $K \to \infty$) when $q > 0$ wherever $P_\theta > 0$, but biased at
# finite $K$, and it can only reweight what $q$ writes. This is how the Residual EBM generates
# text: draw from P_LM, weight by the energy, resample.
#
# ### Exercise 02.2
# Write `importance_weights(energies, log_q)`: the self-normalised weights $w_k$ above, from the
# energies $E_\theta(x_k)$ and the log-probabilities $\log q(x_k)$ of $K$ samples. Again, $e^{-E}$
# may overflow.

# %%
def importance_weights(energies: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights w_k, proportional to exp(-E_k) / q_k, summing to 1."""
    # your code here
    raise NotImplementedError


check_importance_weights(importance_weights)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Work with the log-weights, minus the energy minus the log-probability; normalising them is a
# softmax, and a softmax can be computed after subtracting the largest log-weight.
# </details>
#
# The library's `importance_sampling` estimator returns its negatives and weights. Use them to
# estimate one expectation, the mass $P_\theta$ puts on the data's support, and compare with the
# exact value:

# %%
print(f"exact: P_theta(data support) = {p_sharp[support].sum():.2f}")
for K in (100, 1000, 10000):
    snis = importance_sampling(sharp, data, plm, K, seed=8)
    on_support = support[state_index(snis.negatives, V)].double()
    effective = 1 / float((snis.weights ** 2).sum())
    print(f"K = {K:5d}: SNIS estimate {float((snis.weights * on_support).sum()):.2f}, "
          f"effective sample size {effective:.0f}")

# %% [markdown]
# The **effective sample size** $1/\sum_k w_k^2$ says how many equally weighted samples the
# weighted ones are worth. Here it is a sixth of $K$ or less: P_LM writes many states that
# $P_\theta$ gives little weight, so a few samples carry most of it, and even at $K = 10{,}000$ the
# estimate is off in the second digit.
#
# ### 2.5 Noise-contrastive estimation (NCE) and the Residual EBM
#
# **Noise-contrastive estimation** (Gutmann & Hyvärinen, 2010) avoids $Z_\theta$ differently: it
# trains a classifier to tell data (label 1) from samples of a known *noise* distribution, here
# P_LM (label 0). The **Residual EBM** (Deng et al., 2020; Bakhtin et al., 2021) is this with the
# model $P(x) \propto q(x)\,e^{-E_\theta(x)}$, an energy that corrects the language model, and the
# classifier's logit $s(x) = -E_\theta(x) - \log q(x)$. The loss is the logistic loss (binary
# cross-entropy, **BCE**) of that classifier:
#
# $$L_{NCE} = \mathbb{E}_{data}\big[-\log\sigma(s(x))\big]
#   + \mathbb{E}_{q}\big[-\log(1 - \sigma(s(x)))\big]
#   = \mathbb{E}_{data}[\mathrm{softplus}(-s)] + \mathbb{E}_{q}[\mathrm{softplus}(s)].$$
#
# In code, against the library's `nce_loss`:

# %%
noise = plm.sample(128, seed=9)
logit_data = -sharp.energy(data) - plm.log_prob(data)               # s(x) on the data
logit_noise = -sharp.energy(noise) - plm.log_prob(noise)            # s(x) on P_LM's samples
loss = F.softplus(-logit_data).mean() + F.softplus(logit_noise).mean()
library_loss = nce_loss(sharp, data, noise, plm)
print(f"NCE loss by hand {float(loss.detach()):.4f}, "
      f"by nce_loss {float(library_loss.detach()):.4f}")
nce_grad = torch.autograd.grad(loss, list(sharp.parameters()))
print(f"cosine of its gradient with the exact likelihood gradient: "
      f"{cosine(nce_grad, sharp.exact_grad(data)):.2f}")

# %% [markdown]
# At the loss's optimum $e^{-E_\theta} \propto p_{data}$, so NCE learns the right model in the
# limit; but **its gradient is not the likelihood gradient** (here it even points away from it): it
# weighs each data point by $1 - \sigma(s)$ and each noise sample by $\sigma(s)$, how wrong the
# classifier still is, and a state that neither the data nor P_LM produce gets no gradient at all.
#
# ### 2.6 Adversarial negatives: a tiny discrete attack
#
# The paper (section 2.2) gets its negatives by *attacking* P_LM's samples: editing them, one
# symbol per step, toward lower energy, so that they land where the energy is wrongly low. One step
# of the attack, for each sequence:
#
# 1. **the most salient position** $i^*$: the position whose one-hot input has the largest
#    gradient, $i^* = \arg\max_i \lVert g_i \rVert_1$ with $g_i = \nabla_{h_i}(-E_\theta(x))$ as in
#    GWG (the energy is most sensitive there);
# 2. **every symbol tried** at $i^*$: $V$ energies, exact, no first-order guess;
# 3. keep the one with the **lowest energy** (the current symbol included, so the energy never
#    rises).
#
# In code, compared with the library's `DiscreteAttack` (which the course builds properly for the
# addition task later on):

# %%
def attack_step(model, x):
    """One step of the tiny attack: at the most salient position, the symbol of lowest energy."""
    onehot = model.embed(x).requires_grad_(True)
    g = torch.autograd.grad(-model.energy_from_embeds(onehot).sum(), onehot)[0]   # (B, T, V)
    position = g.abs().sum(dim=2).argmax(dim=1)                    # i*: (B,)
    rows = torch.arange(len(x))
    energies = []
    for v in range(V):                                             # every symbol at i*
        y = x.clone()
        y[rows, position] = v
        with torch.no_grad():
            energies.append(model.energy(y))
    y = x.clone()
    y[rows, position] = torch.stack(energies, dim=1).argmin(dim=1)
    return y


x = plm.sample(1000, seed=10)
library = DiscreteAttack(sharp, sharp.sequences, steps=1).attack(x).final
print("one step by hand equals the library's:", torch.equal(attack_step(sharp, x), library))

# %% [markdown]
# Repeated for $S$ steps this is greedy, and it stalls: when the best symbol at $i^*$ is the one
# already there, nothing changes, and the next step picks the same position again. The **tabu**
# rule fixes that: a position where the attack found nothing better is skipped, for that sequence,
# until another edit changes the sequence. Five steps with tabu (`DiscreteAttack(...,
# tabu=True)`) on a few P_LM samples:

# %%
trace = DiscreteAttack(sharp, sharp.sequences, steps=5, tabu=True).attack(x)
with torch.no_grad():
    before, after = sharp.energy(x), sharp.energy(trace.final)
for k in range(5):
    print(f"{show(x[k])} (E = {float(before[k]):5.2f})  ->  {show(trace.final[k])} "
          f"(E = {float(after[k]):5.2f})")
print(f"on a data walk: {float(support[state_index(x, V)].double().mean()):.2f} of the P_LM "
      f"samples, {float(support[state_index(trace.final, V)].double().mean()):.2f} after 5 steps")

# %% [markdown]
# The attack carries P_LM's samples into the energy's valleys. As negatives, they raise the energy
# exactly where the model is most wrong, or most right: the attack does not know which. That is
# their **bias**: they sit where the energy is low, not where $P_\theta$ puts its mass.
#
# ## 3. One gradient from each
#
# Each estimator in `advebm_teach.toy.estimators` computes the data term exactly and the model term
# from $n$ negatives that start as P_LM samples, and returns the gradient and its **cost**: energy
# evaluations in the negative phase (one per sequence per forward pass, one more for a backward
# pass). One gradient from each, at $n = 128$, at the untrained model:

# %%
n = 128
estimators = {
    "Gibbs (5 sweeps)": lambda m, d, n, s: gibbs(m, d, plm, n, s, sweeps=5),
    "GWG (25 steps)": lambda m, d, n, s: gibbs_with_gradients(m, d, plm, n, s, steps=25),
    "importance sampling": lambda m, d, n, s: importance_sampling(m, d, plm, n, s),
    "NCE (Residual EBM)": lambda m, d, n, s: nce(m, d, plm, n, s),
    "adversarial (5 steps)": lambda m, d, n, s: adversarial(m, d, plm, n, s, steps=5),
}
reference = exact(model, data)
print(f"{'exact':22s} cosine 1.00  relative error 0.00  cost {reference.cost:6d}")
for name, estimator in estimators.items():
    estimate = estimator(model, data, n, 0)
    print(f"{name:22s} cosine {cosine(estimate.grads, reference.grads):4.2f}  "
          f"relative error {relative_error(estimate.grads, reference.grads):4.2f}  "
          f"cost {estimate.cost:6d}")

# %% [markdown]
# The **cosine** is 1 when the estimate points the way the exact gradient does; the **relative
# error** is $\lVert \hat g - g \rVert / \lVert g \rVert$. On 1,024 states the exact sum is
# *cheaper* than a Gibbs estimate; on $10^{35}$ sequences it is not. One estimate says little,
# though: is its error noise that more samples would average away, or bias that stays?
#
# ## 4. Bias and variance against the exact gradient
#
# For each estimator and sample count $n$, 12 independent estimates (different seeds) are compared
# with the exact gradient $g$: the mean cosine, the root-mean-square relative error, and its two
# parts, **bias** $\lVert \mathbb{E}\hat g - g\rVert/\lVert g\rVert$ and **spread** (the standard
# deviation, relative to $\lVert g\rVert$), with $\text{error}^2 = \text{bias}^2 +
# \text{spread}^2$. (Over 12 seeds, the bias column also carries about $\text{spread}/\sqrt{12}$ of
# noise.) First at the untrained model:

# %%
sample_counts = pick([16, 64, 256, 1024], [16, 256])
repeats = pick(12, 4)
at_start = error_table(model, data, estimators, sample_counts, repeats)


def print_table(rows, counts):
    print(f"{'estimator':22s} {'n':>5s} {'cosine':>7s} {'rel. error':>10s} {'bias':>6s} "
          f"{'spread':>6s} {'cost':>7s}")
    for row in rows:
        if row["n"] in counts:
            print(f"{row['estimator']:22s} {row['n']:5d} {row['cosine']:7.2f} "
                  f"{row['relative_error']:10.2f} {row['bias']:6.2f} {row['spread']:6.2f} "
                  f"{row['cost']:7.0f}")


def by_estimator(rows, key):
    return {name: [row[key] for row in rows if row["estimator"] == name] for name in estimators}


print_table(at_start, (sample_counts[1], sample_counts[-1]))

# %%
# NBVAL_IGNORE_OUTPUT
curves_against(sample_counts, by_estimator(at_start, "relative_error"), log_x=True,
               title="Relative error (untrained model)", xaxis="samples n",
               yaxis="RMS ||estimate - exact|| / ||exact||")

# %% [markdown]
# Lines that keep falling as $n$ grows are estimators whose error is mostly spread; flat lines are
# bias. Gibbs and GWG fall like $1/\sqrt{n}$. Importance sampling is consistent too, but the
# untrained model is spread over all 1,024 states while P_LM writes few of them, so a handful of
# samples carry all the weight and its error stays large at these $n$. NCE and the adversarial
# negatives stop improving: their error is bias, which no number of samples removes.
#
# The picture changes as the model learns. At the sharper model (30 exact steps) the data term and
# the model term nearly cancel, so the exact gradient is much shorter, and the same small errors in
# the negatives weigh more:

# %%
print(f"|exact gradient|: untrained {float(flat(reference.grads).norm()):.2f}, "
      f"sharp {float(flat(sharp.exact_grad(data)).norm()):.2f}")
at_sharp = error_table(sharp, data, estimators, sample_counts, repeats)
print_table(at_sharp, (sample_counts[1], sample_counts[-1]))

# %%
# NBVAL_IGNORE_OUTPUT
curves_against(sample_counts, by_estimator(at_sharp, "cosine"), log_x=True,
               title="Cosine with the exact gradient (after 30 exact steps)",
               xaxis="samples n", yaxis="mean cosine")

# %% [markdown]
# Now the short-run chains carry bias too (about 0.6 of the gradient's length), and their cosine
# stays well below 1. After 5 sweeps a chain still keeps a trace of the P_LM sample it started
# from: too faint for section 2.1's distance to see, not too faint for a gradient that is the
# difference of two nearly equal terms. "Unbiased in the limit" is a statement about long runs;
# training can afford short ones.
#
# ## 5. Training with each estimator, side by side
#
# Adam, learning rate $\alpha = 0.02$, the same 256 data sequences and seeds, $n = 128$ negatives
# per step; only the model term differs. After every step we compute what only a toy allows: the
# exact mean log-likelihood of the training data and the exact $\mathrm{KL}(P_{data} \,\|\,
# P_\theta)$.

# %%
steps = pick(150, 30)
runs = {"exact": lambda m, d, n, s: exact(m, d), **estimators}
trained, histories = {}, {}
for name, estimator in runs.items():
    trained[name], histories[name] = train(model, data, estimator, n=n, steps=steps, lr=0.02,
                                           target=p_data)
    last = histories[name][-1]
    print(f"{name:22s} after {steps} steps: log-likelihood {last['log_likelihood']:5.1f}, "
          f"KL {last['kl']:.2f} nats")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: [row["kl"] for row in history] for name, history in histories.items()},
               title="KL(P_data || P_theta) during training", yaxis="KL (nats)")

# %% [markdown]
# Each line is one estimator's training run. The exact gradient descends fastest and stays down.
# Gibbs and GWG follow it for the first 50 steps and then wobble: as the model sharpens, their
# short-run bias grows (section 4), and the KL goes up and down with it. Importance sampling and
# NCE learn more slowly. The adversarial negatives barely move the KL at all. So what did the
# adversarially trained energy learn? Look at where the attack takes P_LM's samples under each
# trained energy: the fraction that lands on a data walk, next to the mass that $P_\theta$ itself
# puts there.

# %%
starts = plm.sample(1000, seed=4)
print(f"P_LM samples alone: {float(support[state_index(starts, V)].double().mean()):.2f} "
      f"on a data walk")
for name, energy_model in trained.items():
    attacked = DiscreteAttack(energy_model, energy_model.sequences, 5, tabu=True).attack(starts)
    with torch.no_grad():
        mass = float(energy_model.distribution()[support].sum())
    landed = float(support[state_index(attacked.final, V)].double().mean())
    print(f"{name:22s} P_theta's mass on the data walks {mass:.2f}; "
          f"P_LM samples after 5 attack steps {landed:.2f}")

# %% [markdown]
# The adversarially trained energy is a poor *density*: $P_\theta$ puts little mass on the data
# walks. Yet its attack carries most of P_LM's samples onto them. Its gradient vanishes as soon as
# the attack's landing spots look like the data, whatever the probabilities are, so it learns an
# energy to be *descended* from P_LM's samples, which is how the paper generates. That is the bias,
# and also the point.
#
# ## 6. A spurious mode, planted and watched
#
# Take the exactly trained model and plant a **spurious mode** (a state that is not data yet gets
# high probability): one extra hidden unit that lowers the energy of a single sequence, `00300`,
# until it holds half of the model's mass. It is not a data walk (0 to 3 is no step), P_LM
# practically never writes it (it needs two transitions the data never show), and it is one symbol
# away from `00000`, the data's most likely walk.

# %%
spurious = torch.tensor([[0, 0, 3, 0, 0]])
index = int(state_index(spurious, V))
base = trained["exact"]
with torch.no_grad():
    energies = base.energy(states)
    rest = torch.logsumexp(-torch.cat([energies[:index], energies[index + 1:]]), dim=0)
depth = float(energies[index] + rest)       # exp(-(E - depth)) = the rest of Z: half the mass
planted = base.with_spurious_mode(spurious[0], depth)
with torch.no_grad():
    print(f"q(00300) = {float(plm.distribution()[index]):.1e}; P_theta(00300) before planting "
          f"{float(base.distribution()[index]):.0e}, "
          f"after {float(planted.distribution()[index]):.2f}")

# %% [markdown]
# Which estimators can *see* it? Count how much of each one's negative phase falls on `00300` at
# the planted model, with 1,024 samples (for the exact gradient: its weight $P_\theta$):

# %%
with torch.no_grad():
    print(f"{'exact':22s} weight on 00300: {float(planted.distribution()[index]):.2f}")
for name, estimator in estimators.items():
    estimate = estimator(planted, data, 1024, 5)
    hits = state_index(estimate.negatives, V) == index
    weights = (estimate.weights if estimate.weights is not None
               else torch.full((1024,), 1 / 1024, dtype=torch.float64))
    print(f"{name:22s} weight on 00300: {float(weights[hits].sum()):.2f}")

# %% [markdown]
# NCE's noise and the importance sampler's samples both come from P_LM, which never writes `00300`:
# for them the mode does not exist. Gibbs and GWG walk into it from the neighbouring walks, and the
# attack finds it by editing P_LM's samples one symbol at a time. Now train from the planted model
# and watch the mass on `00300`:

# %%
planted_steps = pick(60, 20)
after_planting, watched = {}, {}
for name, estimator in runs.items():
    after_planting[name], watched[name] = train(planted, data, estimator, n=n,
                                                steps=planted_steps, lr=0.02, target=p_data,
                                                watch=spurious)
checkpoints = (0, 5, 10, planted_steps)
print(f"{'mass on 00300 at step':22s}" + "".join(f"{s:>6d}" for s in checkpoints))
for name, history in watched.items():
    print(f"{name:22s}" + "".join(f"{history[s]['mass']:6.2f}" for s in checkpoints))

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: [row["mass"] for row in history] for name, history in watched.items()},
               title="Probability of the planted spurious mode 00300 during training",
               yaxis="P_theta(00300)")

# %% [markdown]
# Each line is one estimator's training run from the planted model. The exact gradient, both MCMC
# estimators and the adversarial negatives remove the mode within a few steps. NCE and importance
# sampling never touch it: the planted unit receives no gradient from them at all, and its mass
# moves only because the rest of the energy moves. This is the blind spot of the Residual EBM: its
# generator, resampling P_LM's samples, never meets `00300` either, but any use of the energy that
# *moves* samples toward low energy, MCMC or the paper's attack, falls straight into it. The
# paper's remedy is to train on what the attack finds.

# %%
# NBVAL_IGNORE_OUTPUT
state_heatmaps({f"{name}, trained from the planted model":
                after_planting[name].distribution().detach().tolist()
                for name in ("NCE (Residual EBM)", "adversarial (5 steps)")}, V, T, mark=[index],
               title="Where the mass ends up (circled: 00300)")

# %% [markdown]
# The circled cell is `00300`. Under the NCE-trained energy it is the brightest cell of the map,
# with most of the mass; under the adversarially trained one its mass is gone (0.00 in the table
# above), and the rest of that map is the washed-out density of section 5.

# %% [markdown]
# ## Summary
#
# - Gibbs sampling redraws one position at a time from its exact conditional ($V$ energies,
#   $Z_\theta$ cancels); Metropolis–Hastings proposes a change and accepts it with
#   $\min(1, e^{E(x) - E(x')} \cdot \text{proposal ratio})$; both leave $P_\theta$ unchanged, and
#   both are unbiased only in the limit of long runs.
# - Gibbs-with-Gradients proposes substitutions by their first-order score
#   $g_i[v] - g_i[x_i]$, one backward pass for all of them, and corrects its mistakes with the MH
#   ratio.
# - Self-normalised importance sampling reweights P_LM's samples by $e^{-E}/q$: consistent, but it
#   can only reweight what P_LM writes.
# - NCE, the Residual EBM's objective, is a logistic loss of data against P_LM samples; its
#   gradient is not the likelihood gradient.
# - Adversarial negatives (most salient position, every symbol tried, tabu) are biased as a
#   likelihood gradient, and the trained energy is a poor density, yet it is one to be descended
#   from P_LM's samples; and with MCMC they are the only negatives here that find a spurious mode
#   P_LM never writes.

# %% [markdown]
# ## References
#
# - Xuwang Yin (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training*. Preprint (the paper this course reproduces; sections 2.1–2.2).
# - Yuntian Deng, Anton Bakhtin, Myle Ott, Arthur Szlam, Marc'Aurelio Ranzato (2020). *Residual
#   Energy-Based Models for Text Generation*. ICLR 2020, arXiv:2004.11714.
# - Anton Bakhtin, Yuntian Deng, Sam Gross, Myle Ott, Marc'Aurelio Ranzato, Arthur Szlam (2021).
#   *Residual Energy-Based Models for Text*. Journal of Machine Learning Research 22(40).
# - Michael Gutmann, Aapo Hyvärinen (2010). *Noise-contrastive estimation: A new estimation
#   principle for unnormalized statistical models*. AISTATS 2010.
# - Will Grathwohl, Kevin Swersky, Milad Hashemi, David Duvenaud, Chris J. Maddison (2021). *Oops I
#   Took A Gradient: Scalable Sampling for Discrete Distributions*. ICML 2021, arXiv:2102.04509.
# - Javid Ebrahimi, Anyi Rao, Daniel Lowd, Dejing Dou (2018). *HotFlip: White-Box Adversarial
#   Examples for Text Classification*. ACL 2018 (the first-order score of a substitution).
# - Geoffrey E. Hinton (2002). *Training Products of Experts by Minimizing Contrastive Divergence*.
#   Neural Computation 14(8), 1771–1800 (short-run MCMC negatives).
