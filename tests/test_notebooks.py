"""The committed notebooks are what nbval needs them to be: executed, paired with their .py, and clean.

nbval never compares a cell whose execution_count is None, so an unexecuted notebook would "pass"
silently; these tests make that, and drift between a .py and its .ipynb, fail loudly instead.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def without_version_header(text: str) -> str:
    """Drop the ``jupytext_version:`` header line, so that a jupytext upgrade is not drift."""
    return "\n".join(line for line in text.splitlines() if "jupytext_version:" not in line).strip()


def test_notebooks_exist_and_come_in_pairs():
    assert IPYNBS, "no notebooks found"
    assert [p.stem for p in IPYNBS] == [p.stem for p in SOURCES]


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_every_code_cell_was_executed_in_order(path):
    counts = [cell.execution_count for cell in code_cells(path)]
    assert None not in counts, f"{path.name} has unexecuted cells: run tools/build_notebooks.py"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name} was not executed top to bottom in one go"


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_ipynb_inputs_match_the_py_source(path):
    from_ipynb = jupytext.writes(jupytext.read(path), fmt="py:percent")
    source = path.with_suffix(".py").read_text()
    assert without_version_header(from_ipynb) == without_version_header(source), (
        f"{path.name} and {path.with_suffix('.py').name} differ: edit the .py, then run tools/build_notebooks.py"
    )


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_outputs_are_clean_and_from_fast_mode(path):
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, "widget state bloats the notebook: rebuild with tools/build_notebooks.py"
    outputs = [output for cell in code_cells(path) for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} has an error output"
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "Failed to initialize NumPy" not in text
    assert "mode: fast" in text, "committed outputs must come from fast mode (ADVEBM_FAST=1), as CI runs them"


def test_every_notebook_starts_with_the_same_setup_cell():
    first_cells = {code_cells(path)[0].source for path in IPYNBS}
    assert len(first_cells) == 1, "the course setup cell differs between notebooks"
    (setup,) = first_cells
    assert "google.colab" in setup and "setup_notebook()" in setup
