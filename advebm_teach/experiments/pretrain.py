"""Pre-training of the course's two models and the metrics shipped with their weights.

``advebm-teach pretrain --config course`` trains, from scratch:

1. P_LM, the LSTM, on 1,000 sequences with early stopping on 1,000 held-out ones (Table 1);
2. the Transformer energy model as a language model on 100,000 sequences (section 3.2);

and writes ``runs/pretrain/<config>/{plm,energy_lm}.{safetensors,json}`` (``--ship``: then over
the shipped ``pretrained/<config>/``). Each JSON records the configuration, seeds, training
history, metrics and the exact command that made it.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..checkpoints import PRETRAINED_DIR, read_json, save_model
from ..checks import check_folder, check_int, check_seed
from ..config import CourseConfig, TrainingSetup, fast_mode, get_config, pick, pick_device
from ..models import LSTMLanguageModel, TransformerEnergy
from ..sampling import copy_rate, sample_lm
from .shipping import RUNS_DIR, check_can_ship, run_folder, ship_files
from ..task import AdditionTask
from ..trainer import epoch_seed, train_lm

EVAL_SAMPLES = 2_000


def data_seeds(seed: int) -> dict[str, int]:
    """The seeds of every data set a pre-training run draws, derived from the run's seed."""
    names = ("plm_train", "plm_val", "energy_train", "energy_val", "eval")
    return {name: seed * 100 + i + 1 for i, name in enumerate(names)}


def sample_metrics(samples: torch.Tensor, task: AdditionTask) -> dict[str, Any]:
    """Correctness of samples: mean, standard deviation, fully correct share, per c position."""
    correctness = task.correctness(samples)
    return {
        "sample_correctness": float(correctness.mean()),
        "sample_correctness_std": float(correctness.std()),
        "fully_correct": float((correctness == 1).float().mean()),
        "per_position_correctness": [
            round(x, 4) for x in task.digit_correct(samples).float().mean(0).tolist()
        ],
        "n_eval_samples": len(samples),
    }


def _scaled(setup: TrainingSetup) -> TrainingSetup:
    """Fast mode: the same run on far less data and far fewer epochs (the default sizes)."""
    training = replace(setup.training, epochs=pick(setup.training.epochs, 2),
                       warmup_steps=pick(setup.training.warmup_steps, 0))
    return replace(setup, n_train=pick(setup.n_train, min(setup.n_train, 300)),
                   n_val=pick(setup.n_val, 200), training=training)


def setup_record(setup: TrainingSetup) -> dict[str, Any]:
    """How a model was pre-trained, as its record keeps it: data sizes and optimisation, flat."""
    training = {k: v for k, v in asdict(setup.training).items() if k != "seed"}  # the run's seed
    return {"n_train": setup.n_train, "n_val": setup.n_val, **training}


def _train_and_save(
    kind: str,
    model: nn.Module,
    task: AdditionTask,
    setup: TrainingSetup,
    seeds: dict[str, int],
    out: Path,
    checkpoints: Path,
    record: dict[str, Any],
    progress: bool,
) -> dict[str, Any]:
    """Train one model (resuming from ``checkpoints``), evaluate it, save it with its record."""
    prefix = "plm" if kind == "plm" else "energy"
    train = task.sample(setup.n_train, seed=seeds[f"{prefix}_train"])
    val = task.sample(setup.n_val, seed=seeds[f"{prefix}_val"])
    n_eval = pick(EVAL_SAMPLES, 200)

    def track_samples(
        row: dict, trained: nn.Module
    ) -> None:  # the pre-training curve of sample quality
        samples = sample_lm(trained, task, n_eval // 4, seed=seeds["eval"] + 1)
        row["sample_correctness"] = float(task.correctness(samples).mean())

    result = train_lm(
        model,
        train,
        val,
        replace(setup.training, seed=record["seed"]),
        device=pick_device(),  # the best device here; sampled and saved from the CPU below
        progress=progress,
        checkpoint_dir=checkpoints / kind,
        on_epoch_end=track_samples if kind == "energy_lm" else None,
    )
    samples = sample_lm(model.cpu(), task, n_eval, seed=seeds["eval"])
    metrics = {
        **sample_metrics(samples, task),
        "eval_seed": seeds["eval"],
        "heldout_loss": result.best_val_loss,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": round(result.train_seconds, 1),
    }
    if kind == "plm":
        metrics["copy_rate"] = copy_rate(samples, train)
    full = {
        **record,
        "kind": kind,
        "training": setup_record(setup),
        "metrics": metrics,
        "history": result.history,
    }
    save_model(out / kind, model, full)
    return full


def initialised(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with torch's generator seeded with ``seed``; the generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def energy_init_seed(seed: int, plm_epochs_run: int) -> int:
    """The seed of the energy LM's initial weights: that of P_LM's last training epoch.

    The shipped weights were made in one process, in which the energy LM drew its initial weights
    from torch's global generator just after P_LM's training, which had last seeded it for its
    final epoch. The rule is kept and stated: it draws the shipped energy LM's initial weights, and
    a resumed run starts from the same ones as an uninterrupted run.
    """
    return epoch_seed(seed, plm_epochs_run - 1)


def pretrain(
    config: str | CourseConfig = "course",
    out: str | Path | None = None,
    seed: int | None = None,
    kinds: tuple[str, ...] = ("plm", "energy_lm"),
    energy_epochs: int | None = None,
    checkpoints: str | Path | None = None,
    command: str | None = None,
    progress: bool = True,
    ship: bool = False,
) -> dict[str, dict[str, Any]]:
    """Train the models of ``config`` from scratch and save them with their records (returned).

    The weights and records go to ``out`` (default ``runs/pretrain/<config>``, ``-fast`` in fast
    mode); ``ship=True`` then copies them over the package's shipped weights
    (``pretrained/<config>/``), each file atomically (full mode only). Training checkpoints go to
    ``checkpoints`` (default ``runs/checkpoints/<config>``): an interrupted run started again with
    the same arguments resumes from them and ends with the same weights (bit for bit at the same
    thread count).

    Initial weights: P_LM's are drawn with the run's ``seed``, the energy LM's with the seed of
    P_LM's last epoch (``energy_init_seed``), so ``kinds=("energy_lm",)`` needs P_LM's record in
    ``out``.
    Every argument is checked before any training starts.
    """
    cfg = get_config(config) if isinstance(config, str) else config
    seed = cfg.seed if seed is None else check_seed("seed", seed)
    run_name = f"{cfg.name}-fast" if fast_mode() else cfg.name
    out = check_folder("out", out if out is not None else run_folder("pretrain", cfg.name))
    checkpoints = check_folder("checkpoints", checkpoints if checkpoints is not None
                               else RUNS_DIR / "checkpoints" / run_name)
    _check_plan(kinds, energy_epochs, ship, out / "plm.json")
    task, seeds = AdditionTask(cfg.n_digits), data_seeds(seed)
    plm_setup, energy_setup = _scaled(cfg.plm), _scaled(cfg.energy_lm)  # fast mode: the defaults
    if energy_epochs is not None:  # an explicit budget holds in fast mode too
        energy_setup = replace(energy_setup,
                               training=replace(energy_setup.training, epochs=energy_epochs))
    record = _run_record(cfg, seed, seeds, command)
    records = {}
    if "plm" in kinds:
        plm = initialised(lambda: LSTMLanguageModel(task.vocab_size), seed)
        records["plm"] = _train_and_save("plm", plm, task, plm_setup, seeds, out, checkpoints,
                                         record, progress)
    plm_epochs = (records.get("plm") or read_json(out / "plm.json", "run `advebm-teach pretrain` "
                                                  "without --only"))["metrics"]["epochs_run"]
    if "energy_lm" in kinds:
        energy = initialised(lambda: TransformerEnergy.for_task(task),
                             energy_init_seed(seed, plm_epochs))
        records["energy_lm"] = _train_and_save("energy_lm", energy, task, energy_setup, seeds, out,
                                               checkpoints, record, progress)
    if ship:
        ship_files([(out / f"{kind}{suffix}", PRETRAINED_DIR / cfg.name / f"{kind}{suffix}")
                    for kind in kinds for suffix in (".safetensors", ".json")])
    return records


def _check_plan(kinds: tuple[str, ...], energy_epochs: int | None, ship: bool,
                plm_record: Path) -> None:
    """What ``pretrain`` is asked to do, checked before any training starts."""
    if isinstance(kinds, str) or not kinds or set(kinds) - {"plm", "energy_lm"}:
        raise ValueError(f"kinds must be a non-empty tuple of 'plm' and/or 'energy_lm', "
                         f"got {kinds!r}")
    if energy_epochs is not None:
        check_int("energy_epochs", energy_epochs, low=1)
    check_can_ship(ship)
    if ship and set(kinds) != {"plm", "energy_lm"}:
        raise ValueError("--ship replaces both shipped models: train both (no --only)")
    if "plm" not in kinds and not plm_record.is_file():
        raise ValueError(f"kinds without 'plm' needs P_LM's record {plm_record} from an earlier "
                         "run into the same out folder (its epochs seed the energy LM's initial "
                         "weights)")


def _run_record(cfg: CourseConfig, seed: int, seeds: dict[str, int], command: str | None
                ) -> dict[str, Any]:
    """What every model of a pre-training run records: configuration, seeds, command, machine."""
    return {"config": cfg.name, "n_digits": cfg.n_digits, "seed": seed, "data_seeds": seeds,
            "fast_mode": fast_mode(),
            "command": command or f"advebm-teach pretrain --config {cfg.name}",
            "environment": {"torch": torch.__version__, "python": platform.python_version(),
                            "device": str(pick_device()), "threads": torch.get_num_threads()}}
