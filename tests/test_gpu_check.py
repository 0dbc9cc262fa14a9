"""tools/gpu_check.py on tiny notebooks made here: the runner, the table, the exit status, the
arguments (it never runs the course's notebooks in a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import gpu_check  # noqa: E402


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of one code cell per source, unexecuted."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def outputs(path: Path) -> str:
    return "".join(str(output.get("text", "")) for cell in nbformat.read(path, 4).cells
                   for output in cell.get("outputs", []))


def test_the_arguments_default_to_every_notebook_in_full_mode_under_runs():
    options = gpu_check.parse_arguments([])
    assert options.out == ROOT / "runs" / "gpu_check"
    assert not options.fast and not options.skip_tests
    stored = sorted([*(ROOT / "notebooks").glob("[0-9]*.ipynb"),
                     *(ROOT / "solutions").glob("[0-9]*.ipynb")])
    assert len(stored) >= 2 and sorted(options.notebooks) == stored
    assert gpu_check.output_path(stored[0], options.out) == (
        ROOT / "runs" / "gpu_check" / stored[0].parent.name / stored[0].name)
    fast = gpu_check.parse_arguments(["--fast", "--skip-tests", "--out", "elsewhere",
                                      str(stored[0])])
    assert fast.fast and fast.skip_tests and fast.notebooks == [stored[0]]
    assert fast.out == Path("elsewhere").resolve()


def test_an_out_folder_that_would_overwrite_the_stored_notebooks_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        gpu_check.parse_arguments(["--out", str(ROOT)])
    assert stopped.value.code == 2
    assert "would overwrite the notebooks it runs" in capsys.readouterr().err


def test_a_notebook_runs_in_its_folder_and_is_written_under_out(tmp_path):
    source = write_notebook(tmp_path / "course" / "00_tiny.ipynb",
                            'print("device: cuda · torch 2 · GPU in use · mode: full")',
                            "import os\nprint('folder:', os.path.basename(os.getcwd()))")
    run = gpu_check.run_notebook(source, tmp_path / "out", timeout=60)
    assert run.passed and run.device == "cuda" and run.seconds > 0
    assert run.written == tmp_path / "out" / "course" / "00_tiny.ipynb"
    assert "folder: course" in outputs(run.written)
    assert outputs(source) == ""  # the notebook run is left as it was


def test_the_table_and_the_exit_status_report_a_failing_notebook(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADVEBM_FAST", "0")  # restored after main sets it
    fast = write_notebook(tmp_path / "course" / "00_fast.ipynb",
                          "import os\nprint('device: cpu · mode: x')\n"
                          "print('fast:', os.environ.get('ADVEBM_FAST'))")
    broken = write_notebook(tmp_path / "course" / "01_broken.ipynb", "raise KeyError('boom')")
    status = gpu_check.main(["--fast", "--skip-tests", "--out", str(tmp_path / "out"),
                             str(fast), str(broken)])
    assert status == 1
    printed = capsys.readouterr().out
    assert "torch" in printed  # the environment comes first
    rows = {line.split()[0]: line.split()[2:] for line in printed.splitlines()
            if line.startswith("course/")}
    assert rows["course/00_fast.ipynb"] == ["cpu", "pass"]
    assert rows["course/01_broken.ipynb"] == ["?", "FAIL", "KeyError:", "'boom'"]
    assert "fast: 1" in outputs(tmp_path / "out" / "course" / "00_fast.ipynb")
    assert (tmp_path / "out" / "course" / "01_broken.ipynb").exists()


def test_failing_device_tests_fail_the_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADVEBM_FAST", "1")  # restored after main lifts it (full mode)
    commands = []

    def pytest_fails(command, cwd):
        commands.append(command)
        return subprocess.CompletedProcess(command, returncode=1)

    def notebook_passes(source, out, timeout):
        return gpu_check.NotebookRun(source, out / source.name, 1.0, "cuda")

    monkeypatch.setattr(gpu_check.subprocess, "run", pytest_fails)
    monkeypatch.setattr(gpu_check, "run_notebook", notebook_passes)
    notebook = write_notebook(tmp_path / "course" / "00_any.ipynb", "1")
    assert gpu_check.main(["--out", str(tmp_path / "out"), str(notebook)]) == 1
    assert len(commands) == 1 and "tests/test_device.py" in commands[0]
    assert commands[0][1:3] == ["-m", "pytest"]
    assert "the device tests failed" in capsys.readouterr().out
