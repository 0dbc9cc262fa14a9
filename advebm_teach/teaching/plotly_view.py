"""``PlotlyView``: the course's own widget that draws plotly figures with the plotly.js it carries.

It is how the course's widgets draw on Colab, where plotly's own ways fail:

- a plotly ``FigureWidget`` has not rendered on Colab for years (plotly.py #2202,
  googlecolab/colab-cdn-widget-manager #19 and #51; since plotly 6 it is an anywidget with bugs of
  its own);
- a plain figure shown inside an ``ipywidgets.Output`` fails with "Plotly is not defined"
  (googlecolab/colabtools #5889): plotly's "colab" renderer writes a <script> that expects a
  page-global ``Plotly``.

``PlotlyView`` needs neither. It is an anywidget (anywidget handles Colab's custom widget
manager, and both ipywidgets 7, Colab's, and 8), whose JavaScript (``plotly_view.js``) gets the
plotly Python package's own ``plotly.min.js`` from the kernel (gzip-compressed, sent once per
widget: nothing is downloaded), evaluates it into a local object (no ``window.Plotly`` is left),
and redraws each plot with ``Plotly.react`` whenever ``figures`` changes. It works the same in
JupyterLab.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Mapping, Sequence

import anywidget
import plotly.graph_objects as go
import traitlets
from plotly.offline import get_plotlyjs


class PlotlyView(anywidget.AnyWidget):
    """Named plotly figures, drawn in ``rows`` (a list of rows of names, top to bottom, each row
    left to right); plot ``name`` sits in a ``div.advebm-plot-<name>``. ``figures`` holds each
    figure as plotly JSON (``{"data": [...], "layout": {...}}``); ``show`` sets it."""

    _esm = Path(__file__).with_name("plotly_view.js")
    rows = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    figures = traitlets.Dict().tag(sync=True)
    #: plotly.min.js of the installed plotly, gzip-compressed (sent as one binary buffer)
    plotly_js = traitlets.Bytes(read_only=True).tag(sync=True)

    def __init__(self, rows: Sequence[Sequence[str]], fresh: Mapping[str, go.Figure]) -> None:
        super().__init__(rows=[list(row) for row in rows], figures=figures_json(fresh))

    @traitlets.default("plotly_js")
    def _plotly_js(self) -> bytes:
        return compressed_plotly_js()

    def show(self, fresh: Mapping[str, go.Figure]) -> None:
        """Draw ``fresh`` (every name of ``rows``): one message, the browser redraws each plot."""
        self.figures = figures_json(fresh)


def figures_json(figures: Mapping[str, go.Figure]) -> dict[str, dict]:
    """Each figure as the JSON plotly.js draws (plotly's own encoder: NaN and numpy handled)."""
    return {name: json.loads(figure.to_json()) for name, figure in figures.items()}


@functools.cache
def compressed_plotly_js() -> bytes:
    """The plotly package's bundled plotly.min.js, gzip-compressed (about 1/3 of its size)."""
    return gzip.compress(get_plotlyjs().encode("utf-8"), mtime=0)
