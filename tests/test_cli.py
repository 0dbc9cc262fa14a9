"""The ``advebm-teach`` command, run end to end in fast mode (tiny sizes, every code path)."""

import shutil
import subprocess

import pytest

from advebm_teach import make_task, sample_lm
from advebm_teach.checkpoints import load_model
from advebm_teach.cli import main


def test_pretrain_fast_writes_loadable_models_that_record_their_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    argv = ["pretrain", "--config", "course", "--fast", "--out", str(tmp_path / "out"),
            "--checkpoints", str(tmp_path / "checkpoints")]
    main(argv)
    task = make_task("course")
    for kind in ("plm", "energy_lm"):
        model, record = load_model(tmp_path / "out" / kind)
        assert record["command"] == "advebm-teach " + " ".join(argv)
        assert record["fast_mode"] is True and record["kind"] == kind
        assert 0.0 <= record["metrics"]["sample_correctness"] <= 1.0
        assert task.is_well_formed(sample_lm(model, task, 8, seed=0)).all()
    assert "copy_rate" in load_model(tmp_path / "out" / "plm")[1]["metrics"]
    assert "sample_correctness" in load_model(tmp_path / "out" / "energy_lm")[1]["history"][0]


def test_unknown_config_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--config", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_console_script_is_installed():
    executable = shutil.which("advebm-teach")
    assert executable, "the advebm-teach console script is not on PATH: pip install -e ."
    result = subprocess.run([executable, "pretrain", "--help"], capture_output=True, text=True, check=True)
    assert "--config" in result.stdout
