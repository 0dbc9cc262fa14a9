"""Where commands write: under ``runs/`` by default, over the shipped files only on ``--ship``.

The package ships weights (``pretrained/``) and results (``results/``) that the notebooks and tests
read. Every command (``pretrain``, ``reproduce``, ``bench``) writes its output under
``runs/<command>/`` and leaves them alone; ``--ship`` then copies what the run made over the
shipped files, each file written to a temporary file beside it and renamed onto it, so an interrupt
leaves the old file or the new one. Shipping is refused in fast mode: shipped files come from the
full protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..checkpoints import (CheckpointError, copy_file_atomic, file_sha256, pretrained_path,
                           read_json, write_text_atomic)
from ..config import fast_mode

RUNS_DIR = Path("runs")
# The shipped results (the shipped weights are under checkpoints.PRETRAINED_DIR).
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


# What each ``advebm-teach bench <target>`` writes (all but attack ship theirs).
BENCH_FILES = {"attack": "attack.json", "perturb": "perturb.json",
               "perturb-cost": "perturb_cost.json", "negatives": "negatives.json"}


def load_result(name: str) -> dict:
    """The shipped result ``results/<name>.json`` (``course``, ``perturb``, ``perturb_cost``)."""
    path = RESULTS_DIR / f"{name}.json"
    bench = {file: target for target, file in BENCH_FILES.items()}.get(path.name)
    command = f"bench {bench}" if bench else f"reproduce --config {name}"
    regenerate = f"advebm-teach {command} --ship"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped result {name!r} at {path}; regenerate it with: "
                                f"{regenerate}")
    return read_json(path, regenerate)


def run_folder(command: str, config: str) -> Path:
    """The default output folder of ``command``: ``runs/<command>/<config>[-fast]``."""
    return RUNS_DIR / command / (f"{config}-fast" if fast_mode() else config)


def check_can_ship(ship: bool) -> None:
    """Refuse ``--ship`` in fast mode, before any work starts."""
    if ship and fast_mode():
        raise ValueError(
            "--ship replaces the package's shipped files, which come from the full protocol: "
            "run without fast mode (no --fast, ADVEBM_FAST unset)"
        )


def ship_files(pairs: list[tuple[Path, Path]], hint: str = "") -> list[Path]:
    """Copy each ``(made, shipped)`` file over the shipped one, atomically; the shipped paths.

    Every source is checked before the first file is replaced, so a missing one changes nothing
    (``hint`` says how to make it).
    """
    missing = [str(made) for made, _ in pairs if not Path(made).is_file()]
    if missing:
        raise FileNotFoundError(f"nothing shipped: the run's outputs {missing} are missing{hint}")
    for made, shipped in pairs:
        copy_file_atomic(made, shipped)
    return [Path(shipped) for _, shipped in pairs]


def pretrained_sha256(config: str) -> dict[str, str]:
    """The SHA-256 of ``config``'s shipped P_LM and energy LM: part of a seeded run's fingerprint,
    so that a stored seed made from other weights is not read back."""
    return {kind: file_sha256(pretrained_path(kind, config).with_suffix(".safetensors"))
            for kind in ("plm", "energy_lm")}


def finished_seed(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result of a seed finished by an earlier run of the same experiment (its
    ``fingerprint``: configuration, protocol, ...), or None when ``path`` does not exist yet."""
    if not path.exists():
        return None
    regenerate = "pass --restart to discard the stored seeds, or another --out"
    stored = read_json(path, regenerate)
    if not isinstance(stored, dict) or "result" not in stored:
        raise CheckpointError(path, "it holds no stored seed (no 'result')", regenerate)
    if stored.get("fingerprint") != json.loads(json.dumps(fingerprint)):  # as JSON stores it
        raise ValueError(f"{path} holds a seed of a different run (configuration, protocol, "
                         f"fast mode, device or pre-trained weights differ); {regenerate}")
    return stored["result"]


def store_seed(path: Path, fingerprint: dict[str, Any], result: dict[str, Any]) -> None:
    """Write a finished seed's ``result`` with its run's ``fingerprint``, atomically (what
    ``finished_seed`` reads back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"fingerprint": fingerprint, "result": result}) + "\n")
