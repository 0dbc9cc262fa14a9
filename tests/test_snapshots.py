"""Static pictures for readers without a kernel: figures become PNGs of their own size, and the
course widgets describe themselves in words and carry a PNG only while the notebooks are built.

Drawn by kaleido with the system's Chromium (``.ci/run`` installs Debian's), as the build does.
"""

from __future__ import annotations

import base64
import io
import os
import shutil

import plotly.graph_objects as go
import pytest

from advebm_teach.teaching import snapshots
from advebm_teach.teaching.widgets import RENDERERS, AttackStepper
from test_perturb_widgets import explorer
from test_widgets import TASK, fake_trace

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                                reason="no Chromium here (CI installs it, so CI never skips)")
Image = pytest.importorskip("PIL.Image")
pytestmark = [pytestmark, pytest.mark.filterwarnings("ignore:The kopts argument is ignored")]


@pytest.fixture(scope="module", autouse=True)
def one_chromium():
    """One browser for every picture of this module, as the build uses (else ~4 s each)."""
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    yield
    kaleido.stop_sync_server(silence_warnings=True)


def size_of(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG"), "not a PNG"
    return Image.open(io.BytesIO(png)).size


def test_a_figure_is_drawn_at_its_own_size_or_plotlys_default():
    figure = go.Figure(go.Bar(y=[1, 3, 2]))
    assert size_of(snapshots.figure_png(figure)) == snapshots.DEFAULT_SIZE
    figure.update_layout(width=320, height=200)
    assert size_of(snapshots.figure_png(figure.to_plotly_json())) == (320, 200)  # a stored dict


def test_stacked_figures_sit_side_by_side_in_rows_and_rows_on_top_of_each_other():
    def sized(width: int, height: int) -> go.Figure:
        return go.Figure(go.Scatter(y=[0, 1]), layout=dict(width=width, height=height))

    png = snapshots.stacked_png([[sized(300, 100)], [sized(200, 150), sized(250, 120)]])
    assert size_of(png) == (450, 250)


def stepper(renderer: str) -> AttackStepper:
    return AttackStepper(fake_trace(), TASK, renderer=renderer)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("make", [stepper, explorer],
                         ids=["AttackStepper", "PerturbationExplorer"])
def test_widgets_describe_themselves_and_carry_a_picture_only_when_asked(make, renderer,
                                                                         monkeypatch):
    widget = make(renderer)
    monkeypatch.delenv(snapshots.SNAPSHOTS_ENV_VAR, raising=False)
    bundle, metadata = widget._repr_mimebundle_()
    assert metadata == {}  # off Colab
    assert bundle["text/plain"].startswith(type(widget).__name__)
    assert "image/png" not in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    monkeypatch.setenv(snapshots.SNAPSHOTS_ENV_VAR, "1")
    picture = size_of(base64.b64decode(widget._repr_mimebundle_()[0]["image/png"]))
    widths = [figure.layout.width for figure in widget.figures.values()]
    assert picture[0] >= max(widths)  # every figure drawn, at its own width
