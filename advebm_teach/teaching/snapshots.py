"""Static pictures of figures and widgets, so a stored notebook reads without a kernel.

GitHub and nbviewer draw neither plotly's JSON nor a widget, only images.
``tools/build_notebooks.py`` adds a PNG twin beside each stored figure, and sets
``ADVEBM_STATIC_SNAPSHOTS=1`` so that each course widget, when displayed, also stores a PNG of its
first state. Both are drawn by kaleido with the system's Chromium (offline); kaleido and Pillow are
needed only to build the notebooks (the ``dev`` extra), never to run the course.
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio

SNAPSHOTS_ENV_VAR = "ADVEBM_STATIC_SNAPSHOTS"
#: the size a figure without its own width/height is drawn at (plotly's defaults)
DEFAULT_SIZE = (700, 450)


def snapshots_wanted() -> bool:
    """True when ``ADVEBM_STATIC_SNAPSHOTS`` is 1 (set while the notebooks are built)."""
    return os.environ.get(SNAPSHOTS_ENV_VAR, "") == "1"


def figure_png(figure: go.Figure | Mapping[str, Any]) -> bytes:
    """A PNG of ``figure`` (a ``go.Figure`` or the dict a notebook stores), at its own size."""
    if not isinstance(figure, go.Figure):
        figure = go.Figure(figure)
    width = figure.layout.width or DEFAULT_SIZE[0]
    height = figure.layout.height or DEFAULT_SIZE[1]
    return pio.to_image(figure, format="png", width=width, height=height)


def stacked_png(rows: Sequence[Sequence[go.Figure]]) -> bytes:
    """One PNG of several figures: each row's figures side by side, the rows top to bottom."""
    from PIL import Image

    row_images = []
    for row in rows:
        images = [Image.open(io.BytesIO(figure_png(figure))).convert("RGB") for figure in row]
        joined = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)),
                           "white")
        x = 0
        for image in images:
            joined.paste(image, (x, 0))
            x += image.width
        row_images.append(joined)
    picture = Image.new("RGB", (max(i.width for i in row_images),
                                sum(i.height for i in row_images)), "white")
    y = 0
    for image in row_images:
        picture.paste(image, (0, y))
        y += image.height
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def view_bundle(widget: Any) -> dict:
    """The mime bundle that shows ``widget``: ipywidgets 8 makes it itself; ipywidgets 7 (what
    Colab ships) only displays itself, so it is built here as 7.x builds it."""
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_()
    return {"text/plain": repr(widget),
            WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}


def colab_metadata() -> dict:
    """On Colab, the display metadata that sends a widget to Colab's custom widget manager, the
    one that can draw third-party widgets such as the course's ``PlotlyView``: Colab adds it to
    displayed widgets but not to a cell's result (anywidget #63, #75), so the course adds it, as
    anywidget does for its own widgets. Elsewhere (and before the manager is on) nothing."""
    from anywidget._util import get_repr_metadata  # anywidget's own Colab rule

    return get_repr_metadata()


def widget_bundle(widget: Any, description: str,
                  rows: Sequence[Sequence[go.Figure]]) -> tuple[dict, dict]:
    """A course widget's mime bundle and metadata: its view (``view_bundle``), a readable
    ``text/plain`` and, while the notebooks are built, a PNG of its figures, which is what a
    reader without a kernel sees instead of ``VBox(children=...)``; on Colab, the metadata of
    ``colab_metadata``."""
    bundle = dict(view_bundle(widget))
    bundle["text/plain"] = description
    if snapshots_wanted():
        import base64

        bundle["image/png"] = base64.b64encode(stacked_png(rows)).decode("ascii")
    return bundle, colab_metadata()
