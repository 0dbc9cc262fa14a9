# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Browser smoke test: an `AttackStepper` on a hand-built trace
#
# `tests/test_browser.py` converts this file to a notebook in a temporary folder, runs it in JupyterLab
# and steps the widget. The trace is built by hand (no model, no attack): the test checks the widget,
# and runs in seconds. The test runs it twice: as it is (the renderer chosen off Colab:
# FigureWidgets), and with the `parameters` cell set to `renderer = "html"` (the Colab path).

# %% tags=["parameters"]
renderer = None

# %%
import advebm_teach

print(advebm_teach.setup_notebook())

# %%
import torch

from advebm_teach import AdditionTask
from advebm_teach.trace import AttackTrace
from advebm_teach.teaching.widgets import AttackStepper

task = AdditionTask(n_digits=3)
steps, batch = 4, 2
start = task.sample(batch, seed=0)
answer = list(task.c_positions)
states = [start]
for s in range(steps):  # step s+1 adds 1 to answer digit s: each step changes the sequence
    x = states[-1].clone()
    x[:, answer[s]] = (x[:, answer[s]] + 1) % 10
    states.append(x)
generator = torch.Generator().manual_seed(0)
saliency = torch.rand(steps, batch, task.seq_len, generator=generator).round(decimals=3)
saliency[:, :, ~task.digit_slots] = -torch.inf  # format tokens are never editable
candidate_energy = torch.full((steps, batch, task.vocab_size), torch.inf)
candidate_energy[:, :, :10] = torch.rand(steps, batch, 10, generator=generator).round(decimals=3)
trace = AttackTrace(
    tokens=torch.stack(states),
    energy=torch.linspace(3.0, 1.0, steps + 1)[:, None].expand(-1, batch).clone(),
    position=torch.tensor(answer[:steps])[:, None].expand(-1, batch).clone(),
    saliency=saliency,
    candidate_energy=candidate_energy,
)

# %%
AttackStepper(trace, task, renderer=renderer)
