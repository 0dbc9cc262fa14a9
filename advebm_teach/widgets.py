"""Notebook widgets: step through a discrete attack (``AttackStepper``).

The figures come from the pure builders in ``plots.py``; a widget only decides *which* numbers of a
trace to show and moves the displayed figures to them.
"""

from __future__ import annotations

from numbers import Integral
from types import MappingProxyType
from typing import Any, Mapping

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from . import plots
from .notebook import on_colab
from .task import AdditionTask
from .trace import AttackTrace

#: The plots of an ``AttackStepper``, in the order they appear (top to bottom, left to right), and their widths
#: in pixels (fixed: a FigureWidget does not shrink to a narrow box, it overflows it).
PLOT_NAMES = ("saliency", "candidates", "energy", "correctness")
PLOT_WIDTHS = {"saliency": 920, "candidates": 460, "energy": 460, "correctness": 920}


class AttackStepper:
    """Step through an ``AttackTrace``: saliency, candidate energies, energy and correctness, step by step.

    The slider (and its Play button) runs over ``step = 0 .. S``. Step ``s`` shows the state *before*
    step ``s + 1``: the tokens ``trace.tokens[s]`` and their energy ``trace.energy[s]``, with the choice
    that step ``s + 1`` makes from them, i.e. the saliency ``trace.saliency[s]``, the chosen position
    ``trace.position[s]`` and the candidate energies ``trace.candidate_energy[s]`` (the chosen token is
    the one in ``trace.tokens[s + 1]``). Step ``S`` shows the final sequences, with no choice left to make.

    ``figure_widget=True`` (the default, except on Colab) shows plotly ``FigureWidget``s and updates them
    in place; ``False`` redraws plain figures into ``ipywidgets.Output``s (Colab does not render
    FigureWidgets). Display the stepper as the last expression of a cell, or display ``.widget``.
    """

    def __init__(self, trace: AttackTrace, task: AdditionTask, sequence: int = 0,
                 figure_widget: bool | None = None) -> None:
        self.trace = _check_trace(trace, task)
        self.task = task
        self._figure_widget = (not on_colab()) if figure_widget is None else bool(figure_widget)
        self._sequence = self._check_sequence(sequence)
        self._step = 0
        self._labels = task.position_labels()
        self._answer_labels = [self._labels[i] for i in task.c_positions]

        steps, batch = self.trace.steps, self.trace.tokens.shape[1]
        self.play = widgets.Play(value=0, min=0, max=steps, step=1, interval=800, description="play")
        self.step_slider = widgets.IntSlider(value=0, min=0, max=steps, description="step", continuous_update=True)
        widgets.jslink((self.play, "value"), (self.step_slider, "value"))
        self.sequence_picker = widgets.Dropdown(
            options=[(f"{b}: {text}", b) for b, text in enumerate(task.decode(self.trace.tokens[0], strip=True))],
            value=self._sequence, description="sequence",
            layout=widgets.Layout(width="auto", display=None if batch > 1 else "none"),
        )
        self.status = widgets.HTML()
        self.step_slider.observe(self._on_step, names="value")
        self.sequence_picker.observe(self._on_sequence, names="value")

        fresh = self._build_figures()
        if self.figure_widget:
            self._figures: dict[str, go.Figure] = {name: go.FigureWidget(fig) for name, fig in fresh.items()}
            views: dict[str, widgets.Widget] = dict(self._figures)
        else:
            self._figures = {}
            self._outputs = {name: widgets.Output() for name in PLOT_NAMES}
            views = dict(self._outputs)
            self._redraw(fresh)
        self._update_status()

        boxes = {name: widgets.Box([views[name]]) for name in PLOT_NAMES}
        for name, box in boxes.items():
            box.add_class(f"advebm-plot-{name}")
        self.widget = widgets.VBox([
            widgets.HBox([self.play, self.step_slider, self.sequence_picker]),
            self.status,
            boxes["saliency"],
            widgets.HBox([boxes["candidates"], boxes["energy"]]),
            boxes["correctness"],
        ])
        self.widget.add_class("advebm-attack-stepper")

    @classmethod
    def from_attack(cls, energy_model: torch.nn.Module, task: AdditionTask, tokens: torch.Tensor, steps: int = 10,
                    *, sequence: int = 0, figure_widget: bool | None = None, **attack_options: Any) -> AttackStepper:
        """Run ``DiscreteAttack(energy_model, task, steps, **attack_options).attack(tokens)`` and step through it."""
        from .attack import DiscreteAttack

        trace = DiscreteAttack(energy_model, task, steps, **attack_options).attack(tokens)
        return cls(trace, task, sequence=sequence, figure_widget=figure_widget)

    # ------------------------------------------------------------------ public state
    @property
    def figure_widget(self) -> bool:
        """Whether the plots are ``FigureWidget``s updated in place (else plain figures redrawn in Outputs)."""
        return self._figure_widget

    @property
    def step(self) -> int:
        return self._step

    @property
    def sequence(self) -> int:
        return self._sequence

    @property
    def figures(self) -> Mapping[str, go.Figure]:
        """The figures now shown, by name (``PLOT_NAMES``): ``FigureWidget``s (the same objects at every
        step) when ``figure_widget``, else the plain figures last drawn. Read-only."""
        return MappingProxyType(self._figures)

    def show_step(self, step: int) -> None:
        """Show step ``step`` (0 .. S, see the class docstring); moves the slider too."""
        if isinstance(step, bool) or not isinstance(step, Integral) or not 0 <= step <= self.trace.steps:
            raise ValueError(f"step must be an int in [0, {self.trace.steps}] "
                             f"(the trace has {self.trace.steps} steps), got {step!r}")
        step = int(step)
        self.play.value = step  # in a browser, jslink keeps play and slider together; here we set both
        self.step_slider.value = step  # -> _on_step -> _update (when it changes; else it is shown already)

    def show_sequence(self, sequence: int) -> None:
        """Show sequence ``sequence`` of the batch (0 .. B-1), at the current step."""
        self.sequence_picker.value = self._check_sequence(sequence)  # -> _on_sequence -> _update (when it changes)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ what step s of sequence b shows
    def _build_figures(self) -> dict[str, go.Figure]:
        trace, task, s, b = self.trace, self.task, self._step, self._sequence
        tokens = trace.tokens[s, b]
        symbols = [task.vocab[t] for t in tokens.tolist()]
        position = int(trace.position[s, b]) if s < trace.steps else -1
        if s == trace.steps:
            where, saliency, candidates = "final sequence: no step left", None, None
            chosen = current = None
        elif position < 0:
            where, saliency, candidates = f"step {s + 1}: no editable position left", trace.saliency[s, b].tolist(), None
            chosen = current = None
        else:
            where = f"step {s + 1} edits {self._labels[position]}"
            saliency, candidates = trace.saliency[s, b].tolist(), trace.candidate_energy[s, b].tolist()
            current, chosen = int(tokens[position]), int(trace.tokens[s + 1, b, position])
        correct = task.digit_correct(tokens)[0].tolist()
        figures = {
            "saliency": plots.saliency_heatmap(self._labels, symbols, saliency,
                                               chosen=None if position < 0 else position,
                                               title=f"Saliency per position · {where}"),
            "candidates": plots.candidate_bars(task.vocab, candidates, chosen=chosen, current=current,
                                               title=f"Candidate energies · {where}"),
            "energy": plots.energy_line(trace.energy[:, b].tolist(), step=s),
            "correctness": plots.correctness_strip(self._answer_labels, correct),
        }
        for name, fig in figures.items():
            fig.update_layout(width=PLOT_WIDTHS[name])
        return figures

    def _update(self) -> None:
        fresh = self._build_figures()
        if self.figure_widget:
            for name, fig in fresh.items():
                _move_figure(self._figures[name], fig)
        else:
            self._redraw(fresh)
        self._update_status()

    def _redraw(self, fresh: dict[str, go.Figure]) -> None:
        """Fallback (Colab): replace each Output's content by the new plain figure."""
        self._figures = dict(fresh)
        for name, fig in fresh.items():
            # The figure's own rich repr, as the current plotly renderer makes it ("colab" on Colab);
            # plotly's JSON mimetype when no renderer is set (plain Python, tests).
            data = fig._repr_mimebundle_() or {"application/vnd.plotly.v1+json": fig.to_plotly_json()}
            data.setdefault("text/plain", f"<plotly figure: {name}>")
            self._outputs[name].outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)

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

    # ------------------------------------------------------------------ callbacks (no print(): it breaks nbval)
    def _on_step(self, change: dict) -> None:
        self._step = int(change["new"])
        self._update()

    def _on_sequence(self, change: dict) -> None:
        self._sequence = int(change["new"])
        self._update()

    def _check_sequence(self, sequence: int) -> int:
        batch = self.trace.tokens.shape[1]
        if isinstance(sequence, bool) or not isinstance(sequence, Integral) or not 0 <= sequence < batch:
            raise ValueError(f"sequence must be an int in [0, {batch - 1}] "
                             f"(the trace holds {batch} sequences), got {sequence!r}")
        return int(sequence)


def _move_figure(shown: go.FigureWidget, fresh: go.Figure) -> None:
    """Make the displayed ``shown`` look like ``fresh`` by setting properties, in one batch.

    The builders return the same traces for every state, so copying each trace's properties and the
    layout (less its template, which never changes) is enough; a property that ``fresh`` lacks (such as
    ``layout.shapes`` once nothing is outlined) is removed. plotly sends the browser only what changed.
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
    """The shapes of ``AttackTrace``'s docstring, with T and V those of ``task``."""
    if not isinstance(trace, AttackTrace):
        raise ValueError(f"trace must be an AttackTrace, got {type(trace).__name__}")
    if not isinstance(task, AdditionTask):
        raise ValueError(f"task must be an AdditionTask, got {type(task).__name__}")
    if trace.tokens.dim() != 3:
        raise ValueError(f"trace.tokens must have shape (S+1, B, T), got {tuple(trace.tokens.shape)}")
    s1, batch, length = trace.tokens.shape
    steps = s1 - 1
    if length != task.seq_len:
        raise ValueError(f"trace.tokens has sequence length {length}, but the task's seq_len is {task.seq_len} "
                         f"(n_digits={task.n_digits}): trace and task do not match")
    if batch < 1:
        raise ValueError("trace.tokens holds no sequence (B = 0)")
    expected = {
        "energy": (s1, batch), "position": (steps, batch), "saliency": (steps, batch, length),
        "candidate_energy": (steps, batch, task.vocab_size),
    }
    for name, shape in expected.items():
        got = tuple(getattr(trace, name).shape)
        if got != shape:
            raise ValueError(f"trace.{name} has shape {got}, expected {shape} for S={steps} steps, B={batch}, "
                             f"T={length}, V={task.vocab_size} (the task's vocabulary)")
    if trace.tokens.numel() and (int(trace.tokens.min()) < 0 or int(trace.tokens.max()) >= task.vocab_size):
        raise ValueError(f"trace.tokens holds ids outside the task's vocabulary [0, {task.vocab_size})")
    if trace.position.numel() and (int(trace.position.min()) < -1 or int(trace.position.max()) >= length):
        raise ValueError(f"trace.position must lie in [-1, {length - 1}]")
    fields = ("tokens", "energy", "position", "saliency", "candidate_energy")
    if all(getattr(trace, name).device.type == "cpu" for name in fields):
        return trace
    return AttackTrace(*(getattr(trace, name).detach().cpu() for name in fields))  # the task's tensors live on the CPU
