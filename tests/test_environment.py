"""Binder's environment.yml builds what pyproject.toml asks for: the same packages, the same
minimums, and its ``lab`` extra (what JupyterLab needs to open the course); and the licence
pyproject.toml names ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from "
                                                "Python 3.11")

ROOT = Path(__file__).resolve().parent.parent
#: pyproject's name -> conda-forge's, where they differ
CONDA_NAMES = {"torch": "pytorch-cpu"}
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?:>=\s*([0-9][0-9.]*))?$")


def parse(requirement: str) -> tuple[str, str | None]:
    """``"torch>=2.1"`` -> ``("torch", "2.1")``; a requirement of another shape fails the test."""
    match = REQUIREMENT.match(requirement.strip())
    assert match, f"unexpected requirement {requirement!r}: only 'name' or 'name>=version' are used"
    return match[1].lower(), match[2]


def test_parse_reads_names_and_minimums():
    assert parse("torch>=2.1") == ("torch", "2.1") and parse("pip") == ("pip", None)


def test_environment_yml_asks_for_what_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(parse(r) for r in project["dependencies"])
    # and the lab extra, what JupyterLab needs to open the course (Binder runs no tests)
    wanted.update(dict(parse(r) for r in project["optional-dependencies"]["lab"]))
    wanted = {CONDA_NAMES.get(name, name): minimum for name, minimum in wanted.items()}

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    conda = [entry for entry in environment["dependencies"] if isinstance(entry, str)]
    (pip_section,) = [entry["pip"] for entry in environment["dependencies"]
                      if isinstance(entry, dict)]
    assert pip_section == ["-e ."], "Binder installs the package itself, from this clone"
    python = [entry for entry in conda if entry.startswith("python")]
    assert python and tuple(map(int, python[0].split("=")[1].split("."))) >= (3, 10)
    listed = dict(parse(entry) for entry in conda if not entry.startswith("python"))
    listed.pop("pip")
    assert listed == wanted, (
        f"environment.yml and pyproject.toml differ: only in environment.yml "
        f"{sorted(set(listed.items()) - set(wanted.items()))}, only in pyproject.toml "
        f"{sorted(set(wanted.items()) - set(listed.items()))}")


def test_the_licence_pyproject_names_ships():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert project["license"]["text"] == "MIT" and licence.startswith("MIT License")

