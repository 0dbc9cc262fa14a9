"""The perturbation explorer shows what its adversaries compute, and notebook 02's figure builders carry their data."""

import math

import pytest
import torch

from advebm_teach.teaching import plots
from advebm_teach.models import TransformerEnergy
from advebm_teach.perturb import fgm, pgd
from advebm_teach.task import AdditionTask
from advebm_teach.teaching.widgets import RENDERERS, PerturbationExplorer
from test_widgets import drawn

TASK = AdditionTask(n_digits=2)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two true sums, and the same sums with their last answer digit off by one."""
    data = TASK.sample(2, seed=0)
    negatives = data.clone()
    negatives[:, TASK.c_positions[-1]] = (negatives[:, TASK.c_positions[-1]] + 1) % 10
    return data, negatives


def explorer(renderer: str) -> PerturbationExplorer:
    torch.manual_seed(0)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_layers=1, n_heads=2, ff_dim=16)
    torch.nn.init.normal_(model.energy_readout.weight)  # a read-out of zeros has no gradient to show
    return PerturbationExplorer.for_classifier(model, TASK, *batch(), epsilon=0.1, steps=3,
                                               renderer=renderer)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_explorer_draws_its_perturbations_and_follows_the_controls(renderer):
    shown = explorer(renderer)
    assert shown.renderer == renderer
    for eps, steps, method in ((0.1, 3, "PGD"), (0.05, 7, "FGM")):
        shown.set(epsilon=eps, steps=steps, method=method)
        loss_fn, embeds = shown.objective.loss_fn, shown.objective.embed().detach()
        expected = {"FGM": fgm(loss_fn, embeds, eps), "PGD": pgd(loss_fn, embeds, eps, 2.5 * eps / steps, steps)}[method]
        assert torch.allclose(shown.perturbations()[method], expected)
        heatmap = drawn(shown)["norms"].data[0]
        assert heatmap.z[1][3] == pytest.approx(float(expected[1, 3].norm()), abs=1e-4)
        assert list(heatmap.text[2]) == [TASK.vocab[t] for t in shown.objective.tokens[2].tolist()]
        with torch.no_grad():
            half_way = float(loss_fn(embeds + 0.5 * expected))
        curve = next(trace for trace in drawn(shown)["loss"].data if trace.name == method)
        assert curve.y[5] == pytest.approx(half_way, abs=1e-4) and curve.x[5] == 0.5
        assert shown.loss_curves()[method][5] == pytest.approx(half_way)
        assert f"eps {eps}" in shown.status.value
        assert method in drawn(shown)["norms"].layout.title.text
    fgm_norms = shown.perturbations()["FGM"].flatten(1).norm(dim=1)
    assert torch.allclose(fgm_norms, torch.full_like(fgm_norms, 0.05))


def test_explorer_builds_its_objective_where_the_model_lives():
    """CPU tokens for a model elsewhere (the meta device stands in for a GPU): the objective's
    tokens, embeddings and loss are all on the model's device."""
    model = TransformerEnergy.for_task(TASK, d_model=16, n_layers=1, n_heads=2, ff_dim=16)
    model.to("meta")

    class ObjectiveOnly(PerturbationExplorer):  # stops before computing (meta holds no numbers)
        def __init__(self, objective, labels, symbols, **kwargs):
            self.objective, self.symbols = objective, symbols

    data, negatives = batch()
    built = ObjectiveOnly.for_classifier(model, TASK, data, negatives)
    objective = built.objective
    assert objective.tokens.device.type == "meta" and objective.embed().device.type == "meta"
    assert objective.loss_fn(objective.embed()).device.type == "meta"
    assert built.symbols[2] == [TASK.vocab[t] for t in negatives[0].tolist()]


def test_explorer_refuses_bad_controls_by_name():
    shown = explorer("html")
    for kwargs, name in (({"epsilon": 5.0}, "epsilon"), ({"steps": 0}, "steps"), ({"method": "HotFlip"}, "method")):
        with pytest.raises(ValueError, match=name):
            shown.set(**kwargs)


def test_perturbation_grid_holds_the_norms_and_tokens():
    fig = plots.perturbation_grid(["p0", "p1"], [["a", "b"], ["c", "d"]], [[0.1, 0.2], [0.0, math.inf]])
    assert [list(row) for row in fig.data[0].z] == [[0.1, 0.2], [0.0, None]]  # inf: an empty cell
    assert [list(row) for row in fig.data[0].text] == [["a", "b"], ["c", "d"]]
    with pytest.raises(ValueError, match="row 1"):
        plots.perturbation_grid(["p0", "p1"], [["a", "b"], ["c"]], [[0.1, 0.2], [0.3, 0.4]])


def test_loglog_curves_keep_small_values_and_draw_a_reference_slope():
    fig = plots.loglog_curves([1e-1, 1e-2, 1e-3], {"error": [2e-2, 2e-3, 2.5e-4]}, slope=1)
    assert list(fig.data[0].y) == [0.02, 0.002, 0.00025]  # significant digits, not decimals
    assert list(fig.data[1].y) == pytest.approx([0.02, 0.002, 0.0002])
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_interval_dots_and_cost_bars_carry_their_numbers():
    fig = plots.interval_dots(["a", "b"], {"acc": ([0.5, 0.7], [0.4, 0.6], [0.55, 0.9])})
    assert list(fig.data[0].x) == [0.5, 0.7] and list(fig.data[0].error_x.array) == pytest.approx([0.05, 0.2])
    assert list(fig.data[0].error_x.arrayminus) == pytest.approx([0.1, 0.1])
    bars = plots.cost_bars(["clean", "FGM"], [1.0, 1.93], [1, 2])
    assert list(bars.data[0].y) == [1.0, 1.93] and list(bars.data[1].y) == [1, 2]
    with pytest.raises(ValueError, match="one value per name"):
        plots.cost_bars(["clean"], [1.0, 2.0], [1])


def test_explorer_reads_out_eps_as_the_titles_write_it():
    shown = explorer("html")
    shown.set(epsilon=0.045)
    assert f"{shown.epsilon_slider.value:{shown.epsilon_slider.readout_format}}" == "0.045"
    assert "eps 0.045" in drawn(shown)["norms"].layout.title.text


def test_a_heatmap_of_equal_values_keeps_its_scale_from_zero():
    """FGSM gives every token the same norm: the scale must run 0 .. that norm, not around it."""
    fig = plots.perturbation_grid(["p0", "p1"], [["a", "b"]], [[0.01, 0.01]])
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, 0.01)
    assert plots.perturbation_grid(["p0"], [["a"]], [[0.0]]).data[0].zmax == 1.0
