"""What a reproduction's results say: the targets judged (Figure 2 paired by seed), the text report
that ``advebm-teach reproduce`` prints, and the paper's figures 1a, 1b and 2 with 95 % intervals.

Everything here reads a results JSON (``reproduce.collect``'s shape: per-seed lists under each
curve), so the shipped results (``reproduce.load_results()``) are judged and drawn the same way as
a fresh run's.
"""

from __future__ import annotations

import json
from typing import Any

from ..teaching.plots import curves_with_intervals
from .statistics import interval, paired_difference


def figure_2_paired(results: dict[str, Any]) -> tuple[tuple[float, float, float], int]:
    """Figure 2 at S=10, paired by seed: the interval of Alg.1 - BCE, and in how many seeds Alg.1
    is ahead.

    Both methods ran on the same seeds (same data, same test samples), so their difference is
    judged seed by seed; two overlapping per-method intervals would not mean "no effect".
    """
    return paired_difference(results["attack"]["adversarial"]["10"],
                             results["attack"]["bce"]["10"])


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The reproduction's targets, judged on a results JSON: each with its numbers and ``met``.

    Figure 2 is judged by the paired difference by seed (Algorithm 1 minus BCE, both trained and
    tested on the same seed's data), the right test for two methods run on the same seeds.
    """
    improved = results["improved"]
    adv, bce = (interval(results["attack"]["adversarial"]["10"]),
                interval(results["attack"]["bce"]["10"]))
    paired, ahead = figure_2_paired(results)
    spurious = results["spurious"]
    # the attack's best S
    peak = max(spurious["correctness"], key=lambda s: interval(spurious["correctness"][s])[0])
    last = list(spurious["correctness"])[-1]  # the longest attack
    at = {kind: {f"S={s}": interval(spurious[kind][s]) for s in (peak, last)}
          for kind in ("correctness", "energy")}
    attacked, resampled = (interval(improved["attack"]["adversarial"]["20"]),
                           interval(improved["resampling"]["50"]))
    plm = interval(improved["plm"])[0]
    return {
        "paper: Alg.1 beats BCE at S=10 (paired by seed, the difference's interval above 0)": {
            "paired": paired, "seeds_ahead": ahead, "alg1": adv, "bce": bce, "met": paired[1] > 0},
        ("paper: BCE spurious modes (past its best S, correctness falls, intervals apart, "
         "as energy falls)"): {
            **at, "met": peak != last
            and at["correctness"][f"S={last}"][2] < at["correctness"][f"S={peak}"][1]
            and at["energy"][f"S={last}"][0] < at["energy"][f"S={peak}"][0]},
        "improved: S=20 >= 0.90": {"mean": attacked[0], "met": attacked[0] >= 0.90},
        "improved: S=20 above resampling n=50, intervals apart": {
            "attack": attacked, "resampling": resampled, "met": attacked[1] > resampled[2]},
        "improved: S=20 - P_LM >= 0.40": {"gain": attacked[0] - plm,
                                          "met": attacked[0] - plm >= 0.40},
    }


def report_reproduction(results: dict[str, Any]) -> str:
    """Text tables of a results JSON (mean [95 % interval] over seeds); the last line is JSON of
    the targets."""

    def row(name: str, curve: dict[str, list[float]]) -> str:
        return f"{name:<56}" + "".join(f"{m:7.3f} [{lo:.3f},{hi:.3f}]"
                                       for m, lo, hi in map(interval, curve.values()))

    def header(label: str, keys) -> str:
        return f"{label:<56}" + "".join(f"{k:>22}" for k in keys)

    improved = results["improved"]
    # where it ran: results made before the device was recorded (the shipped course.json) say
    # nothing
    where = f" on {results['device']}" if "device" in results else ""
    if "peak_gpu_memory_gib" in results:
        where += f", peak GPU memory {results['peak_gpu_memory_gib']:.2f} GiB"
    lines = [f"{results['config']} configuration, {len(results['seeds'])} seeds, "
             f"{results['wall_s']:.0f} s{where} "
             f"({'fast mode' if results.get('fast_mode') else 'full'}); P_LM correctness "
             f"{interval(results['plm'])[0]:.3f}", "",
             header("attacked P_LM samples, correctness at S =", results["attack"]["adversarial"])]
    lines += [row("paper: Algorithm 1 energy, greedy attack", results["attack"]["adversarial"]),
              row("paper: BCE energy, greedy attack", results["attack"]["bce"]),
              row("paper: BCE energy, tabu attack (spurious modes)",
                  results["spurious"]["correctness"]),
              row("  ... its mean energy", results["spurious"]["energy"]),
              row("improved: Algorithm 1 lm_nll energy, tabu attack",
                  improved["attack"]["adversarial"]),
              row("improved: BCE lm_nll energy, tabu attack", improved["attack"]["bce"])]
    lines += [row(f"change: {name}", curve) for name, curve in improved["changes"].items()]
    lines += ["", header("importance resampling, correctness at n =", results["resampling"]),
              row("paper: BCE energy", results["resampling"]),
              row("improved: Algorithm 1 lm_nll energy", improved["resampling"])]
    paired, ahead = figure_2_paired(results)
    lines += ["", f"paired by seed (same data, same test samples): Alg.1 - BCE at S=10 = "
              f"{paired[0]:+.3f} [{paired[1]:+.3f}, {paired[2]:+.3f}], Alg.1 ahead in {ahead} "
              f"of {len(results['seeds'])} seeds"]
    judged = targets(results)
    lines += ["", *(f"{'met ' if t['met'] else 'MISSED'}  {name}" for name, t in judged.items()),
              json.dumps({name: t["met"] for name, t in judged.items()})]
    return "\n".join(lines)


def summary(per_seed_values: dict[str, list[float]]
            ) -> tuple[list[float], list[float], list[float]]:
    """(means, lows, highs) over seeds for every key of a curve, in key order."""
    rows = [interval(values) for values in per_seed_values.values()]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The paper's three figures from a results JSON: means over seeds with 95 % intervals."""
    improved, n_seeds = results["improved"], len(results["seeds"])
    steps, candidates = (list(map(int, results["attack"]["adversarial"])),
                         list(map(int, results["resampling"])))
    tag = f" ({n_seeds} seeds, {results['config']} configuration)"
    return {
        "figure_1a": curves_with_intervals(steps, {
            "paper: Algorithm 1, greedy attack": summary(results["attack"]["adversarial"]),
            "improved: lm_nll energy, tabu attack": summary(improved["attack"]["adversarial"]),
        }, "Figure 1a: attacked P_LM samples" + tag, "attack steps S"),
        "figure_1b": curves_with_intervals(candidates, {
            "paper: BCE energy (Residual EBM)": summary(results["resampling"]),
            "improved: lm_nll energy": summary(improved["resampling"]),
        }, "Figure 1b: importance resampling among n P_LM samples" + tag, "candidates n",
            log_x=True),
        "figure_2": curves_with_intervals(steps, {
            "with adversarial training (Algorithm 1)": summary(results["attack"]["adversarial"]),
            "without (BCE)": summary(results["attack"]["bce"]),
        }, "Figure 2: attacking the energy trained with and without the attack" + tag,
            "attack steps S"),
    }
