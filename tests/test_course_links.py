"""Where the course lives is one value (pyproject.toml); every link and the Colab install agree."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
course_links = pytest.importorskip("course_links")  # tomllib: Python 3.11+


def test_every_link_and_the_colab_install_point_where_pyproject_says():
    home = course_links.read_home()
    stale = [str(path.relative_to(ROOT)) for path, text in course_links.expected_files(home).items()
             if path.read_text() != text]
    assert not stale, f"{stale} disagree with pyproject.toml: run python tools/course_links.py"


def test_moving_the_course_rewrites_every_place_and_twice_changes_nothing():
    old, new = course_links.read_home(), course_links.Home("someone", "their-fork", "spring")
    moved = course_links.expected_files(new)
    readme = moved[ROOT / "README.md"]
    assert f"github/{old.owner}/{old.repo}/" not in readme and f"gh/{old.owner}/" not in readme
    assert readme.count(new.colab("00_addition_task")) == 1
    for path, text in moved.items():
        if path.parent.name == "notebooks":
            assert text.count("# Run it: ") == 1 and new.binder(path.stem) in text
            assert course_links.with_launch_line(text, path.stem, new) == text
        assert f"git+https://github.com/{old.owner}/{old.repo}@" not in text
        if "google.colab" in text:
            assert "advebm-teach @ git+https://github.com/someone/their-fork@spring" in text


def test_a_home_that_is_not_a_github_repository_is_refused(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project.urls]\nSource = "https://example.org/x"\n'
                         '[tool.advebm-teach]\nbranch = "main"\n')
    with pytest.raises(ValueError, match=re.escape("[project.urls] Source")):
        course_links.read_home(pyproject)


def executed_notebooks() -> list[Path]:
    return sorted([*ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"),
                   *ROOT.glob("solutions/[0-9][0-9]_*.ipynb")])


def test_colab_offers_a_gpu_exactly_to_the_notebooks_that_train_or_attack_the_models():
    import nbformat

    for path in executed_notebooks():
        metadata = nbformat.read(path, as_version=4).metadata
        wants_gpu = path.stem[:2] in course_links.GPU_NOTEBOOKS
        assert (metadata.get("accelerator") == "GPU") == wants_gpu, path
        assert (metadata.get("colab", {}).get("gpuType") == "T4") == wants_gpu, path
    # the toy (01, 02) and 08's measurements: float64, on the CPU, where no GPU helps
    assert not set(course_links.GPU_NOTEBOOKS) & {"01", "02", "08"}


def test_every_notebook_starts_with_the_setup_cell_that_installs_from_home():
    import nbformat

    cell = course_links.read_home().setup_cell().removeprefix("# %%\n").strip()
    for path in executed_notebooks():
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source.strip() == cell, f"{path}: rebuild with tools/build_notebooks.py"
