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
# # Solutions · 00 The addition task, P_LM and the energy model
#
# Model solutions to the exercises of notebook 00, each checked by the same checker, and a model
# answer to its open question. Try the exercises first.

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

from advebm_teach import load_pretrained, make_task, pick_device
from advebm_teach.task import AdditionTask
from advebm_teach.teaching.exercises.task import (check_answer_digits, check_carries,
                                                  check_correctness, check_sequence_log_prob)

device = pick_device()
task = make_task("course")
plm = load_pretrained("plm").to(device)

# %% [markdown]
# ### Exercise 00.1
# `answer_digits(a, b, n_digits)`: the n+1 digits of a + b, most significant first.

# %%
# Solution to Exercise 00.1
def answer_digits(a: int, b: int, n_digits: int) -> str:
    """The n_digits + 1 digits of c = a + b, most significant first, zero-padded."""
    return str(a + b).zfill(n_digits + 1)


check_answer_digits(answer_digits)

# %% [markdown]
# ### Exercise 00.2
# `correctness(tokens, task)`: the paper's metric from token ids, each row judged against its own
# `a` and `b`. A loop over rows is the plainest way; `task.digit_correct` does the same with
# tensors (column addition with carries, all rows at once).

# %%
# Solution to Exercise 00.2
def correctness(tokens: torch.Tensor, task: AdditionTask) -> torch.Tensor:
    """(B,) floats: the fraction of each row's n+1 answer digits that equal the digits of a + b
    for that row's own a and b (tokens: (B, T) well-formed sequences)."""
    scores = []
    for row in tokens.tolist():
        a = int("".join(str(row[i]) for i in task.a_positions))
        b = int("".join(str(row[i]) for i in task.b_positions))
        truth = answer_digits(a, b, task.n_digits)
        written = [row[i] for i in task.c_positions]
        right = sum(int(digit) == token for digit, token in zip(truth, written))
        scores.append(right / (task.n_digits + 1))
    return torch.tensor(scores)


check_correctness(correctness)

# %% [markdown]
# ### Exercise 00.3
# `sequence_log_prob(lm, tokens, task)`: log P_LM(x) under constrained sampling. `logits[:, t]`
# scores $x_{t+1}$, so the scores of $x_1 \dots x_{T-1}$ are `logits[:, :-1]`, gathered at
# `tokens[:, 1:]`; the softmax is over the ten digit columns, and only digit slots count. The
# tokens go to the model's device first: its logits are there.

# %%
# Solution to Exercise 00.3
def sequence_log_prob(lm: torch.nn.Module, tokens: torch.Tensor,
                      task: AdditionTask) -> torch.Tensor:
    """(B,): log P_LM(x) under constrained sampling, the sum over the digit slots t of
    log softmax over the digits of lm(tokens)[:, t - 1], taken at x_t."""
    tokens = tokens.to(next(lm.parameters()).device)  # where the model and its logits are
    with torch.no_grad():
        logits = lm(tokens)[:, :-1, task.digit_ids]  # (B, T-1, 10): scores x_1 .. x_{T-1}
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = tokens[:, 1:].clamp(max=9)  # format tokens: any column, dropped below
    written = log_probs.gather(-1, targets[..., None]).squeeze(-1)  # (B, T-1)
    return written[:, task.digit_slots[1:]].sum(dim=1)


check_sequence_log_prob(sequence_log_prob, plm, task)

# %% [markdown]
# ### Exercise 00.4
# `carries(a_digits, b_digits)`: the carry out of each column, most significant first. Walk from
# the right, as by hand; the leftmost carry depends on every column.

# %%
# Solution to Exercise 00.4
def carries(a_digits: list[int], b_digits: list[int]) -> list[int]:
    """The carry (0 or 1) out of each column of a + b, most significant column first."""
    out, carry = [], 0
    for a, b in zip(reversed(a_digits), reversed(b_digits)):
        carry = (a + b + carry) // 10
        out.append(carry)
    return out[::-1]


check_carries(carries)

# %% [markdown]
# ### Question 00.a
# *The last answer digit, `c1 = (a1 + b1) mod 10`, needs no carry at all, yet P_LM is at chance on
# it. What does that say about what the LSTM failed to learn? And why is the leading digit `c6`
# so much easier?*
#
# **Answer.** The carry chain is not P_LM's only problem, nor its first one. To write `c1` the
# model must recall `a1` and `b1`, 13 and 7 positions earlier, and add them exactly, modulo 10;
# with 1,000 training sequences the LSTM has not learnt to pick out and combine two far-apart
# digits exactly, so even the carry-free digit is a guess (the middle digits would need the
# incoming carry on top). The leading digit `c6` is different in kind: it is 0 or 1 (a guess is
# right half the time, not a tenth), and it is a coarse threshold, "is a + b at least 100000?",
# which the sizes of `a5` and `b5` nearly decide. A rough running sense of "large digits so far"
# is enough for that, and 1,000 sequences teach it. The Transformer, whose attention can look
# straight back at `a_i` and `b_i`, learns all six digits exactly from 100,000 sequences.
