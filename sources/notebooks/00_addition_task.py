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
# # 00 · The addition task, P_LM and the energy model
#
# The paper we reproduce (Yin, *Learning Locally and Globally Optimized Sequence Structure via
# Adversarial Training*) tests its ideas on one synthetic task: writing down correct sums. This
# notebook builds that task and the two models every later notebook uses.
#
# **Learning goals.** By the end you can
# 1. write a sequence of the task, score it with the paper's *correctness* metric, and say why the
#    paper's printed example is not a valid sum;
# 2. train P_LM, the small LSTM language model, and explain why early stopping matters with 1,000 sequences;
# 3. read a per-position correctness chart and connect its shape to the *carry chain*;
# 4. say what "locally optimized" (a left-to-right model) and "globally optimized" (an energy over the
#    whole sequence) mean on this task, and see a first energy separate right sums from wrong ones.
#
# Every notebook starts with the same setup cell. On Colab it installs the course package and turns on
# Colab's widget manager; on Binder and on your own machine it only imports. Run it first.

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

from advebm_teach import LSTMLanguageModel, load_pretrained, load_pretrained_record, make_task, sample_lm
from advebm_teach.config import TrainConfig, pick
from advebm_teach.sampling import copy_rate
from advebm_teach.trainer import train_lm
from advebm_teach.teaching.exercises import check_answer_digits, check_carries
from advebm_teach.teaching.plots import per_position_bars, training_curves

# %% [markdown]
# ## 1. The task
#
# A sequence is `a + b = c`, most significant digit first, with `c = a + b` written with one digit more
# than `a` and `b` (the first `c` digit is the final carry, 0 or 1). Each symbol is one token, and the
# sequence is wrapped in `<bos>` … `<eos>`. The paper uses 10 digits; this course's configuration uses
# fewer, so that everything trains on a laptop CPU in minutes (`docs/pretraining.md` says why, with
# measurements).

# %%
task = make_task("course")
print(task, "· sequence length:", task.seq_len)
print("vocabulary:", task.vocab)
examples = task.sample(4, seed=0)
for text in task.decode(examples, strip=True):
    print(text)
print("token ids of the first one:", examples[0].tolist())

# %% [markdown]
# **Correctness** (the paper's metric) is the fraction of the `c` digits that equal the true sum of the
# sequence's *own* `a` and `b`. Change one answer digit and one of six digits is wrong; a sequence that
# is not even well formed (a digit where `+` belongs, say) scores 0.

# %%
right = task.decode(examples[0], strip=True)
one_wrong = right[:-1] + str((int(right[-1]) + 1) % 10)
malformed = right.replace("+", "7")
for text in (right, one_wrong, malformed):
    tokens = task.encode(text)
    print(f"{text}  correctness {task.correctness(tokens).item():.3f}  well formed: {task.is_well_formed(tokens).item()}")

# %% [markdown]
# The paper prints this 10-digit example. Check it yourself: it is not a valid sum, read either way.

# %%
paper_task = make_task("paper")
paper_example = paper_task.encode("4680156823+2390922645=07332265161")
print("correctness of the paper's example:", round(paper_task.correctness(paper_example).item(), 3))
print("4680156823 + 2390922645 =", 4680156823 + 2390922645)

# %% [markdown]
# ### Exercise 00.1
# Write `answer_digits(a, b, n_digits)`: the `n_digits + 1` digits of `a + b`, most significant first,
# as a string (`answer_digits(12, 39, 2) == "051"`). The checker compares it with Python's own addition.

# %%
def answer_digits(a: int, b: int, n_digits: int) -> str:
    ...  # your code here


check_answer_digits(answer_digits)

# %% [markdown]
# <details><summary>One solution</summary>
#
# `str(a + b).zfill(n_digits + 1)`
# </details>

# %%
def answer_digits(a: int, b: int, n_digits: int) -> str:
    return str(a + b).zfill(n_digits + 1)


check_answer_digits(answer_digits)

# %% [markdown]
# ## 2. P_LM: a locally normalised language model
#
# P_LM is the paper's one-layer LSTM (embedding 256, hidden 256). It factorises the probability of a
# sequence left to right, $P_{LM}(x) = \prod_t p(x_t \mid x_{<t})$, and is trained on only **1,000**
# sequences (Table 1) by maximising that likelihood (eq. 7).
#
# Train one live. With 1,000 sequences the held-out loss is lowest after a few dozen epochs and then
# climbs while the training loss keeps falling: the model starts memorising its training set. The
# trainer keeps the epoch with the best held-out loss (*early stopping*). In fast mode this is a tiny run.

# %%
train_data = task.sample(pick(1_000, 200), seed=1)
heldout = task.sample(pick(1_000, 200), seed=2)
torch.manual_seed(0)
live_plm = LSTMLanguageModel(task.vocab_size)
plm_training = TrainConfig(epochs=pick(150, 3), batch_size=32, lr=1e-3, weight_decay=0.05, patience=20)
live_result = train_lm(live_plm, train_data, heldout, plm_training, progress=False)
print(f"kept epoch {live_result.best_epoch} of {len(live_result.history)} run")

# %%
# NBVAL_IGNORE_OUTPUT
training_curves(live_result.history, title="P_LM trained live", best_epoch=live_result.best_epoch)

# %% [markdown]
# The course ships a P_LM trained exactly this way (`advebm-teach pretrain --config course`), so every
# notebook starts from the same model. Outside fast mode the live run above *is* that run: same data,
# seed and settings. On a CPU with AVX2 and 2 threads, as the shipped one was made, it ends with the
# same weights bit for bit; other CPUs (AVX-512) and thread counts round differently, and the weights
# then differ by up to about 3e-5, while the kept epoch, the held-out loss and the sample correctness
# agree to every printed digit. Its record holds the command, the seed, the training history and the
# metrics measured when it was made. Here is its full training run.

# %%
plm = load_pretrained("plm")
plm_record = load_pretrained_record("plm")
print("made by:", plm_record["command"])
print(f"kept epoch {plm_record['metrics']['best_epoch']} of {plm_record['metrics']['epochs_run']}")

# %%
# NBVAL_IGNORE_OUTPUT
training_curves(plm_record["history"], title="Shipped P_LM: training vs held-out loss",
                best_epoch=plm_record["metrics"]["best_epoch"])

# %% [markdown]
# Now sample from it. Decoding is **constrained**: the format tokens are forced and only digits may be
# drawn where digits go, so every sample is well formed and correctness measures arithmetic alone.
# We also count how many samples are verbatim copies of the training set (a memorising model copies).

# %%
n_samples = pick(2_000, 500)
plm_samples = sample_lm(plm, task, n_samples, seed=10)
plm_train = task.sample(plm_record["training"]["n_train"], seed=plm_record["data_seeds"]["plm_train"])
print(f"P_LM: average correctness {task.correctness(plm_samples).mean():.2f} over {n_samples} samples; "
      f"exact copies of its training set: {copy_rate(plm_samples, plm_train):.1%}")
for text, score in zip(task.decode(plm_samples[:6], strip=True), task.correctness(plm_samples[:6])):
    print(f"  {text}   correctness {score:.2f}")

# %% [markdown]
# ## 3. Where a left-to-right model fails: the carry chain
#
# Which answer digits does P_LM get right? Each `c` digit is `a_i + b_i` plus the carry coming from
# the right, and that carry can depend on *every* column to its right (think of 4999 + 5001).

# %%
plm_per_position = task.digit_correct(plm_samples).float().mean(0)
c_labels = [task.position_labels()[i] for i in task.c_positions]
print("P_LM correctness per answer digit:", ", ".join(f"{label} {value:.2f}" for label, value in zip(c_labels, plm_per_position)))

# %% [markdown]
# The leading digit (the final carry) is mostly right: it is 1 exactly when `a + b` overflows, which the
# two leading digits nearly decide. The other digits are barely above chance (0.1): to write `c_i`, the
# LSTM would have to pair `a_i` with `b_i`, n+1 tokens apart, and add the incoming carry, and 1,000
# examples are not enough for that. Its samples look right *locally* (digits where digits go) and are
# wrong *globally* (they are not sums).
#
# ### Exercise 00.2
# Write `carries(a_digits, b_digits)`: the carry *out of* each column, most significant first
# (`carries([4, 9, 9, 9], [5, 0, 0, 1]) == [0, 1, 1, 1]`). Notice what the leftmost carry depends on.

# %%
def carries(a_digits: list[int], b_digits: list[int]) -> list[int]:
    ...  # your code here


check_carries(carries)

# %% [markdown]
# <details><summary>One solution</summary>
#
# Walk from the right, carrying as you go, then reverse.
# </details>

# %%
def carries(a_digits: list[int], b_digits: list[int]) -> list[int]:
    out, carry = [], 0
    for a, b in zip(reversed(a_digits), reversed(b_digits)):
        carry = (a + b + carry) // 10
        out.append(carry)
    return out[::-1]


check_carries(carries)

# %% [markdown]
# ## 4. The energy model, pre-trained as a language model
#
# The energy model $E_\theta$ is a 2-layer, 4-head Transformer (d = 128). Before it becomes an energy
# it is pre-trained as a language model on 100,000 sequences (section 3.2), with the same objective as
# P_LM. With a hundred times more data and attention, which can pair `a_i` with `b_i` directly, it
# learns to add. Its pre-training curve (held-out loss, and the correctness of its own samples after
# each epoch):
#
# Unlike P_LM, re-running its pre-training does not give back the shipped weights, on any CPU: since they
# were made, the attention code multiplies $QK^\top$ by $1/\sqrt{d}$ where it divided by $\sqrt{d}$, the
# same function rounded differently in the last bit, and hundreds of steps of training amplify that. The
# re-made model is a different one of the same quality (kept epoch 11 of 12 instead of 8 of 11, held-out
# loss 1.2130 instead of 1.2132, its samples 0.998 correct instead of 0.997). Every notebook and the
# reproduction start from the shipped weights, so this changes none of their numbers.

# %%
energy_lm = load_pretrained("energy_lm")
energy_record = load_pretrained_record("energy_lm")
print("made by:", energy_record["command"])

# %%
# NBVAL_IGNORE_OUTPUT
training_curves(energy_record["history"], keys=("val_loss", "sample_correctness"),
                title="Energy model: LM pre-training", yaxis="held-out loss / sample correctness")

# %%
energy_samples = sample_lm(energy_lm, task, n_samples, seed=11)
energy_per_position = task.digit_correct(energy_samples).float().mean(0)
energy_correctness = task.correctness(energy_samples)
print(f"energy model's own samples: average correctness {energy_correctness.mean():.3f}, "
      f"{(energy_correctness == 1).float().mean():.1%} fully correct (P_LM: {task.correctness(plm_samples).mean():.3f})")

# %%
# NBVAL_IGNORE_OUTPUT
per_position_bars(c_labels, {"P_LM (LSTM, 1,000 sequences)": plm_per_position.tolist(),
                             "energy model's LM (Transformer, 100,000)": energy_per_position.tolist()})

# %% [markdown]
# ## 5. Locally vs globally optimized
#
# P_LM is *locally normalised*: at every step it spreads probability 1 over the next token given the
# prefix, and it never looks back at a finished sequence. An **energy-based model** scores the whole
# sequence at once, $p_\theta(x) \propto \exp(-E_\theta(x))$, so it can judge global structure: does
# `c` equal `a + b`? The paper's plan: draw from P_LM, then move the samples toward low energy.
#
# One energy is already within reach: the pre-trained model's own negative log-likelihood of the
# answer digits, $E(x) = -\sum_{i \in c} \log p_\theta(x_i \mid x_{<i})$ (the `lm_nll` read-out, before
# any fine-tuning). It reads the whole sequence, `a` and `b` included, and judges the answer against
# them. Low energy should mean a right sum, and every digit put right should lower it:

# %%
energy_lm.head = "lm_nll"
with torch.no_grad():
    energy_data = energy_lm.energy(task.sample(n_samples, seed=12))
    energy_plm = energy_lm.energy(plm_samples)
right_digits = task.digit_correct(plm_samples).sum(dim=1)
print(f"true sums: median energy {energy_data.median():.1f} nats")
for k in right_digits.unique().tolist():
    chosen = right_digits == k
    print(f"P_LM samples with {k} of {task.n_digits + 1} answer digits right: median energy "
          f"{energy_plm[chosen].median():.0f} ({int(chosen.sum())} samples)")

# %% [markdown]
# The energy falls with every answer digit put right: it scores the sequence *globally*. Later notebooks
# use such energies to *improve* P_LM's samples, by reweighting many samples (importance resampling, as
# Residual EBMs do) or by editing one sample, token by token, toward lower energy (the paper's
# adversarial attack). They also fine-tune scalar read-outs to tell data from P_LM samples, and show
# where those go wrong. Notebook 01 starts with the theory: what the gradient of an EBM's likelihood is,
# on a space small enough to check every number.
#
# **Summary.** The task is `a + b = c`; correctness counts right `c` digits. P_LM (1,000 sequences) writes
# well-formed but mostly wrong sums, failing where a carry must travel; the pre-trained Transformer adds
# well, and its likelihood of the answer is a first *global* energy.
