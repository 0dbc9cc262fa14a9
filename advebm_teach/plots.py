"""Pure figure builders: arrays in, ``plotly.graph_objects.Figure`` out. Widgets compose these."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

_LAYOUT = dict(template="plotly_white", height=340, margin=dict(l=60, r=20, t=50, b=50))


def training_curves(history: Sequence[Mapping[str, float]], keys: Sequence[str] = ("train_loss", "val_loss"),
                    title: str = "Training", yaxis: str = "loss (nats / token)",
                    best_epoch: int | None = None) -> go.Figure:
    """Lines of ``history[i][key]`` against epoch for each key; a dotted line marks ``best_epoch``."""
    epochs = [row["epoch"] for row in history]
    fig = go.Figure([go.Scatter(x=epochs, y=[row[k] for row in history], mode="lines+markers", name=k)
                     for k in keys if history and k in history[0]])
    if best_epoch:
        fig.add_vline(x=best_epoch, line_dash="dot", annotation_text=f"kept: epoch {best_epoch}")
    return fig.update_layout(title=title, xaxis_title="epoch", yaxis_title=yaxis, **_LAYOUT)


def per_position_bars(labels: Sequence[str], series: Mapping[str, Sequence[float]],
                      title: str = "Correctness per answer digit", yaxis: str = "fraction correct") -> go.Figure:
    """Grouped bars, one group per position label, one bar per named series (e.g. one per model)."""
    fig = go.Figure([go.Bar(x=list(labels), y=list(values), name=name) for name, values in series.items()])
    return fig.update_layout(title=title, yaxis_title=yaxis, yaxis_range=[0, 1.05], barmode="group", **_LAYOUT)
