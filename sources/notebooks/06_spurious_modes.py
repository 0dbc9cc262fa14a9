# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#   jupytext:
#     formats: notebooks///ipynb,sources/notebooks///py:percent
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
# # 06 · Spurious modes: the sequences that fool a residual energy
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/06_spurious_modes.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/06_spurious_modes.ipynb) · or locally, `advebm-teach lab`
#
# A **Residual EBM** (Deng et al., 2020; Bakhtin et al., 2021) corrects a language model with an
# energy: $P_\theta(x) = P_{LM}(x)\,e^{-E_\theta(x)}/Z_\theta$. It is the paper's baseline. Its
# energy is fine-tuned as a *classifier*: low energy on real sequences, high energy on samples
# from $P_{LM}$, with the binary cross-entropy (**BCE**) loss; this is noise-contrastive
# estimation with $P_{LM}$ as the noise. It generates by **importance resampling**: draw $n$
# sequences from $P_{LM}$ and keep one with probability $\propto e^{-E_\theta}$. So the energy is
# only ever trained, and only ever used, on what $P_{LM}$ proposes. This notebook asks what the
# energy does *everywhere else*, which is where the discrete attack goes looking.

# %% [markdown]
# **Learning goals.** By the end you can
# 1. measure how well a BCE-trained residual energy separates data from $P_{LM}$ samples
#    (accuracy and ROC AUC);
# 2. find its **spurious modes** with the tabu attack (wrong sums that it scores as *better than
#    real data*) and count them (Exercise 06.1);
# 3. read correctness falling while the energy falls as the signature of a spurious mode;
# 4. explain, with the paper's condition $\mathrm{Supp}(P_{LM}) = \mathrm{Supp}(P_{data})$ and
#    with numbers, why importance resampling almost never meets these sequences and why the
#    attack does (Exercise 06.2);
# 5. judge, from a stored experiment, whether the embedding-space adversarial training of
#    notebooks 03–04 removes them.
#
# **Prerequisites.** Notebook 00 (the addition task, $P_{LM}$, the Transformer energy and its
# `mean` read-out, correctness); notebook 01 (the Gibbs distribution $e^{-E}/Z$); notebook 02
# (importance sampling and its self-normalised form, SNIS; NCE); notebook 05 (the discrete
# attack: saliency, the best digit at the most salient position, the greedy attack's stall and
# the tabu list). Section 7 reads a result about FGM, PGD, FreeAT, YOPO, FreeLB, SMART and ALUM
# (notebooks 03–04). Python: boolean masks and reductions on tensors. Maths: medians,
# probabilities. Symbols as in the [notation](../docs/notation.md) table.

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

from advebm_teach import (load_pretrained, load_pretrained_record, make_task, pick_device,
                          sample_lm)
from advebm_teach.attack import DiscreteAttack
from advebm_teach.experiments.perturb_study import first_spurious_step
from advebm_teach.experiments.shipping import load_result
from advebm_teach.sampling import energies_of, lm_log_prob, resample_from_pool
from advebm_teach.teaching.exercises.spurious import check_count_spurious, check_pick_probability
from advebm_teach.teaching.plots import curves_by_step, energy_histograms

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)
energy_model = load_pretrained("energy_bce").to(device)  # seed 0 of `advebm-teach reproduce`
record = load_pretrained_record("energy_bce")
n = 300
data = task.sample(n, seed=1)                  # real sums, never seen in training
proposals = sample_lm(plm, task, n, seed=2)    # what P_LM proposes
print(f"energy read-out: {energy_model.head!r}; trained by {record['command']!r} "
      f"(seed {record['seed']})")
print(f"P_LM samples: average correctness {task.correctness(proposals).mean():.2f}")

# %% [markdown]
# ## 1. The classifier works
#
# The energy was fine-tuned on 1,000 real sums against 1,000 $P_{LM}$ samples with the logistic
# loss $\mathrm{softplus}(E(x^+)) + \mathrm{softplus}(-E(x^-))$, so its logit for "data" is
# $-E(x)$ and $E(x) < 0$ reads "data". On fresh sequences of both kinds it should tell them
# apart. Two measures: the accuracy of the sign of $E$, and the **ROC AUC** (the area under the
# receiver operating characteristic curve), which here is the probability that a random real sum
# gets a lower energy than a random $P_{LM}$ sample: 1 separates perfectly, 0.5 is chance. It is
# computed by counting, over all $300 \times 300$ pairs, those in the right order.

# %%
energy_data = energies_of(energy_model, data)
energy_proposals = energies_of(energy_model, proposals)
accuracy = 0.5 * ((energy_data < 0).float().mean() + (energy_proposals > 0).float().mean())
auc = (energy_data[:, None] < energy_proposals[None, :]).float().mean()  # pairs in order
print(f"accuracy of the sign of E: {accuracy:.2f}    ROC AUC: {auc:.2f}")
print(f"median energy: real sums {energy_data.median():.1f}, "
      f"P_LM samples {energy_proposals.median():.1f}")

# %% [markdown]
# ## 2. The attack finds sequences it likes better than data
#
# Now attack the $P_{LM}$ samples with notebook 05's attack: at each step, change one digit, at
# the most salient position, to the digit of lowest energy. The paper's greedy attack stalls when
# the best digit at the most salient position is the current one; the tabu attack skips such a
# position and keeps moving, so it is the sharper probe of what the energy has learnt. Both only
# ever lower the energy. The last column is the share of samples whose energy is below the
# median energy of the real sums.

# %%
steps = 20
traces = {"greedy (paper)": DiscreteAttack(energy_model, task, steps).attack(proposals),
          "tabu": DiscreteAttack(energy_model, task, steps, tabu=True).attack(proposals)}


def correctness_by_step(trace) -> torch.Tensor:
    """(S+1,): the average correctness of the attacked sequences after each step."""
    return task.correctness(trace.tokens.flatten(0, 1)).view(trace.steps + 1, -1).mean(dim=1)


median_data = energy_data.median()
print(f"{'S':>3} | {'correctness':>21} | {'mean energy':>21} | {'below the median real sum':>25}")
for s in (0, 1, 2, 5, 10, 20):
    columns = [[correctness_by_step(t)[s].item() for t in traces.values()],
               [t.energy[s].mean().item() for t in traces.values()],
               [(t.energy[s] < median_data).float().mean().item() for t in traces.values()]]
    print(f"{s:>3} | " + " | ".join(f"{column[0]:10.2f} {column[1]:10.2f}" for column in columns))
print("each column: greedy, tabu")

# %% [markdown]
# Read the table row by row. The first step or two fix an obviously wrong digit and correctness
# rises. From there the tabu attack keeps lowering the energy, soon far **below** that of real
# sums, while correctness falls: the sequences the energy rates best are wrong sums. These are
# **spurious modes**: low energy, no data there. The greedy attack stalls after a few steps, on
# most samples, before it gets there: stalling hides the spurious modes rather than avoiding
# them.

# %%
# NBVAL_IGNORE_OUTPUT
attacked = traces["tabu"]
curves_by_step({"average correctness": correctness_by_step(attacked).tolist()},
               title="Tabu attack on the BCE energy: correctness per step",
               yaxis="average correctness")

# %% [markdown]
# Correctness peaks after a step or two and then drifts down for the remaining steps: each later
# edit buys energy, not correctness.

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({"attacked P_LM samples": attacked.energy.mean(dim=1).tolist(),
                "real sums (median, not attacked)": [median_data.item()] * (steps + 1)},
               title="...while the mean energy falls below that of real sums", yaxis="energy")

# %% [markdown]
# The mean energy of the attacked samples crosses the real sums' median within a few steps and
# keeps falling, with no sign of levelling off at the data's energy.

# %% [markdown]
# ## 3. Counting spurious modes
#
# To count them we need a precise rule. Here, as in the experiment of section 7, an attacked
# sequence is a **spurious mode** when
# * it is not a correct sum: its correctness is below 1 (at least one answer digit is wrong for
#   its own $a$ and $b$), and
# * its energy is strictly below the median energy of held-out true sums; the median is taken as
#   `torch.median` takes it: the middle value, the lower of the two middle ones when the number
#   of true sums is even.

# %% [markdown]
# ### Exercise 06.1
# Write `count_spurious(energy, correctness, data_energy)`: `energy` and `correctness` have one
# entry per attacked sequence (shape `(B,)`), `data_energy` one per true sum (shape `(M,)`);
# return the number of spurious modes among the attacked sequences, as an `int`.

# %%
def count_spurious(energy: torch.Tensor, correctness: torch.Tensor,
                   data_energy: torch.Tensor) -> int:
    """#{k : correctness_k < 1 and E_k < median(data_energy)}, the lower median when M is even."""
    # your code here
    raise NotImplementedError


check_count_spurious(count_spurious)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Two conditions, each a boolean tensor of shape (B,); combine them with "and", then count the
# True entries. NumPy's median averages the two middle values; the rule above does not.
# </details>

# %% [markdown]
# The library applies the same rule along a whole attack (`first_spurious_step`): for each
# sample, whether it ever became a spurious mode, and after how many steps (0: it already was
# one before the attack). A stricter bar is a wrong sum with an energy below *every* real sum.

# %%
lowest_data = energy_data.min()
print(f"{'':15s} {'below the median real sum':>32} {'below every real sum':>22}")
for name, trace in traces.items():
    found, first = first_spurious_step(trace, task, float(median_data))
    below_all, _ = first_spurious_step(trace, task, float(lowest_data))
    print(f"{name:15s} {int(found.sum()):>7} of {n}, first after {first[found].float().mean():.1f}"
          f" steps {int(below_all.sum()):>14} of {n}")
print(f"before any step: {int((first == 0).sum())} of the {n} P_LM samples already count")
found_tabu = found  # the samples the tabu attack turned into spurious modes

# %% [markdown]
# A few $P_{LM}$ samples count before any edit: the classifier's own mistakes (its ROC AUC is
# below 1). The tabu attack turns almost every sample into a spurious mode within a few steps,
# and over a quarter of them end below every one of the 300 real sums; the greedy attack, stalled,
# gets just over half of them past the median and almost none past every real sum.

# %% [markdown]
# ## 4. Three populations
#
# Real sums, $P_{LM}$ samples, and the same samples after 20 steps of the tabu attack.

# %%
# NBVAL_IGNORE_OUTPUT
energy_histograms({"real sums": energy_data.tolist(), "P_LM samples": energy_proposals.tolist(),
                   f"P_LM samples attacked (S={steps})": attacked.energy[-1].tolist()},
                  title="Energies of the BCE-trained residual energy")

# %% [markdown]
# The classifier drew its line between the first two histograms (real sums left, $P_{LM}$
# samples right); the third lies to the left of the data, where the classifier was never asked
# anything.

# %% [markdown]
# ## 5. The worst spurious modes
#
# The wrong sums with the lowest energy, next to what they should have said. `log P_LM` is the
# log-probability that $P_{LM}$ writes exactly this sequence (`lm_log_prob`, in nats).

# %%
final = attacked.final
wrong = task.correctness(final) < 1
worst = wrong.nonzero().flatten()[attacked.energy[-1][wrong].argsort()[:8]]
log_p_final = lm_log_prob(plm, task, final)
a, b = final[:, task.a_positions], final[:, task.b_positions]
right = task.assemble(a, b, task.add_digits(a, b))
print(f"{'sequence (attacked)':<24} {'should be':<24} {'E':>6} {'correct':>8} {'log P_LM':>9}")
for i in worst.tolist():
    print(f"{task.decode(final[i], strip=True):<24} {task.decode(right[i], strip=True):<24} "
          f"{attacked.energy[-1, i]:6.1f} {task.correctness(final[i:i + 1]).item():8.2f} "
          f"{log_p_final[i]:9.1f}")

# %% [markdown]
# The answers are off in several digits, not one; correctness (the share of right answer
# digits, judged against the sequence's own $a$ and $b$) is 0 to 0.33. Since the attack may
# rewrite $a$ and $b$ too, the "should be" column is the sum of the operands the attack left.

# %% [markdown]
# ## 6. Why importance resampling almost never meets them
#
# Importance resampling can only return a sequence that $P_{LM}$ proposed: the residual model
# $P_\theta \propto P_{LM}\,e^{-E_\theta}$ has exactly $P_{LM}$'s support. The paper states when
# this is harmless: $P_\theta$ "can be trained to approximate the target data distribution
# $P_{data}$, given that $\mathrm{Supp}(P_{LM}) = \mathrm{Supp}(P_{data})$" (Yin, 2023, section
# 1). Then $e^{-E_\theta}$ only has to reweight sequences that are all data. How far is our
# $P_{LM}$ from that condition?

# %%
n_digits = int(task.digit_slots.sum())
n_operand_digits = len(task.a_positions) + len(task.b_positions)
print(f"digit strings of this shape: 10^{n_digits}; "
      f"true sums (Supp P_data): 10^{n_operand_digits}")
print(f"correct sums among the {n} P_LM samples: {int((task.correctness(proposals) == 1).sum())}")
print(f"log P_LM of the attacked sequences: from {log_p_final.min():.1f} to "
      f"{log_p_final.max():.1f} (finite: all of them are in Supp P_LM)")

# %% [markdown]
# A softmax never gives probability 0, so $P_{LM}$'s support is every one of the $10^{16}$ digit
# strings, a million times more than the $10^{10}$ true sums: $\mathrm{Supp}(P_{LM}) \supsetneq
# \mathrm{Supp}(P_{data})$. In practice $P_{LM}$ writes almost no correct sum at all (none of
# these 300; none of 15,000 below). For
# $P_\theta$ to equal $P_{data}$, $e^{-E_\theta}$ would have to vanish on every wrong string;
# BCE only asks for high energy on the wrong strings $P_{LM}$ tends to write.
#
# Is a spurious mode an exotic sequence to $P_{LM}$? Compare how likely $P_{LM}$ is to write it
# with how likely it is to write its own samples:

# %%
log_p_proposals = lm_log_prob(plm, task, proposals)
log_p_spurious = log_p_final[found_tabu]
gap = log_p_proposals.median() - log_p_spurious.median()
print(f"median log P_LM: its own samples {log_p_proposals.median():.1f}, "
      f"spurious modes {log_p_spurious.median():.1f}, {gap / n_digits:.2f} nats per digit apart")

# %% [markdown]
# Not very: every particular string of 16 digits is improbable, and the attack changed only a
# few digits of each. What *is* rare among $P_{LM}$'s proposals is an energy this low. Draw a
# pool of 50 proposals for each of the 300 rows and see how many reach the energy the attack
# reaches in 20 steps, and how correct the lowest-energy proposals are:

# %%
pool = sample_lm(plm, task, n * 50, seed=3).view(n, 50, task.seq_len)
pool_energy = energies_of(energy_model, pool.flatten(0, 1)).view(n, 50)
pool_correctness = task.correctness(pool.flatten(0, 1))
attacked_median = attacked.energy[-1].median()
deep = pool_energy <= attacked_median                   # (300, 50): as low as the attack goes
lowest = pool_energy.flatten() <= pool_energy.flatten().quantile(0.02)
print(f"proposals at or below the attacked samples' median energy ({attacked_median:.1f}): "
      f"{int(deep.sum())} of {deep.numel()}; rows with at least one: {int(deep.any(dim=1).sum())}"
      f" of {n}")
print(f"correctness of proposals: all {pool_correctness.mean():.2f}, "
      f"lowest-energy 2 % {pool_correctness[lowest].mean():.2f}; "
      f"correct sums: {int((pool_correctness == 1).sum())} of {len(pool_correctness)}")

# %% [markdown]
# Among the proposals the energy means something: the lowest-energy 2 % are more often right,
# so reweighting helps; but there is no correct sum among them to find. And only a handful of
# proposals reach the energies the attack reaches.
# Importance resampling picks proposal $k$ of a row with the self-normalised weight (SNIS,
# notebook 02) $w_k \propto P_\theta(x_k)/q(x_k)$; with $q = P_{LM}$ and $P_\theta \propto
# P_{LM}\,e^{-E_\theta}$, the $P_{LM}$ factors cancel and $w_k = e^{-E_k}/\sum_j e^{-E_j}$.

# %% [markdown]
# ### Exercise 06.2
# Write `pick_probability(pool_energy, spurious)`: `pool_energy` holds the energies of $N$ rows
# of $M$ proposals (shape `(N, M)`), `spurious` marks some of them (bool, same shape). Return,
# for each row, the probability that importance resampling returns a marked proposal,
# $\sum_{k\ \mathrm{marked}} e^{-E_k} / \sum_j e^{-E_j}$ (shape `(N,)`). Energies can be large
# (the checker tries $E = -1000$): compute it without overflow.

# %%
def pick_probability(pool_energy: torch.Tensor, spurious: torch.Tensor) -> torch.Tensor:
    """(N,): sum over marked k of exp(-E_k) / sum_j exp(-E_j), row by row."""
    # your code here
    raise NotImplementedError


check_pick_probability(pick_probability)

# %% [markdown]
# <details><summary>Hint</summary>
#
# $e^{1000}$ is infinite in floating point. Subtracting the row's lowest energy from every energy
# changes no ratio and leaves every exponent at or below 0; a softmax over the negated energies
# does this for you.
# </details>
#
# With your function, `pick_probability(pool_energy, deep).mean()` is the probability that a
# resampled sequence is as low as the attack's median. The library's sampler
# (`resample_from_pool`) estimates the same by drawing, 20 draws for each row:

# %%
generator = torch.Generator().manual_seed(4)
draws = torch.stack([resample_from_pool(pool, pool_energy, 50, generator) for _ in range(20)])
draw_energy = energies_of(energy_model, draws.flatten(0, 1))
print(f"resampled sequences as low as the attack's median: "
      f"{int((draw_energy <= attacked_median).sum())} of {draw_energy.numel()}")
resampled_correctness = task.correctness(draws.flatten(0, 1)).mean()
print(f"correctness: importance resampling (n=50) {resampled_correctness:.2f}, "
      f"tabu attack (S={steps}) {task.correctness(final).mean():.2f}, "
      f"P_LM {task.correctness(proposals).mean():.2f}")

# %% [markdown]
# **Why.** The BCE objective shapes $E_\theta$ only where its two samples are: real sums and
# $P_{LM}$'s proposals. Importance resampling uses $E_\theta$ only there too, so what the energy
# does elsewhere never matters to it, and is never corrected. It improves on $P_{LM}$, but it
# cannot return a correct sum $P_{LM}$ does not write, and it lands on the energy's deepest
# spurious modes only as often as $P_{LM}$ happens to propose one. The attack walks one digit at
# a time, guided by the energy itself, to energies that almost no proposal reaches, and at those
# energies the sequences are wrong: the energy's extrapolation beyond what it was trained on. A
# sampler that follows the energy (the attack, MCMC) finds these places; a sampler that only
# reweights $P_{LM}$ rarely does.
#
# **Algorithm 1's idea** (the next notebook): make the attacked sequences the negatives. Each
# batch, attack $P_{LM}$ samples with the *current* energy and push the energy up where the
# attack lands. The spurious modes the attack finds are exactly the ones the training then
# removes.

# %% [markdown]
# ## 7. Does embedding-space adversarial training remove them?
#
# Notebooks 03–04 made a classifier robust by training it against perturbations of its
# embeddings (FGM, PGD, FreeAT, YOPO, FreeLB) or against virtual adversaries (SMART, ALUM). Does
# that help here? The stored experiment behind `advebm-teach bench perturb` answers it over 5
# seeds: per seed, train the BCE energy (`baseline`), then fine-tune a copy with each strategy
# for 4 more epochs (`clean` continues without an adversary: the control). Each energy is judged
# on held-out sequences by its accuracy under a 10-step embedding-space PGD attack (the L2 ball
# of radius $\epsilon = 0.05$ it was trained in), and by the tabu attack on 100 wrong $P_{LM}$
# samples: the share it turns into a spurious mode (the rule of Exercise 06.1) within 15 steps,
# and after how many steps (16 for a sample it never turns). The suffix `-3` is $K = 3$ (PGD's
# inner steps, FreeAT's replays of a batch, FreeLB's ascent steps); `YOPO-3-3` is 3 full passes,
# each followed by 3 cheap updates of $\delta$.

# %%
results = load_result("perturb")
runs = results["runs"]
print(f"{len(results['seeds'])} seeds; each cell: mean over seeds [lowest, highest seed]")
print(f"{'strategy':<37}{'accuracy under PGD':>21}{'spurious found':>21}{'steps to it':>19}")
for name, run in runs.items():
    cells = [(sum(v) / len(v), min(v), max(v)) for v in
             (run["pgd_accuracy"], run["spurious_found"], run["steps_to_spurious"])]
    print(f"{name:<37}" + "".join(f"{m:>9.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in cells))

# %% [markdown]
# The strategies that perturb each sequence's embeddings (FGSM, FGM, PGD-3, FreeAT-3, YOPO-3-3,
# FreeLB-3) raise the accuracy under PGD from `clean`'s 0.24 to between 0.36 and 0.55; yet after
# every strategy the tabu attack still turns 96–99 % of the wrong samples into spurious modes, in
# about as many steps as after `clean`. Embedding-space adversaries explore a small ball around
# each training sequence; spurious modes are other token sequences, whole digit swaps away.

# %% [markdown]
# **Questions.**
# 1. Which digits did the tabu attack edit on its way to the spurious modes: the operands' or the
#    answer's? Count it from `attacked.position` and `attacked.changed`, and see which answer
#    digits end wrong with `task.digit_correct(final)`. What does that say about what the `mean`
#    read-out learnt?
# 2. Re-run section 2 with `positions="answer"` (the attack may only change the answer). Are
#    there still spurious modes? Why might the paper attack every digit?
# 3. Importance resampling with $n \to \infty$ samples $P_{LM}(x)e^{-E(x)}/Z$ exactly. Would that
#    distribution put weight on the spurious modes? Use the numbers of section 6 (how rare such
#    energies are among proposals, and how much $e^{-E}$ favours them) to argue how much.
# 4. The embedding-space adversaries of section 7 move each sequence's embeddings by at most
#    $\epsilon = 0.05$ (L2 over the whole sequence). How far does one digit swap move them? Take
#    two digits $u, v$ and compute $\lVert W_v - W_u \rVert$ with the energy's embedding table
#    `energy_model.token_embedding.weight`.
#
# Model answers are in `solutions/06_spurious_modes.ipynb`.

# %% [markdown]
# ## Summary
#
# * A BCE-trained residual energy separates real sums from $P_{LM}$ samples well (accuracy
#   about 0.9, ROC AUC above 0.9), and among $P_{LM}$'s proposals a low energy does mean "more
#   often right".
# * Off those proposals it is wrong: the tabu attack lowers the energy of wrong sums below that
#   of real sums, even below every real sum, while their correctness falls. These are spurious
#   modes, and counting them needs a precise rule (wrong, and below the real sums' median).
# * The greedy attack stalls before it finds most of them; a stall hides spurious modes, it does
#   not remove them.
# * Importance resampling can only return what $P_{LM}$ proposes; the paper's condition
#   $\mathrm{Supp}(P_{LM}) = \mathrm{Supp}(P_{data})$ fails by a factor of a million here, and
#   the energies the attack reaches are rare among the proposals, so resampling almost never
#   meets the deepest spurious modes and training on $P_{LM}$'s samples never corrects them.
# * Embedding-space adversarial training makes the classifier robust in embedding space but
#   leaves the spurious modes where they are. Putting the discrete attack inside training is
#   Algorithm 1.

# %% [markdown]
# ## References
#
# - Xuwang Yin (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training*. Preprint, 14 November 2023 (the paper this course reproduces; section 1 states the
#   support condition, section 3.2 the Residual-EBM baseline).
# - Yuntian Deng, Anton Bakhtin, Myle Ott, Arthur Szlam, Marc'Aurelio Ranzato (2020). *Residual
#   Energy-Based Models for Text Generation*. ICLR 2020, arXiv:2004.11714.
# - Anton Bakhtin, Yuntian Deng, Sam Gross, Myle Ott, Marc'Aurelio Ranzato, Arthur Szlam (2021).
#   *Residual Energy-Based Models for Text*. Journal of Machine Learning Research 22(40); first
#   as *Real or Fake? Learning to Discriminate Machine from Human Generated Text*,
#   arXiv:1906.03351 (2019), the study the paper cites for spurious modes.
# - Michael Gutmann, Aapo Hyvärinen (2010). *Noise-contrastive estimation: A new estimation
#   principle for unnormalized statistical models*. AISTATS 2010.
# - Ian J. Goodfellow, Jonathon Shlens, Christian Szegedy (2015). *Explaining and Harnessing
#   Adversarial Examples*. ICLR 2015, arXiv:1412.6572 (FGSM).
# - Takeru Miyato, Andrew M. Dai, Ian Goodfellow (2017). *Adversarial Training Methods for
#   Semi-Supervised Text Classification*. ICLR 2017, arXiv:1605.07725 (FGM).
# - Aleksander Madry, Aleksandar Makelov, Ludwig Schmidt, Dimitris Tsipras, Adrian Vladu (2018).
#   *Towards Deep Learning Models Resistant to Adversarial Attacks*. ICLR 2018, arXiv:1706.06083
#   (PGD).
# - Ali Shafahi, Mahyar Najibi, Amin Ghiasi, Zheng Xu, John Dickerson, Christoph Studer, Larry S.
#   Davis, Gavin Taylor, Tom Goldstein (2019). *Adversarial Training for Free!* NeurIPS 2019,
#   arXiv:1904.12843 (FreeAT).
# - Dinghuai Zhang, Tianyuan Zhang, Yiping Lu, Zhanxing Zhu, Bin Dong (2019). *You Only Propagate
#   Once: Accelerating Adversarial Training via Maximal Principle*. NeurIPS 2019,
#   arXiv:1905.00877 (YOPO).
# - Chen Zhu, Yu Cheng, Zhe Gan, Siqi Sun, Tom Goldstein, Jingjing Liu (2020). *FreeLB: Enhanced
#   Adversarial Training for Natural Language Understanding*. ICLR 2020, arXiv:1909.11764.
# - Haoming Jiang, Pengcheng He, Weizhu Chen, Xiaodong Liu, Jianfeng Gao, Tuo Zhao (2020).
#   *SMART: Robust and Efficient Fine-Tuning for Pre-trained Natural Language Models through
#   Principled Regularized Optimization*. ACL 2020, arXiv:1911.03437.
# - Xiaodong Liu, Hao Cheng, Pengcheng He, Weizhu Chen, Yu Wang, Hoifung Poon, Jianfeng Gao
#   (2020). *Adversarial Training for Large Neural Language Models*. arXiv:2004.08994 (ALUM).
