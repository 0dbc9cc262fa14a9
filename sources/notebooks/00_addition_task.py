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
# # 00 · The addition task, P_LM and the energy model
#
# Run it: [Colab](https://colab.research.google.com/github/advebm-teach/advebm-teach/blob/main/notebooks/00_addition_task.ipynb) · [Binder](https://mybinder.org/v2/gh/advebm-teach/advebm-teach/main?urlpath=lab/tree/notebooks/00_addition_task.ipynb) · or locally, `advebm-teach lab`
#
# The paper this course reproduces (Yin 2023, *Learning Locally and Globally Optimized Sequence
# Structure via Adversarial Training*) asks how to make a text generator respect a rule that spans
# the whole sequence. It tests its ideas on one synthetic task where the rule is exact and cheap to
# check: writing down correct sums. This notebook builds that task, its metric, and the two models
# the rest of the course works with: **P_LM**, a small language model that writes sequences left to
# right, and an **energy model**, a network that gives a whole sequence one score.
#
# **Learning goals.** By the end you can
# 1. write a sequence of the task as token ids and score it with the paper's *correctness* metric
#    (and say why the paper's printed example is not a valid sum);
# 2. explain what a *locally normalised* language model is, compute its log-probability of a
#    sequence as a sum of per-token terms, and read its training curves (early stopping);
# 3. connect the shape of a per-digit correctness chart to the *carry chain* of addition;
# 4. say what an *energy* and a *globally normalised* model are, and see a first energy rank right
#    sums above wrong ones where P_LM cannot.
#
# **Prerequisites.** Nothing from the course. Python (functions, lists, loops), PyTorch basics
# (tensors, indexing, `torch.log_softmax`, calling a model), and the idea of a softmax and of a
# training / held-out split. Symbols and terms are in the course's [notation](../docs/notation.md)
# table.
#
# Every notebook starts with the same setup cell. On Colab it installs the course package and turns
# on Colab's widget manager; on Binder and on your own machine it only imports. Run it first. It
# also names the device the course runs its models on: a GPU if there is one (CUDA, or Apple's
# MPS), else the CPU. The next cell keeps it as `device`, and every model is moved there
# (`model.to(device)`). The course's models move the tokens they are given to their own device,
# so the data can stay on the CPU; what a model computes stays on its device (`.cpu()` brings it
# back).

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

from advebm_teach import (LSTMLanguageModel, load_pretrained, load_pretrained_record, make_task,
                          pick_device, sample_lm)
from advebm_teach.config import TrainConfig
from advebm_teach.sampling import copy_rate, lm_log_prob
from advebm_teach.task import AdditionTask
from advebm_teach.teaching.exercises.task import (check_answer_digits, check_carries,
                                                  check_correctness, check_sequence_log_prob)
from advebm_teach.teaching.plots import per_position_bars, training_curves
from advebm_teach.trainer import train_lm

device = pick_device()  # the device the setup cell named: every model goes there

# %% [markdown]
# ## 1. The task
#
# A sequence is `a + b = c`, most significant digit first, with `c = a + b` written with one digit
# more than `a` and `b` (the first `c` digit is the final carry, 0 or 1). Each symbol is one token,
# and the sequence is wrapped in `<bos>` … `<eos>` (begin and end of sequence). The digits are the
# token ids 0–9, so a sequence is a row of small integers. The paper uses 10 digits; the course
# uses 5, so that everything trains on a laptop CPU (`docs/pretraining.md` says why, with
# measurements).

# %%
task = make_task("course")
print(task, "· sequence length:", task.seq_len)
print("vocabulary:", task.vocab)
examples = task.sample(4, seed=0)
for text in task.decode(examples, strip=True):
    print(text)
print("token ids of the first one:", examples[0].tolist())
print("positions of a:", list(task.a_positions), "· of b:", list(task.b_positions),
      "· of c:", list(task.c_positions))

# %% [markdown]
# **Correctness** (the paper's metric) is the fraction of the `c` digits that equal the true sum of
# the sequence's *own* `a` and `b`. Change one answer digit and one of six digits is wrong; a
# sequence that is not even well formed (a digit where `+` belongs, say) scores 0. A model is
# judged by its **average correctness** over many sequences it writes.

# %%
right = task.decode(examples[0], strip=True)
one_wrong = right[:-1] + str((int(right[-1]) + 1) % 10)
malformed = right.replace("+", "7")
for text in (right, one_wrong, malformed):
    tokens = task.encode(text)
    print(f"{text}  correctness {task.correctness(tokens).item():.3f}  "
          f"well formed: {task.is_well_formed(tokens).item()}")

# %% [markdown]
# The paper prints this 10-digit example. Check it yourself: it is not a valid sum, read either
# way.

# %%
paper_task = make_task("paper")
paper_example = paper_task.encode("4680156823+2390922645=07332265161")
print("correctness of the paper's example:",
      round(paper_task.correctness(paper_example).item(), 3))
print("4680156823 + 2390922645 =", 4680156823 + 2390922645)

# %% [markdown]
# ### Exercise 00.1
# Write `answer_digits(a, b, n_digits)`: the `n_digits + 1` digits of `a + b`, most significant
# first, as a string (`answer_digits(12, 39, 2) == "051"`). The checker compares it with Python's
# own addition on carry-chain edge cases and random numbers of 1 to 12 digits.

# %%
def answer_digits(a: int, b: int, n_digits: int) -> str:
    """The n_digits + 1 digits of c = a + b, most significant first, zero-padded."""
    # your code here
    raise NotImplementedError


check_answer_digits(answer_digits)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Python's integers add exactly; a string method pads a number on the left with zeros to a width.
# </details>

# %% [markdown]
# ### Exercise 00.2
# Write the paper's metric from token ids: `correctness(tokens, task)` takes a batch `(B, T)` of
# well-formed sequences and returns `(B,)` floats, row b's fraction of answer digits
#
# $$\text{correctness}(x) = \frac{1}{n+1}\,\#\{ i : c_i = \text{digit } i \text{ of } a + b \},$$
#
# for the `a` and `b` written **in the same row**. Read the digits with `task.a_positions`,
# `task.b_positions` and `task.c_positions` (your `answer_digits` may help); do not call
# `task.correctness` or `task.digit_correct`. The checker scores 1-, 5- and 10-digit batches that
# hold true sums, the carry-chain extremes and the wrong answers models write, against
# `task.correctness`, and names the batch row where you differ.

# %%
def correctness(tokens: torch.Tensor, task: AdditionTask) -> torch.Tensor:
    """(B,) floats: the fraction of each row's n+1 answer digits that equal the digits of a + b
    for that row's own a and b (tokens: (B, T) well-formed sequences)."""
    # your code here
    raise NotImplementedError


check_correctness(correctness)

# %% [markdown]
# <details><summary>Hint</summary>
#
# A plain loop over the rows is fine: turn the row into a list of ints, join the a digits into one
# integer and the b digits into another, and compare their sum's digits with the c digits one by
# one. Divide the count of matches by n+1 and return the results as a float tensor.
# </details>

# %% [markdown]
# ## 2. P_LM: a locally normalised language model
#
# **P_LM** is the paper's language model: a one-layer LSTM (embedding 256, hidden 256) that writes
# a sequence left to right. It factorises the probability of a whole sequence into next-token
# probabilities,
#
# $$P_{LM}(x) = \prod_{t=1}^{T-1} p(x_t \mid x_{<t}), \qquad
# \log P_{LM}(x) = \sum_{t=1}^{T-1} \log p(x_t \mid x_{<t}),$$
#
# where each factor is a softmax over the vocabulary of the logits the LSTM writes after reading
# $x_0 \dots x_{t-1}$ (positions are counted from 0, as in the code: $x_0$ is `<bos>`). Such a
# model is **locally normalised**: every factor sums to 1 over the next token, so the product is a
# probability over whole sequences with no further work, and sampling is easy (draw one token at a
# time). The price is that each decision is taken once, from the prefix alone: the model never
# looks back at a finished sequence.
#
# P_LM is trained on only **1,000** sequences (the paper's Table 1) by maximising that likelihood,
# i.e. minimising the mean next-token negative log-likelihood (the paper's eq. 7), with 1,000 more
# held out. After each epoch the trainer measures the held-out loss and keeps the epoch where it
# was lowest; it stops when 20 epochs in a row (its *patience*) bring no new lowest. This is
# **early stopping**. The run below is the one that made the course's shipped P_LM: the same data,
# seed and settings (about half a minute).

# %%
train_data = task.sample(1_000, seed=1)
heldout = task.sample(1_000, seed=2)
torch.manual_seed(0)
live_plm = LSTMLanguageModel(task.vocab_size).to(device)
plm_training = TrainConfig(epochs=150, batch_size=32, lr=1e-3, weight_decay=0.05, patience=20)
live_result = train_lm(live_plm, train_data, heldout, plm_training, progress=False)
plm_record = load_pretrained_record("plm")
print(f"this run:    kept epoch {live_result.best_epoch} of {len(live_result.history)}, "
      f"held-out loss {live_result.history[live_result.best_epoch - 1]['val_loss']:.3f}")
print(f"shipped run: kept epoch {plm_record['metrics']['best_epoch']} of "
      f"{plm_record['metrics']['epochs_run']}, "
      f"held-out loss {plm_record['metrics']['heldout_loss']:.3f}  ({plm_record['command']})")

# %%
# NBVAL_IGNORE_OUTPUT
training_curves(live_result.history, title="P_LM: training vs held-out loss",
                best_epoch=live_result.best_epoch)

# %% [markdown]
# The training loss falls every epoch. The held-out loss falls fast for three epochs, then slowly,
# and is lowest at epoch 9 (dotted line); it stays about flat, wobbling by 0.01, until epoch 16,
# then climbs while the training loss keeps falling: the LSTM is memorising its 1,000 sequences
# instead of learning what they share. Twenty epochs after the best one the run stops (epoch 29),
# and the weights of epoch 9 are kept.
#
# From here on we use the shipped P_LM, the weights of that run. Decoding is **constrained**: the
# format tokens (`<bos>`, `+`, `=`, `<eos>`) are forced and only digits may be drawn where digits
# go, so every sample is well formed and correctness measures arithmetic alone. We also count how
# many samples are verbatim copies of the training set (a memorising model copies).

# %%
plm = load_pretrained("plm").to(device)
n_samples = 2_000
plm_samples = sample_lm(plm, task, n_samples, seed=10)
print(f"P_LM: average correctness {task.correctness(plm_samples).mean():.2f} over {n_samples} "
      f"samples; exact copies of its training set: {copy_rate(plm_samples, train_data):.1%}")
for text, score in zip(task.decode(plm_samples[:6], strip=True),
                       task.correctness(plm_samples[:6])):
    print(f"  {text}   correctness {score:.2f}")

# %% [markdown]
# ### Exercise 00.3
# Write `sequence_log_prob(lm, tokens, task)`: $\log P_{LM}(x)$ of each row of a batch `(B, T)` of
# well-formed sequences, as the constrained sampler draws them. With $\ell_{t-1}$ the logits
# `lm(tokens)[:, t - 1]` (written after reading $x_0 \dots x_{t-1}$, they score $x_t$),
#
# $$\log P_{LM}(x) = \sum_{t \,\in\, \text{digit slots}}
#   \log \operatorname{softmax}_{\text{digits}}(\ell_{t-1})[x_t],$$
#
# the softmax taken over the 10 digits only (token ids 0–9, `task.digit_ids`); the forced format
# tokens have probability 1 and add nothing. `task.digit_slots` is a `(T,)` boolean mask of the
# digit positions. Return `(B,)` floats; do not call `sampling.lm_log_prob`. The checker compares
# your numbers with P_LM read one token at a time, as the sampler reads it, and recognises the
# usual slips. Its tokens may be on the CPU while `lm` is on `device`: move the tokens to the
# model's device (`next(lm.parameters()).device`) before you combine them with its logits.

# %%
def sequence_log_prob(lm: torch.nn.Module, tokens: torch.Tensor,
                      task: AdditionTask) -> torch.Tensor:
    """(B,): log P_LM(x) under constrained sampling, the sum over the digit slots t of
    log softmax over the digits of lm(tokens)[:, t - 1], taken at x_t."""
    # your code here
    raise NotImplementedError


check_sequence_log_prob(sequence_log_prob, plm, task)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Take the logits once for the whole batch, drop the last position (it scores nothing) and keep
# only the ten digit columns; a log-softmax over the last axis then gives log-probabilities of
# every digit at every position. Pick out the one of the token actually written with gather,
# using the tokens shifted by one; then keep the digit slots (the mask shifted by one as well) and
# sum. Clamp the targets to at most 9 before gathering so the format tokens do not index outside
# the ten columns: they are dropped by the mask anyway.
# </details>

# %% [markdown]
# The library's version is `sampling.lm_log_prob`. How likely does P_LM find true sums, compared
# with its own samples? A model that drew each of the 16 digits uniformly at random would give
# every well-formed sequence $16 \log(1/10) \approx -36.8$.

# %%
true_sums = task.sample(n_samples, seed=12)
log_p_true, log_p_samples = lm_log_prob(plm, task, true_sums), lm_log_prob(plm, task, plm_samples)
print(f"median log P_LM of {n_samples} true sums: {log_p_true.median():.1f} "
      f"(lowest {log_p_true.min():.0f}); of its own samples: {log_p_samples.median():.1f}")

# %% [markdown]
# P_LM finds true sums barely less likely than its own (mostly wrong) samples: its probability
# says little about whether a sum is right. It does give every true sum a probability above 0 (a
# softmax is never exactly 0), which matters when P_LM is corrected later in the course.
#
# ## 3. Where a left-to-right model fails: the carry chain
#
# Which answer digits does P_LM get right? Each `c` digit is `a_i + b_i` plus the carry coming from
# the right, and that carry can depend on *every* column to its right (think of 4999 + 5001).

# %%
plm_per_position = task.digit_correct(plm_samples).float().mean(0)
c_labels = [task.position_labels()[i] for i in task.c_positions]
print("P_LM correctness per answer digit:",
      ", ".join(f"{label} {value:.2f}" for label, value in zip(c_labels, plm_per_position)))

# %% [markdown]
# The leading digit (the final carry) is mostly right: it is 1 exactly when `a + b` overflows,
# which the two leading digits nearly decide. The other digits are barely above chance (0.1): to
# write `c_i`, the LSTM would have to pair `a_i` with `b_i`, n+1 tokens apart, and add the incoming
# carry, and 1,000 examples are not enough for that. Its samples look right *locally* (digits where
# digits go) and are wrong *globally* (they are not sums).
#
# ### Question 00.a
# The last answer digit, `c1 = (a1 + b1) mod 10`, needs no carry at all, yet P_LM is at chance on
# it. What does that say about what the LSTM failed to learn? And why is the leading digit `c6`
# so much easier? (A model answer is in the solutions notebook.)

# %% [markdown]
# ### Exercise 00.4
# Write `carries(a_digits, b_digits)`: the carry *out of* each column, most significant first
# (`carries([4, 9, 9, 9], [5, 0, 0, 1]) == [1, 1, 1, 1]`: 4999 + 5001 = 10000 carries out of every
# column). Notice what the leftmost carry depends on.

# %%
def carries(a_digits: list[int], b_digits: list[int]) -> list[int]:
    """The carry (0 or 1) out of each column of a + b, most significant column first."""
    # your code here
    raise NotImplementedError


check_carries(carries)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Addition by hand starts at the rightmost column. Walk the columns from the right, keep the
# carry coming in, record the carry going out, and reverse the list at the end.
# </details>

# %% [markdown]
# ## 4. The energy model, pre-trained as a language model
#
# The second model is a 2-layer, 4-head Transformer (width d = 128). It will become an **energy**
# $E_\theta(x)$: one real number for a whole sequence, low for sequences the model believes
# (correct sums) and high for the rest; $\theta$ are its parameters. Before that, it is pre-trained
# as a language model on 100,000 sequences (the paper's section 3.2), with the same objective as
# P_LM. With a hundred times more data, and attention, which can pair `a_i` with `b_i` directly, it
# learns to add. Here is its pre-training run (about 5 minutes, so it ships with the course instead
# of running here; re-running it gives a model of the same quality, not the same weights:
# `docs/pretraining.md`).

# %%
energy_lm = load_pretrained("energy_lm").to(device)
energy_record = load_pretrained_record("energy_lm")
print("made by:", energy_record["command"])
energy_metrics = energy_record["metrics"]
print(f"kept epoch {energy_metrics['best_epoch']} of {energy_metrics['epochs_run']} "
      f"(patience {energy_record['training']['patience']})")

# %%
# NBVAL_IGNORE_OUTPUT
training_curves(energy_record["history"], keys=("train_loss", "val_loss", "sample_correctness"),
                title="Energy model: language-model pre-training",
                yaxis="loss (nats / token) / sample correctness",
                best_epoch=energy_record["metrics"]["best_epoch"])

# %% [markdown]
# Between epochs 2 and 4 the model learns to add: its samples' correctness jumps from 0.37 to 0.98.
# At epoch 10 the training loss, the held-out loss and the sample correctness all get worse at
# once, and epoch 11 recovers: a brief instability of the optimiser, not overfitting (overfitting
# would leave the training loss falling). Early stopping with a patience of 3 had already kept
# epoch 8, so the spike never reaches the shipped weights.

# %%
energy_samples = sample_lm(energy_lm, task, n_samples, seed=11)
energy_per_position = task.digit_correct(energy_samples).float().mean(0)
energy_correctness = task.correctness(energy_samples)
print(f"the energy model's own samples: average correctness {energy_correctness.mean():.3f}, "
      f"{(energy_correctness == 1).float().mean():.1%} fully correct "
      f"(P_LM: {task.correctness(plm_samples).mean():.3f})")

# %%
# NBVAL_IGNORE_OUTPUT
per_position_bars(c_labels, {"P_LM (LSTM, 1,000 sequences)": plm_per_position.tolist(),
                             "energy model's LM (Transformer, 100,000)":
                                 energy_per_position.tolist()})

# %% [markdown]
# Per answer digit, the Transformer is right almost every time, while P_LM is right only on the
# leading carry digit `c6` and near chance (0.1) on the others.
#
# ## 5. Locally vs globally normalised
#
# P_LM is locally normalised: at every step it spreads probability 1 over the next token given the
# prefix. An **energy-based model (EBM)** scores the whole sequence at once and turns the energy
# into a probability with one normaliser for all sequences,
#
# $$P_\theta(x) = \frac{e^{-E_\theta(x)}}{Z_\theta}, \qquad
#   Z_\theta = \sum_{x'} e^{-E_\theta(x')},$$
#
# the *Gibbs distribution* of $E_\theta$. Such a model is **globally normalised**: it can judge
# global structure (does `c` equal `a + b`?), but $Z_\theta$ sums over every sequence ($10^{16}$
# well-formed ones here), and there is no left-to-right recipe to sample it. The paper's plan: draw
# from P_LM, then move the samples toward low energy.
#
# How a network turns its outputs into one energy is its **read-out**. One read-out is already
# within reach: the pre-trained model's own negative log-likelihood of the answer digits,
# $E(x) = -\sum_{i \in c} \log p_\theta(x_i \mid x_{<i})$ (the `lm_nll` read-out, before any
# fine-tuning). It reads the whole sequence, `a` and `b` included, and judges the answer against
# them. Low energy should mean a right sum, and every digit put right should lower it:

# %%
energy_lm.head = "lm_nll"
with torch.no_grad():
    energy_true = energy_lm.energy(true_sums)
    energy_plm = energy_lm.energy(plm_samples)
right_digits = task.digit_correct(plm_samples).sum(dim=1)
print(f"{'sequences':<26}{'how many':>9}{'median E (nats)':>17}{'median log P_LM':>17}")
print(f"{'true sums':<26}{n_samples:>9}{energy_true.median():>17.1f}"
      f"{log_p_true.median():>17.1f}")
for k in right_digits.unique().tolist():
    chosen = right_digits == k
    print(f"{f'P_LM, {k} of {task.n_digits + 1} digits right':<26}{int(chosen.sum()):>9}"
          f"{energy_plm[chosen].median():>17.0f}{log_p_samples[chosen].median():>17.1f}")

# %% [markdown]
# The energy falls with every answer digit put right: it scores the sequence *globally*. P_LM's
# log-probability hardly moves with the number of right digits and does not rank true sums first.
#
# Later in the course such energies *correct* P_LM: the **Residual EBM** of Deng et al. (2020) is
# $P_\theta(x) \propto P_{LM}(x)\, e^{-E_\theta(x)}$, used by drawing many P_LM samples and
# keeping the low-energy ones, and the paper edits one sample, token by token, toward lower energy.
# A product with $P_{LM}$ can only put probability where $P_{LM}$ does, so it can reach $P_{data}$
# only if P_LM's support (the sequences it gives probability above 0) covers the data's,
# $\mathrm{Supp}(P_{LM}) \supseteq \mathrm{Supp}(P_{data})$ (the paper asks for equal supports).
# Constrained sampling gives that here: every well-formed sequence has a probability above 0 under
# P_LM, true sums included, and the energy's job is to take the mass off the wrong ones.

# %% [markdown]
# ## Summary
#
# - The task is `a + b = c` as a row of token ids; **correctness** is the fraction of the n+1
#   answer digits that are right for the sequence's own `a` and `b`.
# - **P_LM** is locally normalised: $\log P_{LM}(x)$ is a sum of next-token log-probabilities
#   (over the digits only, under constrained sampling). Trained on 1,000 sequences it starts to
#   memorise them after about 15 epochs; early stopping keeps epoch 9 of the 29 it ran.
# - P_LM writes well-formed but mostly wrong sums: right on the final carry, near chance where a
#   carry must travel, and it finds true sums hardly more likely than its own wrong ones.
# - The Transformer pre-trained on 100,000 sequences adds almost perfectly; its negative
#   log-likelihood of the answer (the `lm_nll` read-out) is a first **energy**, globally normalised
#   through $Z_\theta$, and it ranks sums by how many answer digits are right.
# - A correction $P_{LM}(x) e^{-E_\theta(x)}$ can only reach the data if P_LM gives every true
#   sum a probability above 0.

# %% [markdown]
# ## References
#
# - Yin, X. (2023). *Learning Locally and Globally Optimized Sequence Structure via Adversarial
#   Training.* Manuscript, 14 November 2023 (the paper the course reproduces; its section 3 is the
#   task, Table 1 the models' training).
# - Deng, Y., Bakhtin, A., Ott, M., Szlam, A., & Ranzato, M. (2020). *Residual Energy-Based Models
#   for Text Generation.* ICLR 2020. arXiv:2004.11714.
# - Bakhtin, A., Deng, Y., Gross, S., Ott, M., Ranzato, M., & Szlam, A. (2021). *Residual
#   Energy-Based Models for Text.* Journal of Machine Learning Research 22(40).
# - Hochreiter, S., & Schmidhuber, J. (1997). *Long Short-Term Memory.* Neural Computation 9(8),
#   1735–1780 (P_LM's LSTM).
# - Vaswani, A., Shazeer, N., Parmar, N., Uszkoreit, J., Jones, L., Gomez, A. N., Kaiser, Ł., &
#   Polosukhin, I. (2017). *Attention Is All You Need.* NeurIPS 2017 (the energy model's
#   Transformer).
