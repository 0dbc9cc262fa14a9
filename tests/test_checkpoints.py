"""Checkpoints: exact round trips, atomic writes, and the registry's errors."""

import json

import pytest
import safetensors.torch
import torch

from advebm_teach import AdditionTask, LSTMLanguageModel, TransformerEnergy, load_pretrained
from advebm_teach.checkpoints import load_checkpoint, load_model, save_checkpoint, save_model

TASK = AdditionTask(2)


@pytest.mark.parametrize("head", ["mean", "lm_nll"])
def test_model_round_trip_gives_identical_outputs(tmp_path, head):
    torch.manual_seed(0)
    model = TransformerEnergy.for_task(TASK, d_model=16, n_heads=2, ff_dim=16, head=head).eval()
    save_model(tmp_path / "energy", model, {"note": "test"})
    loaded, record = load_model(tmp_path / "energy")
    tokens = TASK.sample(4, seed=0)
    assert torch.equal(model.energy(tokens), loaded.energy(tokens))
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded.head == head and record["note"] == "test"
    assert json.loads((tmp_path / "energy.json").read_text()) == record


def test_checkpoint_files_are_readable_by_others(tmp_path):
    save_checkpoint(tmp_path / "ck", {"w": torch.zeros(1)}, {})
    assert all((tmp_path / name).stat().st_mode & 0o777 == 0o644 for name in ("ck.json", "ck.safetensors"))


def test_record_lives_in_the_safetensors_header_too(tmp_path):
    save_checkpoint(tmp_path / "ck", {"w": torch.arange(3.0)}, {"epoch": 4})
    (tmp_path / "ck.json").unlink()  # the sidecar is for people; the header is authoritative
    tensors, record = load_checkpoint(tmp_path / "ck")
    assert record == {"epoch": 4} and torch.equal(tensors["w"], torch.arange(3.0))


def test_an_interrupted_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", {"w": torch.zeros(3)}, {"epoch": 1})

    def write_half_then_die(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 7)  # a torn file
        raise KeyboardInterrupt

    monkeypatch.setattr("advebm_teach.checkpoints.save_file", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", {"w": torch.ones(3)}, {"epoch": 2})
    tensors, record = load_checkpoint(tmp_path / "ck")
    assert record == {"epoch": 1} and torch.equal(tensors["w"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]  # no temp files left


def test_saved_file_is_plain_safetensors(tmp_path):
    model = LSTMLanguageModel(TASK.vocab_size, embed_dim=8, hidden_dim=8)
    save_model(tmp_path / "plm", model, {})
    tensors = safetensors.torch.load_file(tmp_path / "plm.safetensors")
    assert set(tensors) == set(model.state_dict())


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown pretrained kind"):
        load_pretrained("energy_bce_typo")
    with pytest.raises(ValueError, match="unknown config"):
        load_pretrained("plm", config="huge")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint("/nonexistent/ck")
