# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 01 · EBM likelihood gradients, exactly
#
# An energy-based model turns an energy $E_\theta(x)$ into probabilities, and learning it means lowering the
# energy of data and raising it everywhere else (paper, section 2.1). "Everywhere else" is the hard part:
# it needs samples of the model, which for text nobody can draw exactly. This notebook works on a space
# small enough to enumerate, 4 symbols and sequences of length 5, 1,024 states, so that the true gradient
# is always at hand and every way of approximating it can be checked against it.
#
# **Learning goals.** By the end you can
# 1. write the Gibbs distribution (eq. 1) and its partition function (eq. 2) as code, and compute $\log Z$
#    without overflow;
# 2. derive the likelihood gradient (eq. 3) as a data term minus a model term, and check it against autograd;
# 3. name five stand-ins for the model term (Gibbs sampling, Gibbs-with-Gradients, importance sampling,
#    NCE, adversarial negatives) and say which estimate the likelihood gradient and which do not;
# 4. measure an estimator's bias and variance against the exact gradient as the number of samples grows;
# 5. explain why an energy trained against P_LM samples never sees a spurious mode that P_LM never writes
#    (the Residual-EBM blind spot), and why the paper's attack does.

# %%
# Course setup: the same first cell in every notebook.
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("advebm_teach") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "advebm-teach @ git+https://github.com/advebm-teach/advebm-teach"], check=True)

import advebm_teach

print(advebm_teach.setup_notebook())

# %%
import itertools
import math

import torch

from advebm_teach.attack import DiscreteAttack
from advebm_teach.config import pick
from advebm_teach.saliency import first_order_scores
from advebm_teach.teaching.exercises import check_gibbs_conditional, check_importance_weights, check_log_partition
from advebm_teach.teaching.plots import curves_against, curves_by_step, state_heatmaps
from advebm_teach.toy.ebm import (BigramLM, ToyEBM, all_states, closed_walk_distribution, exact_kl,
                                  sample_states, state_index)
from advebm_teach.toy.estimators import (adversarial, cosine, error_table, exact, gibbs, gibbs_with_gradients,
                                         gwg_steps, importance_sampling, nce, relative_error, train)

torch.set_num_threads(1)  # every tensor here is tiny: one thread is fastest, and much faster on a busy machine

# %% [markdown]
# ## 1. A world small enough to enumerate
#
# A state is a sequence $x = (x_1, \dots, x_5)$ of symbols 0-3. The **data** are *walks that come home*:
# every step stays on a symbol or moves to a neighbouring one ($|x_{t+1} - x_t| \le 1$, staying twice as
# likely as moving), and the last symbol equals the first. The step rule is *local*; coming home is *global*.

# %%
V, T = 4, 5
states = all_states(V, T)
p_data = closed_walk_distribution(V, T)
data = sample_states(states, p_data, 256, seed=1)            # the training set
support = p_data > 0


def show(x):
    return "".join(str(s) for s in x.tolist())


print(f"{len(states)} states; {int(support.sum())} have data probability > 0")
print("data samples:", " ".join(show(x) for x in data[:8]))

# %% [markdown]
# **P_LM's role** is played by a bigram language model, $q(x) = q(x_1)\prod_t q(x_{t+1} \mid x_t)$: locally
# normalised, fitted to the data by maximum likelihood (with a little smoothing, so that $q > 0$ everywhere,
# as a softmax would have it). It learns the step rule perfectly and cannot know about coming home: like the
# course's LSTM with its sums, its samples are *locally* right and often *globally* wrong.

# %%
plm = BigramLM.fit(p_data, V, T, smoothing=1e-3)
q = plm.distribution()
plm_samples = plm.sample(2000, seed=2)
print("P_LM samples:", " ".join(show(x) for x in plm_samples[:8]))
print(f"P_LM's mass on the data's support: {q[support].sum():.3f} "
      f"(its 'correctness'); KL(p_data || q) = {exact_kl(p_data, q):.3f} nats")

# %% [markdown]
# The **energy model** is `ToyEBM`: $E_\theta(x) = w \cdot \mathrm{relu}(W\,\mathrm{onehot}(x) + b) + c$, one
# hidden layer of 32 units on the one-hot symbols, its weights drawn from a seed. Here are all three
# distributions, every state a cell (rows: the first two symbols; columns: the last three; colour: log10 of
# the probability; empty: probability exactly 0). The data's 54 states form a sparse pattern; P_LM covers
# it and much else; the untrained model is spread over everything.

# %%
model = ToyEBM(V, T, seed=0)
with torch.no_grad():
    p_model = model.distribution()
print(f"untrained model: mass on the data's support {p_model[support].sum():.3f}, "
      f"KL(p_data || p_theta) = {exact_kl(p_data, p_model):.3f} nats")

# %%
# NBVAL_IGNORE_OUTPUT
state_heatmaps({"data: closed walks": p_data.tolist(), "P_LM (bigram)": q.tolist(),
                "energy model, untrained": p_model.tolist()}, V, T, title="Every state, three distributions")

# %% [markdown]
# ## 2. Eq. (1) and (2) in code
#
# $$p_\theta(x) = \frac{\exp(-E_\theta(x))}{Z(\theta)}, \qquad Z(\theta) = \sum_x \exp(-E_\theta(x)).$$
#
# On text the sum runs over $10^{35}$ sequences; here over 1,024, so `log_partition` is one `logsumexp` over
# `states()`. Check it against a plain Python loop over every sequence written out by `itertools.product`:

# %%
with torch.no_grad():
    log_z = float(model.log_partition())
    every_sequence = itertools.product(range(V), repeat=T)
    brute = math.log(math.fsum(math.exp(-float(model.energy(torch.tensor([x])))) for x in every_sequence))
    total = float(model.log_prob(states).exp().sum())
print(f"log Z = {log_z:.6f}; by a Python loop over all {V ** T} sequences: {brute:.6f}")
print(f"sum of p_theta over all states: {total:.6f}")

# %% [markdown]
# ### Exercise 01.1
# Write `log_partition(energies)`: $\log \sum_x e^{-E(x)}$ for a vector of energies. The checker includes
# energies around $-1000$: $e^{1000}$ overflows a float, so compute it without ever forming it.

# %%
def log_partition(energies: torch.Tensor) -> torch.Tensor:
    ...  # your code here


check_log_partition(log_partition)

# %% [markdown]
# <details><summary>One solution</summary>
#
# Shift by the largest $-E$: $\log\sum_x e^{-E(x)} = m + \log\sum_x e^{-E(x) - m}$ with $m = \max_x(-E(x))$.
# Every exponent is then $\le 0$. (`torch.logsumexp(-energies, 0)` does exactly this.)
# </details>

# %%
def log_partition(energies: torch.Tensor) -> torch.Tensor:
    m = (-energies).max()
    return m + torch.log(torch.exp(-energies - m).sum())


check_log_partition(log_partition)

# %% [markdown]
# ## 3. Eq. (3): the data term minus the model term
#
# Differentiate the mean log-likelihood of the data, $\mathbb{E}_{data}[-E_\theta(x)] - \log Z(\theta)$. The
# first part gives $\mathbb{E}_{data}[\nabla_\theta(-E_\theta)]$. For the second,
# $\nabla_\theta \log Z = \frac{1}{Z}\sum_x e^{-E_\theta(x)}\,\nabla_\theta(-E_\theta(x)) = \mathbb{E}_{p_\theta}[\nabla_\theta(-E_\theta(x))]$:
#
# $$\nabla_\theta\, \mathbb{E}_{data}[\log p_\theta(x)] = \mathbb{E}_{data}[\nabla_\theta(-E_\theta(x))] - \mathbb{E}_{p_\theta}[\nabla_\theta(-E_\theta(x))].$$
#
# Gradient *descent* on the negative log-likelihood follows its negative, $\mathbb{E}_{data}[\nabla E] - \mathbb{E}_{p_\theta}[\nabla E]$:
# lower the energy where the data are (the *positive phase*), raise it where the model puts its mass (the
# *negative phase*, whose samples are the *negative samples*). `exact_grad` computes it with the model term
# summed over every state. Autograd, differentiating $\log Z$ through `logsumexp`, must agree:

# %%
parameters = list(model.parameters())
eq3 = model.exact_grad(data)
autograd = torch.autograd.grad(-model.log_prob(data).mean(), parameters)
print("eq. (3) and autograd agree to 1e-10:",
      all(torch.allclose(a, b, rtol=0, atol=1e-10) for a, b in zip(eq3, autograd)))
with torch.no_grad():
    weights = model.distribution()
data_term = torch.autograd.grad(model.energy(data).mean(), parameters)
model_term = torch.autograd.grad((weights * model.energy(states)).sum(), parameters)


def norm(grads):
    return float(torch.cat([g.flatten() for g in grads]).norm())


print(f"|data term| = {norm(data_term):.3f}, |model term| = {norm(model_term):.3f}, |difference| = {norm(eq3):.3f}")
print(f"gradient of the offset c: {abs(float(eq3[-1])):.3f} (adding a constant to E changes no probability)")

# %% [markdown]
# The model term needed the probability of all 1,024 states. For text it is out of reach, and every
# practical method replaces $\mathbb{E}_{p_\theta}[\nabla E]$ by an average over some *negative samples*.
# The rest of this notebook asks how good each replacement is.
#
# ## 4. Five stand-ins for the model term
#
# Each estimator in `advebm_teach.toy.estimators` computes the data term exactly and the model term from $n$
# samples, and returns its gradient and its **cost**: energy evaluations in the negative phase (one per
# sequence per forward pass, one more for a backward pass). All start from P_LM samples, as the paper's
# attack does.
#
# * **Gibbs sweeps** (MCMC): visit the positions in turn, redraw each symbol from its exact conditional
#   $p_\theta(x_i = v \mid x_{-i}) \propto e^{-E(x \text{ with } v \text{ at } i)}$ ($V$ energies per position). The
#   chains leave $p_\theta$ invariant, so they are *unbiased in the limit of many sweeps*; a short run
#   remembers where it started.
# * **Gibbs-with-Gradients** (GWG): propose one substitution $(i, v)$ with probability proportional to
#   $e^{S[i,v]/2}$, where $S$ is the first-order score of notebook 04 (`first_order_scores`: one backward pass
#   predicts the energy change of every substitution), then accept or reject with the Metropolis-Hastings
#   ratio, which makes $p_\theta$ invariant however rough the prediction.
# * **Self-normalised importance sampling** (SNIS): draw from P_LM and weight each sample by
#   $w \propto e^{-E(x)}/q(x)$. Consistent when $q > 0$ wherever $p_\theta$ is, but it can only *reweight*
#   what P_LM writes.
# * **NCE / BCE**, the Residual-EBM baseline (Deng et al., 2019): train a classifier, data against P_LM
#   samples, with logit $-E(x) - \log q(x)$, which is $-E_{res}(x)$ for the residual model
#   $p \propto q\,e^{-E_{res}}$. At its optimum $e^{-E} = p_{data}$, but **its gradient is not the likelihood
#   gradient**: it is the gradient of another objective.
# * **Adversarial negatives** (the paper, section 2.2): attack P_LM samples toward low energy, the most
#   salient position first, every symbol tried there (here with notebook 04's tabu fix), and use the
#   results as negatives. **Biased**: the negatives sit in the energy's valleys, not where $p_\theta$ puts
#   its mass.
#
# ### Exercise 01.2
# Gibbs sampling needs one conditional. Write `gibbs_conditional(model, x, i)`: the probabilities
# $p_\theta(x_i = v \mid \text{the other symbols of } x)$ for $v = 0..V-1$, for one sequence `x` of shape `(T,)`.
# The checker compares with the enumerated joint distribution, restricted and renormalised.

# %%
def gibbs_conditional(model: ToyEBM, x: torch.Tensor, i: int) -> torch.Tensor:
    ...  # your code here


check_gibbs_conditional(gibbs_conditional, model)

# %% [markdown]
# <details><summary>One solution</summary>
#
# Write every symbol at position `i` into V copies of `x`; the conditional is the softmax of minus their
# energies ($Z$ cancels, and so does everything that does not depend on $x_i$).
# </details>

# %%
def gibbs_conditional(model: ToyEBM, x: torch.Tensor, i: int) -> torch.Tensor:
    variants = x.repeat(model.n_symbols, 1)
    variants[:, i] = torch.arange(model.n_symbols)
    with torch.no_grad():
        return torch.softmax(-model.energy(variants), dim=0)


check_gibbs_conditional(gibbs_conditional, model)

# %% [markdown]
# ### Exercise 01.3
# Write `importance_weights(energies, log_q)`: the self-normalised weights $w_k = \frac{e^{-E_k}/q_k}{\sum_j e^{-E_j}/q_j}$
# of samples drawn from $q$. Again, $e^{-E}$ may overflow.

# %%
def importance_weights(energies: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    ...  # your code here


check_importance_weights(importance_weights)

# %% [markdown]
# <details><summary>One solution</summary>
#
# `torch.softmax(-energies - log_q, dim=0)`: a softmax of the log-weights, which shifts by their maximum.
# </details>

# %%
def importance_weights(energies: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return torch.softmax(-energies - log_q, dim=0)


check_importance_weights(importance_weights)

# %% [markdown]
# GWG's proposal comes from `first_order_scores`, the same function notebook 04 used on the Transformer:
# `ToyEBM` exposes the course's embedding seam (`embed` gives the one-hot vectors), so the score of
# writing $v$ at position $i$ is $g_i[v] - g_i[x_i]$ with $g_i = \nabla_{\mathrm{onehot}_i}(-E)$. How well does
# it predict the true energy decrease on P_LM samples, and how often does GWG accept?

# %%
x = plm_samples[:200]
scores = first_order_scores(model, x)                       # (B, T, V): predicted decrease of E, v written at i
true_decrease = torch.empty_like(scores)
with torch.no_grad():
    for i in range(T):
        for v in range(V):
            y = x.clone()
            y[:, i] = v
            true_decrease[:, i, v] = model.energy(x) - model.energy(y)
print(f"correlation of predicted and true energy decrease: "
      f"{torch.corrcoef(torch.stack([scores.flatten(), true_decrease.flatten()]))[0, 1]:.3f}")
_, _, acceptance = gwg_steps(model, x, steps=25, seed=3)
print(f"GWG acceptance rate over 25 steps: {acceptance:.2f}")

# %% [markdown]
# Now one gradient from each, at $n = 128$ samples, against the exact one:

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
print(f"{'exact':22s} cosine 1.000  relative error 0.000  cost {reference.cost:6d}")
for name, estimator in estimators.items():
    estimate = estimator(model, data, n, 0)
    print(f"{name:22s} cosine {cosine(estimate.grads, reference.grads):.3f}  "
          f"relative error {relative_error(estimate.grads, reference.grads):.3f}  cost {estimate.cost:6d}")

# %% [markdown]
# On 1,024 states the exact sum is *cheaper* than a Gibbs estimate; on $10^{35}$ sequences it is not. One
# estimate says little, though: is an error noise that more samples would average away, or bias that
# stays? The next section separates the two.
#
# ## 5. Bias and variance against the exact gradient
#
# For each estimator and sample count $n$, several independent estimates (different seeds) are compared
# with the exact gradient $g$: the mean **cosine**, the root-mean-square **relative error**
# $\|\hat g - g\| / \|g\|$, and its two parts, **bias** $\|\mathbb{E}\hat g - g\|/\|g\|$ and **spread** (the standard
# deviation), with $\text{error}^2 = \text{bias}^2 + \text{spread}^2$ (measured over $R$ seeds, the bias column also
# carries about $\text{spread}/\sqrt{R}$ of noise). First at the untrained model:

# %%
sample_counts = pick([16, 64, 128, 256, 1024, 4096], [16, 128, 1024])
repeats = pick(16, 8)
at_start = error_table(model, data, estimators, sample_counts, repeats)


def print_table(rows, counts):
    print(f"{'estimator':22s} {'n':>5s} {'cosine':>7s} {'rel. error':>10s} {'bias':>6s} {'spread':>6s} {'cost':>8s}")
    for row in rows:
        if row["n"] in counts:
            print(f"{row['estimator']:22s} {row['n']:5d} {row['cosine']:7.3f} {row['relative_error']:10.3f} "
                  f"{row['bias']:6.3f} {row['spread']:6.3f} {row['cost']:8.0f}")


print_table(at_start, (128, 1024))


def by_estimator(rows, key):
    return {name: [row[key] for row in rows if row["estimator"] == name] for name in estimators}

# %%
# NBVAL_IGNORE_OUTPUT
curves_against(sample_counts, by_estimator(at_start, "cosine"), log_x=True,
               title="Cosine with the exact gradient (untrained model)", xaxis="samples n", yaxis="mean cosine")

# %%
# NBVAL_IGNORE_OUTPUT
curves_against(sample_counts, by_estimator(at_start, "relative_error"), log_x=True,
               title="Relative error (untrained model)", xaxis="samples n",
               yaxis="RMS ||estimate - exact|| / ||exact||")

# %% [markdown]
# Read the bias column. Gibbs and GWG: the error is mostly spread, and it shrinks like $1/\sqrt{n}$;
# their cosine approaches 1. Importance sampling is consistent too, but the untrained model is spread over
# all 1,024 states while P_LM writes few of them, so a handful of samples carry all the weight: its spread,
# and its bias (self-normalising is biased at finite $n$), stay large at these $n$. NCE and the adversarial
# negatives stop improving: their error is *bias*, which no number of samples removes. NCE estimates a
# different gradient altogether.
#
# The picture changes as the model learns. After 30 steps of exact training its mass sits on the walks,
# which are separated by improbable states, and chains that start at P_LM samples no longer mix in a few sweeps:

# %%
after_30, _ = train(model, data, lambda m, d, n, s: exact(m, d), n=0, steps=30, lr=0.02, target=p_data)
after_30_table = error_table(after_30, data, estimators, sample_counts, repeats)
print_table(after_30_table, (128, 1024))

# %%
# NBVAL_IGNORE_OUTPUT
curves_against(sample_counts, by_estimator(after_30_table, "cosine"), log_x=True,
               title="Cosine with the exact gradient (after 30 exact steps)", xaxis="samples n", yaxis="mean cosine")

# %% [markdown]
# Now the short-run chains carry bias too: a chain that starts at a P_LM sample ends near the walk it
# started next to, so the negatives follow P_LM's choice of walks rather than the model's. "Unbiased in the
# limit" is a statement about long runs; what training can afford are short ones.
#
# ## 6. Training with each estimator, side by side
#
# Adam, the same learning rate, the same 256 data sequences and seeds; only the model term differs.
# After every step we compute what only a toy allows: the exact mean log-likelihood of the training data
# and the exact $\mathrm{KL}(p_{data} \,\|\, p_\theta)$.

# %%
steps = pick(300, 100)
runs = {"exact": lambda m, d, n, s: exact(m, d), **estimators}
trained, histories = {}, {}
for name, estimator in runs.items():
    trained[name], histories[name] = train(model, data, estimator, n=n, steps=steps, lr=0.02, target=p_data)
    last = histories[name][-1]
    print(f"{name:22s} after {steps} steps: log-likelihood {last['log_likelihood']:7.3f}, KL {last['kl']:.3f}, "
          f"cost {last['cost']:9d}")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: [row["kl"] for row in history] for name, history in histories.items()},
               title="KL(p_data || p_theta) during training", yaxis="KL (nats)")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: [row["log_likelihood"] for row in history] for name, history in histories.items()},
               title="Mean log-likelihood of the training data", yaxis="log p_theta (nats)")

# %% [markdown]
# The exact gradient descends smoothly. The MCMC estimators follow it at first and then wobble: their
# short-run bias grows as the model sharpens. Importance sampling and NCE learn more slowly. The adversarial
# negatives barely move the likelihood at all. So what *did* Algorithm 1 learn? Look at where the
# attack takes P_LM's samples under each trained energy: the fraction that lands on a data walk (the
# analogue of the paper's correctness) next to the mass that $p_\theta$ itself puts there.

# %%
starts = plm.sample(1000, seed=4)
print(f"P_LM samples alone: {float(support[state_index(starts, V)].float().mean()):.3f} on a data walk")
for name, energy_model in trained.items():
    attacked = DiscreteAttack(energy_model, energy_model.sequences, 5, tabu=True).attack(starts).final
    with torch.no_grad():
        mass = float(energy_model.distribution()[support].sum())
    print(f"{name:22s} p_theta's mass on the data walks {mass:.3f}; P_LM samples after 5 attack steps "
          f"{float(support[state_index(attacked, V)].float().mean()):.3f}")

# %% [markdown]
# The adversarially trained energy is a poor *density*: $p_\theta$ puts hardly more mass on the data walks than
# the untrained model did. Yet its attack carries most of P_LM's samples onto them, better than the
# NCE-trained energy does. Its gradient vanishes as soon as the attack's landing spots look like the data,
# whatever the probabilities are, so it learns an energy to be *descended* from P_LM's samples, which is
# how the paper generates. That is the bias, and also the point.
#
# ## 7. A spurious mode, planted and watched
#
# Take the exactly trained model and plant a **spurious mode**: one extra hidden unit that lowers the energy
# of a single sequence, `00300`, until it holds half of the model's mass. It is not a data walk (0 to 3 is
# no step), P_LM practically never writes it (it would need the two transitions the data never show), and
# it is one symbol away from `00000`, the data's most likely walk.

# %%
spurious = torch.tensor([[0, 0, 3, 0, 0]])
index = int(state_index(spurious, V))
base = trained["exact"]
with torch.no_grad():
    energies = base.energy(states)
    rest = torch.logsumexp(-torch.cat([energies[:index], energies[index + 1:]]), dim=0)
depth = float(energies[index] + rest)                    # exp(-(E - depth)) = the rest of Z: half the mass
planted = base.with_spurious_mode(spurious[0], depth)
with torch.no_grad():
    print(f"q(00300) = {float(q[index]):.1e}; p_theta(00300) before planting {float(base.distribution()[index]):.1e}, "
          f"after {float(planted.distribution()[index]):.3f}")

# %% [markdown]
# Which estimators can *see* it? Count how much of each one's negative phase falls on `00300`, at the
# planted model, with 1,024 samples (for the exact gradient: its weight $p_\theta$):

# %%
with torch.no_grad():
    print(f"{'exact':22s} weight on 00300: {float(planted.distribution()[index]):.3f}")
for name, estimator in estimators.items():
    estimate = estimator(planted, data, 1024, 5)
    hits = state_index(estimate.negatives, V) == index
    weights = estimate.weights if estimate.weights is not None else torch.full((1024,), 1 / 1024)
    print(f"{name:22s} weight on 00300: {float(weights[hits].sum()):.3f}")

# %% [markdown]
# NCE's noise and the importance sampler's samples both come from P_LM, which never writes `00300`: for
# them the mode does not exist. Gibbs and GWG walk into it from the neighbouring walks, and the attack
# finds it by editing P_LM's samples one symbol at a time. Now train from the planted model and watch
# the mass on `00300`:

# %%
planted_steps = pick(100, 40)
after_planting, watched = {}, {}
for name, estimator in runs.items():
    after_planting[name], watched[name] = train(planted, data, estimator, n=n, steps=planted_steps, lr=0.02,
                                                target=p_data, watch=spurious)
print(f"{'mass on 00300 at step':22s}" + "".join(f"{s:>7d}" for s in (0, 5, 10, planted_steps)))
for name, history in watched.items():
    print(f"{name:22s}" + "".join(f"{history[s]['mass']:7.3f}" for s in (0, 5, 10, planted_steps)))

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({name: [row["mass"] for row in history] for name, history in watched.items()},
               title="Probability of the planted spurious mode 00300 during training", yaxis="p_theta(00300)")

# %% [markdown]
# The exact gradient, both MCMC estimators and the adversarial negatives remove the mode within a few
# steps. NCE and importance sampling never touch it: the planted unit receives no gradient from them at
# all. Its mass moves only because the rest of the energy moves, and it ends the run with more than it
# started with. This is the blind spot of the Residual EBM. Its model is $p \propto q\,e^{-E_{res}}$, the
# same family as here, and its generator, resampling P_LM's samples, never meets `00300` either. But any
# use of the energy that *moves* samples toward low energy, MCMC or the paper's attack, falls straight
# into it. The paper's remedy is to train on what the attack finds.

# %%
# NBVAL_IGNORE_OUTPUT
state_heatmaps({f"{name}, trained from the planted model": after_planting[name].distribution().detach().tolist()
                for name in ("NCE (Residual EBM)", "adversarial (5 steps)")}, V, T, mark=[index],
               title="Where the mass ends up (circled: 00300)")

# %% [markdown]
# **Summary.** On an enumerable space the Gibbs distribution, its partition function and the likelihood
# gradient are all exact: data term minus model term. Every practical estimator replaces the model term by
# negative samples. MCMC (Gibbs, GWG) is unbiased only in the limit of long runs; importance sampling from
# P_LM is consistent but can only reweight what P_LM writes; NCE, the Residual EBM's objective, follows a
# different gradient; the paper's adversarial negatives are biased as a likelihood gradient, yet they are
# the only proposal-based negatives that find a spurious mode P_LM never writes. Notebook 03 meets such
# modes in a real residual EBM, and notebook 05 trains with the attack (Algorithm 1).
