"""The benchmark runs end to end (fast mode) and reports what it promises; timings are never asserted."""

import json

from advebm_teach.cli import main

REQUIRED = ("naive_seq_per_s", "exact_seq_per_s", "pruned_seq_per_s", "exact_speedup", "pruned_speedup",
            "pruned_agreement", "exact_fraction_of_matmul_peak")


def test_bench_attack_prints_one_json_line_last(capsys, monkeypatch, tmp_path, shipped_files_unchanged):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    monkeypatch.chdir(tmp_path)
    main(["bench", "attack", "--fast"])
    printed = capsys.readouterr()
    figures = json.loads(printed.out.strip().splitlines()[-1])
    stored = tmp_path / "runs/bench/course-fast/attack.json"
    assert set(json.loads(stored.read_text())) == set(figures)  # stored in full, printed rounded
    assert printed.err.strip().splitlines()[-1] == "wrote runs/bench/course-fast/attack.json"
    assert set(REQUIRED) <= set(figures)
    assert figures["exact_matches_naive"] is True  # the batched attack took the naive attack's every step
    assert all(figures[key] > 0 for key in REQUIRED if key != "pruned_agreement")
    assert 0 <= figures["pruned_agreement"] <= 1 and figures["pruned_agreement"] == figures["pruned_agreement_by_k"]["3"]
