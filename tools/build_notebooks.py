"""Regenerate the course's notebooks from their sources, executed in full mode, outputs kept.

    python tools/build_notebooks.py                       # every notebook and solution
    python tools/build_notebooks.py sources/notebooks/00_addition_task.py sources/solutions/00_*.py

``sources/notebooks/NN_topic.py`` (py:percent, the file one edits) becomes
``notebooks/NN_topic.ipynb`` (what students open and nbval checks);
``sources/solutions/NN_topic.py`` becomes ``solutions/NN_topic.ipynb``. The sources live outside
the students' folders so that JupyterLab's file browser shows each notebook once; jupytext's
pairing metadata still ties each pair together. Edit the .py, run this, commit both.

Notebooks run as students run them: in full mode (``ADVEBM_FAST`` unset). Every plotly figure in
the outputs gets a static PNG twin in the same output (drawn by kaleido with the system's
Chromium), and every course widget stores a PNG of its first state
(``ADVEBM_STATIC_SNAPSHOTS=1``), so GitHub and nbviewer show them without a kernel. Widget state
is dropped from the metadata (a plotly FigureWidget stores ~5 MB of plotly.js there); execution
counts are kept. A cell whose source did not change keeps its id, so a rebuild's diff shows only
what changed.
"""

from __future__ import annotations

import base64
import os
import sys
import time
import warnings
from pathlib import Path

import jupytext
import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "sources"
#: source folder -> folder of the executed notebooks
TARGETS = {SOURCES / "notebooks": ROOT / "notebooks", SOURCES / "solutions": ROOT / "solutions"}
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def target_of(source: Path) -> Path:
    """``sources/notebooks/X.py`` -> ``notebooks/X.ipynb`` (and likewise for solutions)."""
    if source.parent not in TARGETS:
        raise ValueError(f"source must be a .py in {', '.join(str(p) for p in TARGETS)}, "
                         f"got {source}")
    return TARGETS[source.parent] / f"{source.stem}.ipynb"


def pairing_formats(source: Path) -> str:
    """jupytext's ``formats``: ``notebooks/X.ipynb`` paired with ``sources/notebooks/X.py``."""
    kind = source.parent.name
    return f"{kind}///ipynb,sources/{kind}///py:percent"


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


def add_static_twins(notebook: nbformat.NotebookNode) -> int:
    """Add an ``image/png`` beside every plotly figure in the outputs; return how many."""
    from advebm_teach.teaching.snapshots import figure_png

    added = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                png = figure_png(data[PLOTLY_MIME])
                data["image/png"] = base64.b64encode(png).decode("ascii")
                added += 1
    return added


def build(source: Path) -> float:
    """Execute ``source`` into its target notebook; return the execution time in seconds."""
    target = target_of(source)
    notebook = jupytext.read(source)
    keep_cell_ids(notebook, target)
    notebook.metadata["jupytext"] = {**notebook.metadata.get("jupytext", {}),
                                     "formats": pairing_formats(source)}
    started = time.perf_counter()
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(target.parent)}}).execute()
    seconds = time.perf_counter() - started
    twins = add_static_twins(notebook)
    notebook.metadata.pop("widgets", None)
    target.parent.mkdir(exist_ok=True)
    jupytext.write(notebook, target)
    print(f"{target.relative_to(ROOT)}: executed in {seconds:.1f} s, {twins} figure(s) drawn")
    return seconds


def main(arguments: list[str]) -> None:
    os.environ.pop("ADVEBM_FAST", None)  # stored outputs are the full course, as students run it
    os.environ["ADVEBM_STATIC_SNAPSHOTS"] = "1"
    sources = [Path(p).resolve() for p in arguments] or sorted(
        path for folder in TARGETS for path in folder.glob("[0-9]*.py"))
    import kaleido
    from choreographer.browsers.chromium import Chromium

    if Chromium.find_browser(skip_local=False) is None:  # else kaleido's server thread dies and
        # the build waits for it forever
        sys.exit("no Chrome or Chromium found: the figures' PNG twins need one. Install it "
                 "(Debian: apt-get install chromium) or run kaleido_get_chrome")
    kaleido.start_sync_server(silence_warnings=True)  # one Chromium for every figure
    warnings.filterwarnings("ignore", "The kopts argument is ignored")  # plotly, with a server
    try:
        for source in sources:
            build(source)
    finally:
        kaleido.stop_sync_server(silence_warnings=True)


if __name__ == "__main__":
    main(sys.argv[1:])
