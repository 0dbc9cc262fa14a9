"""The negatives study (advebm_teach/experiments/negatives_study.py): its equal-cost accounting
against counted forward passes, and a fast-mode run against independent recomputations (the
budget-0 column is P_LM's correctness, the intervals are those of the per-seed values), resumed
from its stored seeds."""

import pytest
import torch

from advebm_teach import AdditionTask
from advebm_teach.attack import DiscreteAttack
from advebm_teach.checkpoints import load_pretrained
from advebm_teach.config import make_task
from advebm_teach.experiments import negatives_study as study
from advebm_teach.experiments.statistics import interval
from advebm_teach.sampling import sample_lm
from conftest import energy_with_random_readout


class CountingEnergy(torch.nn.Module):
    """An energy that counts the sequences it scores."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config, self.scored = inner, inner.config, 0

    def embed(self, tokens):
        return self.inner.embed(tokens)

    def energy_from_embeds(self, embeds, tokens=None):
        self.scored += len(embeds)
        return self.inner.energy_from_embeds(embeds, tokens)

    def energy(self, tokens):
        return self.energy_from_embeds(self.embed(tokens), tokens)


@pytest.mark.parametrize("options", [{"include_current": False}, {}, {"tabu": True}])
def test_one_attack_step_costs_the_evaluations_the_study_charges(options):
    task = AdditionTask(3)
    model = CountingEnergy(energy_with_random_readout(task, head="mean"))
    tokens = task.sample(8, seed=0)
    DiscreteAttack(model, task, 1, **options).attack(tokens)
    assert model.scored == study.EVALUATIONS_PER_ATTACK_STEP * len(tokens)


def test_the_training_chains_get_the_attack_s_budget():
    protocol = study.NegativesStudyProtocol()
    # the chain's start and each step cost one evaluation (mcmc.ChainResult counts them)
    assert protocol.chain_steps + 1 == study.EVALUATIONS_PER_ATTACK_STEP * protocol.attack_steps


@pytest.fixture(scope="module")
def fast_study(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADVEBM_FAST", "1")
        out = tmp_path_factory.mktemp("negatives")
        first = study.run_experiment(out=out, progress=False)
        again = study.run_experiment(out=out, progress=False)
        protocol = study.NegativesStudyProtocol.for_mode()
    return first, again, protocol


def test_a_second_run_reads_every_seed_back(fast_study):
    first, again, protocol = fast_study
    assert first["resumed_seeds"] == [] and again["resumed_seeds"] == list(range(protocol.seeds))
    assert again["summary"] == first["summary"]


def test_budget_zero_is_the_p_lm_samples_and_intervals_are_over_seeds(fast_study):
    first, _, protocol = fast_study
    task = make_task("course")
    start = sample_lm(load_pretrained("plm"), task, protocol.n_test, seed=92_001)
    plm_correctness = task.correctness(start).mean().item()
    for family in protocol.families:
        for method in study.METHODS:
            for how in study.SEARCHES:
                cell = first["summary"][family][method][how]
                values = cell["correctness"]["0"]["values"]
                assert values == pytest.approx([plm_correctness] * protocol.seeds)
                for metric in study.METRICS:
                    for budget in map(str, protocol.budgets):
                        entry = cell[metric][budget]
                        assert entry["interval"] == pytest.approx(list(interval(entry["values"])))
                        assert all(0 <= v <= 1 for v in entry["values"])


def test_the_report_has_a_row_per_method_and_search(fast_study):
    first, _, _ = fast_study
    text = study.report_negatives_study(first)
    for label in study.LABELS.values():
        assert text.count(label + " ") >= len(study.SEARCHES) * len(first["summary"])
    assert text.splitlines()[-1].startswith("{")


def test_the_shipped_study_holds_what_the_readme_and_notebook_08_claim():
    from advebm_teach.experiments.shipping import load_result
    from advebm_teach.experiments.statistics import paired_difference

    shipped = load_result("negatives")
    assert not shipped["fast_mode"] and len(shipped["seeds"]) == 5
    assert shipped["wall_s"] < 30 * 60
    paper, control = shipped["summary"]["paper"], shipped["summary"]["control"]
    claimed = {"attack": (0.031, 0.008, 0.055, 5), "gwg": (0.028, 0.012, 0.043, 5),
               "dmala": (0.028, 0.002, 0.054, 4)}
    for method, numbers in claimed.items():
        cell = paper[method]["attack"]["correctness"]["50"]
        values, control_values = cell["values"], paper["plm"]["attack"]["correctness"]["50"]["values"]
        (mean, low, high), ahead = paired_difference(values, control_values)
        assert (round(mean, 3), round(low, 3), round(high, 3), ahead) == numbers
        assert cell["versus_plm"] == pytest.approx([mean, low, high, ahead])
    # the attack reaches spurious modes sooner on the Algorithm-1 energy (both intervals below 0)
    for how in ("gwg", "dmala"):
        (_, _, high), _ = paired_difference(paper["attack"][how]["spurious"]["20"]["values"],
                                            paper["attack"]["attack"]["spurious"]["20"]["values"])
        assert high < 0
    # on the sharp likelihood energy the samplers barely accept, and fall far behind the attack
    assert control["plm"]["gwg"]["acceptance"][0] < 0.05
    assert control["plm"]["dmala"]["acceptance"][0] < 0.01
    assert control["plm"]["attack"]["correctness"]["50"]["interval"][0] > 0.7
    assert max(control["plm"][how]["correctness"]["50"]["interval"][0]
               for how in ("gwg", "dmala")) < 0.4


@pytest.mark.parametrize("arguments, error, message", [
    ({"config": "tiny"}, ValueError, "unknown config 'tiny'"),
    ({"seeds": 0}, ValueError, "seeds must be an int >= 1, got 0"),
    ({"seeds": 1.5}, TypeError, "seeds must be an int"),
])
def test_bad_arguments_are_refused_before_any_work(arguments, error, message):
    with pytest.raises(error, match=message):
        study.run_experiment(progress=False, **arguments)
