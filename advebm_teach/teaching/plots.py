"""Pure figure builders: arrays in, ``plotly.graph_objects.Figure`` out. Widgets compose these."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go

_LAYOUT = dict(template="plotly_white", height=340, margin=dict(l=60, r=20, t=50, b=50))


def training_curves(history: Sequence[Mapping[str, float]],
                    keys: Sequence[str] = ("train_loss", "val_loss"),
                    title: str = "Training", yaxis: str = "loss (nats / token)",
                    best_epoch: int | None = None) -> go.Figure:
    """Lines of ``history[i][key]`` against epoch for each key.

    A dotted line marks ``best_epoch``.
    """
    epochs = [row["epoch"] for row in history]
    fig = go.Figure([go.Scatter(x=epochs, y=[row[k] for row in history],
                                mode="lines+markers", name=k)
                     for k in keys if history and k in history[0]])
    if best_epoch:
        fig.add_vline(x=best_epoch, line_dash="dot", annotation_text=f"kept: epoch {best_epoch}")
    return fig.update_layout(title=title, xaxis_title="epoch", yaxis_title=yaxis, **_LAYOUT)


def per_position_bars(labels: Sequence[str], series: Mapping[str, Sequence[float]],
                      title: str = "Correctness per answer digit",
                      yaxis: str = "fraction correct") -> go.Figure:
    """Grouped bars, one group per position label, one bar per named series (e.g. per model)."""
    fig = go.Figure([go.Bar(x=list(labels), y=list(values), name=name)
                     for name, values in series.items()])
    return fig.update_layout(title=title, yaxis_title=yaxis, yaxis_range=[0, 1.05],
                             barmode="group", **_LAYOUT)


# ------------------------------------------------------------------ the attack stepper's figures
# Each builder always returns the same traces with the same keys, whatever the values, so that a
# widget can move a displayed figure to a new state by copying properties across (see
# widgets.AttackStepper).

GREEN, RED, ORANGE, GREY_BLUE = "#2ca02c", "#d62728", "#ff7f0e", "#8da0cb"


def finite_or_none(values: Sequence[float], decimals: int = 4) -> list[float | None]:
    """Floats rounded to ``decimals`` (stable outputs); ``±inf`` and NaN as None (a plotly gap)."""
    out = []
    for value in values:
        value = float(value)
        out.append(round(value, decimals) if math.isfinite(value) else None)
    return out


def saliency_heatmap(labels: Sequence[str], symbols: Sequence[str],
                     saliency: Sequence[float] | None, chosen: int | None = None,
                     title: str = "Saliency per position") -> go.Figure:
    """A one-row heatmap of ``saliency`` per position, the tokens written on the cells.

    ``labels`` name the positions (x axis, e.g. ``task.position_labels()``), ``symbols`` are the
    tokens there. ``-inf`` (a position the attack may not edit) is an empty cell; ``saliency=None``
    leaves the whole row empty (e.g. after the last step). The ``chosen`` position is outlined
    (``layout.shapes[0]``) and marked by a triangle above the row (trace 1).
    """
    labels, symbols = list(labels), list(symbols)
    if len(symbols) != len(labels):
        raise ValueError(f"symbols has {len(symbols)} entries, labels {len(labels)}: "
                         f"one symbol per position expected")
    z = [None] * len(labels) if saliency is None else finite_or_none(saliency)
    if len(z) != len(labels):
        raise ValueError(f"saliency has {len(z)} entries, labels {len(labels)}: "
                         f"one value per position expected")
    if chosen is not None and not 0 <= chosen < len(labels):
        raise ValueError(f"chosen must be a position in [0, {len(labels)}), got {chosen}")
    marker_x = [] if chosen is None else [labels[chosen]]
    fig = go.Figure([
        go.Heatmap(x=labels, y=[0], z=[z], text=[symbols], texttemplate="%{text}",
                   textfont=dict(size=16), colorscale="Blues", zmin=0,
                   colorbar=dict(title=dict(text="saliency"), len=0.9),
                   hovertemplate="%{x}: %{text}<br>saliency %{z}<extra></extra>", name="saliency"),
        go.Scatter(x=marker_x, y=[0.72] * len(marker_x), mode="markers+text",
                   text=["chosen"] * len(marker_x), textposition="top center",
                   marker=dict(symbol="triangle-down", size=14, color=RED),
                   hoverinfo="skip", showlegend=False, name="chosen"),
    ])
    # on a category axis, x = i is the i-th category: the cell spans i ± 0.5
    if chosen is not None:
        fig.add_shape(type="rect", xref="x", yref="y", x0=chosen - 0.5, x1=chosen + 0.5,
                      y0=-0.5, y1=0.5, line=dict(color=RED, width=3))
    fig.update_yaxes(range=[-0.5, 1.15], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_xaxes(type="category", showgrid=False)
    return fig.update_layout(title=title, **{**_LAYOUT, "height": 230})


def candidate_bars(symbols: Sequence[str], energies: Sequence[float] | None,
                   chosen: int | None = None, current: int | None = None,
                   title: str = "Candidate energies") -> go.Figure:
    """One bar per token: the energy of the sequence with that token at the chosen position.

    ``+inf`` (not evaluated) is a missing bar; ``energies=None`` draws none. ``chosen`` and
    ``current`` are token indices into ``symbols``: the chosen token's bar is green, the current
    token's orange (green wins when they coincide: the attack kept the token).
    """
    symbols = list(symbols)
    y = [None] * len(symbols) if energies is None else finite_or_none(energies)
    if len(y) != len(symbols):
        raise ValueError(f"energies has {len(y)} entries, symbols {len(symbols)}: "
                         f"one energy per token expected")
    for name, index in (("chosen", chosen), ("current", current)):
        if index is not None and not 0 <= index < len(symbols):
            raise ValueError(f"{name} must be a token index in [0, {len(symbols)}), got {index}")
    colors = [GREEN if i == chosen else ORANGE if i == current else GREY_BLUE
              for i in range(len(symbols))]
    fig = go.Figure([go.Bar(x=symbols, y=y, marker=dict(color=colors), name="energy",
                            hovertemplate="token %{x}: E = %{y}<extra></extra>")])
    fig.update_xaxes(type="category", title="token (green: chosen, orange: current)")
    return fig.update_layout(title=title, yaxis_title="energy E", **_LAYOUT)


def energy_line(energies: Sequence[float], step: int | None = None,
                title: str = "Energy along the attack") -> go.Figure:
    """``energies[s]`` against step s (trace 0), a marker at ``step`` (trace 1; none for None)."""
    y = finite_or_none(energies)
    if step is not None and not 0 <= step < len(y):
        raise ValueError(f"step must be in [0, {len(y) - 1}], got {step}")
    marker_x = [] if step is None else [step]
    fig = go.Figure([
        go.Scatter(x=list(range(len(y))), y=y, mode="lines+markers", name="energy",
                   line=dict(color=GREY_BLUE)),
        go.Scatter(x=marker_x, y=[y[s] for s in marker_x], mode="markers", name="this step",
                   marker=dict(size=14, color=RED, symbol="circle-open", line=dict(width=3))),
    ])
    fig.update_xaxes(title="step", dtick=1 if len(y) <= 20 else None)
    return fig.update_layout(title=title, yaxis_title="energy E", showlegend=False, **_LAYOUT)


def correctness_strip(labels: Sequence[str], correct: Sequence[bool],
                      title: str = "Answer digits") -> go.Figure:
    """One cell per answer digit, green when right and red when wrong.

    The title gives the fraction right.
    """
    labels, right = list(labels), [bool(c) for c in correct]
    if len(right) != len(labels):
        raise ValueError(f"correct has {len(right)} entries, labels {len(labels)}: "
                         f"one flag per digit expected")
    fraction = round(sum(right) / len(right), 4) if right else 0.0
    fig = go.Figure([go.Heatmap(
        x=labels, y=[0], z=[[int(r) for r in right]],
        text=[["right" if r else "wrong" for r in right]],
        texttemplate="%{text}", zmin=0, zmax=1, showscale=False,
        colorscale=[[0.0, RED], [0.5, RED], [0.5, GREEN], [1.0, GREEN]],
        hovertemplate="%{x}: %{text}<extra></extra>", xgap=2, name="correct",
    )])
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_xaxes(type="category", showgrid=False)
    return fig.update_layout(
        title=f"{title}: {sum(right)}/{len(right)} right (correctness {fraction})",
        **{**_LAYOUT, "height": 170})


# -------------------------------------------------------------- notebook 05's other figures
def token_heatmap(labels: Sequence[str], symbols: Sequence[Sequence[str]],
                  values: Sequence[Sequence[float]], title: str, value_name: str,
                  colorscale: str = "Blues") -> go.Figure:
    """One value per token as a heatmap: a row per sequence (row 0 on top), a column per position.

    ``symbols[r]`` are the tokens of sequence r, written on its cells; ``±inf`` is an empty cell.
    """
    labels = list(labels)
    if len(symbols) != len(values):
        raise ValueError(f"symbols has {len(symbols)} rows, {value_name} {len(values)}: "
                         f"one row per sequence expected")
    for r, (row_symbols, row_values) in enumerate(zip(symbols, values)):
        if len(row_symbols) != len(labels) or len(row_values) != len(labels):
            raise ValueError(f"row {r} has {len(row_symbols)} symbols and {len(row_values)} "
                             f"{value_name} values, expected {len(labels)} "
                             f"(one per position label)")
    rows = [str(r) for r in range(len(values))]
    z = [finite_or_none(row) for row in values]
    # an explicit top: with equal values plotly would centre the scale on them (e.g. -0.4 .. 0.5)
    top = max((v for row in z for v in row if v is not None), default=0.0)
    fig = go.Figure([go.Heatmap(
        x=labels, y=rows, z=z,
        text=[list(row) for row in symbols], texttemplate="%{text}", colorscale=colorscale,
        zmin=0, zmax=top if top > 0 else 1.0, colorbar=dict(title=dict(text=value_name)),
        hovertemplate=f"sequence %{{y}}, %{{x}}: %{{text}}<br>{value_name} %{{z}}<extra></extra>",
        xgap=1, ygap=1,
    )])
    fig.update_xaxes(type="category", showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", title="sequence", showgrid=False)
    return fig.update_layout(title=title, **{**_LAYOUT, "height": 120 + 32 * max(len(rows), 1)})


def saliency_grid(labels: Sequence[str], symbols: Sequence[Sequence[str]],
                  saliency: Sequence[Sequence[float]],
                  title: str = "Saliency per position") -> go.Figure:
    """Saliency per token (``-inf``, not editable: an empty cell); see ``token_heatmap``."""
    return token_heatmap(labels, symbols, saliency, title, "saliency")


def curves_by_step(curves: Mapping[str, Sequence[float]], title: str = "Along the attack",
                   yaxis: str = "value") -> go.Figure:
    """One line per named curve, ``curve[s]`` against step s (0, 1, ...); ``±inf`` is a gap."""
    fig = go.Figure([go.Scatter(x=list(range(len(values))), y=finite_or_none(values),
                                mode="lines+markers", name=name)
                     for name, values in curves.items()])
    return fig.update_layout(title=title, xaxis_title="step", yaxis_title=yaxis, **_LAYOUT)


def prediction_scatter(predicted: Sequence[float], actual: Sequence[float],
                       title: str = "Predicted vs actual",
                       xaxis: str = "predicted", yaxis: str = "actual") -> go.Figure:
    """Points ``(predicted[i], actual[i])`` (trace 0) and the diagonal y = x (trace 1), where a
    perfect prediction would lie."""
    x, y = finite_or_none(predicted), finite_or_none(actual)
    if len(x) != len(y):
        raise ValueError(f"predicted has {len(x)} values, actual {len(y)}: "
                         f"one pair per point expected")
    finite = [v for v in x + y if v is not None]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    fig = go.Figure([
        go.Scatter(x=x, y=y, mode="markers", name="points",
                   marker=dict(size=6, opacity=0.6, color=GREY_BLUE)),
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="y = x",
                   line=dict(dash="dot", color=RED)),
    ])
    return fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, showlegend=False,
                             **_LAYOUT)


# ------------------------------------------------------------------ notebooks 01 and 02's figures
def state_heatmaps(distributions: Mapping[str, Sequence[float]], n_symbols: int, length: int,
                   title: str = "Every state", floor: float = 1e-6,
                   mark: Sequence[int] = ()) -> go.Figure:
    """One heatmap per named distribution over all ``n_symbols ** length`` states.

    The states are in ``toy.all_states`` order.

    A state is a cell: its first ``length // 2`` symbols pick the row, the others the column. The
    colour is log10 p, clipped below at ``floor``; a state of probability exactly 0 is an empty
    cell. The states whose indices are in ``mark`` are circled in every panel (trace after each
    heatmap).
    """
    from plotly.subplots import make_subplots

    n_states = n_symbols**length
    head = length // 2
    n_rows, n_cols = n_symbols**head, n_symbols ** (length - head)

    def label(index: int, width: int) -> str:
        return "".join(str(index // n_symbols ** (width - 1 - k) % n_symbols)
                       for k in range(width))

    rows, cols = ([label(r, head) for r in range(n_rows)],
                  [label(c, length - head) for c in range(n_cols)])
    for name, probs in distributions.items():
        if len(probs) != n_states:
            raise ValueError(f"distribution {name!r} has {len(probs)} entries, "
                             f"expected {n_states} (one per state)")
    for index in mark:
        if not 0 <= index < n_states:
            raise ValueError(f"mark must hold state indices in [0, {n_states}), got {index}")
    fig = make_subplots(rows=len(distributions), cols=1, subplot_titles=list(distributions),
                        vertical_spacing=0.08)
    for panel, probs in enumerate(distributions.values(), start=1):
        values = [float(p) for p in probs]
        # state r * n_cols + c in cell (r, c): (n_rows, n_cols), log10 p clipped at floor
        z = [[None if values[r * n_cols + c] == 0
              else round(math.log10(max(values[r * n_cols + c], floor)), 3)
              for c in range(n_cols)] for r in range(n_rows)]
        fig.add_trace(go.Heatmap(x=cols, y=rows, z=z, coloraxis="coloraxis",
                                 hovertemplate="state %{y}%{x}: log10 p = %{z}<extra></extra>"),
                      row=panel, col=1)
        fig.add_trace(go.Scatter(x=[cols[i % n_cols] for i in mark],
                                 y=[rows[i // n_cols] for i in mark],
                                 mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(symbol="circle-open", size=12, color=RED,
                                             line=dict(width=3))),
                      row=panel, col=1)
    fig.update_xaxes(type="category", showticklabels=False)
    fig.update_xaxes(title=f"x{head + 1}..x{length} (hover: the state)",
                     row=len(distributions), col=1)
    fig.update_yaxes(type="category", autorange="reversed", title=f"x1..x{head}")
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=math.log10(floor), cmax=0,
                                     colorbar=dict(title=dict(text="log10 p"))))
    return fig.update_layout(title=title, **{**_LAYOUT, "height": 140 + 230 * len(distributions)})


def curves_against(x: Sequence[float], curves: Mapping[str, Sequence[float]], title: str = "",
                   xaxis: str = "x", yaxis: str = "value", log_x: bool = False) -> go.Figure:
    """One line per named curve over the shared ``x`` (a log axis with ``log_x``).

    ``±inf`` is a gap.
    """
    x = list(x)
    for name, values in curves.items():
        if len(values) != len(x):
            raise ValueError(f"curve {name!r} has {len(values)} values, x has {len(x)}: "
                             f"one value per x expected")
    fig = go.Figure([go.Scatter(x=x, y=finite_or_none(values), mode="lines+markers", name=name)
                     for name, values in curves.items()])
    fig.update_xaxes(type="log" if log_x else "linear")
    return fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, **_LAYOUT)


def energy_histograms(energies: Mapping[str, Sequence[float]], title: str = "Energies",
                      bins: int = 40) -> go.Figure:
    """Overlaid, normalised histograms of named energy samples on shared bins.

    Lower is "more like data".
    """
    finite = [float(e) for values in energies.values() for e in values if math.isfinite(e)]
    if not finite:
        raise ValueError("energies: every series is empty or non-finite; nothing to draw")
    low, high = min(finite), max(finite)
    size = (high - low) / bins or 1.0
    fig = go.Figure([go.Histogram(x=[round(float(e), 4) for e in values], name=name, opacity=0.6,
                                  histnorm="probability",
                                  xbins=dict(start=low, end=high + size, size=size))
                     for name, values in energies.items()])
    return fig.update_layout(title=title, barmode="overlay", xaxis_title="energy E(x)",
                             yaxis_title="fraction of samples", **_LAYOUT)


# ---------------------------------------------------------------------- the reproduction's figures
def curves_with_intervals(x: Sequence[float],
                          series: Mapping[str, tuple[Sequence[float], Sequence[float],
                                                     Sequence[float]]],
                          title: str, xaxis: str, yaxis: str = "average correctness",
                          log_x: bool = False) -> go.Figure:
    """One line per series with its 95 % interval as error bars.

    ``series[name] = (means, lows, highs)``.
    """
    fig = go.Figure()
    for name, (means, lows, highs) in series.items():
        fig.add_trace(go.Scatter(
            x=list(x), y=finite_or_none(means), name=name, mode="lines+markers",
            error_y=dict(type="data", symmetric=False,
                         array=finite_or_none([h - m for m, h in zip(means, highs)]),
                         arrayminus=finite_or_none([m - lo for m, lo in zip(means, lows)]))))
    return fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis,
                             xaxis_type="log" if log_x else "linear", **_LAYOUT)


# ------------------------------------------------------------- notebooks 03, 04 and 06's figures
def perturbation_grid(labels: Sequence[str], symbols: Sequence[Sequence[str]],
                      norms: Sequence[Sequence[float]],
                      title: str = "Perturbation norm per token") -> go.Figure:
    """||delta_{b,t}|| per token; see ``token_heatmap``."""
    return token_heatmap(labels, symbols, norms, title, "||delta_t||", colorscale="Oranges")


def loglog_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], title: str = "",
                  xaxis: str = "x", yaxis: str = "value", slope: float | None = None) -> go.Figure:
    """Named curves over ``x`` on log-log axes; with ``slope``, a dotted reference line y
    proportional to x^slope through the first curve's first point."""
    x = [float(f"{float(v):.4g}") for v in x]
    for name, values in curves.items():
        if len(values) != len(x):
            raise ValueError(f"curve {name!r} has {len(values)} values, x has {len(x)}: "
                             f"one value per x expected")
    fig = go.Figure([go.Scatter(x=x, y=_significant(values), mode="lines+markers", name=name)
                     for name, values in curves.items()])
    first = next(iter(curves.values()), None)
    if slope is not None and first is not None and x and first[0] > 0:
        reference = [first[0] * (v / x[0]) ** slope for v in x]
        fig.add_trace(go.Scatter(x=x, y=_significant(reference), mode="lines",
                                 name=f"slope {slope:g}", line=dict(dash="dot", color="grey")))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, **_LAYOUT)


def _significant(values: Sequence[float], digits: int = 4) -> list[float | None]:
    """Floats to ``digits`` significant digits (stable outputs at any scale), non-finite or
    non-positive as None (a gap on a log axis)."""
    return [float(f"{float(v):.{digits}g}") if math.isfinite(float(v)) and float(v) > 0 else None
            for v in values]


def interval_dots(names: Sequence[str],
                  metrics: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
                  title: str = "") -> go.Figure:
    """One panel per metric, one row per name: the mean as a dot with its interval as an error bar;
    ``metrics[label] = (means, lows, highs)``, one value per name."""
    from plotly.subplots import make_subplots

    names = list(names)
    for label, (means, lows, highs) in metrics.items():
        if not len(means) == len(lows) == len(highs) == len(names):
            raise ValueError(f"metric {label!r} needs one mean, low and high per name "
                             f"({len(names)})")
    fig = make_subplots(rows=1, cols=max(len(metrics), 1), shared_yaxes=True,
                        subplot_titles=list(metrics), horizontal_spacing=0.03)
    for col, (label, (means, lows, highs)) in enumerate(metrics.items(), start=1):
        fig.add_trace(go.Scatter(
            x=finite_or_none(means), y=names, mode="markers", name=label, showlegend=False,
            marker=dict(size=9, color=GREY_BLUE, line=dict(width=1, color="black")),
            error_x=dict(type="data", symmetric=False,
                         array=finite_or_none([h - m for m, h in zip(means, highs)]),
                         arrayminus=finite_or_none([m - lo for m, lo in zip(means, lows)])),
            hovertemplate="%{y}: %{x}<extra>" + label + "</extra>"), row=1, col=col)
    fig.update_yaxes(autorange="reversed", type="category")
    return fig.update_layout(title=title, **{**_LAYOUT, "height": 140 + 26 * len(names)})


def cost_bars(names: Sequence[str], measured: Sequence[float], ideal: Sequence[float],
              title: str = "Cost of a training step, relative to a clean step") -> go.Figure:
    """Grouped bars per name: the measured time ratio (trace 0), the ideal pass count (trace 1)."""
    names = list(names)
    if not len(measured) == len(ideal) == len(names):
        raise ValueError(f"measured ({len(measured)}) and ideal ({len(ideal)}) need one value "
                         f"per name ({len(names)})")
    fig = go.Figure([go.Bar(x=names, y=finite_or_none(measured, 3), name="measured",
                            marker=dict(color=GREY_BLUE)),
                     go.Bar(x=names, y=finite_or_none(ideal, 3), name="ideal (passes)",
                            marker=dict(color=ORANGE))])
    fig.update_xaxes(type="category")
    return fig.update_layout(title=title, barmode="group", yaxis_title="time / clean step",
                             **_LAYOUT)
