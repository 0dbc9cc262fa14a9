"""The stored notebooks are what a student and nbval need them to be.

* executed top to bottom in full mode, paired with their sources in ``sources/``, clean;
* readable without a kernel: every plotly figure and every widget carries a static PNG;
* a course: each notebook states its goals and prerequisites, ends with a summary and references,
  never points ahead to a later notebook, has at least two exercises, and shows no solution (the
  solutions are in ``solutions/``, executed and checked by nbval like the notebooks).

nbval never compares a cell whose execution_count is None, so an unexecuted notebook would "pass"
silently; these tests make that, and drift between a .py and its .ipynb, fail loudly instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS, SOLUTIONS = ROOT / "notebooks", ROOT / "solutions"
STUDENT = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
EXECUTED = STUDENT + sorted(SOLUTIONS.glob("[0-9]*.ipynb"))
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def source_of(path: Path) -> Path:
    """``notebooks/X.ipynb`` -> ``sources/notebooks/X.py`` (and likewise for solutions)."""
    return ROOT / "sources" / path.parent.name / f"{path.stem}.py"


def number_of(path: Path) -> int:
    return int(path.name[:2])


def cells(path: Path, kind: str | None = None) -> list:
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if kind is None or cell.cell_type == kind]


def without_version_header(text: str) -> str:
    """Drop the ``jupytext_version:`` header line, so that a jupytext upgrade is not drift."""
    return "\n".join(line for line in text.splitlines()
                     if "jupytext_version:" not in line).strip()


def test_every_notebook_has_a_source_and_a_solution_notebook():
    assert STUDENT, "no notebooks found"
    for folder in ("notebooks", "solutions"):
        executed = sorted(p.stem for p in (ROOT / folder).glob("[0-9]*.ipynb"))
        sources = sorted(p.stem for p in (ROOT / "sources" / folder).glob("[0-9]*.py"))
        assert executed == sources, f"{folder}/ and sources/{folder}/ do not pair up"
    assert [p.stem for p in STUDENT] == sorted(p.stem for p in SOLUTIONS.glob("[0-9]*.ipynb"))
    assert not list(NOTEBOOKS.glob("*.py")), "keep jupytext sources out of the students' folder"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_code_cell_was_executed_in_order(path):
    counts = [cell.execution_count for cell in cells(path, "code")]
    assert None not in counts, f"{path.name} has unexecuted cells: run tools/build_notebooks.py"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} was not executed top to bottom in one go")


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ipynb_inputs_match_the_py_source(path):
    from_ipynb = jupytext.writes(jupytext.read(path), fmt="py:percent")
    source = source_of(path)
    assert without_version_header(from_ipynb) == without_version_header(source.read_text()), (
        f"{path.name} and {source.relative_to(ROOT)} differ: edit the .py, then run "
        f"tools/build_notebooks.py")


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_outputs_are_clean_and_from_full_mode(path):
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, (
        "widget state bloats the notebook: rebuild with tools/build_notebooks.py")
    outputs = [output for cell in cells(path, "code") for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} has an error output"
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in outputs)
    assert "Failed to initialize NumPy" not in text
    assert "mode: full" in text, "stored outputs must be the full course, as students run it"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_figure_and_widget_has_a_static_picture(path):
    for number, cell in enumerate(cells(path, "code")):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data or WIDGET_MIME in data:
                assert data.get("image/png"), (
                    f"{path.name}, code cell {number}: a figure or widget without a PNG twin: "
                    f"rebuild with tools/build_notebooks.py")
            if WIDGET_MIME in data:
                assert not data["text/plain"].startswith(("VBox(", "HBox(")), (
                    f"{path.name}, code cell {number}: a widget shows its raw repr")


def test_every_notebook_starts_with_the_same_setup_cell():
    first_cells = {cells(path, "code")[0].source for path in EXECUTED}
    assert len(first_cells) == 1, "the course setup cell differs between notebooks"
    (setup,) = first_cells
    assert "google.colab" in setup and "setup_notebook()" in setup


# ------------------------------------------------------------------------------- a course
#: "notebook 05", "notebooks 03 and 05", "notebooks 01-02", and a link to a notebook file
MENTION = re.compile(r"\bnotebooks?\s+(\d\d(?:\s*(?:,|and|or|to|–|-)\s*\d\d)*)", re.IGNORECASE)
LINK = re.compile(r"\b(\d\d)_[a-z0-9_]+\.ipynb")


def mentioned_notebooks(text: str) -> set[int]:
    numbers = {int(n) for match in MENTION.finditer(text) for n in re.findall(r"\d\d", match[1])}
    return numbers | {int(n) for n in LINK.findall(text)}


def test_mentions_are_found():
    text = "as notebook 03 showed; notebooks 01 and 05, see [x](06_spurious_modes.ipynb)"
    assert mentioned_notebooks(text) == {1, 3, 5, 6}
    assert mentioned_notebooks("section 05 of 2023, notebook x") == set()


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_no_notebook_points_ahead(path):
    later = {}
    for cell in cells(path):
        for number in mentioned_notebooks(cell.source):
            if number > number_of(path):
                later.setdefault(number, cell.source.strip().splitlines()[0][:80])
    assert not later, (f"{path.name} mentions later notebooks {sorted(later)} (first in cells "
                       f"starting {list(later.values())}): a student has not read them yet")


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_every_notebook_opens_with_goals_and_closes_with_summary_and_references(path):
    markdown = [cell.source for cell in cells(path, "markdown")]
    opening = "\n".join(markdown[:3])
    assert "Learning goals" in opening and "Prerequisites" in opening, (
        f"{path.name}: the opening cells must list learning goals and prerequisites")
    assert re.search(r"^## .*Summary", "\n".join(markdown[-3:]), re.MULTILINE), (
        f"{path.name}: a '## Summary' section belongs near the end")
    assert re.match(r"## References", markdown[-1]), (
        f"{path.name}: the last cell must be '## References'")
    assert "docs/notation.md" in "\n".join(markdown), f"{path.name}: link the notation table"


def exercise_ids(path: Path) -> list[str]:
    return re.findall(r"^### Exercise (\d\d\.\d+)",
                      "\n".join(cell.source for cell in cells(path, "markdown")), re.MULTILINE)


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_every_notebook_has_exercises_solved_in_solutions(path):
    ids = exercise_ids(path)
    assert len(ids) >= 2, f"{path.name}: at least two exercises expected, found {ids}"
    assert all(i.startswith(path.name[:2]) for i in ids), f"{path.name}: exercises {ids}"
    solved = exercise_ids(SOLUTIONS / path.name)
    assert ids == solved, f"{path.name}: exercises {ids}, solutions/{path.name} solves {solved}"


def function_bodies(source: str) -> set[str]:
    """Every statement inside a function defined in ``source`` (docstrings and stubs left out),
    written as ``ast.unparse`` writes it, so that formatting does not matter."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell with IPython magics: no exercise there
        return set()
    statements = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for statement in node.body:
                text = ast.unparse(statement)
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    continue  # docstring or ...
                if text in ("pass", "raise NotImplementedError") or text.startswith(
                        "raise NotImplementedError("):
                    continue
                statements.add(text)
    return statements


def test_function_bodies_finds_solution_code():
    solution = 'def f(x):\n    """Doc."""\n    y = x + 1\n    return y\n'
    stub = 'def f(x):\n    """Doc."""\n    # your code here\n    raise NotImplementedError\n'
    assert function_bodies(solution) == {"y = x + 1", "return y"}
    assert function_bodies(stub) == set()


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_no_solution_is_visible_in_a_student_notebook(path):
    student = set().union(*(function_bodies(cell.source) for cell in cells(path, "code")))
    solution_cells = [cell.source for cell in cells(SOLUTIONS / path.name, "code")
                      if cell.source.startswith("# Solution to Exercise")]
    assert solution_cells, f"solutions/{path.name} has no '# Solution to Exercise' cell"
    for source in solution_cells:
        shown = student & function_bodies(source)
        assert not shown, f"{path.name} shows solution code: {sorted(shown)[:3]}"
    for cell in cells(path, "markdown"):
        for details in re.findall(r"<details>.*?</details>", cell.source, re.DOTALL):
            assert "```" not in details and "def " not in details, (
                f"{path.name}: a <details> block holds code; hints only, solutions go in "
                f"solutions/")
