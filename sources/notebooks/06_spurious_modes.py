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
# # 03 · Spurious modes: a residual energy that separates data from P_LM, and the sequences that fool it
#
# The Residual EBM (Deng et al., the paper's baseline) writes the model as $P_{LM}(x)\,e^{-E(x)}/Z$ and
# fine-tunes $E$ as a *classifier*: low energy on real sequences, high energy on samples from $P_{LM}$
# (binary cross-entropy, section 2.3). It generates by **importance resampling**: draw $n$ sequences from
# $P_{LM}$, keep one with probability $\propto e^{-E}$. The energy is only ever trained and used on what
# $P_{LM}$ proposes. This notebook asks what it does *everywhere else*, which is where the paper's attack
# goes looking.
#
# **Learning goals.** By the end you can
# 1. measure how well a BCE-trained residual energy separates data from $P_{LM}$ samples;
# 2. find its **spurious modes** with the discrete attack of notebook 04: wrong sums that it scores as
#    *better than real data*;
# 3. read correctness falling while the energy falls as the signature of a spurious mode;
# 4. explain, with numbers, why importance resampling never meets these sequences and why the attack does,
#    which is the paper's motivation for Algorithm 1 (notebook 05).

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
import torch

from advebm_teach import load_pretrained, load_pretrained_record, make_task, sample_lm
from advebm_teach.attack import DiscreteAttack
from advebm_teach.config import pick
from advebm_teach.teaching.plots import curves_by_step, energy_histograms
from advebm_teach.sampling import energies_of, lm_log_prob, resample_from_pool

task = make_task("course")
plm = load_pretrained("plm")
energy_model = load_pretrained("energy_bce")  # seed 0 of `advebm-teach reproduce`: the Residual-EBM baseline
record = load_pretrained_record("energy_bce")
n = pick(300, 100)
data = task.sample(n, seed=1)                  # real sums, never seen in training
proposals = sample_lm(plm, task, n, seed=2)    # what P_LM proposes
print(f"energy read-out: {energy_model.head!r}; trained with {record['command']!r} (seed {record['seed']})")
print(f"P_LM samples: average correctness {task.correctness(proposals).mean():.2f}")

# %% [markdown]
# ## 1. The classifier works
#
# The energy was fine-tuned on 1,000 real sums against 1,000 $P_{LM}$ samples with the logistic loss
# $\mathrm{softplus}(E(x^+)) + \mathrm{softplus}(-E(x^-))$, so $E(x) < 0$ reads "data". On fresh sequences
# of both kinds it should tell them apart, and it does: the accuracy of the sign, and the probability
# that a random real sum gets a lower energy than a random $P_{LM}$ sample (the ROC AUC):

# %%
energy_data, energy_proposals = energies_of(energy_model, data), energies_of(energy_model, proposals)
accuracy = 0.5 * ((energy_data < 0).float().mean() + (energy_proposals > 0).float().mean())
auc = (energy_data[:, None] < energy_proposals[None, :]).float().mean()
print(f"accuracy of the sign of E: {accuracy:.2f}    P(E(data) < E(P_LM sample)) = {auc:.2f}")
print(f"median energy: data {energy_data.median():.1f}, P_LM samples {energy_proposals.median():.1f}")

# %% [markdown]
# ## 2. The attack finds sequences it likes better than data
#
# Now attack the $P_{LM}$ samples: at each step change one digit, at the most salient position, to the
# digit of lowest energy (notebook 04). The paper's greedy attack stalls when the best digit at the most
# salient position is the current one; the tabu attack keeps moving, so it is the sharper probe of what the
# energy has learnt. Both only ever lower the energy.

# %%
steps = 20
traces = {"greedy (paper)": DiscreteAttack(energy_model, task, steps).attack(proposals),
          "tabu": DiscreteAttack(energy_model, task, steps, tabu=True).attack(proposals)}


def correctness_by_step(trace) -> torch.Tensor:
    return task.correctness(trace.tokens.flatten(0, 1)).view(trace.steps + 1, -1).mean(dim=1)


median_data = energy_data.median()
print(f"{'S':>3} | {'correctness':>22} | {'mean energy':>22} | below the median real sum")
for s in (0, 1, 2, 5, 10, 20):
    row = [(correctness_by_step(t)[s].item(), t.energy[s].mean().item(), (t.energy[s] < median_data).float().mean().item())
           for t in traces.values()]
    print(f"{s:>3} | " + " | ".join(f"{' '.join(f'{v:10.2f}' for v in column)}"
                                   for column in zip(*row)))
print("columns: greedy, tabu")

# %% [markdown]
# Read the table row by row. The first step or two fix an obviously wrong digit and correctness rises.
# From there the energy of the attacked samples keeps falling, soon far **below** that of real sums,
# while their correctness falls: the sequences the energy rates best are wrong sums. These are
# **spurious modes**: low energy, no data there. (The greedy attack stalls after a few steps, on most
# samples, before it gets there: stalling hides the spurious modes rather than avoiding them.)

# %%
# NBVAL_IGNORE_OUTPUT
attacked = traces["tabu"]
curves_by_step({"average correctness": correctness_by_step(attacked).tolist()},
               title="Tabu attack on the BCE energy: correctness per step", yaxis="average correctness")

# %%
# NBVAL_IGNORE_OUTPUT
curves_by_step({"attacked P_LM samples": attacked.energy.mean(dim=1).tolist(),
                "real sums (not attacked)": [median_data.item()] * (steps + 1)},
               title="...while the mean energy falls below that of real sums", yaxis="energy")

# %% [markdown]
# ## 3. Three populations
#
# Real sums, $P_{LM}$ samples, and the same samples after 20 attack steps. The classifier drew its line
# between the first two; the third lies beyond the data, where it was never asked anything.

# %%
# NBVAL_IGNORE_OUTPUT
energy_histograms({"real sums": energy_data.tolist(), "P_LM samples": energy_proposals.tolist(),
                   f"P_LM samples attacked (S={steps})": attacked.energy[-1].tolist()},
                  title="Energies of the BCE-trained residual energy")

# %% [markdown]
# ## 4. The worst spurious modes
#
# The wrong sums with the lowest energy, next to what they should have said. `log P_LM` is the
# log-probability that $P_{LM}$ proposes exactly this sequence (`lm_log_prob`).

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
          f"{attacked.energy[-1, i]:6.1f} {task.correctness(final[i:i + 1]).item():8.2f} {log_p_final[i]:9.1f}")
print(f"\nfor comparison: median energy of real sums {median_data:.1f}; "
      f"{(attacked.energy[-1] < median_data).float().mean():.0%} of attacked samples are below it, "
      f"{(wrong & (attacked.energy[-1] < median_data)).float().mean():.0%} are below it *and* wrong")

# %% [markdown]
# ## 5. Why importance resampling never meets them
#
# Importance resampling can only return a sequence that $P_{LM}$ proposed. Is a spurious mode an exotic
# sequence to $P_{LM}$? Compare how likely $P_{LM}$ is to write it with how likely it is to write its own
# samples (`lm_log_prob`, nats):

# %%
log_p_proposals = lm_log_prob(plm, task, proposals)
log_p_spurious = log_p_final[wrong & (attacked.energy[-1] < median_data)]
print(f"median log P_LM: its own samples {log_p_proposals.median():.1f}, spurious modes {log_p_spurious.median():.1f}, "
      f"{(log_p_proposals.median() - log_p_spurious.median()) / task.digit_slots.sum():.2f} nats per digit apart")

# %% [markdown]
# Not very: every particular sequence of 16 digits is improbable, and the attack changed only a few digits
# of each. What *is* rare among $P_{LM}$'s proposals is the combination the attack produces: an energy
# this low. Draw a large pool of proposals and see how many reach the energy the attack reaches in 20
# steps, and how correct the proposals are that do:

# %%
pool = sample_lm(plm, task, n * 50, seed=3).view(n, 50, task.seq_len)
pool_energy = energies_of(energy_model, pool.flatten(0, 1)).view(n, 50)
flat_energy, flat_correct = pool_energy.flatten(), task.correctness(pool.flatten(0, 1))
attacked_median = attacked.energy[-1].median()
reach = flat_energy <= attacked_median
lowest = flat_energy <= flat_energy.quantile(0.02)
print(f"proposals with an energy at or below the attacked samples' median ({attacked_median:.1f}): {reach.float().mean():.1%} "
      f"(one in {1 / max(reach.float().mean().item(), 1e-9):.0f})")
print(f"correctness of proposals: all {flat_correct.mean():.2f}, lowest-energy 2 % {flat_correct[lowest].mean():.2f}; "
      f"attacked samples {task.correctness(final).mean():.2f}")
print(f"rows whose attacked sample has a lower energy than all 50 of its pool's proposals: "
      f"{(attacked.energy[-1] < pool_energy.min(dim=1).values).float().mean():.0%}")
resampled = resample_from_pool(pool, pool_energy, 50, torch.Generator().manual_seed(4))
print(f"correctness: importance resampling (n=50) {task.correctness(resampled).mean():.2f}, "
      f"attack (S={steps}) {task.correctness(final).mean():.2f}, P_LM {task.correctness(proposals).mean():.2f}")

# %% [markdown]
# **Why.** The BCE objective shapes $E$ only where its two samples are: real sums and $P_{LM}$'s proposals.
# Among the proposals the energy means something: the lowest-energy ones are more often right, so
# reweighting them helps. Importance resampling uses $E$ only there, so the energy's behaviour elsewhere
# never matters to it, and is never corrected. The attack walks one digit at a time, guided by the energy
# itself, to energies that almost no proposal reaches, and at those energies the sequences it finds are
# wrong: the energy's extrapolation beyond what it was trained on. A sampler that follows the energy (the attack, MCMC, the
# model's own samples) finds these places; a sampler that only reweights $P_{LM}$ does not.
#
# **Algorithm 1's idea** (notebook 05): make the attacked sequences the negatives. Each batch, attack
# $P_{LM}$ samples with the *current* energy and push the energy up where the attack lands. The spurious
# modes the attack finds are exactly the ones the training then removes.
#
# **Questions.**
# 1. The spurious modes above are wrong in which digits: the answer, or the operands? Count it from `final`
#    with `task.digit_correct`. What does that say about what the `mean` read-out learnt?
# 2. Re-run section 2 with `positions="answer"` (the attack may only change the answer). Are there still
#    spurious modes? Why might the paper attack every digit?
# 3. Importance resampling with $n \to \infty$ samples $P_{LM}(x)e^{-E(x)}/Z$ exactly. Would that
#    distribution put weight on the spurious modes? Use the numbers of section 5 (how rare such energies
#    are among proposals, and how much $e^{-E}$ favours them) to argue how much.
