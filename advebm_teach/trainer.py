"""Training loops: language-model pre-training and EBM fine-tuning (the Residual-EBM baseline and
the paper's Algorithm 1), with early stopping, resumable from atomic checkpoints.

The LM objective (paper eq. 7) is the mean next-token negative log-likelihood,
L(theta) = -1/(B(T-1)) sum_b sum_t log p_theta(x_{t+1} | x_<=t), minimised with AdamW (Table 1).

Determinism: epoch e shuffles with a generator seeded with ``epoch_seed(seed, e)`` and reseeds
torch's global generator (dropout) the same way, so a run resumed from its epoch-e checkpoint
replays exactly what an uninterrupted run would have done, wherever it was interrupted (between
epochs or inside one), and ends with bit-identical weights on the same machine at the same thread
count. On the CPU only: on a CUDA GPU the same seeds give the same data order and dropout masks,
but some of its kernels (atomic additions in backward passes) sum in a varying order, so a resumed
run, or even a second run, agrees with the first only up to rounding
(``torch.use_deterministic_algorithms(True)`` with ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` would make
it exact, at some speed; the course does not set it).

Devices: a trainer trains the model where it is. ``device=None`` (the default) leaves it on the
device of its parameters; ``device=...`` moves it there first, in place (``model.to(device)``),
and it stays there. Tokens may be on any device: each batch is moved to the model's. The trained
model is returned as ``TrainResult.model`` (the same object, trained in place).

A loss that stops being finite (a learning rate too large, a NaN regulariser weight) stops training
with a ``FloatingPointError`` naming the epoch, instead of returning the weights of an earlier
epoch silently.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .attack import DiscreteAttack
from .checkpoints import CheckpointError, load_checkpoint, model_record, save_checkpoint
from .checks import (SEED_LIMIT, check_choice, check_device, check_folder, check_int,
                     check_model_fits, check_number, check_positive, check_token_ids,
                     model_config, model_device)
from .config import TrainConfig
from .mcmc import discrete_langevin, gibbs_with_gradients
from .models import evaluation_mode, token_nll
from .perturb_steps import Objective
from .residual import ResidualEnergy
from .sampling import sample_lm
from .task import AdditionTask


def lm_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL (nats per predicted token) of ``tokens (B, T)`` under ``model``."""
    return token_nll(model(tokens), tokens).mean()


@torch.no_grad()
def evaluate_lm_loss(model: nn.Module, tokens: torch.Tensor, batch_size: int = 1024) -> float:
    """Held-out mean next-token NLL, in eval mode (the model's mode is restored)."""
    device = model_device(model)
    total, count = 0.0, 0
    with evaluation_mode(model):
        for start in range(0, len(tokens), batch_size):
            batch = tokens[start : start + batch_size].to(device)
            total += float(token_nll(model(batch), batch).sum())
            count += batch.shape[0] * (batch.shape[1] - 1)
    return total / count


# Where each named use of a run's seed starts; ``derive_seed`` adds the use's index to it.
SEED_OFFSETS = {"epoch": 0, "negatives": 1, "validation negatives": 2, "random start": 0}


def derive_seed(seed: int, purpose: str, index: int = 0) -> int:
    """The seed of one use of a run seeded with ``seed``: ``purpose`` (a key of ``SEED_OFFSETS``)
    and its ``index`` (epoch e, the k-th random start), (seed * 1,000,003 + offset) mod 2**32.

    The purposes share one offset space: epoch e's shuffle and dropout take offset e, and
    ``train_ebm``'s P_LM negatives offsets 1 and 2, so they share seeds with epochs 1 and 2 (as
    the perturbation study's random starts 1-4 do). A shared seed starts two generators on the
    same stream, used for different draws (a permutation, categorical samples); giving each
    purpose its own space would make them independent, and change every shipped number, so it is
    left as it is.
    """
    offset = SEED_OFFSETS[check_choice("purpose", purpose, SEED_OFFSETS)] + index
    return (seed * 1_000_003 + offset) % SEED_LIMIT


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based) of a run seeded with ``seed``: its shuffle and dropout
    masks."""
    return derive_seed(seed, "epoch", epoch)


@dataclass
class TrainResult:
    """What a training run leaves: one dict per epoch, the epoch whose weights were kept, and the
    trained ``model`` (the model ``fit`` was given, holding the kept epoch's weights, on the device
    it trained on; None only in a result read back from a checkpoint's record)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict:
        """What a checkpoint keeps of the result: every field but the model (JSON-serialisable)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}

    @property
    def train_seconds(self) -> float:
        """The computing time of every epoch, in whichever session (before or after a resume)."""
        return sum(row["seconds"] for row in self.history)


def save_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        record: dict, best_state: dict[str, torch.Tensor]) -> None:
    """Model, optimizer and best-epoch tensors in one safetensors file (one atomic write), the rest
    in its record."""
    state = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best_state.items()})
    for index, slots in state["state"].items():
        tensors.update({f"optimizer.{index}.{name}": value for name, value in slots.items()})
    save_checkpoint(path, tensors, {**record, "optimizer_param_groups": state["param_groups"]})


def restore_training_state(tensors: dict[str, torch.Tensor], record: dict, model: nn.Module,
                           optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Restore what ``save_training_state`` wrote (as ``load_checkpoint`` reads it) into ``model``
    and ``optimizer``; returns the best epoch's weights."""
    device = model_device(model)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best_state = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": slots, "param_groups": record["optimizer_param_groups"]})
    return best_state


def data_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tokens a run trains and validates on (a checkpoint resumes only on them)."""
    digest = hashlib.sha256()
    for tokens in tensors:
        digest.update(str(tuple(tokens.shape)).encode())
        digest.update(tokens.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_lm(
    model: nn.Module,
    train_tokens: torch.Tensor,
    val_tokens: torch.Tensor,
    config: TrainConfig,
    *,
    device: torch.device | str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float], nn.Module], None] | None = None,
) -> TrainResult:
    """Train ``model`` as a language model, as ``config`` says; keep the epoch with the lowest
    held-out loss (eq. 7: the mean next-token NLL). With ``checkpoint_dir`` every epoch is saved
    atomically (one file, ``last``, holding the current and best weights and the optimizer state)
    and a later call with the same arguments resumes from it.
    ``on_epoch_end(row, model)`` runs after each epoch and may add metrics to ``row``, the
    history's entry. The model ends holding the best epoch's weights. It trains where it is, or,
    given ``device``, is first moved there in place (see the module docstring); the result's
    ``model`` is ``model``.
    """
    _check_training_args(model=("model", model), train_tokens=train_tokens, val_tokens=val_tokens,
                         vocab_size=model_config(model).get("vocab_size"),
                         seq_len=model_config(model).get("seq_len"), config=config,
                         checkpoint_dir=checkpoint_dir)
    device = _training_device(model, device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        return lm_loss(model, train_tokens[indices].to(device))

    return fit(model, minimise(batch_loss), config, n_train=len(train_tokens),
               validate=lambda: {"val_loss": evaluate_lm_loss(model, val_tokens)},
               n_val=len(val_tokens),
               settings={"data_sha256": data_fingerprint(train_tokens, val_tokens)},
               checkpoint_dir=checkpoint_dir, progress=progress, on_epoch_end=on_epoch_end)


def ebm_loss(energy_data: torch.Tensor, energy_negative: torch.Tensor, loss: str = "logistic",
             alpha: float = 0.1) -> torch.Tensor:
    """The EBM fine-tuning objective, averaged over the batch; low energy is data.

    * ``"logistic"``: softplus(E(x+)) + softplus(-E(x-)), the binary cross-entropy of a classifier
      whose logit for "data" is -E (Residual EBM's noise-contrastive objective, with P_LM as the
      noise);
    * ``"paper"``: E(x+) - E(x-) + alpha (E(x+)^2 + E(x-)^2), Algorithm 1's update (unbounded below
      on its own: it can push energies to -inf and +inf) with a squared-energy regulariser that
      keeps them finite.
    """
    if loss == "logistic":
        return (F.softplus(energy_data).mean() + F.softplus(-energy_negative).mean())
    if loss == "paper":
        return (energy_data.mean() - energy_negative.mean()
                + alpha * (energy_data.pow(2).mean() + energy_negative.pow(2).mean()))
    raise ValueError(f"loss must be 'logistic' or 'paper', got {loss!r}")


def classifier_objective(energy_model: nn.Module, data: torch.Tensor,
                         negatives: torch.Tensor) -> Objective:
    """The BCE classifier on a batch of true sums and as many P_LM samples: logit -E(x),
    ``ebm_loss`` logistic. The tokens are moved to the energy model's device."""
    if data.shape != negatives.shape:
        raise ValueError(f"data {tuple(data.shape)} and negatives {tuple(negatives.shape)} "
                         "must have the same shape")
    device = model_device(energy_model)
    # (2n, T) on the model's device: the data, then the negatives
    tokens = torch.cat([data.to(device), negatives.to(device)])
    n = len(data)
    return Objective(embed=lambda: energy_model.embed(tokens),
                     forward=lambda embeds: -energy_model.energy_from_embeds(embeds, tokens),
                     loss=lambda logits: ebm_loss(-logits[:n], -logits[n:]), tokens=tokens)


# The samplers ``train_ebm`` may draw its negatives with (``method``)
CHAINS = {"gwg": gibbs_with_gradients, "dmala": discrete_langevin}

# Fine-tuning an energy: the defaults of ``train_ebm`` (the reproduction sets its own, per method).
EBM_TRAINING = TrainConfig(epochs=10, batch_size=100, lr=1e-4, weight_decay=0.01, patience=3)


def train_ebm(
    energy_model: nn.Module,
    task: AdditionTask,
    data: torch.Tensor,
    lm: nn.Module,
    method: str = "bce",
    attack_steps: int = 5,
    *,
    val_data: torch.Tensor,
    loss: str = "logistic",
    alpha: float = 0.1,
    attack_options: dict | None = None,
    chain_steps: int = 0,
    chain_options: dict | None = None,
    config: TrainConfig = EBM_TRAINING,
    device: torch.device | str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float], nn.Module], None] | None = None,
) -> TrainResult:
    """Fine-tune an energy to tell data (low energy) from negatives drawn from P_LM (``lm``).

    * ``method="bce"``: the Residual-EBM baseline; the negatives are ``len(data)`` P_LM samples.
    * ``method="adversarial"``: Algorithm 1; every batch, its P_LM samples are attacked for
      ``attack_steps`` steps by ``DiscreteAttack`` with the *current* energy (``attack_options``
      are passed on), and the attacked sequences are the negatives. ``attack_steps=0`` is the
      paper's ablation (plain P_LM samples).
    * ``method="gwg"`` or ``"dmala"``: the negatives are P_LM samples moved by ``chain_steps``
      steps of Gibbs-with-Gradients or discrete Langevin (``mcmc.py``) on the *current* residual
      model P_LM(x) exp(-E(x) / temperature) (``residual.ResidualEnergy``): samples of the model
      itself, the maximum-likelihood negatives. ``chain_options``: ``temperature`` (default 1)
      and, for ``"dmala"``, ``step_size``. The chains draw from torch's global generator, which
      each epoch reseeds, so a run resumes exactly.

    ``loss`` is ``"logistic"`` or ``"paper"`` (see ``ebm_loss``). Validation uses ``val_data`` and
    as many fresh P_LM samples (attacked the same way); the epoch with the lowest validation loss
    is kept. Checkpoints, resume, progress bar, history, ``device`` and the returned ``model``
    work as in ``train_lm``; ``lm`` samples where it is.
    """
    _check_training_args(model=("energy_model", energy_model), data=data, val_data=val_data,
                         vocab_size=task.vocab_size, seq_len=task.seq_len, config=config,
                         checkpoint_dir=checkpoint_dir)
    task.check_model("lm", lm)
    check_choice("method", method, ("bce", "adversarial", *CHAINS))
    check_int("attack_steps", attack_steps, low=0)
    check_int("chain_steps", chain_steps, low=0)
    chain_options = _check_chain_options(method, chain_options)
    check_choice("loss", loss, ("logistic", "paper"))
    check_number("alpha", alpha, low=0)
    device = _training_device(energy_model, device)
    # Algorithm 1 lines 4-5: X_data and X_LM; the P_LM samples are drawn once, and each step takes
    # the mini-batch of both at the same indices
    negatives = sample_lm(lm, task, len(data), seed=derive_seed(config.seed, "negatives"))
    val_negatives = sample_lm(lm, task, len(val_data),
                              seed=derive_seed(config.seed, "validation negatives"))
    attack = DiscreteAttack(energy_model, task, attack_steps if method == "adversarial" else 0,
                            **(attack_options or {}))
    if method in CHAINS:  # the residual model's own samples: P_LM beside E, on E's device
        chain_lm = lm if model_device(lm) == device else copy.deepcopy(lm).to(device)
        residual = ResidualEnergy(energy_model, chain_lm, task, chain_options["temperature"])
        sampler_options = {k: v for k, v in chain_options.items() if k != "temperature"}

    def negatives_for(tokens: torch.Tensor) -> torch.Tensor:
        if method in CHAINS and chain_steps:
            return CHAINS[method](residual, task, tokens, chain_steps, **sampler_options).states
        # lines 7-15: attack each P_LM sample for S steps with the current energy; X'* = the
        # final sequences (S = 0: the P_LM samples themselves, the BCE baseline)
        return attack.attack(tokens).final.to(device) if attack.steps else tokens.to(device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        negative = negatives_for(negatives[indices])
        # line 17: E on X_data and on X'*; ``minimise`` then takes line 18's gradient step (loss
        # "paper" is line 18's E(x+) - E(x-) plus a regulariser, "logistic" the BCE)
        return ebm_loss(energy_model.energy(data[indices].to(device)),
                        energy_model.energy(negative), loss, alpha)

    @torch.no_grad()
    def validate() -> dict[str, float]:
        energy_model.eval()
        negative = torch.cat([negatives_for(chunk) for chunk in val_negatives.split(1024)])
        positive = torch.cat([energy_model.energy(chunk.to(device))
                              for chunk in val_data.split(1024)])
        negative = torch.cat([energy_model.energy(chunk) for chunk in negative.split(1024)])
        return {"val_loss": ebm_loss(positive, negative, loss, alpha).item(),
                "val_accuracy": 0.5 * ((positive < 0).float().mean()
                                       + (negative > 0).float().mean()).item(),
                "val_energy_data": positive.mean().item(),
                "val_energy_negative": negative.mean().item()}

    settings = {"method": method, "attack_steps": attack_steps, "loss": loss, "alpha": alpha,
                "attack_options": attack_options or {}, "chain_steps": chain_steps,
                "chain_options": chain_options,
                "data_sha256": data_fingerprint(data, val_data, negatives, val_negatives)}
    return fit(energy_model, minimise(batch_loss), config, n_train=len(data), validate=validate,
               n_val=len(val_data), settings=settings, checkpoint_dir=checkpoint_dir,
               progress=progress, on_epoch_end=on_epoch_end)


TrainStep = Callable[[torch.Tensor, torch.optim.Optimizer], float]


def minimise(batch_loss: Callable[[torch.Tensor], torch.Tensor]) -> TrainStep:
    """The plain training step: zero the gradients, backpropagate ``batch_loss(indices)``, step."""

    def step(indices: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
        loss = batch_loss(indices)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def fit(model: nn.Module, train_step: TrainStep, config: TrainConfig, *, n_train: int,
        validate: Callable[[], dict] | None = None, n_val: int | None = None,
        settings: dict | None = None, checkpoint_dir: str | Path | None = None,
        progress: bool = True,
        on_epoch_end: Callable[[dict[str, float], nn.Module], None] | None = None,
        desc: str | None = None) -> TrainResult:
    """The one training loop (minGPT's shape): ``config`` on ``n_train`` items in shuffled batches.

    Each step is ``train_step(indices, optimizer)``, which updates the model and returns the
    batch's mean objective: ``minimise(batch_loss)`` for a plain loss, or an embedding-space
    adversary's step (``perturb.Strategy``). The loop knows nothing else of the step. After each
    epoch ``validate()`` (if given) returns metrics whose ``val_loss`` picks the kept epoch and
    stops training after ``config.patience`` epochs without improvement; without it every epoch
    runs and the last is kept. With ``checkpoint_dir`` every epoch is saved atomically with the
    config and ``settings`` (a resume is refused when they differ); a resumed run ends with the
    weights of an uninterrupted one, bit for bit on the CPU, up to rounding on a CUDA GPU (see
    the module docstring). The model trains where it is; the result's ``model`` is ``model``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    epochs, batch_size, lr, seed = config.epochs, config.batch_size, config.lr, config.seed
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    settings = {**(settings or {}), **asdict(config), "n_train": n_train, "n_val": n_val,
                "model": model_record(model)}
    result = TrainResult()
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    last_path = None
    if checkpoint_dir is not None:
        last_path = Path(checkpoint_dir) / "last"
        if last_path.with_suffix(".safetensors").exists():
            result, best_state = _resume(last_path, settings, model, optimizer)

    steps_per_epoch = -(-n_train // batch_size)
    start_epoch = len(result.history)
    bar = tqdm(total=epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
               disable=not progress, desc=desc or f"train {type(model).__name__}", unit="step")
    for epoch in range(start_epoch, epochs):  # Algorithm 1 line 3, for train_ebm
        if result.stopped_early:
            break
        started = time.perf_counter()
        torch.manual_seed(epoch_seed(seed, epoch))  # dropout masks of this epoch
        order = torch.randperm(n_train,
                               generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
        total = 0.0
        for step, start in enumerate(range(0, n_train, batch_size)):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:  # the warm-up: lr (t + 1) / warmup_steps, then lr
                warmup = config.warmup_steps
                group["lr"] = lr * min(1.0, (global_step + 1) / warmup) if warmup else lr
            indices = order[start : start + batch_size]
            model.train()
            total += train_step(indices, optimizer) * len(indices)
            bar.update(1)
        row = {"epoch": epoch + 1, "train_loss": total / n_train,
               **(validate() if validate else {})}
        _check_finite_losses(row, lr)
        result.history.append(row)
        if validate is None:  # every epoch runs, and the last is kept
            result.best_epoch = epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif row["val_loss"] < result.best_val_loss:
            result.best_val_loss, result.best_epoch = row["val_loss"], epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result.stopped_early = (validate is not None
                                and epoch + 1 - result.best_epoch >= config.patience)
        if on_epoch_end is not None:
            on_epoch_end(row, model)  # may add metrics to the row (it is the history's own entry)
        row["seconds"] = time.perf_counter() - started
        shown = {"train": row["train_loss"], "val": row.get("val_loss")}
        bar.set_postfix({**{k: f"{v:.3f}" for k, v in shown.items() if v is not None},
                         "best": result.best_epoch})
        if last_path is not None:
            save_training_state(last_path, model, optimizer,
                                {"settings": settings, "result": result.record()}, best_state)
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    result.model = model
    return result


def _check_chain_options(method: str, options: dict | None) -> dict:
    """A copy of ``chain_options``: ``temperature`` (any chain; 1 when not given) and
    ``step_size`` (DMALA), each a positive number."""
    options = dict(options or {})
    known = ("temperature", "step_size") if method == "dmala" else ("temperature",)
    unknown = sorted(set(options) - set(known))
    if unknown and method in CHAINS:
        raise TypeError(f"chain_options: method {method!r} takes {', '.join(known)}, "
                        f"got {', '.join(map(str, unknown))}")
    if options and method not in CHAINS:
        raise ValueError(f"chain_options apply to methods {', '.join(CHAINS)}; "
                         f"method {method!r} got {options}")
    for name, value in options.items():
        check_positive(f"chain_options[{name!r}]", value)
    return {"temperature": 1.0, **options} if method in CHAINS else options


def _training_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """Where ``model`` trains: where it is (``device=None``), else ``device``, moved there in
    place."""
    if device is not None:
        model.to(check_device("device", device))
    return model_device(model)


def _resume(last_path: Path, settings: dict, model: nn.Module, optimizer: torch.optim.Optimizer
            ) -> tuple[TrainResult, dict[str, torch.Tensor]]:
    """Restore model and optimizer from ``last_path`` if it was made with ``settings``;
    returns (result, best state).

    The settings (data fingerprint included) are compared before any tensor is put into the model.
    """
    folder, file = last_path.parent, last_path.with_suffix(".safetensors")
    regenerate = f"delete {folder} (training starts over) or pass another checkpoint_dir"
    tensors, record = load_checkpoint(last_path, regenerate)
    missing = [key for key in ("settings", "result", "optimizer_param_groups")
               if key not in record]
    if missing:
        raise CheckpointError(file,
                              f"its record has no {missing}: it is not a training checkpoint",
                              regenerate)
    wanted = json.loads(json.dumps(settings))  # as the record stores it (tuples become lists)
    if record["settings"] != wanted:
        changed = sorted(k for k in {**wanted, **record["settings"]}
                         if record["settings"].get(k) != wanted.get(k))
        raise ValueError(f"checkpoint in {folder} was made with different settings "
                         f"({', '.join(changed)} differ); saved {record['settings']}, now "
                         f"{settings}. Use another checkpoint_dir or delete it.")
    try:
        best_state = restore_training_state(tensors, record, model, optimizer)
        return TrainResult(**record["result"]), best_state
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # tensors of another model
        raise CheckpointError(file, f"its tensors or record do not fit the model ({error})",
                              regenerate) from error


def _check_finite_losses(row: dict[str, float], lr: float) -> None:
    """Stop a run whose losses are no longer finite (nothing of that epoch is kept or saved)."""
    names = {"train_loss": "the training loss", "val_loss": "the validation loss"}
    losses = {name: row[name] for name in names if name in row}
    if not all(math.isfinite(value) for value in losses.values()):
        raise FloatingPointError(
            f"epoch {row['epoch']}: "
            + " and ".join(f"{names[name]} is {value}" for name, value in losses.items())
            + f": training diverged (lr={lr}); the last finite epoch's checkpoint, if any, is "
            "kept. Lower lr, or check the loss's settings (alpha)")


def _check_training_args(*, model: tuple[str, nn.Module], vocab_size: int | None,
                         seq_len: int | None, config: TrainConfig,
                         checkpoint_dir: str | Path | None, **tokens: torch.Tensor) -> None:
    """Every input of a training run, checked before anything is built or trained."""
    check_model_fits(*model, vocab_size, seq_len)  # (its argument's name, the model)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if checkpoint_dir is not None:
        check_folder("checkpoint_dir", checkpoint_dir)
    # the training and validation tokens, by their argument names
    for name, value in tokens.items():
        check_token_ids(name, value, vocab_size, seq_len, dims=(2,))
        if len(value) == 0:
            raise ValueError(f"{name} must hold at least one sequence, "
                             f"got shape {tuple(value.shape)}")
