"""The paper's experiment, reproduced with seeds:
``advebm-teach reproduce --config course [--seeds 10]``.

Per seed, from the shipped pre-trained weights (P_LM and the energy model's LM):

* **paper family** (the scalar ``mean`` read-out, the paper's attack): the Residual-EBM baseline
  (BCE on data vs P_LM samples) and Algorithm 1 (warm-started from it; its negatives are P_LM
  samples attacked with the current energy, each step writing an *alternative* token at the most
  salient position, eq. 5: with the current token among the candidates the greedy attack stalls and
  most negatives would barely differ from P_LM samples). Generation attacks with the greedy attack
  exactly as written (the current token stays a candidate, so the energy never rises). Figure 1a:
  correctness of P_LM samples attacked for S steps with the Algorithm-1 energy; Figure 1b:
  importance resampling with the BCE energy among n P_LM samples; Figure 2: attacking the energy
  trained without the attack (BCE) vs with it. ``spurious``: the BCE energy under a search that
  does not stall (the tabu attack), whose correctness falls while its energy falls.
* **improved family**: the same two trainings on the likelihood read-out ``lm_nll`` (the
  pre-trained model's own NLL of the answer plus a learned correction), attacked with the
  non-stalling tabu attack. Each change is also measured on its own (``changes``).

Every training uses the logistic loss (``ebm_loss(..., "logistic")``): BCE and Algorithm 1 then
differ only in their negatives, so Figure 2 compares like with like, and the loss stays bounded,
where Algorithm 1's update E(x+) - E(x-) on its own drives the energies to -inf and +inf
(``"paper"`` adds a squared-energy regulariser for those who want the update as written).

Seeds stand for training randomness (data, negatives, validation split): every seed is evaluated on
the same P_LM test samples and the same resampling pool, drawn once, so intervals over seeds
measure how much the *trained energies* vary, not the test draw. Every point is an average
correctness. Results are JSON; ``reproduction_report`` judges them, prints their tables and draws
the figures (plotly HTML).

Configurations and devices: ``course`` (5 digits) is sized for 2 CPU cores, ``paper`` (10 digits,
the paper's epochs) for one GPU (``PROTOCOLS``). Everything runs on ``pick_device()`` unless told
otherwise: the pre-trained models are moved there and every training is given it. What is chosen by
device is only how many sequences an attack processes at once (``DiscreteAttack``: 256 on the CPU,
4,096 on a CUDA GPU), which never changes what a sequence becomes; the training batch (100, the
mini-batch of Algorithm 1) and the sampling chunk (2,048, which decides the samples a seed draws)
are part of the experiment and the same on every device. On the CPU the course re-makes its shipped
results bit for bit; a GPU sums in another order, so its numbers agree with the CPU's only up to
rounding (and a rounding can flip a near-tie in an attack or a sample).
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attack import DiscreteAttack
from ..checkpoints import (PRETRAINED_DIR, load_pretrained, save_model, write_text_atomic)
from ..checks import check_device, check_folder, check_int
from ..config import fast_mode, get_config, make_task, pick, pick_device
from ..sampling import energies_of, resample_from_pool, sample_lm
from .reproduction_report import figures
from .shipping import (RESULTS_DIR, check_can_ship, finished_seed, load_result,
                       pretrained_sha256, run_folder, ship_files, store_seed)
from ..trainer import EBM_TRAINING, train_ebm

STEPS = (0, 1, 2, 5, 10, 20)
CANDIDATES = (1, 2, 5, 10, 20, 50)
IMPROVED_ATTACK = {"tabu": True}
# eq. 5's alternative tokens: negatives that move
PAPER_TRAINING_ATTACK = {"include_current": False}


@dataclass(frozen=True)
class ReproductionProtocol:
    """The sizes and training settings of one reproduction; each configuration's is in
    ``PROTOCOLS`` (the defaults are the course's: 2 CPU cores, 10 seeds in < 30 min)."""

    n_data: int = 1_000          # paper: 1,000 data and 1,000 P_LM samples
    n_val: int = 200             # held out for early stopping (data, and as many P_LM samples)
    n_test: int = 300            # P_LM samples attacked or resampled (the same for every seed)
    bce: dict = field(default_factory=lambda: {"epochs": 20, "lr": 3e-4, "patience": 4})
    adversarial: dict = field(default_factory=lambda: {"attack_steps": 3, "epochs": 10,
                                                       "lr": 3e-4, "patience": 3})
    improved_bce: dict = field(default_factory=lambda: {"epochs": 10, "lr": 1e-5, "patience": 3})
    improved_adversarial: dict = field(default_factory=lambda: {"attack_steps": 3, "epochs": 5,
                                                                "lr": 1e-5, "patience": 3})

    @staticmethod
    def for_mode(config: str = "course") -> "ReproductionProtocol":
        """``config``'s protocol, or a tiny one in fast mode (the same for both configurations;
        every code path still runs)."""
        get_config(config)
        if not fast_mode():
            return PROTOCOLS[config]
        tiny = {"epochs": 1, "lr": 3e-4, "patience": 1}
        return ReproductionProtocol(n_data=64, n_val=32, n_test=24, bce=tiny,
                                    adversarial={**tiny, "attack_steps": 1}, improved_bce=tiny,
                                    improved_adversarial={**tiny, "attack_steps": 1})


PROTOCOLS = {
    "course": ReproductionProtocol(),
    # Section 3.2 of the paper: 1,000 data and 1,000 P_LM samples, BCE for 5 epochs and
    # Algorithm 1 for 55, both with early stopping. What the paper does not give (learning rates,
    # patience, training attack steps, held-out and test sizes, the improved family) is the
    # course's.
    "paper": ReproductionProtocol(
        bce={"epochs": 5, "lr": 3e-4, "patience": 4},
        adversarial={"attack_steps": 3, "epochs": 55, "lr": 3e-4, "patience": 3}),
}


def correctness_curve(task, energy_model, tokens: torch.Tensor, steps=STEPS,
                      **attack_options) -> dict[str, Any]:
    """Attack ``tokens`` for max(steps) steps once; correctness and mean energy after each S in
    ``steps``."""
    trace = DiscreteAttack(energy_model, task, max(steps), **attack_options).attack(tokens)
    # every state of every sequence, (S+1) * B, back to (S+1, B), averaged over the sequences
    correctness = (task.correctness(trace.tokens.flatten(0, 1)).view(trace.steps + 1, -1)
                   .mean(dim=1))
    return {"correctness": {str(s): correctness[s].item() for s in steps},
            "energy": {str(s): trace.energy[s].mean().item() for s in steps},
            "changed": trace.changed.float().mean().item()}


def resampling_curve(task, pool: torch.Tensor, pool_energy: torch.Tensor,
                     seed: int) -> dict[str, float]:
    """Correctness of importance resampling among the first n candidates of each pool row, for
    every n."""
    return {str(n): task.correctness(resample_from_pool(pool, pool_energy, n,
                                                        torch.Generator().manual_seed(seed)))
            .mean().item() for n in CANDIDATES}


def evaluation_sets(config: str, protocol: ReproductionProtocol,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The P_LM test samples ``(n_test, T)`` and resampling pool ``(n_test, 50, T)`` every seed is
    judged on (P_LM runs on ``device``; the samples are drawn on, and returned to, the CPU)."""
    task, plm = make_task(config), load_pretrained("plm", config).to(device)
    test = sample_lm(plm, task, protocol.n_test, seed=30_000)
    pool = sample_lm(plm, task, protocol.n_test * max(CANDIDATES), seed=40_000)
    return test, pool.view(protocol.n_test, max(CANDIDATES), task.seq_len)


def untrained_curves(config: str, test: torch.Tensor,
                     device: torch.device) -> dict[str, dict[str, Any]]:
    """The likelihood energy before any fine-tuning, under both attacks, attacked on ``device``:
    no training, so no seed to vary."""
    task, untrained = make_task(config), load_pretrained("energy_lm", config).to(device)
    untrained.head = "lm_nll"
    return {"lm_nll energy, not fine-tuned, greedy attack": correctness_curve(
                task, untrained, test),
            "lm_nll energy, not fine-tuned, tabu attack": correctness_curve(
                task, untrained, test, **IMPROVED_ATTACK)}


def train_energies(seed: int, config: str, protocol: ReproductionProtocol, progress: bool,
                   device: torch.device) -> tuple[dict[str, nn.Module], dict[str, float]]:
    """The four energies one seed trains, from the pre-trained energy LM, and each one's seconds.

    The paper's family (the scalar ``mean`` read-out): ``bce``, then ``adversarial`` (Algorithm 1)
    warm-started from it with eq. 5's alternative tokens as its negatives' moves. The improved
    family (the ``lm_nll`` read-out): ``improved_bce``, then ``improved_adversarial`` with the tabu
    attack. Each is trained on this seed's data and P_LM samples (``train_ebm``), on ``device``
    (P_LM and every energy are moved there; the energies are returned there).
    """
    task, plm = make_task(config), load_pretrained("plm", config).to(device)
    data = task.sample(protocol.n_data, seed=10_000 + seed)
    val = task.sample(protocol.n_val, seed=20_000 + seed)
    plan = (  # name, read-out, method, settings, warm start, the training attack's options
        ("bce", "mean", "bce", protocol.bce, None, None),
        ("adversarial", "mean", "adversarial", protocol.adversarial, "bce", PAPER_TRAINING_ATTACK),
        ("improved_bce", "lm_nll", "bce", protocol.improved_bce, None, None),
        ("improved_adversarial", "lm_nll", "adversarial", protocol.improved_adversarial,
         "improved_bce", IMPROVED_ATTACK),
    )
    energies, seconds = {}, {}
    for name, head, method, settings, start, attack_options in plan:
        model = (copy.deepcopy(energies[start]) if start
                 else load_pretrained("energy_lm", config).to(device))
        model.head = head
        training = {key: value for key, value in settings.items() if key != "attack_steps"}
        clock = time.perf_counter()
        train_ebm(model, task, data, plm, method, settings.get("attack_steps", 0), val_data=val,
                  attack_options=attack_options, progress=progress, device=device,
                  config=replace(EBM_TRAINING, seed=seed, **training))
        seconds[f"{head}_{method}"] = time.perf_counter() - clock
        energies[name] = model
    return energies, seconds


def run_seed(seed: int, config: str = "course", protocol: ReproductionProtocol | None = None,
             progress: bool = False, evaluation: tuple[torch.Tensor, torch.Tensor] | None = None,
             shared: dict | None = None, save_energies_to: Path | None = None,
             device: torch.device | str | None = None) -> dict[str, Any]:
    """Everything one seed contributes (see the module docstring); about two minutes on 2 cores
    for the course.

    ``evaluation`` and ``shared`` (the untrained energy's curves) are computed once for all seeds
    when given; ``save_energies_to`` saves this seed's three trained energies there
    (``energy_bce``, ``energy_adv``, ``energy_improved``) with their records. Everything runs on
    ``device`` (default: ``pick_device()``).
    """
    protocol = protocol or ReproductionProtocol.for_mode(config)
    device = check_device("device", device) if device is not None else pick_device()
    started = time.perf_counter()
    task = make_task(config)
    test, pool = (evaluation if evaluation is not None
                  else evaluation_sets(config, protocol, device))
    shared = shared if shared is not None else untrained_curves(config, test, device)
    energies, timings = train_energies(seed, config, protocol, progress, device)

    def pool_energy(model: nn.Module) -> torch.Tensor:  # (n_test, 50): every pool candidate's E
        return energies_of(model, pool.flatten(0, 1)).view(pool.shape[:2])

    bce, adversarial = energies["bce"], energies["adversarial"]
    paper = {  # the paper's family: a scalar energy, the greedy attack as written
        "attack": {"adversarial": correctness_curve(task, adversarial, test),
                   "bce": correctness_curve(task, bce, test)},
        "resampling": resampling_curve(task, pool, pool_energy(bce), seed),
        "spurious": correctness_curve(task, bce, test, **IMPROVED_ATTACK),
    }
    improved_bce, improved_adversarial = energies["improved_bce"], energies["improved_adversarial"]
    improved = {  # the likelihood read-out and the tabu attack
        "attack": {"adversarial": correctness_curve(task, improved_adversarial, test,
                                                    **IMPROVED_ATTACK),
                   "bce": correctness_curve(task, improved_bce, test, **IMPROVED_ATTACK)},
        "resampling": resampling_curve(task, pool, pool_energy(improved_adversarial), seed),
        # each change on its own, then together (the "attack.adversarial" curve above)
        "changes": {
            "tabu attack on the paper's Algorithm-1 energy": correctness_curve(
                task, adversarial, test, **IMPROVED_ATTACK),
            "lm_nll Algorithm-1 energy, greedy attack": correctness_curve(
                task, improved_adversarial, test),
            **shared,
        },
    }
    result = {"seed": seed, "plm": task.correctness(test).mean().item(), "paper": paper,
              "improved": improved, "train_seconds": timings,
              "wall_s": time.perf_counter() - started}
    if save_energies_to is not None:
        _save_energies(save_energies_to, energies, result, config, protocol, len(test))
    return result


def _save_energies(folder: Path, energies: dict[str, nn.Module], result: dict[str, Any],
                   config: str, protocol: ReproductionProtocol, n_test: int) -> None:
    """Save a seed's Algorithm-1 and BCE energies of the paper's family and the improved
    Algorithm-1 energy (what ``load_pretrained`` ships), each with its record."""
    for kind, name, family, key in (("energy_bce", "bce", "paper", "bce"),
                                    ("energy_adv", "adversarial", "paper", "adversarial"),
                                    ("energy_improved", "improved_adversarial", "improved",
                                     "adversarial")):
        save_model(folder / kind, energies[name], {
            "kind": kind, "config": config, "seed": result["seed"], "fast_mode": fast_mode(),
            "command": f"advebm-teach reproduce --config {config} --ship",
            "training": {"protocol": asdict(protocol), "family": family},
            "metrics": {"attacked_correctness": result[family]["attack"][key]["correctness"],
                        "attack_options": IMPROVED_ATTACK if family == "improved" else {},
                        "n_test": n_test, "test_seed": 30_000}})


def collect(per_seed: list[dict[str, Any]], config: str, protocol: ReproductionProtocol,
            wall_s: float) -> dict[str, Any]:
    """The shipped results' shape: per-seed lists under each family's curves."""

    def curves(family: str, key: str) -> dict[str, list[float]]:
        return {s: [run[family]["attack"][key]["correctness"][s] for run in per_seed]
                for s in map(str, STEPS)}

    def family(name: str) -> dict[str, Any]:
        return {"plm": [run["plm"] for run in per_seed],
                "attack": {key: curves(name, key) for key in ("adversarial", "bce")},
                "energy": {key: {s: [run[name]["attack"][key]["energy"][s] for run in per_seed]
                                 for s in map(str, STEPS)}
                           for key in ("adversarial", "bce")},
                "resampling": {n: [run[name]["resampling"][n] for run in per_seed]
                               for n in map(str, CANDIDATES)}}

    improved = family("improved")
    improved["attack_options"] = IMPROVED_ATTACK
    spurious = {kind: {s: [run["paper"]["spurious"][kind][s] for run in per_seed]
                       for s in map(str, STEPS)}
                for kind in ("correctness", "energy")}
    improved["changes"] = {change: {s: [run["improved"]["changes"][change]["correctness"][s]
                                        for run in per_seed]
                                    for s in map(str, STEPS)}
                           for change in per_seed[0]["improved"]["changes"]}
    return {"config": config, "seeds": [run["seed"] for run in per_seed], **family("paper"),
            "spurious": spurious, "training_attack_options": PAPER_TRAINING_ATTACK,
            "improved": improved, "protocol": asdict(protocol), "fast_mode": fast_mode(),
            "seconds_per_seed": [round(run["wall_s"], 1) for run in per_seed],
            "wall_s": round(wall_s, 1)}


SHIPPED_ENERGIES = ("energy_bce", "energy_adv", "energy_improved")


def device_name(device: torch.device) -> str:
    """``device`` as the results record it: its type, and a CUDA GPU's model."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def reproduce(config: str = "course", seeds: int | None = None, out: str | Path | None = None,
              ship: bool = False, progress: bool = True, restart: bool = False,
              device: torch.device | str | None = None) -> dict[str, Any]:
    """Run ``seeds`` seeds (default 10; 2 in fast mode), write ``results.json`` and the three
    figures to ``out``; returns the results.

    ``out`` defaults to ``runs/reproduce/<config>`` (``-fast`` in fast mode). Every finished seed
    is written atomically to ``out/seeds/seed_<k>.json`` (seed 0's three energies to
    ``out/energies/``), so an interrupted run, started again with the same configuration and
    protocol, goes on after its last finished seed and ends with the same results; ``restart``
    discards them. ``wall_s`` is the computing time of every seed (in whichever session it ran)
    plus this session's shared set-up (made only if a seed is computed); ``resumed_seeds`` lists
    the seeds read back.

    ``ship``: then copy what the run made over what the package ships, seed 0's energies
    (``pretrained/<config>/``) and the results (``results/<config>.json``), each file atomically;
    full protocol only. Everything runs on ``device`` (default: ``pick_device()``), which the
    results record (``device``; on a CUDA GPU also ``peak_gpu_memory_gib``, this session's peak
    of memory allocated by torch). Every argument is checked before any work starts.
    """
    get_config(config)
    n_seeds = pick(10, 2) if seeds is None else check_int("seeds", seeds, low=1)
    check_can_ship(ship)
    device = check_device("device", device) if device is not None else pick_device()
    protocol = ReproductionProtocol.for_mode(config)
    out = check_folder("out", out if out is not None else run_folder("reproduce", config))
    if restart:
        for folder in ("seeds", "energies"):
            shutil.rmtree(out / folder, ignore_errors=True)
    fingerprint = {"config": config, "protocol": asdict(protocol), "fast_mode": fast_mode(),
                   "device": device.type,
                   "pretrained_sha256": pretrained_sha256(config)}
    # the shared evaluation sets and untrained curves, made when a seed needs them
    setup: dict[str, Any] = {}
    setup_s = 0.0
    per_seed, resumed = [], []
    for seed in range(n_seeds):
        path = out / "seeds" / f"seed_{seed}.json"
        run = finished_seed(path, fingerprint)
        if run is not None:
            resumed.append(seed)
        else:
            if not setup:
                started = time.perf_counter()
                setup["evaluation"] = evaluation_sets(config, protocol, device)
                setup["shared"] = untrained_curves(config, setup["evaluation"][0], device)
                setup_s = time.perf_counter() - started
            run = run_seed(seed, config, protocol, evaluation=setup["evaluation"],
                           shared=setup["shared"],
                           save_energies_to=out / "energies" if seed == 0 else None,
                           device=device)
            store_seed(path, fingerprint, run)
        per_seed.append(run)
        if progress:
            print(_seed_line(run) + (f" (read back from {path})" if seed in resumed else ""),
                  flush=True)
    results = collect(per_seed, config, protocol, setup_s + sum(run["wall_s"] for run in per_seed))
    results["resumed_seeds"] = resumed
    results["device"] = device_name(device)
    if device.type == "cuda":
        results["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    _write_outputs(out, results, per_seed)
    if ship:
        ship_files([(out / "energies" / f"{kind}{suffix}",
                     PRETRAINED_DIR / config / f"{kind}{suffix}")
                    for kind in SHIPPED_ENERGIES for suffix in (".safetensors", ".json")]
                   + [(out / "results.json", RESULTS_DIR / f"{config}.json")],
                   hint=" (seed 0's energies: run again with --restart to recompute them)")
    return results


def _seed_line(run: dict[str, Any]) -> str:
    """One seed's headline numbers, as the command prints them while it runs."""
    paper, improved = run["paper"]["attack"], run["improved"]["attack"]
    return (f"seed {run['seed']}: P_LM {run['plm']:.3f} | paper S=10: Alg.1 "
            f"{paper['adversarial']['correctness']['10']:.3f}, BCE "
            f"{paper['bce']['correctness']['10']:.3f} | improved S=20: "
            f"{improved['adversarial']['correctness']['20']:.3f} | {run['wall_s']:.0f} s")


def _write_outputs(out: Path, results: dict[str, Any], per_seed: list[dict[str, Any]]) -> None:
    """``results.json``, ``per_seed.json`` and the three figures, self-contained HTML (offline)."""
    write_text_atomic(out / "results.json", json.dumps(results, indent=1) + "\n")
    write_text_atomic(out / "per_seed.json", json.dumps(per_seed, indent=1) + "\n")
    for name, figure in figures(results).items():
        figure.write_html(out / f"{name}.html", include_plotlyjs=True)


def load_results(config: str = "course") -> dict[str, Any]:
    """The shipped results of ``advebm-teach reproduce --config <config>`` (10 seeds, full
    protocol)."""
    return load_result(get_config(config).name)
