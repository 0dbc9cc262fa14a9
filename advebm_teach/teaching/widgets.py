"""Notebook widgets: step through a discrete attack (``AttackStepper``); explore embedding-space
adversaries (``PerturbationExplorer``).

The figures come from the pure builders in ``plots.py``; a widget only decides *which* numbers of a
trace to show and moves the displayed figures to them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from . import plots
from ..checks import check_choice, check_int, check_number, check_positive, check_token_ids
from .notebook import on_colab
from .plotly_view import PlotlyView
from .snapshots import widget_bundle
from ..task import AdditionTask, check_task
from ..trace import AttackTrace

#: The plots of an ``AttackStepper``, in rows (top to bottom, each left to right), their names in
#: that order, and their widths in pixels (fixed: a FigureWidget does not shrink to a narrow box,
#: it overflows it).
PLOT_ROWS = (("saliency",), ("candidates", "energy"), ("correctness",))
PLOT_NAMES = tuple(name for row in PLOT_ROWS for name in row)
PLOT_WIDTHS = {"saliency": 920, "candidates": 460, "energy": 460, "correctness": 920}
#: How the widgets draw their plots (see ``FigurePanel``); None picks ``default_renderer()``.
RENDERERS = ("figure_widget", "html")


class AttackStepper:
    """Step through an ``AttackTrace``: saliency, candidate energies, energy and correctness.

    The slider (and its Play button) runs over ``step = 0 .. S``. Step ``s`` shows the state
    *before* step ``s + 1``: the tokens ``trace.tokens[s]`` and their energy ``trace.energy[s]``,
    with the choice that step ``s + 1`` makes from them, i.e. the saliency ``trace.saliency[s]``,
    the chosen position ``trace.position[s]`` and the candidate energies
    ``trace.candidate_energy[s]`` (the chosen token is the one in ``trace.tokens[s + 1]``). Step
    ``S`` shows the final sequences, with no choice left to make.

    ``renderer`` says how the plots are drawn (``FigurePanel``): ``"figure_widget"`` (the default
    off Colab) updates plotly ``FigureWidget``s in place; ``"html"`` (the default on Colab, where
    both FigureWidgets and plotly figures inside ``ipywidgets.Output``s fail: plotly.py #2202,
    colabtools #5889) redraws them with the course's ``PlotlyView``, which carries its own
    plotly.js. Display the stepper as the last expression of a cell, or display ``.widget``.
    """

    def __init__(self, trace: AttackTrace, task: AdditionTask, sequence: int = 0,
                 renderer: str | None = None) -> None:
        self.trace = _check_trace(trace, task)
        self.task = task
        renderer = check_renderer(renderer)
        self._sequence = self._check_sequence(sequence)
        self._step = 0
        self._labels = task.position_labels()
        self._answer_labels = [self._labels[i] for i in task.c_positions]

        steps, batch = self.trace.steps, self.trace.tokens.shape[1]
        self.play = widgets.Play(value=0, min=0, max=steps, step=1, interval=800,
                                 description="play")
        self.step_slider = widgets.IntSlider(value=0, min=0, max=steps, description="step",
                                             continuous_update=True)
        widgets.jslink((self.play, "value"), (self.step_slider, "value"))
        self.sequence_picker = widgets.Dropdown(
            options=[(f"{b}: {text}", b)
                     for b, text in enumerate(task.decode(self.trace.tokens[0], strip=True))],
            value=self._sequence, description="sequence",
            layout=widgets.Layout(width="auto", display=None if batch > 1 else "none"),
        )
        self.status = widgets.HTML()
        self.step_slider.observe(self._on_step, names="value")
        self.sequence_picker.observe(self._on_sequence, names="value")

        self._panel = FigurePanel(self._build_figures(), PLOT_ROWS, renderer)
        self._update_status()
        self.widget = widgets.VBox([
            widgets.HBox([self.play, self.step_slider, self.sequence_picker]),
            self.status,
            *self._panel.children,
        ])
        self.widget.add_class("advebm-attack-stepper")

    @classmethod
    def from_attack(cls, energy_model: torch.nn.Module, task: AdditionTask, tokens: torch.Tensor,
                    steps: int = 10, *, sequence: int = 0, renderer: str | None = None,
                    **attack_options: Any) -> AttackStepper:
        """Run ``DiscreteAttack(energy_model, task, steps, **attack_options).attack(tokens)`` and
        step through it."""
        from ..attack import DiscreteAttack

        trace = DiscreteAttack(energy_model, task, steps, **attack_options).attack(tokens)
        return cls(trace, task, sequence=sequence, renderer=renderer)

    # ------------------------------------------------------------------ public state
    @property
    def renderer(self) -> str:
        """How the plots are drawn: ``"figure_widget"`` or ``"html"`` (see the class docstring)."""
        return self._panel.renderer

    @property
    def step(self) -> int:
        return self._step

    @property
    def sequence(self) -> int:
        return self._sequence

    @property
    def figures(self) -> Mapping[str, go.Figure]:
        """The figures now shown, by name (``PLOT_NAMES``); see ``FigurePanel.figures``."""
        return self._panel.figures

    @property
    def views(self) -> Mapping[str, widgets.Widget]:
        """The widget drawing each plot, by name; see ``FigurePanel.views``."""
        return self._panel.views

    def show_step(self, step: int) -> None:
        """Show step ``step`` (0 .. S, see the class docstring); moves the slider too."""
        step = check_int("step", step, 0, self.trace.steps)
        # in a browser, jslink keeps play and slider together; here we set both
        self.play.value = step
        # -> _on_step -> _update (when it changes; else it is shown already)
        self.step_slider.value = step

    def show_sequence(self, sequence: int) -> None:
        """Show sequence ``sequence`` of the batch (0 .. B-1), at the current step."""
        # -> _on_sequence -> _update (when it changes)
        self.sequence_picker.value = self._check_sequence(sequence)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict]:
        figures = self.figures
        return widget_bundle(
            self.widget,
            f"AttackStepper: {self.trace.steps} attack steps on {len(self.trace.final)} "
            f"sequence(s); run the cell in Jupyter to step through them",
            [[figures[name] for name in row] for row in PLOT_ROWS])

    # ------------------------------------------------------------- what step s of sequence b shows
    def _build_figures(self) -> dict[str, go.Figure]:
        trace, task, s, b = self.trace, self.task, self._step, self._sequence
        tokens = trace.tokens[s, b]
        symbols = [task.vocab[t] for t in tokens.tolist()]
        position = int(trace.position[s, b]) if s < trace.steps else -1
        if s == trace.steps:
            where, saliency, candidates = "final sequence: no step left", None, None
            chosen = current = None
        elif position < 0:
            where, saliency, candidates = (f"step {s + 1}: no editable position left",
                                           trace.saliency[s, b].tolist(), None)
            chosen = current = None
        else:
            where = f"step {s + 1} edits {self._labels[position]}"
            saliency, candidates = (trace.saliency[s, b].tolist(),
                                    trace.candidate_energy[s, b].tolist())
            current, chosen = int(tokens[position]), int(trace.tokens[s + 1, b, position])
        correct = task.digit_correct(tokens)[0].tolist()
        figures = {
            "saliency": plots.saliency_heatmap(self._labels, symbols, saliency,
                                               chosen=None if position < 0 else position,
                                               title=f"Saliency per position · {where}"),
            "candidates": plots.candidate_bars(task.vocab, candidates, chosen=chosen,
                                               current=current,
                                               title=f"Candidate energies · {where}"),
            "energy": plots.energy_line(trace.energy[:, b].tolist(), step=s),
            "correctness": plots.correctness_strip(self._answer_labels, correct),
        }
        if s == trace.steps:  # say so, rather than leave two plots blank
            for name in ("saliency", "candidates"):
                figures[name].add_annotation(
                    text=f"attack finished after {trace.steps} steps: nothing left to choose",
                    xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                    font=dict(size=15))
        for name, fig in figures.items():
            fig.update_layout(width=PLOT_WIDTHS[name])
        return figures

    def _update(self) -> None:
        self._panel.show(self._build_figures())
        self._update_status()

    def _update_status(self) -> None:
        trace, s, b = self.trace, self._step, self._sequence
        text = self.task.decode(trace.tokens[s, b], strip=True)
        energy = round(float(trace.energy[s, b]), 4)
        correctness = round(float(self.task.correctness(trace.tokens[s, b])[0]), 4)
        if s == trace.steps:
            next_move = "final sequence"
        elif int(trace.position[s, b]) < 0:
            next_move = f"step {s + 1}: every editable position is tabu, nothing changes"
        else:
            position = int(trace.position[s, b])
            old, new = int(trace.tokens[s, b, position]), int(trace.tokens[s + 1, b, position])
            vocab = self.task.vocab
            change = f"{vocab[old]} → {vocab[new]}" if old != new else f"keeps {vocab[old]}"
            next_move = (f"step {s + 1}: {self._labels[position]} {change}, "
                         f"energy → {round(float(trace.energy[s + 1, b]), 4)}")
        self.status.value = (f"<code>{text}</code> · step {s}/{trace.steps} · energy {energy} · "
                             f"correctness {correctness} · {next_move}")

    # ----------------------------------------------------- callbacks (no print(): it breaks nbval)
    def _on_step(self, change: dict) -> None:
        self._step = int(change["new"])
        self._update()

    def _on_sequence(self, change: dict) -> None:
        self._sequence = int(change["new"])
        self._update()

    def _check_sequence(self, sequence: int) -> int:
        return check_int("sequence", sequence, 0, len(self.trace.final) - 1)


class FigurePanel:
    """A widget's plots by name, laid out in ``rows`` (rows of names, top to bottom), drawn by
    ``renderer``:

    - ``"figure_widget"``: one plotly ``FigureWidget`` per plot, each in a ``Box`` with the class
      ``advebm-plot-<name>``, moved in place to each fresh figure (plotly sends the browser only
      what changed). Off Colab, the default.
    - ``"html"``: one ``PlotlyView`` (plotly_view.py) draws every plot, in a
      ``div.advebm-plot-<name>``, with the plotly.js it carries. On Colab, the default: there a
      FigureWidget does not render (plotly.py #2202, colab-cdn-widget-manager #19 and #51) and a
      plotly figure inside an ``ipywidgets.Output`` fails with "Plotly is not defined"
      (colabtools #5889), while a custom anywidget does render.

    ``children`` are the widgets to put in the containing box, in order.
    """

    def __init__(self, fresh: Mapping[str, go.Figure], rows: Sequence[Sequence[str]],
                 renderer: str) -> None:
        self.renderer = check_renderer(renderer)
        if renderer == "figure_widget":
            self._figures: dict[str, go.Figure] = {name: go.FigureWidget(fig)
                                                   for name, fig in fresh.items()}
            self._views: dict[str, widgets.Widget] = dict(self._figures)
            boxes = {name: widgets.Box([view]) for name, view in self._views.items()}
            for name, box in boxes.items():
                box.add_class(f"advebm-plot-{name}")
            self.children = tuple(boxes[row[0]] if len(row) == 1
                                  else widgets.HBox([boxes[name] for name in row])
                                  for row in rows)
        else:
            self._figures = dict(fresh)
            view = PlotlyView(rows, fresh)
            self._views = dict.fromkeys(fresh, view)
            self.children = (view,)

    @property
    def figures(self) -> Mapping[str, go.Figure]:
        """The figures now shown, by name: the ``FigureWidget``s (the same objects at every
        update), or the plain figures the ``PlotlyView`` last drew. Read-only."""
        return MappingProxyType(self._figures)

    @property
    def views(self) -> Mapping[str, widgets.Widget]:
        """The widget drawing each figure, by name: its ``FigureWidget``, or the one
        ``PlotlyView`` that draws them all. Read-only."""
        return MappingProxyType(self._views)

    def show(self, fresh: Mapping[str, go.Figure]) -> None:
        """Show ``fresh`` (the same names as at construction)."""
        if self.renderer == "figure_widget":
            for name, fig in fresh.items():
                _move_figure(self._figures[name], fig)
            return
        self._figures = dict(fresh)
        self.children[0].show(fresh)  # the one PlotlyView


def default_renderer() -> str:
    """``"html"`` on Colab (``teaching.notebook.on_colab()``), else ``"figure_widget"``."""
    return "html" if on_colab() else "figure_widget"


def check_renderer(renderer: str | None) -> str:
    """``renderer`` if it is one of ``RENDERERS``; ``default_renderer()`` when None."""
    return default_renderer() if renderer is None else check_choice("renderer", renderer,
                                                                     RENDERERS)


def _move_figure(shown: go.FigureWidget, fresh: go.Figure) -> None:
    """Make the displayed ``shown`` look like ``fresh`` by setting properties, in one batch.

    The builders return the same traces for every state, so copying each trace's properties and the
    layout (less its template, which never changes) is enough; a property that ``fresh`` lacks
    (such as ``layout.shapes`` once nothing is outlined) is removed. plotly sends the browser only
    what changed.
    """
    with shown.batch_update():
        for old, new in zip(shown.data, fresh.data):
            _copy_properties(old, new.to_plotly_json(), skip={"type", "uid"})
        _copy_properties(shown.layout, fresh.layout.to_plotly_json(), skip={"template"})


def _copy_properties(target: Any, values: dict, skip: set[str]) -> None:
    for key in set(target.to_plotly_json()) - set(values) - skip:
        target[key] = None
    for key, value in values.items():
        if key not in skip:
            target[key] = value


def _check_trace(trace: AttackTrace, task: AdditionTask) -> AttackTrace:
    """``trace`` (on the CPU) if its sequences are ``task``'s, of its length T and vocabulary V
    (``AttackTrace`` checks its own shapes)."""
    if not isinstance(trace, AttackTrace):
        raise TypeError(f"trace must be an AttackTrace, got {type(trace).__name__}")
    check_task(task)
    batch, length = trace.final.shape
    if length != task.seq_len:
        raise ValueError(f"trace.tokens has sequence length {length}, but the task's seq_len is "
                         f"{task.seq_len} (n_digits={task.n_digits}): trace and task do not match")
    if batch < 1:
        raise ValueError("trace.tokens holds no sequence (B = 0)")
    got = tuple(trace.candidate_energy.shape)
    if got[-1] != task.vocab_size:
        expected = (*got[:2], task.vocab_size)
        raise ValueError(f"trace.candidate_energy has shape {got}, expected {expected} "
                         f"for V={task.vocab_size} (the task's vocabulary)")
    if trace.tokens.numel() and (int(trace.tokens.min()) < 0
                                 or int(trace.tokens.max()) >= task.vocab_size):
        raise ValueError(f"trace.tokens holds ids outside the task's vocabulary "
                         f"[0, {task.vocab_size})")
    if trace.position.numel() and (int(trace.position.min()) < -1
                                   or int(trace.position.max()) >= length):
        raise ValueError(f"trace.position must lie in [-1, {length - 1}]")
    fields = ("tokens", "energy", "position", "saliency", "candidate_energy")
    if all(getattr(trace, name).device.type == "cpu" for name in fields):
        return trace
    # the task's tensors live on the CPU
    return AttackTrace(*(getattr(trace, name).detach().cpu() for name in fields))


class PerturbationExplorer:
    """FGSM, FGM and PGD on one batch, with sliders for eps and PGD's steps (notebook 03).

    The loss plot shows the batch loss L(e + s delta) as s goes from 0 to 1 along each adversary's
    perturbation: FGM and PGD in the L2 ball of radius eps per sequence (PGD with steps of
    2.5 eps / steps, Madry et al.'s rule), FGSM in the L-inf cube whose corners lie at L2 distance
    eps. The heatmap shows ||delta_{b,t}|| per token of the method picked. Everything is computed
    from ``objective`` (``perturb.Objective``), in the model's current train/eval mode.
    ``renderer`` as in ``AttackStepper``: ``"html"`` on Colab, ``"figure_widget"`` elsewhere.
    """

    METHODS = ("FGSM", "FGM", "PGD")
    PLOT_ROWS = (("loss",), ("norms",))
    PLOT_WIDTHS = {"loss": 620, "norms": 920}
    FRACTIONS = tuple(i / 10 for i in range(11))

    def __init__(self, objective: Any, labels: list[str], symbols: list[list[str]],
                 epsilon: float = 0.05, steps: int = 5, method: str = "PGD",
                 max_epsilon: float = 0.2, max_steps: int = 20,
                 renderer: str | None = None) -> None:
        if not all(callable(getattr(objective, name, None)) for name in ("embed", "loss_fn")):
            raise TypeError(f"objective must be a perturb.Objective, "
                            f"got {type(objective).__name__}")
        max_epsilon = check_positive("max_epsilon", max_epsilon)
        epsilon = check_number("epsilon", epsilon, 0, max_epsilon, low_open=True)
        steps = check_int("steps", steps, 1, check_int("max_steps", max_steps, 1))
        check_choice("method", method, self.METHODS)
        renderer = check_renderer(renderer)
        self.objective = objective
        self._embeds = objective.embed().detach()
        self.labels, self.symbols = list(labels), [list(row) for row in symbols]
        # (B, T, D): one row of symbols per sequence, one symbol per position
        if len(self.symbols) != self._embeds.shape[0] or any(len(row) != self._embeds.shape[1]
                                                             for row in self.symbols):
            raise ValueError(f"symbols must be {self._embeds.shape[0]} rows of "
                             f"{self._embeds.shape[1]} tokens (one per embedded position)")
        self.epsilon_slider = widgets.FloatSlider(value=epsilon, min=max_epsilon / 40,
                                                  max=max_epsilon, step=max_epsilon / 40,
                                                  description="eps", readout_format=".3f",
                                                  continuous_update=False)
        self.steps_slider = widgets.IntSlider(value=int(steps), min=1, max=max_steps,
                                              description="PGD steps", continuous_update=False)
        self.method_picker = widgets.ToggleButtons(options=self.METHODS, value=method,
                                                   description="heatmap")
        self.status = widgets.HTML()
        self._compute()
        self._update_status()
        self._panel = FigurePanel(self._build_figures(), self.PLOT_ROWS, renderer)
        for control in (self.epsilon_slider, self.steps_slider, self.method_picker):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.epsilon_slider, self.steps_slider]),
                                    self.method_picker, self.status, *self._panel.children])
        self.widget.add_class("advebm-perturbation-explorer")

    @classmethod
    def for_classifier(cls, energy_model: torch.nn.Module, task: AdditionTask, data: torch.Tensor,
                       negatives: torch.Tensor, **kwargs: Any) -> PerturbationExplorer:
        """The explorer on the BCE classifier's loss over ``data`` (true sums) and as many
        ``negatives``, on any devices: ``classifier_objective`` moves them to the model's."""
        check_task(task).check_model("energy_model", energy_model)
        check_token_ids("data", data, task.vocab_size, task.seq_len, dims=(2,))
        check_token_ids("negatives", negatives, task.vocab_size, task.seq_len, dims=(2,))
        from ..trainer import classifier_objective

        # one row per sequence of the objective: the data, then the negatives
        symbols = [[task.vocab[t] for t in row]
                   for tokens in (data, negatives) for row in tokens.tolist()]
        return cls(classifier_objective(energy_model, data, negatives), task.position_labels(),
                   symbols, **kwargs)

    @property
    def renderer(self) -> str:
        """How the plots are drawn: ``"figure_widget"`` or ``"html"`` (see ``FigurePanel``)."""
        return self._panel.renderer

    @property
    def figures(self) -> Mapping[str, go.Figure]:
        """The figures now shown, by name (``loss``, ``norms``); see ``FigurePanel.figures``."""
        return self._panel.figures

    @property
    def views(self) -> Mapping[str, widgets.Widget]:
        """The widget drawing each plot, by name; see ``FigurePanel.views``."""
        return self._panel.views

    def perturbations(self) -> dict[str, torch.Tensor]:
        """The three adversaries' deltas at the sliders' eps and steps."""
        return dict(self._deltas)

    def loss_curves(self) -> dict[str, list[float]]:
        """L(e + s delta) for s in ``FRACTIONS``, per method."""
        return {name: list(curve) for name, curve in self._curves.items()}

    def set(self, epsilon: float | None = None, steps: int | None = None,
            method: str | None = None) -> None:
        """Move the controls (and so the plots), as a student dragging them would."""
        if epsilon is not None:
            bounds = self.epsilon_slider.min, self.epsilon_slider.max
            self.epsilon_slider.value = check_number("epsilon", epsilon, *bounds)
        if steps is not None:
            self.steps_slider.value = check_int("steps", steps, 1, self.steps_slider.max)
        if method is not None:
            self.method_picker.value = check_choice("method", method, self.METHODS)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict]:
        figures = self.figures
        return widget_bundle(
            self.widget,
            "PerturbationExplorer: FGSM, FGM and PGD on one batch; run the cell in Jupyter to "
            "move eps and PGD's steps",
            [[figures[name] for name in row] for row in self.PLOT_ROWS])

    def _compute(self) -> None:
        from ..perturb import fgm, fgsm, pgd

        eps, steps, embeds = (float(self.epsilon_slider.value), int(self.steps_slider.value),
                              self._embeds)
        loss_fn = self.objective.loss_fn
        # FGSM: the L-inf cube whose corners lie at L2 distance eps, eps / sqrt(T * D) per entry
        self._deltas = {"FGSM": fgsm(loss_fn, embeds, eps / embeds[0].numel() ** 0.5),
                        "FGM": fgm(loss_fn, embeds, eps),
                        "PGD": pgd(loss_fn, embeds, eps, alpha=2.5 * eps / steps, steps=steps)}
        with torch.no_grad():
            self._curves = {name: [float(loss_fn(embeds + s * delta)) for s in self.FRACTIONS]
                            for name, delta in self._deltas.items()}

    def _build_figures(self) -> dict[str, go.Figure]:
        method, eps = self.method_picker.value, round(float(self.epsilon_slider.value), 4)
        norms = self._deltas[method].norm(dim=-1).tolist()
        figures = {
            "loss": plots.curves_against(self.FRACTIONS, self._curves,
                                         title=f"Loss along each perturbation (eps {eps})",
                                         xaxis="fraction s of delta", yaxis="loss L(e + s delta)"),
            "norms": plots.perturbation_grid(self.labels, self.symbols, norms,
                                             title=f"{method}: ||delta|| per token (eps {eps})"),
        }
        for name, fig in figures.items():
            fig.update_layout(width=self.PLOT_WIDTHS[name])
        return figures

    def _update_status(self) -> None:
        ends = " · ".join(f"{name} {curve[-1]:.4f}" for name, curve in self._curves.items())
        self.status.value = (f"eps {round(float(self.epsilon_slider.value), 4)} · "
                             f"PGD {self.steps_slider.value} steps · "
                             f"clean loss {self._curves['FGM'][0]:.4f} · perturbed: {ends}")

    def _on_change(self, change: dict) -> None:
        self._compute()
        self._panel.show(self._build_figures())
        self._update_status()
