"""--ship: what a run made is copied over the shipped files whole, or not at all; never in fast mode."""

import shutil

import pytest

from advebm_teach.experiments import shipping
from advebm_teach.cli import main
from advebm_teach.experiments.shipping import check_can_ship, ship_files


def test_ship_files_copies_each_file_byte_for_byte(tmp_path):
    made = {name: tmp_path / "run" / name for name in ("a.json", "b.safetensors")}
    for i, path in enumerate(made.values()):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes(range(i, 200)))
    shipped = ship_files([(path, tmp_path / "shipped" / name) for name, path in made.items()])
    assert [p.read_bytes() for p in shipped] == [p.read_bytes() for p in made.values()]


def test_a_missing_output_ships_nothing(tmp_path):
    (tmp_path / "made.json").write_text("new")
    (tmp_path / "shipped.json").write_text("old")
    with pytest.raises(FileNotFoundError, match="nothing shipped.*absent.json.*run it again"):
        ship_files([(tmp_path / "made.json", tmp_path / "shipped.json"),
                    (tmp_path / "absent.json", tmp_path / "other.json")], hint=" (run it again)")
    assert (tmp_path / "shipped.json").read_text() == "old"


def test_an_interrupted_copy_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    (tmp_path / "made.json").write_text("new " * 1000)
    (tmp_path / "shipped.json").write_text("old")

    def half_a_copy(source, target):
        with open(target, "w") as f:
            f.write("ne")
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", half_a_copy)
    with pytest.raises(KeyboardInterrupt):
        ship_files([(tmp_path / "made.json", tmp_path / "shipped.json")])
    assert (tmp_path / "shipped.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made.json", "shipped.json"]


def test_shipping_is_refused_in_fast_mode(monkeypatch):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    with pytest.raises(ValueError, match="--ship replaces the package's shipped files"):
        check_can_ship(True)
    check_can_ship(False)


def test_bench_ship_replaces_the_shipped_result_with_the_run_s(tmp_path, monkeypatch, capsys):
    """The command's wiring, with the shipped folder moved to tmp_path and fast mode let through."""
    monkeypatch.setenv("ADVEBM_FAST", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shipping, "RESULTS_DIR", tmp_path / "shipped")
    monkeypatch.setattr(shipping, "check_can_ship", lambda ship: None)
    main(["bench", "perturb-cost", "--fast", "--ship"])
    made = tmp_path / "runs/bench/course-fast/perturb_cost.json"
    assert (tmp_path / "shipped" / "perturb_cost.json").read_bytes() == made.read_bytes()
    assert f"wrote {tmp_path / 'shipped' / 'perturb_cost.json'}" in capsys.readouterr().err


def test_load_result_reads_a_shipped_result_or_says_how_to_make_it(tmp_path, monkeypatch):
    from advebm_teach.experiments.shipping import load_result

    assert load_result("perturb_cost")["strategies"]["clean"]["ratio"] == 1.0
    monkeypatch.setattr(shipping, "RESULTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="advebm-teach bench perturb --ship"):
        load_result("perturb")
    (tmp_path / "course.json").write_text("{truncated")
    with pytest.raises(ValueError, match="course.json.*advebm-teach reproduce --config course --ship"):
        load_result("course")
