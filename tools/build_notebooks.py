"""Regenerate notebooks/NN_topic.ipynb from NN_topic.py, executed in fast mode, outputs kept.

    python tools/build_notebooks.py                 # every notebook
    python tools/build_notebooks.py notebooks/00_addition_task.py

Edit the .py (the source), run this, commit both. Widget state is dropped from the metadata (a plotly
FigureWidget stores ~5 MB of plotly.js there, and nbval does not need it); execution counts are kept.
A cell whose source did not change keeps its id, so a rebuild's diff shows only what changed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent


def keep_cell_ids(notebook: nbformat.NotebookNode, previous: Path) -> None:
    """Give every cell of ``notebook`` the id its unchanged twin has in the ``previous`` .ipynb."""
    if not previous.exists():
        return
    ids: dict[tuple[str, str], list[str]] = {}
    for cell in nbformat.read(previous, as_version=4).cells:
        ids.setdefault((cell.cell_type, cell.source), []).append(cell.get("id"))
    for cell in notebook.cells:
        twins = ids.get((cell.cell_type, cell.source))
        if twins:
            cell["id"] = twins.pop(0)


def build(source: Path) -> None:
    notebook = jupytext.read(source)
    keep_cell_ids(notebook, source.with_suffix(".ipynb"))
    notebook.metadata["jupytext"] = {**notebook.metadata.get("jupytext", {}), "formats": "ipynb,py:percent"}
    started = time.perf_counter()
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(source.parent)}}).execute()
    notebook.metadata.pop("widgets", None)
    jupytext.write(notebook, source.with_suffix(".ipynb"))
    print(f"{source.with_suffix('.ipynb').relative_to(ROOT)}: executed in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    os.environ["ADVEBM_FAST"] = "1"  # committed outputs come from fast mode, as in CI
    sources = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    for source in sources:
        build(source)
