"""The notebooks' first cell on a simulated Colab: what it installs, and that it installs nothing
elsewhere.

Colab is simulated by a stub ``google.colab`` module (with the ``output`` module whose widget
manager the cell enables), ``subprocess.run`` replaced by a recorder (so ``pip`` never runs), and
the installed packages replaced by Colab's (``COLAB``). The cell's code is the one every notebook
and solution starts with (tools/course_links.py writes it; tests/test_course_links.py checks that
every notebook has it).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import types
from importlib import metadata, util
from pathlib import Path

import nbformat
import plotly.io as pio
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

#: What Colab ships of the course's dependencies, as recorded: ipywidgets stays at 7.7.1 because
#: Colab's custom widget manager does not support 8.x (colabtools #3020, #4525; anywidget #48);
#: torch is its CUDA build; anywidget is absent (the course's first cell adds it). Update this
#: table from `pip list` in a fresh Colab runtime; the test below then says whether the course's
#: minimums still accept it.
COLAB = {"torch": "2.8.0+cu126", "numpy": "2.0.2", "scipy": "1.16.3", "plotly": "5.24.1",
         "ipywidgets": "7.7.1", "tqdm": "4.67.1", "safetensors": "0.6.2",
         "typing-extensions": "4.15.0", "ipython": "7.34.0", "traitlets": "5.7.1"}


def setup_cell_code() -> str:
    """The first code cell of notebook 00, as students get it (the same in every notebook)."""
    notebook = nbformat.read(ROOT / "notebooks" / "00_addition_task.ipynb", as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.fixture
def colab(monkeypatch):
    """A simulated Colab kernel: returns the pip commands the cell ran and the widget-manager
    calls it made."""
    calls: dict[str, list] = {"pip": [], "widget_manager": []}
    google, colab_module = types.ModuleType("google"), types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls["widget_manager"].append(True)
    colab_module.output, google.colab = output, colab_module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: calls["pip"].append(command))
    installed = [types.SimpleNamespace(metadata={"Name": name}, version=version)
                 for name, version in COLAB.items()]
    monkeypatch.setattr(metadata, "distributions", lambda: iter(installed))
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)  # restored afterwards
    return calls


def run_cell(code: str) -> str:
    """Execute the cell as a kernel would; return what it printed."""
    printed: list[str] = []
    namespace = {"print": lambda *values: printed.append(" ".join(map(str, values)))}
    exec(compile(code, "<setup cell>", "exec"), namespace)
    return "\n".join(printed)


def test_on_colab_it_installs_the_course_and_keeps_every_package_colab_has(colab, monkeypatch):
    find_spec = util.find_spec
    monkeypatch.setattr(util, "find_spec",  # the course is not installed yet
                        lambda name, *a: None if name == "advebm_teach" else find_spec(name, *a))
    status = run_cell(setup_cell_code())

    (command,) = colab["pip"]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    requirements = [arg for arg in command[4:] if not arg.startswith("-")]
    constraints = Path(command[command.index("-c") + 1])
    requirements.remove(str(constraints))
    home = tomllib.loads((ROOT / "pyproject.toml").read_text())
    source = home["project"]["urls"]["Source"].removeprefix("https://")
    assert requirements == [f"advebm-teach @ git+https://{source}@"
                            f"{home['tool']['advebm-teach']['branch']}"]
    assert not any(flag in command for flag in ("-U", "--upgrade", "--force-reinstall"))
    assert not any("==" in arg for arg in command), "nothing is pinned on the command line"
    # every package Colab has is held at its version: its torch (CUDA build) stays
    pinned = dict(line.split("==") for line in constraints.read_text().split())
    assert pinned == COLAB
    constraints.unlink()
    assert colab["widget_manager"] == [True]
    assert pio.renderers.default == "colab"
    assert status.startswith("device: ") and "torch " in status


def test_on_colab_with_the_course_installed_it_installs_nothing(colab):
    run_cell(setup_cell_code())  # advebm_teach is importable here: nothing to install
    assert colab["pip"] == [] and colab["widget_manager"] == [True]


def test_off_colab_it_installs_nothing_and_says_where_it_runs(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None)  # even were the course missing
    ran: list = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: ran.append(a))
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)
    status = run_cell(setup_cell_code())
    assert ran == []
    import torch

    assert status.startswith("device: ") and f"torch {torch.__version__}" in status
    assert ("no GPU: running on the CPU" in status) == (status.split(" ")[1] == "cpu")


def test_colab_versions_meet_the_course_requirements():
    """pip, held to Colab's versions by the first cell's constraints, can satisfy every
    requirement only if Colab's version of each meets the course's minimum."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    colab = {canonicalize_name(name): version for name, version in COLAB.items()}
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        version = colab.get(canonicalize_name(requirement.name))
        if version is not None:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"Colab has {requirement.name} {version}, which {line!r} refuses: the first "
                f"cell's pip install would fail there")
