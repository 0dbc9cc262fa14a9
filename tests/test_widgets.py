"""AttackStepper shows what a trace says at each step, and the plots.py builders it composes.

The traces here are built by hand with known numbers (``fake_trace``), so every figure's data can be
compared with the trace it came from, without a model or an attack.
"""

from __future__ import annotations

import gzip
import math
import sys
import types
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from plotly.offline import get_plotlyjs

from advebm_teach.teaching import plots
from advebm_teach.task import AdditionTask
from advebm_teach.trace import AttackTrace
from advebm_teach.teaching.plotly_view import PlotlyView
from advebm_teach.teaching.widgets import PLOT_NAMES, RENDERERS, AttackStepper

INF = math.inf
TASK = AdditionTask(n_digits=2)  # T = 11: <bos> a2 a1 + b2 b1 = c3 c2 c1 <eos>; V = 14
LABELS = TASK.position_labels()


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def fake_trace(task: AdditionTask = TASK, steps: int = 3, batch: int = 2) -> AttackTrace:
    """A trace with known numbers, S = ``steps``, B = ``batch``.

    Step s+1 edits answer digit ``c_positions[s % (n+1)]`` of every sequence, adding b+1 to it
    (so each step changes every sequence), except sequence 1's last step, which finds no position (-1).
    ``saliency[s, b, t] = s + b/10 + t/100`` on digit slots, ``-inf`` on format tokens;
    ``candidate_energy[s, b, v] = 10 - s - v/10 - b`` for digits v != 7 (7 "pruned": ``+inf``), ``+inf`` for
    non-digits; ``energy[s, b] = 10 - s - b`` (a NaN-free, decreasing line).
    """
    answer = list(task.c_positions)
    states = [task.sample(batch, seed=0)]
    positions = torch.empty(steps, batch, dtype=torch.long)
    for s in range(steps):
        x = states[-1].clone()
        for b in range(batch):
            if b == 1 and s == steps - 1:
                positions[s, b] = -1
                continue
            positions[s, b] = answer[s % len(answer)]
            x[b, positions[s, b]] = (x[b, positions[s, b]] + b + 1) % 10
        states.append(x)
    s_, b_, t_ = torch.meshgrid(torch.arange(steps), torch.arange(batch), torch.arange(task.seq_len), indexing="ij")
    saliency = (s_ + b_ / 10 + t_ / 100).float()
    saliency[:, :, ~task.digit_slots] = -INF
    s_, b_, v_ = torch.meshgrid(torch.arange(steps), torch.arange(batch), torch.arange(task.vocab_size), indexing="ij")
    candidate_energy = (10 - s_ - v_ / 10 - b_).float()
    candidate_energy[:, :, 10:] = INF
    candidate_energy[:, :, 7] = INF
    s_, b_ = torch.meshgrid(torch.arange(steps + 1), torch.arange(batch), indexing="ij")
    return AttackTrace(tokens=torch.stack(states), energy=(10 - s_ - b_).float(), position=positions,
                       saliency=saliency, candidate_energy=candidate_energy)


def rows(z) -> list[list]:
    return [list(row) for row in z]


def expected(trace: AttackTrace, s: int, b: int) -> dict:
    """What step s of sequence b must show, straight from the trace (not through plots.py)."""
    steps = trace.steps
    position = int(trace.position[s, b]) if s < steps else -1
    saliency = [None if v == -INF else round(v, 4) for v in trace.saliency[s, b].tolist()] if s < steps else [None] * TASK.seq_len
    if position >= 0:
        candidates = [None if v == INF else round(v, 4) for v in trace.candidate_energy[s, b].tolist()]
        current, chosen = int(trace.tokens[s, b, position]), int(trace.tokens[s + 1, b, position])
    else:
        candidates, current, chosen = [None] * TASK.vocab_size, None, None
    return {
        "saliency": saliency, "symbols": [TASK.vocab[t] for t in trace.tokens[s, b].tolist()],
        "chosen_label": [LABELS[position]] if position >= 0 else [], "candidates": candidates,
        "current": current, "chosen": chosen, "energy": round(float(trace.energy[s, b]), 4),
        "correct": [int(c) for c in TASK.digit_correct(trace.tokens[s, b])[0].tolist()],
    }


def drawn(widget) -> dict[str, go.Figure]:
    """What a course widget (stepper or explorer) sends the browser, by plot: its FigureWidgets, or
    the figures rebuilt from the JSON its PlotlyView holds."""
    if widget.renderer == "figure_widget":
        return dict(widget.figures)
    return {name: go.Figure(view.figures[name]) for name, view in widget.views.items()}


def check_figures(stepper: AttackStepper, trace: AttackTrace, s: int, b: int) -> None:
    want, figs = expected(trace, s, b), drawn(stepper)
    heat, chosen_marker = figs["saliency"].data
    assert rows(heat.z) == [want["saliency"]]
    assert rows(heat.text) == [want["symbols"]] and list(heat.x) == LABELS
    assert list(chosen_marker.x or []) == want["chosen_label"]
    outline = [(shape.x0, shape.x1) for shape in figs["saliency"].layout.shapes]
    assert outline == ([(LABELS.index(want["chosen_label"][0]) - 0.5, LABELS.index(want["chosen_label"][0]) + 0.5)]
                       if want["chosen_label"] else [])
    (bars,) = figs["candidates"].data
    assert list(bars.y) == want["candidates"] and list(bars.x) == TASK.vocab
    colors = list(bars.marker.color)
    assert [i for i, c in enumerate(colors) if c == plots.GREEN] == ([want["chosen"]] if want["chosen"] is not None else [])
    if want["current"] is not None and want["current"] != want["chosen"]:
        assert colors[want["current"]] == plots.ORANGE
    line, marker = figs["energy"].data
    assert list(line.y) == [round(float(e), 4) for e in trace.energy[:, b].tolist()]
    assert list(marker.x) == [s] and list(marker.y) == [want["energy"]]
    (strip,) = figs["correctness"].data
    assert rows(strip.z) == [want["correct"]]
    assert f"{sum(want['correct'])}/{len(want['correct'])} right" in figs["correctness"].layout.title.text


# ---------------------------------------------------------------------- the stepper
@pytest.mark.parametrize("renderer", RENDERERS)
def test_every_step_of_every_sequence_shows_what_the_trace_says(renderer):
    trace = fake_trace()
    stepper = AttackStepper(trace, TASK, renderer=renderer)
    check_figures(stepper, trace, 0, 0)
    for b in (1, 0):
        stepper.show_sequence(b)
        for s in (1, 3, 0, 2, 3):  # out of order, and S (the final state, no choice left)
            stepper.show_step(s)
            assert (stepper.step, stepper.sequence) == (s, b)
            check_figures(stepper, trace, s, b)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_step_s_pairs_tokens_s_with_the_choice_of_step_s_plus_1(renderer):
    trace = fake_trace()
    stepper = AttackStepper(trace, TASK, renderer=renderer)
    stepper.show_step(np.int64(1))  # any integer type
    position = int(trace.position[1, 0])
    assert drawn(stepper)["saliency"].data[1].x == (LABELS[position],)
    assert "step 2 edits" in drawn(stepper)["saliency"].layout.title.text
    assert TASK.decode(trace.tokens[1, 0], strip=True) in stepper.status.value
    stepper.show_step(3)
    saliency = drawn(stepper)["saliency"]
    assert saliency.data[1].x == () and "no step left" in saliency.layout.title.text
    stepper.show_sequence(1)
    stepper.show_step(2)  # sequence 1 had no position left at its last step
    assert drawn(stepper)["candidates"].data[0].y == (None,) * TASK.vocab_size
    assert "no editable position left" in drawn(stepper)["candidates"].layout.title.text


def test_updates_change_the_same_figure_widgets_in_place():
    stepper = AttackStepper(fake_trace(), TASK, renderer="figure_widget")
    shown = dict(stepper.figures)
    traces = {name: fig.data for name, fig in shown.items()}
    assert all(isinstance(fig, go.FigureWidget) for fig in shown.values())
    stepper.show_step(2)
    stepper.show_sequence(1)
    assert all(stepper.figures[name] is fig for name, fig in shown.items())
    assert all(all(a is b for a, b in zip(stepper.figures[name].data, traces[name])) for name in shown)
    with pytest.raises(TypeError):
        stepper.figures["energy"] = go.Figure()  # read-only view


@pytest.mark.parametrize("renderer", RENDERERS)
def test_the_slider_and_the_picker_drive_the_figures_as_a_browser_would(renderer):
    trace = fake_trace()
    stepper = AttackStepper(trace, TASK, renderer=renderer)
    stepper.step_slider.value = 2  # what a slider moved in the browser does in the kernel
    check_figures(stepper, trace, 2, 0)
    stepper.sequence_picker.value = 1
    check_figures(stepper, trace, 2, 1)
    assert stepper.play.max == stepper.step_slider.max == trace.steps
    assert stepper.sequence_picker.layout.display is None  # shown: B = 2
    single = AttackTrace(*(getattr(trace, name)[:, :1] for name in ("tokens", "energy", "position", "saliency", "candidate_energy")))
    assert AttackStepper(single, TASK).sequence_picker.layout.display == "none"


def test_the_html_renderer_draws_every_plot_in_one_view_that_carries_plotly_js():
    stepper = AttackStepper(fake_trace(), TASK, renderer="html")
    view = stepper.views["energy"]
    assert isinstance(view, PlotlyView) and all(stepper.views[name] is view for name in PLOT_NAMES)
    assert [view] == [w for w in _walk(stepper.widget) if isinstance(w, PlotlyView)]
    # the plotly package's own plotly.js, compressed, in the state the browser gets
    assert gzip.decompress(view.get_state()["plotly_js"]).decode() == get_plotlyjs()
    first = dict(stepper.figures)
    assert all(type(fig) is go.Figure for fig in first.values())
    stepper.show_step(1)
    assert all(stepper.figures[name] is not first[name] for name in PLOT_NAMES)  # redrawn, not updated
    assert stepper.views["energy"] is view and view.figures["energy"]["data"][1]["x"] == [1]
    with pytest.raises(TypeError):
        stepper.views["energy"] = view  # read-only view


def test_the_view_s_javascript_is_shipped_with_the_package():
    """plotly_view.js is what the view sends the browser, and a package-data pattern ships it."""
    tomllib = pytest.importorskip("tomllib")
    package = Path(__file__).resolve().parent.parent / "advebm_teach"
    script = package / "teaching" / "plotly_view.js"
    assert PlotlyView([["a"]], {"a": go.Figure()}).get_state()["_esm"] == script.read_text()
    with open(package.parent / "pyproject.toml", "rb") as file:
        patterns = tomllib.load(file)["tool"]["setuptools"]["package-data"]["advebm_teach"]
    assert any(script in package.glob(pattern) for pattern in patterns), patterns


def test_the_renderer_is_html_on_colab_and_figure_widgets_elsewhere(monkeypatch):
    assert AttackStepper(fake_trace(), TASK).renderer == "figure_widget"
    assert isinstance(AttackStepper(fake_trace(), TASK).views["energy"], go.FigureWidget)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    on_colab = AttackStepper(fake_trace(), TASK)
    assert on_colab.renderer == "html" and isinstance(on_colab.views["energy"], PlotlyView)
    assert AttackStepper(fake_trace(), TASK, renderer="figure_widget").renderer == "figure_widget"


@pytest.mark.parametrize("renderer", ["plotly", "FigureWidget", True, 0])
def test_an_unknown_renderer_is_refused_by_name(renderer):
    with pytest.raises(ValueError, match=r"renderer must be one of 'figure_widget', 'html'"):
        AttackStepper(fake_trace(), TASK, renderer=renderer)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_displays_itself_as_one_findable_widget(renderer):
    stepper = AttackStepper(fake_trace(), TASK, renderer=renderer)
    bundle, _ = stepper._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == stepper.widget.model_id
    assert "advebm-attack-stepper" in stepper.widget._dom_classes
    if renderer == "html":  # the view draws each plot in a div.advebm-plot-<name>, in these rows
        (view,) = [w for w in _walk(stepper.widget) if isinstance(w, PlotlyView)]
        assert view.rows == [["saliency"], ["candidates", "energy"], ["correctness"]]
        return
    boxes = [w for w in _walk(stepper.widget) if any(c.startswith("advebm-plot-") for c in w._dom_classes)]
    assert [box._dom_classes[0] for box in boxes] == [f"advebm-plot-{name}" for name in PLOT_NAMES]
    assert [box.children[0] for box in boxes] == [stepper.figures[name] for name in PLOT_NAMES]


def test_on_ipywidgets_7_the_view_is_built_as_ipywidgets_8_builds_it(monkeypatch):
    """Colab ships ipywidgets 7.7.1, whose widgets only display themselves (no
    ``_repr_mimebundle_``): the course builds the same view bundle."""
    import ipywidgets

    if not hasattr(ipywidgets.Widget, "_repr_mimebundle_"):
        pytest.skip("the reference is ipywidgets 8's own bundle; this is ipywidgets 7")
    stepper = AttackStepper(fake_trace(), TASK, renderer="html")
    reference = stepper.widget._repr_mimebundle_()[WIDGET_MIME]  # ipywidgets 8's own
    monkeypatch.delattr(ipywidgets.Widget, "_repr_mimebundle_")
    bundle, _ = stepper._repr_mimebundle_()
    assert bundle[WIDGET_MIME] == reference


def test_on_colab_the_display_is_routed_to_the_custom_widget_manager(monkeypatch):
    """Colab draws third-party widgets (the course's PlotlyView) only through its custom widget
    manager, and a cell's result reaches it only with this metadata (anywidget #63)."""
    url = "https://ssl.gstatic.com/colaboratory-static/widgets/colab-cdn-widget-manager/x.js"
    enabled = []
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: enabled.append(True)
    output._widgets = types.SimpleNamespace(_installed_url=url)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    stepper = AttackStepper(fake_trace(), TASK)
    assert stepper.renderer == "html"
    _, metadata = stepper._repr_mimebundle_()
    assert metadata == {WIDGET_MIME: {"colab": {"custom_widget_manager": {"url": url}}}}


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


@pytest.mark.parametrize("step, error", [
    (-1, ValueError), (4, ValueError), (1.0, TypeError), (True, TypeError), ("2", TypeError),
])
def test_a_step_out_of_range_is_refused(step, error):
    stepper = AttackStepper(fake_trace(steps=3), TASK)
    with pytest.raises(error, match=r"step must be an int in \[0, 3\]"):
        stepper.show_step(step)
    assert stepper.step == 0


@pytest.mark.parametrize("sequence, error", [(-1, ValueError), (2, ValueError), (True, TypeError)])
def test_a_sequence_out_of_range_is_refused(sequence, error):
    with pytest.raises(error, match=r"sequence must be an int in \[0, 1\]"):
        AttackStepper(fake_trace(batch=2), TASK, sequence=sequence)
    with pytest.raises(error, match="sequence must be"):
        AttackStepper(fake_trace(batch=2), TASK).show_sequence(sequence)


def test_a_trace_that_does_not_fit_the_task_is_refused():
    trace = fake_trace()
    with pytest.raises(ValueError, match=r"sequence length 11, but the task's seq_len is 14"):
        AttackStepper(trace, AdditionTask(n_digits=3))
    short_vocab = AttackTrace(trace.tokens, trace.energy, trace.position, trace.saliency, trace.candidate_energy[..., :10])
    with pytest.raises(ValueError, match=r"trace.candidate_energy has shape \(3, 2, 10\), expected \(3, 2, 14\)"):
        AttackStepper(short_vocab, TASK)
    with pytest.raises(ValueError, match=r"position has shape \(2, 2\), expected \(3, 2\)"):
        AttackTrace(trace.tokens, trace.energy, trace.position[:2], trace.saliency,  # refused
                    trace.candidate_energy)
    with pytest.raises(TypeError, match="trace must be an AttackTrace"):
        AttackStepper(trace.tokens, TASK)


def test_a_trace_without_steps_shows_its_one_state():
    trace = fake_trace()
    no_steps = AttackTrace(trace.tokens[:1], trace.energy[:1], trace.position[:0], trace.saliency[:0], trace.candidate_energy[:0])
    stepper = AttackStepper(no_steps, TASK)
    stepper.show_sequence(1)
    check_figures(stepper, no_steps, 0, 1)
    assert stepper.step_slider.max == 0


def test_from_attack_runs_discrete_attack_with_the_options_given(monkeypatch):
    calls = {}

    class FakeAttack:
        def __init__(self, energy_model, task, steps, **options):
            calls.update(model=energy_model, task=task, steps=steps, options=options)

        def attack(self, tokens):
            calls["tokens"] = tokens
            return fake_trace(steps=calls["steps"], batch=tokens.shape[0])

    monkeypatch.setitem(sys.modules, "advebm_teach.attack", types.SimpleNamespace(DiscreteAttack=FakeAttack))
    tokens = TASK.sample(2, seed=0)
    stepper = AttackStepper.from_attack("model", TASK, tokens, steps=2, sequence=1,
                                        renderer="html", tabu=True)
    assert calls["steps"] == 2 and calls["options"] == {"tabu": True} and calls["tokens"] is tokens
    assert stepper.trace.steps == 2 and stepper.sequence == 1 and stepper.renderer == "html"


def test_from_attack_with_the_real_attack_on_a_tiny_model(one_thread):
    pytest.importorskip("advebm_teach.attack", reason="advebm_teach.attack not written yet")
    from advebm_teach.models import TransformerEnergy

    torch.manual_seed(0)
    model = TransformerEnergy(TASK.vocab_size, TASK.seq_len, d_model=16, n_layers=1, n_heads=2, ff_dim=16, head="lm_nll")
    stepper = AttackStepper.from_attack(model, TASK, TASK.sample(2, seed=0), steps=2, tabu=True)
    assert stepper.trace.steps == 2
    for s in range(3):
        stepper.show_step(s)
        check_figures(stepper, stepper.trace, s, 0)


# ---------------------------------------------------------------------- the builders
def test_builders_turn_infinities_into_gaps_and_round():
    heat = plots.saliency_heatmap(["x", "y", "z"], ["1", "+", "2"], [0.123456, -INF, math.nan], chosen=0)
    assert rows(heat.data[0].z) == [[0.1235, None, None]] and heat.data[1].x == ("x",)
    assert plots.saliency_heatmap(["x"], ["1"], None).data[0].z == ([None],)
    bars = plots.candidate_bars(["0", "1", "2"], [1.000049, INF, -2.5], chosen=2, current=0)
    assert bars.data[0].y == (1.0, None, -2.5)
    assert list(bars.data[0].marker.color) == [plots.ORANGE, plots.GREY_BLUE, plots.GREEN]
    assert list(plots.candidate_bars(["0", "1"], [1.0, 2.0], chosen=1, current=1).data[0].marker.color)[1] == plots.GREEN
    line = plots.energy_line([3.0, INF, 1.23456], step=2)
    assert line.data[0].y == (3.0, None, 1.2346) and line.data[1].x == (2,) and line.data[1].y == (1.2346,)
    assert plots.energy_line([1.0, 0.5]).data[1].x == ()
    strip = plots.correctness_strip(["c2", "c1"], [True, False])
    assert strip.data[0].z == ([1, 0],) and "1/2 right (correctness 0.5)" in strip.layout.title.text


def test_builders_keep_the_same_traces_and_keys_whatever_the_values():
    """What lets a FigureWidget follow by copying properties: no trace or key appears or disappears."""
    def shape(fig):
        return [(trace.type, sorted(trace.to_plotly_json())) for trace in fig.data]

    assert shape(plots.saliency_heatmap(["x", "y"], ["1", "2"], [1.0, 2.0], chosen=1)) == shape(
        plots.saliency_heatmap(["x", "y"], ["1", "2"], None))
    assert shape(plots.candidate_bars(["0", "1"], [1.0, 2.0], chosen=0, current=1)) == shape(plots.candidate_bars(["0", "1"], None))
    assert shape(plots.energy_line([1.0, 2.0], step=1)) == shape(plots.energy_line([1.0, 2.0]))


def test_builders_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="saliency has 2 entries, labels 3"):
        plots.saliency_heatmap(["a", "b", "c"], ["1", "2", "3"], [1.0, 2.0])
    with pytest.raises(ValueError, match="symbols has 2 entries, labels 3"):
        plots.saliency_heatmap(["a", "b", "c"], ["1", "2"], None)
    with pytest.raises(ValueError, match=r"chosen must be a position in \[0, 1\)"):
        plots.saliency_heatmap(["a"], ["1"], [1.0], chosen=1)
    with pytest.raises(ValueError, match="energies has 1 entries, symbols 2"):
        plots.candidate_bars(["0", "1"], [1.0])
    with pytest.raises(ValueError, match=r"current must be a token index"):
        plots.candidate_bars(["0", "1"], [1.0, 2.0], current=5)
    with pytest.raises(ValueError, match=r"step must be in \[0, 1\]"):
        plots.energy_line([1.0, 2.0], step=2)
    with pytest.raises(ValueError, match="correct has 1 entries, labels 2"):
        plots.correctness_strip(["c2", "c1"], [True])


def test_notebook_04_builders_carry_their_data():
    grid = plots.saliency_grid(["x", "y"], [["1", "+"], ["2", "+"]], [[0.123456, -INF], [2.0, -INF]])
    assert rows(grid.data[0].z) == [[0.1235, None], [2.0, None]] and rows(grid.data[0].text) == [["1", "+"], ["2", "+"]]
    with pytest.raises(ValueError, match="row 1 has 1 symbols"):
        plots.saliency_grid(["x", "y"], [["1", "+"], ["2"]], [[0.1, 0.2], [0.3, 0.4]])
    curves = plots.curves_by_step({"paper": [0.5, 0.6], "tabu": [0.5, INF]}, yaxis="correctness")
    assert [c.name for c in curves.data] == ["paper", "tabu"] and curves.data[1].y == (0.5, None)
    scatter = plots.prediction_scatter([1.0, 2.0, INF], [1.5, -1.0, 3.0])
    assert scatter.data[0].x == (1.0, 2.0, None) and scatter.data[1].x == (-1.0, 3.0) == scatter.data[1].y
    with pytest.raises(ValueError, match="predicted has 1 values, actual 2"):
        plots.prediction_scatter([1.0], [1.0, 2.0])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_the_last_step_says_the_attack_finished_instead_of_blank_plots(renderer):
    trace = fake_trace()
    stepper = AttackStepper(trace, TASK, renderer=renderer)
    stepper.show_step(trace.steps)
    for name in ("saliency", "candidates"):
        notes = [a.text for a in drawn(stepper)[name].layout.annotations]
        assert notes == [f"attack finished after {trace.steps} steps: nothing left to choose"]
    stepper.show_step(0)
    assert not drawn(stepper)["saliency"].layout.annotations
