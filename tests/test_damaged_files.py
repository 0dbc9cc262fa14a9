"""Damaged and foreign files: each load error is a ``CheckpointError`` naming the file and how to
regenerate it, raised before any model is built from what the file claims."""

import copy
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from advebm_teach import TransformerEnergy, load_pretrained, load_pretrained_record, make_task
from advebm_teach import checkpoints
from advebm_teach.checkpoints import (PRETRAINED_KINDS, CheckpointError, load_checkpoint,
                                      load_model, model_record, pretrained_path, read_json,
                                      save_checkpoint, save_model)

HINT = "delete runs/test and train again"
TASK = make_task("course")


def tiny_model(task=TASK) -> TransformerEnergy:
    torch.manual_seed(0)
    return TransformerEnergy.for_task(task, d_model=16, n_layers=1, n_heads=2, ff_dim=16)


def tiny_state() -> tuple[dict[str, torch.Tensor], dict]:
    model = tiny_model()
    return model.state_dict(), model_record(model)


def with_model(**changes) -> dict:
    """The tiny model's record with some model entries changed (None drops the entry)."""
    model = {**tiny_state()[1], **changes}
    return {"model": {k: v for k, v in model.items() if v is not None}}


def with_config(**changes) -> dict:
    return with_model(config={**tiny_state()[1]["config"], **changes})


def write_bytes(cut=None, data=None):
    """Writes the tiny model's file cut to ``cut`` bytes (negative: from the end), or ``data``."""
    def write(file: Path) -> None:
        save_model(file.with_suffix(""), tiny_model(), {})
        content = file.read_bytes()
        file.write_bytes(data if data is not None else content[:cut])
    return write


def write_header(header: bytes):
    """A writer of a file whose 8-byte length prefix announces ``header`` correctly."""
    return lambda file: file.write_bytes(len(header).to_bytes(8, "little") + header)


def write_metadata(text: str):
    """A valid safetensors file whose embedded record is ``text``."""
    return lambda file: save_file(tiny_state()[0], file, metadata={"record": text})


def write_record(record: dict, tensors=None):
    """A valid file holding ``tensors`` (the tiny model's by default) with ``record``."""
    return lambda file: save_checkpoint(file.with_suffix(""), tiny_state()[0] if tensors is None
                                        else tensors, record)


def dropped(name: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in tiny_state()[0].items() if k != name}


def transposed(name: str) -> dict[str, torch.Tensor]:
    tensors = tiny_state()[0]
    return {**tensors, name: tensors[name].T.contiguous()}


DAMAGED_FILES = {  # name: (writer, what the message says is wrong)
    "empty": (write_bytes(0), "truncated or not a safetensors"),
    "cut in the length": (write_bytes(5), "truncated or not a safetensors"),
    "cut in the header": (write_bytes(60), "truncated or not a safetensors"),
    "cut in the tensors": (write_bytes(-1_000), "truncated or not a safetensors"),
    "last byte cut": (write_bytes(-1), "truncated or not a safetensors"),
    "random bytes": (write_bytes(data=bytes(range(256)) * 40), "truncated or not a safetensors"),
    "text file": (write_bytes(data=b'{"model": "TransformerEnergy"}\n'), "truncated or not a"),
    "header not JSON": (write_header(b"{not json at all"), "truncated or not a safetensors"),
    "record not JSON": (write_metadata('{"model": {"class": '), "embedded record is not valid"),
    "record not an object": (write_metadata("[1, 2]"), "embedded record is a JSON list"),
}

BAD_RECORDS = {  # files that load_checkpoint reads but load_model must refuse
    "no record": (write_metadata("{}"), "no 'model' entry"),
    "no model": (write_record({"note": "no model"}), "no 'model' entry"),
    "model not an object": (write_record({"model": "TransformerEnergy"}), "no 'model' entry"),
    "no model class": (write_record(with_model(**{"class": None})), "no 'class'"),
    "no model config": (write_record(with_model(config=None)), "no 'config'"),
    "config not an object": (write_record(with_model(config=[14, 20])), "no 'config'"),
    "unknown class": (write_record(with_model(**{"class": "GPT5"})), "unknown model class"),
    "unknown argument": (write_record(with_config(n_experts=8)), "cannot be built"),
    "invalid head": (write_record(with_config(head="max")), "cannot be built"),
    "negative size": (write_record(with_config(ff_dim=-16)), "cannot be built"),
    "d_model 2**15": (write_record(with_config(d_model=2**15, ff_dim=2**15)), "larger than its"),
    "a billion layers": (write_record(with_config(n_layers=10**9)), "larger than its tensors"),
    "wider model": (write_record(with_config(d_model=32, ff_dim=32)), "do not fit the model"),
    "deeper model": (write_record(with_config(n_layers=2)), "do not fit the model"),
    "another vocabulary": (write_record(with_config(vocab_size=15)), "do not fit the model"),
    "a tensor missing": (write_record(with_model(), dropped("lm_head.bias")), "do not fit"),
    "a tensor too many": (write_record(with_model(), {**tiny_state()[0], "extra": torch.zeros(2)}),
                          "do not fit the model"),
    "a tensor transposed": (write_record(with_model(), transposed("lm_head.weight")), "not fit"),
}


def assert_names_file_and_hint(error: CheckpointError, file: Path, problem: str,
                               hint: str = HINT) -> None:
    message = str(error)
    assert str(file) in message and hint in message and problem in message, message
    assert error.file == file and error.regenerate == hint


@pytest.mark.parametrize("name", DAMAGED_FILES)
@pytest.mark.parametrize("load", [load_checkpoint, load_model])
def test_a_damaged_file_names_itself_and_how_to_regenerate_it(tmp_path, name, load):
    write, problem = DAMAGED_FILES[name]
    file = tmp_path / "ck.safetensors"
    write(file)
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "ck", regenerate=HINT)
    assert_names_file_and_hint(info.value, file, problem)


@pytest.mark.parametrize("name", BAD_RECORDS)
def test_a_record_that_does_not_describe_the_tensors_is_refused_before_building(tmp_path, name):
    write, problem = BAD_RECORDS[name]
    file = tmp_path / "ck.safetensors"
    write(file)
    load_checkpoint(tmp_path / "ck")  # the file itself is sound
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "ck", regenerate=HINT)
    assert time.perf_counter() - start < 1.0  # nothing the record claims was built or allocated
    assert_names_file_and_hint(info.value, file, problem)


def test_a_record_claiming_a_huge_model_allocates_nothing(tmp_path):
    """d_model = 2**15 would take 12.9 GB. A zero-width tensor of 2**15 rows lets the record pass
    the size bound, so the model is laid out (on the meta device) and compared; with 1 GiB of
    address space to spare the load fails cleanly (a real allocation raises a RuntimeError)."""
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs Linux's /proc to bound the address space")
    save_checkpoint(tmp_path / "ck", {**tiny_state()[0], "pad": torch.zeros(2**15, 0)},
                    with_config(d_model=2**15, n_heads=4, ff_dim=2**15))
    script = textwrap.dedent("""
        import resource, sys, time
        from advebm_teach.checkpoints import CheckpointError, load_model
        pages = int(open("/proc/self/statm").read().split()[0])
        limit = pages * resource.getpagesize() + 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        start = time.perf_counter()
        try:
            load_model(sys.argv[1])
        except CheckpointError as error:
            print(f"{time.perf_counter() - start:.3f}", error)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ck")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout, done.stderr
    seconds, message = done.stdout.split(" ", 1)
    assert float(seconds) < 0.5 and "do not fit the model" in message


def copy_shipped(kind: str, config: str, to: Path) -> Path:
    """Copy shipped weights (both files) to ``to/course/<kind>``, outside the package."""
    (to / "course").mkdir(exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained_path(kind, config).with_suffix(suffix),
                    to / "course" / f"{kind}{suffix}")
    return to / "course" / f"{kind}.safetensors"


@pytest.mark.parametrize("kind", ["plm", "energy_lm"])
def test_paper_weights_at_the_course_path_are_refused_naming_both(tmp_path, monkeypatch, kind):
    file = copy_shipped(kind, "paper", tmp_path)
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(kind, "course")
    assert_names_file_and_hint(info.value, file, "configuration 'paper'; expected kind",
                               "advebm-teach pretrain --config course --ship")
    assert "'course'" in str(info.value)


def foreign_course_file(model, **record):
    return lambda file: save_model(file.with_suffix(""), model, record)


PAPER_SIZED = tiny_model(make_task("paper"))
FOREIGN = {  # kind loaded: (writer of the file at its course path, what the message says)
    "energy_lm": (foreign_course_file(PAPER_SIZED, config="course", kind="energy_lm"),
                  "another configuration (seq_len=35; expected seq_len=20)"),
    "plm": (foreign_course_file(tiny_model(), config="course", kind="plm"),
            "holds a TransformerEnergy, not a LSTMLanguageModel"),
    "energy_adv": (foreign_course_file(tiny_model(), config="course", kind="energy_bce"),
                   "kind 'energy_bce' of configuration 'course'; expected kind 'energy_adv'"),
    "energy_bce": (foreign_course_file(tiny_model(), kind="energy_bce"), "configuration None"),
    "energy_improved": (write_bytes(-7), "truncated or not a safetensors"),
}


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_or_damaged_shipped_file_says_which_command_remakes_it(tmp_path, monkeypatch,
                                                                         kind):
    write, problem = FOREIGN[kind]
    file = tmp_path / "course" / f"{kind}.safetensors"
    file.parent.mkdir()
    write(file)
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(kind, "course")
    tool = "pretrain" if kind in ("plm", "energy_lm") else "reproduce"
    assert_names_file_and_hint(info.value, file, problem,
                               f"advebm-teach {tool} --config course --ship")


@pytest.mark.parametrize("content", [b'{"fingerprint": {"seed": 3}, "resu', b"", b"\xff\xfe\x00!"],
                         ids=["truncated", "empty", "not UTF-8"])
def test_read_json_names_a_corrupt_file_and_how_to_regenerate_it(tmp_path, content):
    path = tmp_path / "seed_3.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_json(path, "pass --restart")
    assert_names_file_and_hint(info.value, path, "not valid JSON", "pass --restart")


def test_read_json_reads_json_and_names_a_missing_file(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json(tmp_path / "ok.json", "pass --restart") == {"a": [1, 2]}
    with pytest.raises(FileNotFoundError, match=r"missing\.json.*pass --restart"):
        read_json(tmp_path / "missing.json", "pass --restart")


def test_a_corrupt_shipped_record_names_the_file_and_the_command(tmp_path, monkeypatch):
    copy_shipped("plm", "course", tmp_path)
    (tmp_path / "course" / "plm.json").write_text('{"config": "cour')
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained_record("plm", "course")
    assert_names_file_and_hint(info.value, tmp_path / "course" / "plm.json", "not valid JSON",
                               "advebm-teach pretrain --config course --ship")


def test_the_error_is_a_value_error_that_copies_whole():
    error = CheckpointError("ck.safetensors", "it is truncated", HINT)
    assert isinstance(error, ValueError)
    assert str(copy.copy(error)) == str(error)
    assert str(error) == f"cannot load ck.safetensors: it is truncated. To regenerate it: {HINT}"


SHIPPED = [(config, kind) for config in ("course", "paper") for kind in PRETRAINED_KINDS
           if pretrained_path(kind, config).with_suffix(".safetensors").exists()]


def test_every_shipped_kind_loads_exactly_and_without_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    assert {kind for config, kind in SHIPPED if config == "course"} == set(PRETRAINED_KINDS)
    for config, kind in SHIPPED:
        model = load_pretrained(kind, config)
        tensors = load_file(pretrained_path(kind, config).with_suffix(".safetensors"))
        state = model.state_dict()
        assert state.keys() == tensors.keys()
        assert all(torch.equal(state[k], tensors[k]) for k in tensors)
        assert model_record(model) == load_pretrained_record(kind, config)["model"]
        assert not model.training


def test_no_module_of_the_package_unpickles():
    sources = Path(checkpoints.__file__).parent.rglob("*.py")
    words = ("import pickle", "torch.load(", "weights_only")
    offending = [path.name for path in sources if any(word in path.read_text() for word in words)]
    assert offending == []
