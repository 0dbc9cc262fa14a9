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
# # 08 · Beyond Algorithm 1: attacks or MCMC?
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/08_attacks_or_mcmc.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/08_attacks_or_mcmc.ipynb) · or locally, `advebm-teach lab`
#
# The paper's case for Algorithm 1 is that a discrete attack "circumvents the challenges
# associated with gradient-based sampling in a discrete space" (its section 1): it finds the
# spurious modes of an energy that MCMC would need long chains to reach. It never runs that
# MCMC. Since then, **gradient-informed discrete samplers** have become the standard answer to
# exactly this problem: Gibbs-with-Gradients (GWG, Grathwohl et al., 2021) and discrete Langevin
# (DMALA, Zhang et al., 2022). Both are built on the same first-order token score as HotFlip and
# as the attack's candidate pruning of notebook 05. This notebook puts the three side by side on
# the course's energy: how good that shared score is, what makes a sampler correct where an attack
# is only greedy, and what each gives Algorithm 1 as its negatives at equal cost.

# %% [markdown]
# **Learning goals.** By the end you can
# 1. write the first-order score $\hat\Delta(x)[i, v]$ and say how HotFlip, GWG and DMALA each use
#    it;
# 2. measure how well it ranks single substitutions (Spearman's $\rho$, top-1) and explain why
#    it ranks the answer digits of the likelihood read-out well and the operand digits barely
#    better than chance;
# 3. write GWG's proposal distribution (Exercise 08.1) and the Metropolis–Hastings acceptance
#    probability (Exercise 08.2), and show on the toy's exact transition matrix that the MH
#    correction, and only with its proposal terms, gives detailed balance;
# 4. say what a sampler's acceptance rate tells you, and why a correct sampler can be useless at
#    a given budget;
# 5. read a comparison of Algorithm 1's negatives drawn four ways at equal cost, and judge the
#    paper's claim from it.
#
# **Prerequisites.** Notebooks 01–02 (the toy EBM, $p(x) = e^{-E(x)}/Z$, its exact distribution;
# MCMC for the model term of eq. 3: Gibbs sampling and Gibbs-with-Gradients on the toy); notebook
# 05 (the discrete attack, its first-order candidate pruning); notebook 06 (spurious modes: wrong
# sums below the median energy of data); notebook 07 (Algorithm 1, `train_ebm`, the paired
# difference by seed). Maths: the softmax, Spearman's rank correlation (defined in section 2), the
# total variation distance $\tfrac12 \sum_x |p(x) - q(x)|$. Symbols as in the
# [notation](../docs/notation.md) table: $E$ the energy, $U$ the residual model's energy (section
# 3), $\tau$ a temperature, $\beta$ DMALA's step size, $r$ the Metropolis–Hastings ratio, $M$ a
# transition matrix.

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

from advebm_teach import load_pretrained, make_task, sample_lm
from advebm_teach.config import pick
from advebm_teach.experiments.negatives_study import LABELS, SEARCHES
from advebm_teach.experiments.shipping import load_result
from advebm_teach.experiments.statistics import paired_difference
from advebm_teach.first_order_study import first_order_quality, substitution_effects
from advebm_teach.mcmc import discrete_langevin, gibbs_with_gradients
from advebm_teach.residual import ResidualEnergy
from advebm_teach.teaching.exercises.mcmc import (check_acceptance_probability,
                                                  check_gwg_proposal_probs)
from advebm_teach.teaching.plots import curves_with_intervals, prediction_scatter, state_heatmaps
from advebm_teach.toy.ebm import ToyEBM, state_index
from advebm_teach.toy.kernel import gwg_kernel, stationary_distribution

task = make_task("course")
plm = load_pretrained("plm").double()  # float64 on the CPU: the numbers below hold on any machine
energies = {"mean (paper's Algorithm-1 energy)": load_pretrained("energy_adv").double(),
            "lm_nll (improved Algorithm-1 energy)": load_pretrained("energy_improved").double()}

# %% [markdown]
# ## 1. One score, three uses
#
# Notebook 05 pruned the attack's candidates with a first-order estimate; it is the same number
# HotFlip (Ebrahimi et al., 2018) ranks flips with. Position $i$'s embedding is
# $e_i = W_{x_i}$, a row of the embedding table $W$, and $g_i = \nabla_{e_i} E(x)$. Replacing
# $x_i$ by $v$ moves $e_i$ by $W_v - W_{x_i}$, so to first order the energy falls by
#
# $$\hat\Delta(x)[i, v] = g_i \cdot (W_{x_i} - W_v) \;(+\, \text{an exact term}),$$
#
# where the bracket is the exact change of a read-out that scores the tokens themselves (the
# likelihood read-out `lm_nll` scores the answer digits as its targets, and its log-probabilities
# are linear in a one-hot target). One forward and one backward pass give $\hat\Delta$ for every
# position and every token at once (`saliency.first_order_scores`). Three methods use it:
#
# * **HotFlip** and the attack's pruning: keep the substitutions with the largest $\hat\Delta$,
#   then evaluate them exactly;
# * **Gibbs-with-Gradients**: *draw* one substitution $(i, v)$, $v \ne x_i$, with probability
#   $q(i, v \mid x) \propto \exp(\hat\Delta(x)[i, v] / 2)$, then accept or reject it (section 3);
# * **discrete Langevin (DMALA)**: at every position at once, draw $v$ with probability
#   $\propto \exp(\hat\Delta(x)[i, v]/2 - [v \ne x_i]/\beta)$; a small step size $\beta$ keeps most
#   positions as they are.
#
# All three trust $\hat\Delta$ to point at good substitutions. How far can it be trusted?
#
# ## 2. How good is the first-order score? Measured
#
# For each sequence and each of its 16 × 9 = 144 single digit substitutions, the predicted fall
# $\hat\Delta$ against the true fall $\Delta = E(x) - E(x')$ (one forward pass per substitution,
# `first_order_study.substitution_effects`). Two numbers per sequence, over the substitutions at
# one group of positions: **Spearman's $\rho$**, the correlation of the ranks of $\hat\Delta$ and
# $\Delta$ (1: the same order; 0: unrelated), and **top-1**, whether the substitution $\hat\Delta$
# ranks first is the one that lowers $E$ most. By chance, top-1 is 1/54 at the answer's 6 digits
# and 1/90 at the operands' 10. First the picture for 16 $P_{LM}$ samples under the likelihood
# read-out:

# %%
# NBVAL_IGNORE_OUTPUT
samples = sample_lm(plm, task, pick(48, 16), seed=80)
data = task.sample(pick(48, 16), seed=81)
effects = substitution_effects(energies["lm_nll (improved Algorithm-1 energy)"], task,
                               samples[:16])
for group, positions in (("answer", task.c_positions),
                         ("operand", [*task.a_positions, *task.b_positions])):
    keep = effects.candidates[:, positions]
    prediction_scatter(effects.predicted[:, positions][keep].tolist(),
                       effects.actual[:, positions][keep].tolist(),
                       f"lm_nll read-out, {group} digits: first-order estimate against the truth",
                       "first-order estimate of the fall", "true fall E(x) - E(x')").show()

# %% [markdown]
# At the answer digits the points lie along the diagonal; at the operand digits they form a
# cloud. Now both read-outs, on $P_{LM}$ samples and on data (true sums), 48 sequences each:

# %%
print(f"{'read-out':<38}{'sequences':<13}{'digits':<10}{'Spearman':>9}{'top-1':>7}"
      f"{'chance':>8}")
for name, model in energies.items():
    for label, tokens in (("P_LM samples", samples), ("true sums", data)):
        quality = first_order_quality(model, task, tokens)
        for group in ("answer", "operands"):
            row = quality[group].summary()
            print(f"{name:<38}{label:<13}{group:<10}{row['spearman']:>9.2f}{row['top1']:>7.2f}"
                  f"{row['chance_top1']:>8.3f}")

# %% [markdown]
# What the table says:
#
# * **The likelihood read-out's answer digits are ranked almost perfectly.** Most of $E$'s change
#   when an answer digit changes is that digit's own term of the negative log-likelihood, and that
#   term is linear in the one-hot target: $\hat\Delta$ gets it exactly. Only what the new digit
#   changes *downstream* (the later answer digits' predictions) is a first-order estimate.
# * **The operand digits are ranked barely better than chance, under both read-outs.** Writing
#   $v$ in place of $x_i$ is not a small move: $W_v - W_{x_i}$ is as long as the embeddings
#   themselves, far outside the region where the tangent plane at $e_i$ describes $E$. And
#   addition makes it worse: whether a new operand digit is good depends on the answer digit
#   below it and on the carry, an interaction ("this digit *and* that one"), not a sum of
#   separate effects. A first-order score is a sum of separate effects, one per position, so it
#   cannot express it. The scalar `mean` read-out has no exact term at all, and ranks even the
#   answer digits far from perfectly.
# * The rank correlations are much the same on $P_{LM}$ samples and on true sums: they are the
#   energy's shape, not the sequences'. One number moves: the scalar read-out's top-1 at the
#   answer falls to chance on true sums. There every substitution makes the sum wrong, and the
#   true best is only the least bad of many similar rises in energy, a near-tie the first-order
#   score cannot break.
#
# For the attack this costs little where it evaluates all 9 candidates at a position exactly; it
# costs candidates where it prunes on $\hat\Delta$ (notebook 05), and it costs a sampler its
# acceptance rate, which section 3 measures.
#
# ## 3. MCMC with gradient proposals: the principled cousin of the attack
#
# The attack moves each sequence to the lowest energy it can find nearby, so where it ends
# depends on how greedy it is. A sampler instead draws sequences with probability
# $p(x) = e^{-U(x)} / Z$: it may step uphill, and how often it goes where is fixed by $U$ alone.
# On the course's energy the distribution to draw from is the **residual model**
# $p(x) \propto P_{LM}(x)\, e^{-E(x)/\tau}$, i.e. $U(x) = E(x)/\tau - \log P_{LM}(x)$
# (`ResidualEnergy`; $\tau = 1$ is the model Residual-EBM training fits; a small temperature $\tau$
# concentrates $p$ on the minima of $E$).
#
# A gradient-informed sampler proposes $x'$ from $q(x' \mid x)$, built from $\hat\Delta(x)$, and
# accepts it with the **Metropolis–Hastings** probability
#
# $$\min\big(1, r\big), \qquad r = \frac{p(x')\, q(x \mid x')}{p(x)\, q(x' \mid x)}, \qquad
# \log r = U(x) - U(x') + \log q(x \mid x') - \log q(x' \mid x).$$
#
# With this $r$, the probability flow from $x$ to $x'$ is
# $p(x)\, q(x' \mid x) \min(1, r) = \min\big(p(x)\, q(x' \mid x),\; p(x')\, q(x \mid x')\big)$,
# the same as the flow back: **detailed balance**. Summed over $x$, it says that one step from $p$
# gives $p$ again, so $p$ is where the chain settles, however rough $\hat\Delta$ is. $\hat\Delta$
# decides only how fast the chain gets there. The reverse term $q(x \mid x')$ needs
# $\hat\Delta(x')$, one more gradient pass, which GWG and DMALA pay on every step (`mcmc.py`
# counts it).
#
# ### Exercise 08.1
#
# Write GWG's proposal for one sequence: given the scores `scores` $\hat\Delta$ of shape $(T, V)$
# ($V = |\mathcal{V}|$), the tokens $x$ of shape $(T,)$ and a mask `allowed` $(T, V)$ of the
# substitutions the task permits, return the $(T, V)$ tensor of probabilities
# $q(i, v \mid x) = \exp(\hat\Delta[i, v]/2) / \sum_{(j, w)} \exp(\hat\Delta[j, w]/2)$, the sum
# over the allowed $(j, w)$ with $w \ne x_j$, and 0 at every other $(i, v)$ (the current tokens
# included). It must work for scores in the thousands. The checker compares it with a Python loop
# over every $(i, v)$, and names the usual mistakes.

# %%
def gwg_proposal_probs(scores: torch.Tensor, tokens: torch.Tensor,
                       allowed: torch.Tensor) -> torch.Tensor:
    """q(i, v | x) = softmax over the allowed (i, v) with v != x_i of d[i, v] / 2, 0 elsewhere:
    scores (T, V), tokens (T,), allowed (T, V) bool -> (T, V)."""
    # your code here
    raise NotImplementedError


check_gwg_proposal_probs(gwg_proposal_probs)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Set the logits $d/2$ to $-\infty$ where a move is not allowed and at each position's current
# token (indexing with `torch.arange(T)` and `tokens` picks one entry per row), flatten the
# $(T, V)$ logits into one vector, take one softmax over it (which subtracts the maximum for
# you), and reshape back. One softmax per position would be DMALA's proposal, not GWG's.
#
# </details>
#
# ### Exercise 08.2
#
# Write the acceptance probability of a batch of proposals: given $U(x)$, $U(x')$,
# $\log q(x' \mid x)$ (forward) and $\log q(x \mid x')$ (reverse), each of shape $(B,)$, return
# $\min(1, r)$ with $r$ as above, shape $(B,)$. It must hold for $\log r$ of $\pm 1600$. The
# checker compares it with Python floats and names the usual mistakes.

# %%
def acceptance_probability(energy: torch.Tensor, proposed_energy: torch.Tensor,
                           forward_log_q: torch.Tensor,
                           reverse_log_q: torch.Tensor) -> torch.Tensor:
    """min(1, r), log r = U(x) - U(x') + log q(x | x') - log q(x' | x); all (B,)."""
    # your code here
    raise NotImplementedError


check_acceptance_probability(acceptance_probability)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Compute $\log r$ first, then $\min(1, r) = \exp(\min(\log r, 0))$: clamping the logarithm at 0
# before exponentiating never forms $e^{1600}$. Which of the two $q$ terms has the plus sign?
# The move back, from $x'$ to $x$.
#
# </details>
#
# ### Detailed balance, seen
#
# The toy of notebook 01 has $3^4 = 81$ states, so one GWG step can be written down exactly: the
# $81 \times 81$ matrix $M[x, y]$ = probability of moving from $x$ to $y$ (`toy.kernel.gwg_kernel`,
# built from the same proposal and ratio the sampler runs). Each point below is one pair of
# neighbouring states: the flow $p(x) M[x, y]$ against the flow back $p(y) M[y, x]$. With the MH
# ratio as written, every point lies on the diagonal. With the $q$ terms dropped from $r$ (as if
# the proposal were symmetric, which a gradient-informed proposal is not), they scatter:

# %%
# NBVAL_IGNORE_OUTPUT
toy = ToyEBM(3, 4, seed=0, hidden=8)
with torch.no_grad():  # a toy with clear modes (as the samplers' tests use)
    toy.hidden_weight.mul_(2.0)
    toy.out_weight.mul_(3.0)
    p = toy.distribution()
kernels = {"MH ratio as written": gwg_kernel(toy),
           "q terms dropped": gwg_kernel(toy, symmetric_ratio=True)}
for name, kernel in kernels.items():
    flow = p[:, None] * kernel
    pairs = torch.triu(torch.ones_like(flow, dtype=torch.bool), diagonal=1) & (kernel > 0)
    prediction_scatter(flow[pairs].tolist(), flow.T[pairs].tolist(),
                       f"GWG on the toy, {name}: flow x → y against flow y → x",
                       "p(x) M[x, y]", "p(y) M[y, x]").show()

# %%
for name, kernel in kernels.items():
    settled = stationary_distribution(kernel)
    print(f"{name:<20}: the chain settles at total variation "
          f"{float((settled - p).abs().sum() / 2):.3f} from p")

# %% [markdown]
# Exactly $p$ with the ratio as written (0 up to rounding); a sixth of the probability mass in
# the wrong places without its $q$ terms. Long chains show the same thing by simulation: 500
# chains of each sampler from uniform starts, 200 steps, the last 150 of each chain pooled,
# against the exact $p$ (states in `toy.all_states` order, one heatmap row per first symbol):

# %%
# NBVAL_IGNORE_OUTPUT
starts = torch.randint(0, 3, (500, 4), generator=torch.Generator().manual_seed(0))
drawn = {"exact p": p.tolist()}
for name, sampler in (("GWG", gibbs_with_gradients), ("DMALA", discrete_langevin)):
    trace = sampler(toy, toy.sequences, starts, pick(200, 60), seed=1, keep_trace=True).trace
    visits = torch.bincount(state_index(trace.tokens[50:].flatten(0, 1), 3), minlength=81)
    drawn[name] = (visits / visits.sum()).tolist()
    tv = float((visits / visits.sum() - p).abs().sum() / 2)
    print(f"{name}: total variation {tv:.3f} from p (the samplers' tests require < 0.05)")
state_heatmaps(drawn, 3, 4, "Where 500 chains spend their time, against the exact p").show()

# %% [markdown]
# So much for correctness. Speed is another matter: a sampler is only as good as the moves it
# accepts, and section 2 says its proposals are poorly informed at the operand digits. On the
# course's energy, 100 chains of each sampler from $P_{LM}$ samples, 20 steps, on the residual
# model at $\tau = 1$ (DMALA's step size $\beta$ as the study below uses for each read-out):

# %%
for (name, model), step_size in zip(energies.items(), (0.2, 0.05)):
    residual = ResidualEnergy(model, plm, task, temperature=1.0)
    for sampler, options in ((gibbs_with_gradients, {}),
                             (discrete_langevin, {"step_size": step_size})):
        chains = sampler(residual, task, samples[: pick(100, 16)], pick(20, 5), seed=2,
                         **options)
        moved = (chains.states != samples[: pick(100, 16)]).any(dim=1).float().mean()
        print(f"{name:<38}{sampler.__name__:<22}accepted {chains.acceptance_rate:4.0%}, "
              f"sequences moved {moved:4.0%}")

# %% [markdown]
# Under the scalar read-out both samplers accept most of their proposals and nearly every chain
# moves. Under the likelihood read-out, whose energy is sharp around the sequences $P_{LM}$ and
# the energy agree on, GWG accepts a few percent, and DMALA's acceptances are mostly proposals
# that change nothing (at $\beta = 0.05$ most positions keep their token): few of its chains
# moved at all. A rejected proposal still
# costs its two passes. That is the trade the paper points at: an attack always moves (it takes
# the best candidate it evaluated), a sampler moves only when the move is consistent with $p$.
#
# ## 4. Negatives at equal cost: the comparison the paper motivates
#
# `advebm-teach bench negatives` runs Algorithm 1's training four ways, per seed and per family,
# from one BCE baseline trained on that seed's data: its negatives are the $P_{LM}$ samples
# themselves (BCE continued: the control), the family's attack (Algorithm 1), or GWG or DMALA
# chains started at the $P_{LM}$ samples on the current residual model, each negative given the
# same **budget of energy evaluations**. An attack step evaluates the current sequence and the 9
# other digits at the salient position (10 evaluations); a chain step evaluates one proposal, so
# the attack's 2 steps match 19 chain steps. Every trained energy then generates by
# sample-then-search from the same 100 $P_{LM}$ samples: the attack, or a sampler run as a search
# at the low temperature $\tau = 0.25$, each judged after 10, 20 and 50 evaluations per
# sequence. Two families, as in the reproduction: the paper's scalar read-out with its greedy
# attack, where spurious modes exist, and the likelihood read-out with the tabu attack, the
# control. The shipped results (5 seeds, full protocol; the command, protocol and timings are in
# the file):

# %%
study = load_result("negatives")
protocol, budgets = study["protocol"], [str(b) for b in study["protocol"]["budgets"]]
top = budgets[-1]
print(f"{study['command']}: {len(study['seeds'])} seeds, {study['wall_s'] / 60:.0f} minutes on "
      f"{study['threads']} CPU threads; training attack {protocol['attack_steps']} steps = "
      f"{study['chain_steps']} chain steps per negative")
for family, methods in study["summary"].items():
    print(f"\n{family} family ({study['families'][family]['head']} read-out): correctness after "
          f"the attack search, mean [95 % interval] over seeds")
    print(f"{'negatives':<14}" + "".join(f"{b + ' evaluations':>22}" for b in budgets)
          + f"{'training s':>12}")
    for method, row in methods.items():
        cells = "".join(f"{m:>10.3f} [{lo:.2f}, {hi:.2f}]"
                        for m, lo, hi in (row["attack"]["correctness"][b]["interval"]
                                          for b in budgets))
        print(f"{LABELS[method]:<14}{cells}{row['train_seconds'][0]:>12.0f}")
    spurious = methods["plm"]["attack"]["spurious"][top]["interval"][0]
    print(f"at {top} evaluations: spurious modes in {spurious:.2f} of the outputs of the energy "
          f"trained on P_LM samples; paired by seed against it:")
    for method in list(methods)[1:]:
        mean, low, high, ahead = methods[method]["attack"]["correctness"][top]["versus_plm"]
        spurious = methods[method]["attack"]["spurious"][top]
        print(f"  {LABELS[method]:<13} correctness {mean:+.3f} [{low:+.3f}, {high:+.3f}], ahead "
              f"in {ahead} of {len(study['seeds'])} seeds; spurious modes "
              f"{spurious['interval'][0]:.2f}, "
              "{:+.3f} [{:+.3f}, {:+.3f}]".format(*spurious["versus_plm"][:3]))

# %%
# NBVAL_IGNORE_OUTPUT
x = [int(b) for b in budgets]
paper, control = study["summary"]["paper"], study["summary"]["control"]


def band(cell: dict) -> tuple[list[float], list[float], list[float]]:
    """(means, lows, highs) over the budgets of one metric of one search."""
    return tuple([cell[b]["interval"][k] for b in budgets] for k in range(3))


curves_with_intervals(x, {f"negatives: {LABELS[m]}": band(row["attack"]["correctness"])
                          for m, row in paper.items()},
                      "Paper family: correctness after the attack search",
                      "energy evaluations per sequence").show()
energy_names = {"plm": "BCE energy", "attack": "Algorithm-1 energy"}
curves_with_intervals(x, {f"{energy_names[m]}, {how} search": band(paper[m][how]["spurious"])
                          for m in energy_names for how in SEARCHES},
                      "Paper family: spurious modes reached by each search",
                      "energy evaluations per sequence", "fraction of spurious modes").show()
curves_with_intervals(x, {f"{how} search": band(control["plm"][how]["correctness"])
                          for how in SEARCHES},
                      "Control family (lm_nll): correctness of each search, BCE energy",
                      "energy evaluations per sequence").show()

# %% [markdown]
# The searches, compared on the same energies and seeds (paired by seed: sampler minus attack), and
# what each costs:

# %%
for energy in ("plm", "attack"):
    for budget in budgets[2:]:
        attack = paper[energy]["attack"]["spurious"][budget]["values"]
        line = "; ".join(
            "{} {:+.3f} [{:+.3f}, {:+.3f}]".format(
                how, *paired_difference(paper[energy][how]["spurious"][budget]["values"],
                                        attack)[0])
            for how in SEARCHES[1:])
        print(f"paper family, {energy_names[energy]}, {budget} evaluations: "
              f"spurious modes, sampler - attack: {line}")
for family, methods in study["summary"].items():
    seconds = {how: methods["plm"][how]["seconds"][0] for how in SEARCHES}
    acceptance = {how: methods["plm"][how]["acceptance"][0] for how in SEARCHES[1:]}
    print(f"{family} family: search seconds for 100 sequences x {top} evaluations: "
          + ", ".join(f"{how} {t:.1f}" for how, t in seconds.items())
          + "; chains accept " + ", ".join(f"{how} {a:.1%}" for how, a in acceptance.items()))
train = {m: paper[m]["train_seconds"][0] for m in paper}
print("paper family, seconds per fine-tuning: " + ", ".join(
    f"{LABELS[m]} {t:.0f}" for m, t in train.items()))

# %% [markdown]
# What the comparison says.
#
# **As negatives for training** (paper family, first table and figure), all three ways of moving
# the $P_{LM}$ samples help, by the same amount (the per-method intervals overlap widely, since
# seeds differ much more than methods do; paired by seed, the differences are clear): given 20
# energy evaluations per negative, the attack, GWG chains and DMALA chains each raise correctness
# after the attack search by about +0.03 over continuing BCE, paired intervals above 0, in 4 or 5
# of 5 seeds. The attack-trained energy has the fewest spurious modes left (0.44 of its outputs,
# against 0.56 for BCE continued, 0.51 and 0.55 for the chains), though with 5 seeds no paired
# interval on that excludes 0. The chains pay for the same evaluations with ten times the gradient
# passes and a pass of $P_{LM}$ each: a fine-tuning takes about 4 times as long.
#
# **As searches** (second figure, and the lines above), the attack reaches spurious modes sooner:
# at 20 evaluations (2 attack steps against 19 chain steps) the samplers at $\tau = 0.25$ leave
# 0.08–0.11 fewer of their outputs in spurious modes (on the Algorithm-1 energy both paired
# intervals are below 0; on the BCE energy they reach just past 0). But at 50 evaluations the
# samplers have caught up: no difference remains. Fifty steps is not a long
# chain. Each evaluation costs a chain far more than it costs the attack, whose 9 candidates go
# through one batched forward pass: about 5 times the wall time at equal evaluations.
#
# **On the sharp energy** (control family, third figure), the samplers fail as searches: GWG
# accepts about 2 % of its proposals, DMALA under 0.1 %, and after 50 evaluations they reach
# correctness 0.33 and 0.25 where the tabu attack reaches 0.75. The first-order score is good at
# the answer digits (section 2), but the likelihood energy is so peaked that almost any move is
# a large step uphill, which MH rejects; the attack evaluates its 9 candidates exactly and always
# takes the best. There are no spurious modes to find, and which negatives trained the energy
# changes nothing (the fine-tuning's learning rate, $10^{-5}$, is the reproduction's).
#
# So the paper's claim holds in part. Attacks are *cheaper*: per evaluation and per second they
# reach low-energy sequences sooner, and on a sharp energy a gradient-informed sampler barely
# moves. But on the paper's own energy, MCMC with gradient proposals reached the spurious modes
# within 50 steps, and its samples served as negatives as well as the attack's did. The attack's
# advantage is speed, not access to places MCMC cannot reach; what MCMC offers in exchange is a
# known target distribution.

# %% [markdown]
# ## Summary
#
# * HotFlip, the attack's pruning, GWG and DMALA all rest on one first-order score,
#   $\hat\Delta(x)[i, v] = g_i \cdot (W_{x_i} - W_v)$ (plus the exact term of a read-out that
#   scores the tokens), from one forward and one backward pass.
# * Measured over every single substitution, it ranks the likelihood read-out's answer digits
#   almost perfectly and the operand digits barely above chance: a token swap is a long jump in
#   embedding space, and addition's digits interact, which no first-order score can express.
# * A gradient-informed sampler proposes from $\hat\Delta$ and corrects with the
#   Metropolis–Hastings ratio $r = p(x') q(x \mid x') / (p(x) q(x' \mid x))$; detailed balance then
#   makes $p$ its stationary distribution however rough $\hat\Delta$ is (exactly, on the toy's
#   $81 \times 81$ kernel), and without the $q$ terms it settles elsewhere. $\hat\Delta$ sets only
#   how fast it mixes.
# * A poor $\hat\Delta$ makes a sampler slow where it makes an attack merely suboptimal: rejected
#   proposals cost their passes and move nothing.
# * At equal energy evaluations, Algorithm 1's negatives from the attack, from GWG chains or from
#   DMALA chains improve the paper's energy by the same amount (+0.03 correctness, paired by
#   seed); the attack costs a quarter of the chains' time and leaves the fewest spurious modes
#   (a difference 5 seeds cannot yet confirm).
# * As a search, the attack reaches the spurious modes sooner (at 20 evaluations), but samplers
#   at a low temperature catch up by 50; on the sharp likelihood energy they barely move. The
#   paper's case for attacks is their cost, not that MCMC cannot reach what they find.

# %% [markdown]
# ## References
#
# - Xuwang Yin (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training*. Preprint, 14 November 2023 (Algorithm 1; the claim about gradient-based sampling
#   in section 1).
# - Will Grathwohl, Kevin Swersky, Milad Hashemi, David Duvenaud, Chris Maddison (2021). *Oops I
#   Took A Gradient: Scalable Sampling for Discrete Distributions*. ICML 2021, arXiv:2102.04509
#   (Gibbs-with-Gradients; code `wgrathwohl/GWG_release`).
# - Ruqi Zhang, Xingchao Liu, Qiang Liu (2022). *A Langevin-like Sampler for Discrete
#   Distributions*. ICML 2022, arXiv:2206.09914 (discrete Langevin, DULA and DMALA; code
#   `ruqizhang/discrete-langevin`).
# - Javid Ebrahimi, Anyi Rao, Daniel Lowd, Dejing Dou (2018). *HotFlip: White-Box Adversarial
#   Examples for Text Classification*. ACL 2018, arXiv:1712.06751 (the first-order flip score).
# - Giacomo Zanella (2020). *Informed Proposals for Local MCMC in Discrete Spaces*. Journal of
#   the American Statistical Association 115(530) (locally balanced proposals, the
#   $\exp(d/2)$ weighting GWG uses).
# - W. Keith Hastings (1970). *Monte Carlo Sampling Methods Using Markov Chains and Their
#   Applications*. Biometrika 57(1) (the acceptance ratio with an asymmetric proposal).
# - Yuntian Deng, Anton Bakhtin, Myle Ott, Arthur Szlam, Marc'Aurelio Ranzato (2020). *Residual
#   Energy-Based Models for Text Generation*. ICLR 2020, arXiv:2004.11714 (the residual model
#   $P_{LM}(x)\, e^{-E(x)}$).
