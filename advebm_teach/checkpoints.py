"""Weights as safetensors plus a JSON record, written atomically; the registry of shipped weights.

A checkpoint ``NAME`` is two files: ``NAME.safetensors`` (tensors, with the record also embedded in
its header, so the pair can never disagree) and ``NAME.json`` (the same record, for people and
notebooks). Each file is written to a temporary file in the same folder, flushed to disk and then
renamed over the old one, so an interrupt leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from .config import get_config
from .models import LSTMLanguageModel, TransformerEnergy

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MODEL_CLASSES = {cls.__name__: cls for cls in (LSTMLanguageModel, TransformerEnergy)}
PRETRAINED_KINDS = ("plm", "energy_lm", "energy_bce", "energy_adv", "energy_improved")
_RECORD_KEY = "record"


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename onto ``path`` (atomic on POSIX and Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: an interrupt leaves the old file or the new one."""
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (which weights a stored result was computed from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    """Write ``path.safetensors`` and ``path.json`` atomically; ``record`` must be JSON-serialisable."""
    path = Path(path)
    text = json.dumps(record, indent=2, sort_keys=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic_write(path.with_suffix(".safetensors"), lambda tmp: save_file(tensors, tmp, metadata={_RECORD_KEY: text}))
    write_text_atomic(path.with_suffix(".json"), text + "\n")


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, record)`` from ``path.safetensors``; the record is read from the file's own header."""
    file = Path(path).with_suffix(".safetensors")
    if not file.exists():
        raise FileNotFoundError(f"no checkpoint at {file}")
    with safe_open(file, framework="pt") as f:
        record = json.loads((f.metadata() or {}).get(_RECORD_KEY, "{}"))
    return load_file(file), record


def model_record(model: nn.Module) -> dict[str, Any]:
    """What is needed to rebuild ``model``: its class name and constructor arguments."""
    return {"class": type(model).__name__, "config": dict(model.config)}


def build_model(record: dict[str, Any]) -> nn.Module:
    """A fresh model from ``model_record``'s output."""
    if record.get("class") not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {record.get('class')!r}; expected one of {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[record["class"]](**record["config"])


def save_model(path: str | Path, model: nn.Module, record: dict[str, Any]) -> None:
    """Save a model's weights with ``record`` plus what ``load_model`` needs to rebuild it."""
    save_checkpoint(path, model.state_dict(), {**record, "model": model_record(model)})


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, record)``: the model rebuilt, its weights loaded, in eval mode on CPU."""
    tensors, record = load_checkpoint(path)
    model = build_model(record["model"])
    model.load_state_dict(tensors)
    return model.eval(), record


def pretrained_path(kind: str, config: str = "course") -> Path:
    """Where the shipped ``kind`` weights of ``config`` live (without suffix)."""
    get_config(config)
    if kind not in PRETRAINED_KINDS:
        raise ValueError(f"unknown pretrained kind {kind!r}; expected one of {list(PRETRAINED_KINDS)}")
    return PRETRAINED_DIR / config / kind


def load_pretrained(kind: str, config: str = "course") -> nn.Module:
    """A shipped model of ``config``, in eval mode on CPU: ``"plm"`` (P_LM), ``"energy_lm"`` (the energy
    model after LM pre-training), or seed 0's fine-tuned energies of the reproduction: ``"energy_bce"``
    (Residual-EBM baseline) and ``"energy_adv"`` (Algorithm 1), both with the scalar ``mean`` read-out, and
    ``"energy_improved"`` (``lm_nll`` read-out, Algorithm 1 with the tabu attack).

    Its record (metrics, seed, the command that made it) is ``load_pretrained_record(kind, config)``.
    """
    path = pretrained_path(kind, config)
    if not path.with_suffix(".safetensors").exists():
        command = f"pretrain --config {config}" if kind in ("plm", "energy_lm") else f"reproduce --config {config} --ship"
        raise FileNotFoundError(
            f"no shipped {kind!r} weights for config {config!r} at {path}.safetensors; "
            f"regenerate them with: advebm-teach {command}"
        )
    return load_model(path)[0]


def load_pretrained_record(kind: str, config: str = "course") -> dict[str, Any]:
    """The JSON record of a shipped model: config, seed, metrics, training history and command."""
    return json.loads(pretrained_path(kind, config).with_suffix(".json").read_text())
