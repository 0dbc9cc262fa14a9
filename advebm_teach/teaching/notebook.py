"""What the course's setup cell calls: the same in every notebook, on Colab, Binder or a laptop."""

from __future__ import annotations

import sys

import plotly.io as pio
import torch

from ..config import fast_mode, pick_device

#: How to get a GPU on Colab, said when a notebook runs there without one.
COLAB_GPU_HINT = "on Colab: Runtime > Change runtime type > T4 GPU, then run again"


def on_colab() -> bool:
    """True inside a Google Colab kernel (its ``google.colab`` module is loaded at start-up)."""
    return "google.colab" in sys.modules


def gpu_status(device: torch.device) -> str:
    """Whether the notebooks' device is a GPU, and which; off a GPU on Colab, how to get one."""
    if device.type == "cuda":
        return f"GPU in use: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU in use: Apple MPS"
    return f"no GPU ({COLAB_GPU_HINT})" if on_colab() else "no GPU: running on the CPU"


def setup_notebook() -> str:
    """Enable Colab's widget manager (on Colab), pick a plotly renderer, and return a status line:
    the device the notebooks use (``pick_device()``), the torch version, whether a GPU is in use,
    and the mode (full or fast).

    Off Colab the renderer is ``plotly_mimetype``: JupyterLab draws it from its installed
    extension, nothing is fetched from a CDN, and the saved notebook carries no copy of plotly.js.
    """
    if on_colab():
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
        pio.renderers.default = "colab"
    else:
        pio.renderers.default = "plotly_mimetype"
    device = pick_device()
    mode = "fast (ADVEBM_FAST=1: small sizes)" if fast_mode() else "full"
    return (f"device: {device} · torch {torch.__version__} · {gpu_status(device)} · "
            f"mode: {mode}")
