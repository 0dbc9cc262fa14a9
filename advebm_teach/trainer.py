"""Training loops: language-model pre-training with early stopping, resumable from atomic checkpoints.

The LM objective (paper eq. 7) is the mean next-token negative log-likelihood,
L(theta) = -1/(B(T-1)) sum_b sum_t log p_theta(x_{t+1} | x_<=t), minimised with AdamW (Table 1).

Determinism: epoch e shuffles with a generator seeded from (seed, e) and reseeds torch's global
generator (dropout) the same way, so a run resumed from its epoch-e checkpoint replays exactly
what an uninterrupted run would have done and ends with bit-identical weights on the same machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import load_checkpoint, model_record, save_checkpoint
from .config import pick_device
from .models import token_nll


def lm_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL (nats per predicted token) of ``tokens (B, T)`` under ``model``."""
    return token_nll(model(tokens), tokens).mean()


@torch.no_grad()
def evaluate_lm_loss(model: nn.Module, tokens: torch.Tensor, batch_size: int = 1024) -> float:
    """Held-out mean next-token NLL, in eval mode (the model's mode is restored)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start : start + batch_size].to(device)
        total += float(token_nll(model(batch), batch).sum())
        count += batch.shape[0] * (batch.shape[1] - 1)
    model.train(was_training)
    return total / count


@dataclass
class TrainResult:
    """What a training run leaves behind: one dict per epoch, and the epoch whose weights were kept."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    stopped_early: bool = False


def save_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, record: dict,
                        best_state: dict[str, torch.Tensor]) -> None:
    """Model, optimizer and best-epoch tensors in one safetensors file (one atomic write), the rest in its record."""
    state = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best_state.items()})
    for index, slots in state["state"].items():
        tensors.update({f"optimizer.{index}.{name}": value for name, value in slots.items()})
    save_checkpoint(path, tensors, {**record, "optimizer_param_groups": state["param_groups"]})


def load_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer
                        ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore what ``save_training_state`` wrote; returns the record and the best epoch's weights."""
    tensors, record = load_checkpoint(path)
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best_state = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": slots, "param_groups": record["optimizer_param_groups"]})
    return record, best_state


def train_lm(
    model: nn.Module,
    train_tokens: torch.Tensor,
    val_tokens: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    patience: int = 20,
    warmup_steps: int = 0,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float], nn.Module], None] | None = None,
) -> TrainResult:
    """Train ``model`` as a language model with AdamW; keep the epoch with the lowest held-out loss.

    Stops after ``patience`` epochs without improvement. The learning rate rises linearly over
    ``warmup_steps`` steps, then stays at ``lr``. With ``checkpoint_dir`` every epoch is saved
    atomically (one file, ``last``, holding the current and best weights and the optimizer state) and a
    later call with the same arguments resumes from it.
    ``on_epoch_end(row, model)`` runs after each epoch and may add metrics to ``row``, the history's entry.
    The model ends holding the best epoch's weights, on ``device`` (default: ``pick_device()``).
    """
    _check_training_args(train_tokens, val_tokens, epochs, batch_size, lr, patience)
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    settings = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "patience": patience,
        "warmup_steps": warmup_steps, "seed": seed, "n_train": len(train_tokens), "n_val": len(val_tokens),
        "model": model_record(model),
    }
    result = TrainResult()
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    last_path = None
    if checkpoint_dir is not None:
        last_path = Path(checkpoint_dir) / "last"
        if last_path.with_suffix(".safetensors").exists():
            record, best_state = load_training_state(last_path, model, optimizer)
            if record["settings"] != settings:
                raise ValueError(
                    f"checkpoint in {checkpoint_dir} was made with different settings; "
                    f"saved {record['settings']}, now {settings}. Use another checkpoint_dir."
                )
            result = TrainResult(**record["result"])

    steps_per_epoch = -(-len(train_tokens) // batch_size)
    start_epoch = len(result.history)
    bar = tqdm(total=epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc=f"train {type(model).__name__}", unit="step")
    for epoch in range(start_epoch, epochs):
        if result.stopped_early:
            break
        started = time.perf_counter()
        torch.manual_seed(seed * 1_000_003 + epoch)  # dropout masks of this epoch
        order = torch.randperm(len(train_tokens), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        model.train()
        total = 0.0
        for step, start in enumerate(range(0, len(train_tokens), batch_size)):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (global_step + 1) / warmup_steps) if warmup_steps else lr
            batch = train_tokens[order[start : start + batch_size]].to(device)
            loss = lm_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            bar.update(1)
        val_loss = evaluate_lm_loss(model, val_tokens)
        row = {"epoch": epoch + 1, "train_loss": total / len(train_tokens), "val_loss": val_loss,
               "seconds": time.perf_counter() - started}
        result.history.append(row)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result.stopped_early = epoch + 1 - result.best_epoch >= patience
        if on_epoch_end is not None:
            on_epoch_end(row, model)  # may add metrics to the row (it is the history's own entry)
        bar.set_postfix(train=f"{row['train_loss']:.3f}", val=f"{val_loss:.3f}", best=result.best_epoch)
        if last_path is not None:
            save_training_state(last_path, model, optimizer,
                                {"settings": settings, "result": asdict(result)}, best_state)
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return result


def _check_training_args(train_tokens, val_tokens, epochs, batch_size, lr, patience) -> None:
    for name, tokens in (("train_tokens", train_tokens), ("val_tokens", val_tokens)):
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long or len(tokens) == 0:
            raise ValueError(f"{name} must be a non-empty (N, T) torch.long tensor")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")

