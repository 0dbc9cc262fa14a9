"""Check the course on this machine's GPU (or whatever device it has): the device tests, then every
notebook and solution executed, timed, and the device its set-up cell reported.

    python tools/gpu_check.py                   # full mode, as students run the notebooks
    python tools/gpu_check.py --fast            # ADVEBM_FAST=1: small sizes, minutes
    python tools/gpu_check.py --out /tmp/check notebooks/05_discrete_attacks.ipynb

Prints torch's and CUDA's versions and the devices seen, runs ``pytest`` on ``DEVICE_TESTS``
(parametrized over the devices present), then executes each notebook (default: every one in
``notebooks/`` and ``solutions/``) with nbclient into ``--out`` (default ``runs/gpu_check/``,
``<out>/notebooks/NN.ipynb`` and ``<out>/solutions/NN.ipynb``; the stored notebooks are never
written), each from its own folder, as JupyterLab runs it. A table gives each notebook's seconds,
the device the set-up cell printed (its line ``device: ...``) and whether every cell ran. The exit
status is 1 if a test or a notebook failed, else 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbclient
import nbformat
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_FOLDERS = (ROOT / "notebooks", ROOT / "solutions")
#: the tests parametrized over the devices present, and the device choice itself
DEVICE_TESTS = ("tests/test_device.py", "tests/test_config.py")
DEVICE_LINE = "device: "  # how the set-up cell's line starts (``teaching.notebook``)


@dataclass
class NotebookRun:
    """One notebook executed: where it was written, its seconds, the device its set-up cell
    printed ("?" if none) and the error that stopped it (None when every cell ran)."""

    source: Path
    written: Path
    seconds: float
    device: str
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None


def parse_arguments(arguments: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every one in notebooks/ and solutions/)")
    parser.add_argument("--fast", action="store_true",
                        help="run the notebooks with ADVEBM_FAST=1 (default: full mode)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check",
                        help="folder for the executed notebooks (default: runs/gpu_check)")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds a cell may run (default: 1800)")
    parser.add_argument("--skip-tests", action="store_true", help="run the notebooks only")
    options = parser.parse_args(arguments)
    options.notebooks = [path.resolve() for path in options.notebooks] or sorted(
        path for folder in NOTEBOOK_FOLDERS for path in folder.glob("[0-9]*.ipynb"))
    options.out = options.out.resolve()
    overwritten = [str(path) for path in options.notebooks
                   if output_path(path, options.out) == path]
    if overwritten:
        parser.error(f"--out {options.out} would overwrite the notebooks it runs "
                     f"({', '.join(overwritten)}); choose another folder")
    return options


def output_path(notebook: Path, out: Path) -> Path:
    """Where ``notebook`` is written once executed: ``<out>/<its folder's name>/<its name>``."""
    return out / notebook.parent.name / notebook.name


def describe_environment() -> str:
    """torch's version, CUDA's and cuDNN's, the GPUs seen, MPS, and ``pick_device()``."""
    import torch

    from advebm_teach.config import pick_device

    lines = [f"python {sys.version.split()[0]} · torch {torch.__version__} · "
             f"CUDA build {torch.version.cuda} · cuDNN {torch.backends.cudnn.version()}"]
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        lines.append(f"cuda:{index} {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
                     f"compute capability {properties.major}.{properties.minor}")
    if not torch.cuda.is_available():
        lines.append("no CUDA device")
    mps = getattr(torch.backends, "mps", None)
    lines.append(f"MPS available: {mps is not None and mps.is_available()} · "
                 f"pick_device(): {pick_device()} · CPU threads: {torch.get_num_threads()}")
    return "\n".join(lines)


def run_device_tests() -> int:
    """``pytest`` on ``DEVICE_TESTS``; its exit status."""
    command = [sys.executable, "-m", "pytest", "-p", "no:nbval", "-o",
               "addopts=-p no:cacheprovider", "-q", *DEVICE_TESTS]
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT).returncode


def setup_device(notebook: nbformat.NotebookNode) -> str:
    """The device the set-up cell printed: the word after ``device:`` on the first output line
    that starts with it ("?" if none)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                if line.startswith(DEVICE_LINE):
                    return line[len(DEVICE_LINE):].split("·")[0].strip() or "?"
    return "?"


def run_notebook(source: Path, out: Path, timeout: int) -> NotebookRun:
    """Execute ``source`` in its own folder and write it, with its outputs, under ``out`` (a
    failed run is written too, up to the cell that failed)."""
    notebook = nbformat.read(source, as_version=4)
    written = output_path(source, out)
    error = None
    started = time.perf_counter()
    try:
        nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(source.parent)}}).execute()
    except CellExecutionError as failure:  # a cell raised
        error = f"{failure.ename}: {failure.evalue}"
    except Exception as failure:  # a cell timed out, the kernel died: report it and go on
        error = f"{type(failure).__name__}: {failure}".strip()
    seconds = time.perf_counter() - started
    written.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, written)
    return NotebookRun(source, written, seconds, setup_device(notebook), error)


def table(runs: list[NotebookRun]) -> str:
    """One row per notebook: its folder and name, seconds, device, pass or FAIL (and why)."""
    names = [f"{run.source.parent.name}/{run.source.name}" for run in runs]
    width = max([len("notebook"), *map(len, names)])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  {'device':<8}  result"]
    for name, run in zip(names, runs):
        result = "pass" if run.passed else f"FAIL {run.error}"
        lines.append(f"{name:<{width}}  {run.seconds:8.1f}  {run.device:<8}  {result}")
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> int:
    options = parse_arguments(arguments)
    if options.fast:
        os.environ["ADVEBM_FAST"] = "1"
    else:
        os.environ.pop("ADVEBM_FAST", None)  # full mode, as students run the notebooks
    print(describe_environment(), flush=True)
    tests_failed = False
    if not options.skip_tests:
        tests_failed = run_device_tests() != 0
    mode = "fast" if options.fast else "full"
    runs = []
    for source in options.notebooks:
        print(f"running {source.relative_to(source.parent.parent)} ({mode} mode)...", flush=True)
        runs.append(run_notebook(source, options.out, options.timeout))
    print(table(runs))
    print(f"executed notebooks in {options.out}")
    failed = [run for run in runs if not run.passed]
    if tests_failed:
        print("the device tests failed (see pytest's output above)")
    return 1 if failed or tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
