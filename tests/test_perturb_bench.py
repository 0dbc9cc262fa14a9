"""``bench perturb`` and ``bench perturb-cost`` run end to end in fast mode and print what they promise; their
numbers (timings, accuracies of tiny runs) are never asserted. The spurious-mode count is checked by brute force."""

import json
import math

import torch

from advebm_teach.cli import main
from advebm_teach.experiments.perturb_study import METRICS, first_spurious_step
from advebm_teach.task import AdditionTask
from advebm_teach.trace import AttackTrace

STRATEGIES = {"clean", "FGSM", "FGM", "FGM on the table", "PGD-3", "FreeAT-3", "YOPO-3-3", "FreeLB-3", "SMART", "ALUM",
              "gradient penalty", "gradient penalty (finite difference)"}


def test_bench_perturb_cost_prints_ratios_and_ideal_passes_last(capsys, monkeypatch, tmp_path,
                                                                shipped_files_unchanged):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    monkeypatch.chdir(tmp_path)  # the command writes runs/bench/ here, never the shipped results
    main(["bench", "perturb-cost", "--fast"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures["strategies"]) == STRATEGIES
    assert figures["strategies"]["clean"] == {**figures["strategies"]["clean"], "ratio": 1.0, "ideal": 1}
    assert figures["strategies"]["PGD-3"]["ideal"] == 4 and figures["strategies"]["FreeLB-3"]["ideal"] == 3
    assert all(row["ratio"] > 0 for row in figures["strategies"].values())
    assert json.loads((tmp_path / "runs/bench/course-fast/perturb_cost.json").read_text())["command"].endswith("--fast")


def test_bench_perturb_runs_every_strategy_and_stores_its_table(capsys, monkeypatch, tmp_path,
                                                                shipped_files_unchanged):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    monkeypatch.chdir(tmp_path)
    main(["bench", "perturb", "--fast"])
    means = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["strategies"]
    assert set(means) == STRATEGIES | {"baseline"}
    stored = json.loads((tmp_path / "runs/bench/course-fast/perturb.json").read_text())
    assert stored["fast_mode"] and stored["command"] == "advebm-teach bench perturb --fast"
    for name, row in stored["summary"].items():
        for key in METRICS:
            mean, low, high = row[key]
            assert low <= mean <= high and math.isclose(mean, means[name][key], abs_tol=1e-4)
            assert len(stored["runs"][name][key]) == len(stored["seeds"])
        assert 0 <= row["clean_accuracy"][0] <= 1 and 0 <= row["spurious_found"][0] <= 1


def test_first_spurious_step_against_a_loop():
    task = AdditionTask(n_digits=2)
    right = task.sample(3, seed=0)
    wrong = right.clone()
    wrong[:, task.c_positions[-1]] = (wrong[:, task.c_positions[-1]] + 1) % 10
    # sequence 0: wrong throughout, energy falls below 0 at step 2; 1: repaired at step 1; 2: wrong, never below
    tokens = torch.stack([wrong, torch.stack([wrong[0], right[1], wrong[2]]), torch.stack([wrong[0], right[1], wrong[2]])])
    energy = torch.tensor([[1.0, 1.0, 1.0], [0.5, -1.0, 0.2], [-0.5, -2.0, 0.1]])
    trace = AttackTrace(tokens, energy, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, task.seq_len),
                        torch.zeros(2, 3, task.vocab_size))
    found, first = first_spurious_step(trace, task, threshold=0.0)
    expected = []
    for b in range(3):
        steps = [s for s in range(3) if task.correctness(tokens[s, b])[0] < 1 and energy[s, b] < 0]
        expected.append(steps[0] if steps else 3)
    assert first.tolist() == expected == [2, 3, 3] and found.tolist() == [True, False, False]
