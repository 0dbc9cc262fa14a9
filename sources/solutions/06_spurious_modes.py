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
# # Solutions · 06 Spurious modes
#
# Model solutions of the exercises of `notebooks/06_spurious_modes.ipynb`, and model answers to
# its questions. Try them yourself first.

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

from advebm_teach import load_pretrained, make_task, pick_device, sample_lm
from advebm_teach.attack import DiscreteAttack
from advebm_teach.experiments.perturb_study import first_spurious_step
from advebm_teach.sampling import energies_of
from advebm_teach.teaching.exercises.spurious import check_count_spurious, check_pick_probability

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)
energy_model = load_pretrained("energy_bce").to(device)

# %% [markdown]
# ### Exercise 06.1

# %%
# Solution to Exercise 06.1
def count_spurious(energy: torch.Tensor, correctness: torch.Tensor,
                   data_energy: torch.Tensor) -> int:
    """#{k : correctness_k < 1 and E_k < median(data_energy)}, the lower median when M is even."""
    threshold = data_energy.median()  # torch.median: the lower middle value, as the rule says
    is_spurious = (correctness < 1) & (energy < threshold)  # (B,) bool
    return int(is_spurious.sum())


check_count_spurious(count_spurious)

# %% [markdown]
# ### Exercise 06.2

# %%
# Solution to Exercise 06.2
def pick_probability(pool_energy: torch.Tensor, spurious: torch.Tensor) -> torch.Tensor:
    """(N,): sum over marked k of exp(-E_k) / sum_j exp(-E_j), row by row."""
    # softmax subtracts the row's largest -E (its lowest E) before exponentiating: no overflow
    weights = torch.softmax(-pool_energy.double(), dim=1)  # (N, M), rows sum to 1
    return (weights * spurious).sum(dim=1)


check_pick_probability(pick_probability)

# %% [markdown]
# The questions use the notebook's sequences: its 300 real sums and the first 100 of its $P_{LM}$
# samples (fewer than the notebook's 300, to keep this notebook quick), attacked for 20 steps
# with the tabu list, on every digit and on the answer only.

# %%
data = task.sample(300, seed=1)
proposals = sample_lm(plm, task, 300, seed=2)[:100]
energy_data = energies_of(energy_model, data)
median_data, lowest_data = energy_data.median(), energy_data.min()
attacked = DiscreteAttack(energy_model, task, 20, tabu=True).attack(proposals)
answer_only = DiscreteAttack(energy_model, task, 20, tabu=True,
                             positions="answer").attack(proposals)
final = attacked.final

# %% [markdown]
# ### Question 1: which digits did the attack edit?

# %%
edited = attacked.position[attacked.changed]  # the position of every edit that changed a digit
for part, positions in (("a", task.a_positions), ("b", task.b_positions),
                        ("c (the answer)", task.c_positions)):
    share = torch.isin(edited, torch.tensor(list(positions))).float().mean()
    print(f"edits of {part:15s} {share:.0%}")
labels = [task.position_labels()[p] for p in task.c_positions]
wrong_before = (~task.digit_correct(proposals)).float().mean(dim=0)
wrong_after = (~task.digit_correct(final)).float().mean(dim=0)
print(f"{'answer digit':>14}" + "".join(f"{label:>6}" for label in labels))
print(f"{'wrong before':>14}" + "".join(f"{v:6.2f}" for v in wrong_before))
print(f"{'wrong after':>14}" + "".join(f"{v:6.2f}" for v in wrong_after))

# %% [markdown]
# Most edits rewrite the operands $a$ and $b$, not the answer. After the attack, the answer's
# units digit `c1` (which depends on `a1` and `b1` only) is right far more often than before,
# its middle digits stay wrong about as often as chance (9 in 10), and its leading digit `c6`,
# which $P_{LM}$ mostly got right, is often broken. So the `mean` read-out has learnt the local, easy part of
# addition (the units digit depends on two digits only) and little of the carries that the middle
# digits need; the attack buys energy by making the units digit consistent, whatever else it
# breaks. Correctness after the attack measures how consistent a whole sequence is, not whether
# $P_{LM}$'s question got the right answer.

# %% [markdown]
# ### Question 2: the answer-only attack

# %%
for name, trace in (("every digit", attacked), ("answer only", answer_only)):
    found, _ = first_spurious_step(trace, task, float(median_data))
    below_all, _ = first_spurious_step(trace, task, float(lowest_data))
    correctness = task.correctness(trace.final).mean()
    print(f"{name:12s} spurious modes {int(found.sum()):3d} of {len(proposals)}, below every "
          f"real sum {int(below_all.sum()):3d}; median energy after 20 steps "
          f"{trace.energy[-1].median():.1f}, correctness {correctness:.2f}")

# %% [markdown]
# Yes: even when it may only rewrite the answer, the attack still turns most samples into
# spurious modes (below the median real sum), so the energy prefers some wrong answers to the
# right ones for the same operands. But it reaches far less deep: almost none ends below every
# real sum. Attacking every digit lets the attack also choose the operands that suit the
# energy's taste, which is how the deepest spurious modes are found. The paper attacks every
# digit because what it wants to remove is every low-energy sequence outside
# $\mathrm{Supp}(P_{data})$, and the generation task judges whole sequences; as negatives for
# training, the deepest spurious modes are the most informative ones.

# %% [markdown]
# ### Question 3: importance resampling with $n \to \infty$
#
# With $n \to \infty$ proposals, importance resampling samples $P_\theta \propto P_{LM}\,
# e^{-E}$ exactly, and the mass $P_\theta$ puts on a region $R$ of low energy is
# $\mathbb{E}_{P_{LM}}[e^{-E}\,\mathbb{1}_R] / \mathbb{E}_{P_{LM}}[e^{-E}]$: Exercise 06.2's
# formula with all proposals in one row. Estimate it from the notebook's pool of 15,000
# proposals, for $R$ = "as low as the attack's median energy":

# %%
pool = sample_lm(plm, task, 300 * 50, seed=3)
pool_energy = energies_of(energy_model, pool)
attacked_median = attacked.energy[-1].median()
deep = pool_energy <= attacked_median
mass = pick_probability(pool_energy[None], deep[None]).item()
below_median = pick_probability(pool_energy[None], (pool_energy < median_data)[None]).item()
print(f"proposals in R (E <= {attacked_median:.1f}): {int(deep.sum())} of {len(pool)}; "
      f"estimated P_theta(R) = {mass:.2f}")
print(f"estimated P_theta(E < median real sum) = {below_median:.2f}; "
      f"correct sums in the pool: {int((task.correctness(pool) == 1).sum())}")

# %% [markdown]
# Yes, and not negligibly. Such energies are rare among proposals (about one in a thousand), but
# $e^{-E}$ favours them by a factor of thousands over a typical proposal ($E \approx -4$ against
# $E \approx 4.5$: $e^{8.5} \approx 5000$), so $P_\theta$ puts a few per cent of its mass as deep
# as the attack goes, more than resampling with $n = 50$ reaches. And since $P_{LM}$ wrote no
# correct sum in 15,000 draws, nearly all of $P_\theta$'s mass is on wrong sums anyway; most of
# it on wrong sums the energy rates better than the median real sum. The estimate rests on about
# twenty proposals and is rough, but the conclusion does not depend on its second digit: more
# proposals make resampling meet more spurious modes, not fewer. Only a better energy (or a
# better $P_{LM}$) fixes that.

# %% [markdown]
# ### Question 4: how far is one digit swap in embedding space?

# %%
table = energy_model.token_embedding.weight.detach()[:10]  # W_v for the digits v = 0..9
distances = torch.cdist(table, table)[~torch.eye(10, dtype=torch.bool)]  # (90,): u != v
print(f"||W_v - W_u|| over the 90 pairs of digits: from {distances.min():.2f} to "
      f"{distances.max():.2f}, median {distances.median():.2f}; epsilon = 0.05")

# %% [markdown]
# One digit swap moves the sequence's embeddings by $\lVert W_v - W_u \rVert$, about ten times
# the radius $\epsilon = 0.05$ of the whole ball the embedding-space adversaries search, and the
# attack makes several swaps. The adversaries of notebooks 03–04 never see a sequence a digit
# away from the data: they smooth the energy inside tiny balls, and the spurious modes lie
# outside all of them.
