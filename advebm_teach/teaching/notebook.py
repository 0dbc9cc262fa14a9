"""What the course's setup cell calls: the same in every notebook, on Colab, Binder or a laptop."""

from __future__ import annotations

import sys

import plotly.io as pio

from ..config import fast_mode, pick_device


def on_colab() -> bool:
    return "google.colab" in sys.modules


def setup_notebook() -> str:
    """Enable Colab's widget manager (on Colab), pick a plotly renderer, and return a status line.

    Off Colab the renderer is ``plotly_mimetype``: JupyterLab draws it from its installed
    extension, nothing is fetched from a CDN, and the saved notebook carries no copy of plotly.js.
    """
    if on_colab():
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
        pio.renderers.default = "colab"
    else:
        pio.renderers.default = "plotly_mimetype"
    mode = "fast (ADVEBM_FAST=1: small sizes)" if fast_mode() else "full"
    return f"device: {pick_device()} · mode: {mode}"
