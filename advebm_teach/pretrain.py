"""Pre-training of the course's two models and the metrics shipped with their weights.

``advebm-teach pretrain --config course`` trains, from scratch:

1. P_LM, the LSTM, on 1,000 sequences with early stopping on 1,000 held-out ones (Table 1);
2. the Transformer energy model as a language model on 100,000 sequences (section 3.2);

and writes ``pretrained/<config>/{plm,energy_lm}.{safetensors,json}``. Each JSON records the
configuration, seeds, training history, metrics and the exact command that made it.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoints import PRETRAINED_DIR, save_model
from .config import CourseConfig, TrainingSetup, fast_mode, get_config, pick, pick_device, seed_everything
from .models import LSTMLanguageModel, TransformerEnergy
from .sampling import sample_lm
from .task import AdditionTask
from .trainer import train_lm

EVAL_SAMPLES = 2_000


def data_seeds(seed: int) -> dict[str, int]:
    """The seeds of every data set a pre-training run draws, derived from the run's seed."""
    names = ("plm_train", "plm_val", "energy_train", "energy_val", "eval")
    return {name: seed * 100 + i + 1 for i, name in enumerate(names)}


def copy_rate(samples: torch.Tensor, train_tokens: torch.Tensor) -> float:
    """Fraction of ``samples`` that are exact copies of a training sequence."""
    seen = {tuple(row) for row in train_tokens.tolist()}
    return sum(tuple(row) in seen for row in samples.tolist()) / max(len(samples), 1)


def sample_metrics(samples: torch.Tensor, task: AdditionTask) -> dict[str, Any]:
    """Correctness of samples: mean, standard deviation, fully correct fraction, and per c position."""
    correctness = task.correctness(samples)
    return {
        "sample_correctness": float(correctness.mean()),
        "sample_correctness_std": float(correctness.std()),
        "fully_correct": float((correctness == 1).float().mean()),
        "per_position_correctness": [round(x, 4) for x in task.digit_correct(samples).float().mean(0).tolist()],
        "n_eval_samples": len(samples),
    }


def _scaled(setup: TrainingSetup) -> TrainingSetup:
    """Fast mode: the same run on far less data and far fewer epochs."""
    return replace(setup, n_train=pick(setup.n_train, min(setup.n_train, 300)), n_val=pick(setup.n_val, 200),
                   epochs=pick(setup.epochs, 2), warmup_steps=pick(setup.warmup_steps, 0))


def _train_and_save(kind: str, model: nn.Module, task: AdditionTask, setup: TrainingSetup, seeds: dict[str, int],
                    out: Path, checkpoints: Path, record: dict[str, Any], progress: bool) -> dict[str, Any]:
    prefix = "plm" if kind == "plm" else "energy"
    train = task.sample(setup.n_train, seed=seeds[f"{prefix}_train"])
    val = task.sample(setup.n_val, seed=seeds[f"{prefix}_val"])
    n_eval = pick(EVAL_SAMPLES, 200)

    def track_samples(row: dict, trained: nn.Module) -> None:  # the pre-training curve of sample quality
        row["sample_correctness"] = float(task.correctness(sample_lm(trained, task, n_eval // 4, seed=seeds["eval"] + 1)).mean())

    started = time.perf_counter()
    result = train_lm(
        model, train, val, epochs=setup.epochs, batch_size=setup.batch_size, lr=setup.lr,
        weight_decay=setup.weight_decay, patience=setup.patience, warmup_steps=setup.warmup_steps,
        seed=record["seed"], progress=progress, checkpoint_dir=checkpoints / kind,
        on_epoch_end=track_samples if kind == "energy_lm" else None,
    )
    train_seconds = round(time.perf_counter() - started, 1)
    samples = sample_lm(model.cpu(), task, n_eval, seed=seeds["eval"])
    metrics = {
        **sample_metrics(samples, task),
        "eval_seed": seeds["eval"],
        "heldout_loss": result.best_val_loss,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": train_seconds,
    }
    if kind == "plm":
        metrics["copy_rate"] = copy_rate(samples, train)
    full = {**record, "kind": kind, "training": asdict(setup), "metrics": metrics, "history": result.history}
    save_model(out / kind, model, full)
    return full


def pretrain(config: str | CourseConfig = "course", out: str | Path | None = None, seed: int | None = None,
             kinds: tuple[str, ...] = ("plm", "energy_lm"), energy_epochs: int | None = None,
             checkpoints: str | Path | None = None, command: str | None = None,
             progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train the models of ``config`` from scratch and save them with their records; returns the records.

    ``out`` defaults to the shipped location (``advebm_teach/pretrained/<config>``), except in fast mode,
    which writes to ``runs/pretrain-fast/<config>`` so that it never overwrites shipped weights.
    Training checkpoints go to ``checkpoints`` (default ``runs/checkpoints/<config>``); an interrupted
    run started again with the same arguments resumes from them.
    """
    cfg = get_config(config) if isinstance(config, str) else config
    seed = cfg.seed if seed is None else seed
    unknown = set(kinds) - {"plm", "energy_lm"}
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; expected 'plm' and/or 'energy_lm'")
    run_name = f"{cfg.name}-fast" if fast_mode() else cfg.name
    out = Path(out) if out is not None else (Path("runs/pretrain-fast") / cfg.name if fast_mode() else PRETRAINED_DIR / cfg.name)
    checkpoints = Path(checkpoints) if checkpoints is not None else Path("runs/checkpoints") / run_name
    seed_everything(seed)
    task = AdditionTask(cfg.n_digits)
    seeds = data_seeds(seed)
    energy_setup = cfg.energy_lm if energy_epochs is None else replace(cfg.energy_lm, epochs=energy_epochs)
    record = {
        "config": cfg.name, "n_digits": cfg.n_digits, "seed": seed, "data_seeds": seeds, "fast_mode": fast_mode(),
        "command": command or f"advebm-teach pretrain --config {cfg.name}",
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "device": str(pick_device()),
                        "threads": torch.get_num_threads()},
    }
    records = {}
    if "plm" in kinds:
        records["plm"] = _train_and_save("plm", LSTMLanguageModel(task.vocab_size), task, _scaled(cfg.plm), seeds,
                                         out, checkpoints, record, progress)
    if "energy_lm" in kinds:
        records["energy_lm"] = _train_and_save("energy_lm", TransformerEnergy.for_task(task), task,
                                               _scaled(energy_setup), seeds, out, checkpoints, record, progress)
    return records
