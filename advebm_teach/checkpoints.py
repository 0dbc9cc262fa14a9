"""Weights as safetensors plus a JSON record, written atomically; the registry of shipped weights.

A checkpoint ``NAME`` is two files: ``NAME.safetensors`` (tensors, with the record also embedded in
its header, so the pair can never disagree) and ``NAME.json`` (the same record, for people and
notebooks). Each file is written to a temporary file in the same folder, flushed to disk and then
renamed over the old one, so an interrupt leaves either the old or the new checkpoint, never half
of one.

Loading never unpickles anything (safetensors holds raw tensors and a JSON header) and checks a
file before trusting it: a damaged file (truncated, not safetensors, a record that is not JSON or
lacks what is needed) or a foreign one (made for another configuration, or whose tensors do not fit
the model its record describes) raises ``CheckpointError``, which names the file and how to
regenerate it. The record is compared with the tensor shapes in the file's header before any model
is built, so a record that claims a huge model cannot allocate it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.overrides import TorchFunctionMode

from .config import get_config, make_task
from .models import LSTMLanguageModel, TransformerEnergy

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MODEL_CLASSES = {cls.__name__: cls for cls in (LSTMLanguageModel, TransformerEnergy)}
PRETRAINED_KINDS = ("plm", "energy_lm", "energy_bce", "energy_adv", "energy_improved")
_RECORD_KEY = "record"
_REGENERATE = "run again the command that wrote it"


class CheckpointError(ValueError):
    """A stored file (checkpoint, record, stored result) that is damaged or made for another use.

    ``file`` is the file, ``problem`` what is wrong with it, ``regenerate`` how to make it again;
    the message says all three.
    """

    def __init__(self, file: str | Path, problem: str, regenerate: str) -> None:
        super().__init__(str(file), problem, regenerate)  # all arguments in ``args``: it pickles
        self.file, self.problem, self.regenerate = Path(file), problem, regenerate

    def __str__(self) -> str:
        return f"cannot load {self.file}: {self.problem}. To regenerate it: {self.regenerate}"


def read_json(path: str | Path, regenerate: str) -> Any:
    """The JSON value stored in ``path``.

    A file that is not JSON raises ``CheckpointError``, a missing one ``FileNotFoundError``; both
    name the file and ``regenerate`` (how to make it again).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no file at {path}; to regenerate it: {regenerate}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(path, f"it is not valid JSON ({error})", regenerate) from error


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


def copy_file_atomic(source: str | Path, path: str | Path) -> None:
    """Copy ``source`` over ``path`` atomically: an interrupt leaves the old or the new file."""
    _atomic_write(Path(path), lambda tmp: shutil.copyfile(source, tmp))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (which weights a stored result was computed from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor],
                    record: dict[str, Any]) -> None:
    """Write ``path.safetensors`` and ``path.json`` atomically; ``record`` must be
    JSON-serialisable."""
    path = Path(path)
    text = json.dumps(record, indent=2, sort_keys=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic_write(path.with_suffix(".safetensors"),
                  lambda tmp: save_file(tensors, tmp, metadata={_RECORD_KEY: text}))
    write_text_atomic(path.with_suffix(".json"), text + "\n")


def _read_header(file: Path, regenerate: str
                 ) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """``(record, shapes)`` from a safetensors file's header alone: no tensor data is read."""
    if not file.exists():
        raise FileNotFoundError(f"no checkpoint at {file}; to regenerate it: {regenerate}")
    try:
        with safe_open(file, framework="pt") as f:
            text = (f.metadata() or {}).get(_RECORD_KEY, "{}")
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except SafetensorError as error:
        raise CheckpointError(file, f"it is truncated or not a safetensors file ({error})",
                              regenerate) from error
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(file, f"its embedded record is not valid JSON ({error})",
                              regenerate) from error
    if not isinstance(record, dict):
        raise CheckpointError(file, f"its embedded record is a JSON {type(record).__name__}, "
                              "not an object", regenerate)
    return record, shapes


def load_checkpoint(path: str | Path, regenerate: str = _REGENERATE
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, record)`` from ``path.safetensors``; the record is read from the file's header.

    A damaged file raises ``CheckpointError`` naming it and ``regenerate`` (how to make it again).
    """
    file = Path(path).with_suffix(".safetensors")
    record, _ = _read_header(file, regenerate)
    return _read_tensors(file, regenerate), record


def _read_tensors(file: Path, regenerate: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose header ``_read_header`` accepted."""
    try:
        return load_file(file)
    except SafetensorError as error:
        raise CheckpointError(file, f"its tensors cannot be read ({error})", regenerate) from error


def model_record(model: nn.Module) -> dict[str, Any]:
    """What is needed to rebuild ``model``: its class name and constructor arguments."""
    return {"class": type(model).__name__, "config": dict(model.config)}


def build_model(record: dict[str, Any]) -> nn.Module:
    """A fresh model from ``model_record``'s output."""
    if record.get("class") not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {record.get('class')!r}; "
                         f"expected one of {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[record["class"]](**record["config"])


def save_model(path: str | Path, model: nn.Module, record: dict[str, Any]) -> None:
    """Save a model's weights with ``record`` plus what ``load_model`` needs to rebuild it."""
    save_checkpoint(path, model.state_dict(), {**record, "model": model_record(model)})


class _SkipRandomInit(TorchFunctionMode):
    """Random initialisers as no-ops on meta tensors: these hold no data to fill anyway, and the
    meta ``normal_`` imports ``torch._dynamo`` (seconds, on the first call in a process)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")  # t.normal_() or init.normal_(tensor=t)
        random_init = getattr(func, "__name__", "") in ("normal_", "uniform_")
        if random_init and getattr(target, "is_meta", False):
            return target
        return func(*args, **kwargs)


def _model_spec(record: dict[str, Any], file: Path, regenerate: str) -> dict[str, Any]:
    """The record's ``model`` entry, once it is known to name a model class and its arguments."""
    spec = record.get("model")
    if not isinstance(spec, dict):
        raise CheckpointError(file, "its record has no 'model' entry (the model's class and "
                              "config)", regenerate)
    for key, kind in (("class", str), ("config", dict)):
        if not isinstance(spec.get(key), kind):
            raise CheckpointError(file, f"its record's model has no {key!r} ({kind.__name__})",
                                  regenerate)
    if spec["class"] not in MODEL_CLASSES:
        raise CheckpointError(file, f"its record names an unknown model class {spec['class']!r}; "
                              f"expected one of {sorted(MODEL_CLASSES)}", regenerate)
    return spec


def _integers(value: Any) -> list[int]:
    """Every integer in a JSON value (booleans excluded)."""
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return [n for item in items for n in _integers(item)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def _check_shapes(spec: dict[str, Any], shapes: dict[str, tuple[int, ...]], file: Path,
                  regenerate: str) -> None:
    """Raise unless the model ``spec`` describes has the tensors (names, shapes) of ``shapes``.

    The model is built on the meta device, which allocates no memory. Before that, a spec with an
    integer above both the file's largest dimension and its number of tensors is refused: each size
    of a model is the dimension of some tensor and each count adds tensors, so such a model cannot
    fit the file, and building it (even on meta) could take very long.
    """
    bound = max([len(shapes), *(n for shape in shapes.values() for n in shape)])
    if any(n > bound for n in _integers(spec["config"])):
        raise CheckpointError(file, f"its record describes a model larger than its tensors "
                              f"({spec}; the file's largest dimension or tensor count is {bound})",
                              regenerate)
    try:
        with torch.device("meta"), _SkipRandomInit():
            wanted = {k: tuple(v.shape) for k, v in build_model(spec).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(file, f"its record's model cannot be built ({spec}: {error})",
                              regenerate) from error
    if wanted != shapes:
        differ = sorted(k for k in {**wanted, **shapes} if wanted.get(k) != shapes.get(k))
        shown = "; ".join(f"{k}: file {shapes.get(k, 'absent')}, model {wanted.get(k, 'absent')}"
                          for k in differ[:4])
        raise CheckpointError(file, f"its tensors do not fit the model its record describes "
                              f"({spec['class']} {spec['config']}): {len(differ)} differ, {shown}",
                              regenerate)


def _check_expected(spec: dict[str, Any], expected: dict[str, Any], file: Path,
                    regenerate: str) -> None:
    """Raise unless ``spec`` has ``expected``'s class and config entries."""
    if "class" in expected and spec["class"] != expected["class"]:
        raise CheckpointError(file, f"it holds a {spec['class']}, not a {expected['class']}",
                              regenerate)
    differ = {k: v for k, v in expected.get("config", {}).items() if spec["config"].get(k) != v}
    if differ:
        found = ", ".join(f"{k}={spec['config'].get(k)!r}" for k in differ)
        wanted = ", ".join(f"{k}={v!r}" for k, v in differ.items())
        raise CheckpointError(file, f"its model was made for another configuration ({found}; "
                              f"expected {wanted})", regenerate)


def load_model(path: str | Path, expected: dict[str, Any] | None = None,
               regenerate: str = _REGENERATE) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, record)``: the model rebuilt, its weights loaded, in eval mode on CPU.

    ``expected`` is part of what ``model_record`` of the model must be: a ``"class"`` name and/or
    ``"config"`` entries (e.g. ``{"config": {"vocab_size": 14}}``). Before anything is built, the
    record is checked against ``expected`` and against the tensor shapes in the file's header; a
    damaged or foreign file raises ``CheckpointError`` naming it and ``regenerate`` (how to make it
    again).
    """
    file = Path(path).with_suffix(".safetensors")
    record, shapes = _read_header(file, regenerate)
    spec = _model_spec(record, file, regenerate)
    _check_expected(spec, expected or {}, file, regenerate)
    _check_shapes(spec, shapes, file, regenerate)
    model = build_model(spec)
    model.load_state_dict(_read_tensors(file, regenerate))
    return model.eval(), record


def pretrained_path(kind: str, config: str = "course") -> Path:
    """Where the shipped ``kind`` weights of ``config`` live (without suffix)."""
    get_config(config)
    if kind not in PRETRAINED_KINDS:
        raise ValueError(f"unknown pretrained kind {kind!r}; "
                         f"expected one of {list(PRETRAINED_KINDS)}")
    return PRETRAINED_DIR / config / kind


def pretrained_command(kind: str, config: str = "course") -> str:
    """The command that (re)makes the shipped ``kind`` weights of ``config``."""
    tool = "pretrain" if kind in ("plm", "energy_lm") else "reproduce"
    return f"advebm-teach {tool} --config {config} --ship"


def load_pretrained(kind: str, config: str = "course") -> nn.Module:
    """A shipped model of ``config``, in eval mode on CPU: ``"plm"`` (P_LM), ``"energy_lm"`` (the
    energy model after LM pre-training), or seed 0's fine-tuned energies of the reproduction:
    ``"energy_bce"`` (Residual-EBM baseline) and ``"energy_adv"`` (Algorithm 1), both with the
    scalar ``mean`` read-out, and ``"energy_improved"`` (``lm_nll`` read-out, Algorithm 1 with the
    tabu attack).

    Its record (metrics, seed, the command that made it) is
    ``load_pretrained_record(kind, config)``. A file made for another configuration or kind, or a
    damaged one, raises ``CheckpointError``.
    """
    path = pretrained_path(kind, config)
    file, command = path.with_suffix(".safetensors"), pretrained_command(kind, config)
    if not file.exists():
        raise FileNotFoundError(f"no shipped {kind!r} weights for config {config!r} at {file}; "
                                f"regenerate them with: {command}")
    record, _ = _read_header(file, command)
    if (record.get("config"), record.get("kind")) != (config, kind):
        raise CheckpointError(file, f"its record says kind {record.get('kind')!r} of "
                              f"configuration {record.get('config')!r}; expected kind {kind!r} "
                              f"of {config!r}", command)
    task = make_task(config)
    if kind == "plm":
        expected = {"class": "LSTMLanguageModel", "config": {"vocab_size": task.vocab_size}}
    else:
        expected = {"class": "TransformerEnergy",
                    "config": {"vocab_size": task.vocab_size, "seq_len": task.seq_len}}
    return load_model(path, expected, command)[0]


def load_pretrained_record(kind: str, config: str = "course") -> dict[str, Any]:
    """The JSON record of a shipped model: config, seed, metrics, training history and command."""
    path = pretrained_path(kind, config).with_suffix(".json")
    return read_json(path, pretrained_command(kind, config))
