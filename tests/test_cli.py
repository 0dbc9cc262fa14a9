"""The ``advebm-teach`` command, run end to end in fast mode (tiny sizes, every code path)."""

import argparse
import shutil
import subprocess
import sys

import pytest

from advebm_teach import make_task, sample_lm
from advebm_teach.checkpoints import load_model
from advebm_teach.cli import build_parser, main


def test_pretrain_fast_writes_loadable_models_that_record_their_command(tmp_path, monkeypatch, capsys,
                                                                       shipped_files_unchanged):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    monkeypatch.chdir(tmp_path)  # the default folders, runs/pretrain/ and runs/checkpoints/, land here
    argv = ["pretrain", "--config", "course", "--fast"]
    main(argv)
    task = make_task("course")
    out = tmp_path / "runs/pretrain/course-fast"
    for kind in ("plm", "energy_lm"):
        model, record = load_model(out / kind)
        assert record["command"] == "advebm-teach " + " ".join(argv)
        assert record["fast_mode"] is True and record["kind"] == kind
        assert 0.0 <= record["metrics"]["sample_correctness"] <= 1.0
        assert task.is_well_formed(sample_lm(model, task, 8, seed=0)).all()
    assert "copy_rate" in load_model(out / "plm")[1]["metrics"]
    assert "sample_correctness" in load_model(out / "energy_lm")[1]["history"][0]
    written = [line.removeprefix("wrote ") for line in capsys.readouterr().err.splitlines()
               if line.startswith("wrote ")]
    assert written == [f"runs/pretrain/course-fast/{kind}.{suffix}" for kind in ("energy_lm", "plm")
                       for suffix in ("json", "safetensors")]


def test_unknown_config_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--config", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_console_script_is_installed():
    executable = shutil.which("advebm-teach")
    assert executable, "the advebm-teach console script is not on PATH: pip install -e ."
    result = subprocess.run([executable, "pretrain", "--help"], capture_output=True, text=True, check=True)
    assert "--config" in result.stdout
    as_module = subprocess.run([sys.executable, "-m", "advebm_teach", "--help"], capture_output=True, text=True, check=True)
    assert "lab" in as_module.stdout and "pretrain" in as_module.stdout


def test_lab_opens_notebook_00_and_allows_root_only_for_root(monkeypatch):
    from advebm_teach import cli

    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    command = cli.lab_command(["--no-browser"])
    assert command[1:4] == ["-m", "jupyter", "lab"] and command[4].endswith("notebooks/00_addition_task.ipynb")
    assert "--allow-root" not in command and command[-1] == "--no-browser"
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert "--allow-root" in cli.lab_command([])


def test_lab_without_jupyterlab_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jupyterlab" else find_spec(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        main(["lab"])
    assert exit_info.value.code != 0 and '".[lab]"' in capsys.readouterr().err


def test_lab_serves_the_course(tmp_path):
    """`advebm-teach lab` really starts JupyterLab on the course (here as whatever user runs the tests)."""
    import json
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [shutil.which("advebm-teach"), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline, listing = time.monotonic() + 60, None
        while time.monotonic() < deadline and listing is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=2) as response:
                    listing = json.load(response)
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 60 s"
        assert {"notebooks", "docs", "solutions"} <= {item["name"] for item in listing["content"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks",
                                    timeout=5) as response:
            names = {item["name"] for item in json.load(response)["content"]}
        assert "00_addition_task.ipynb" in names
        assert not [name for name in names if name.endswith(".py")], "each notebook shown once"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as response:
            assert response.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


# ---------------------------------------------------------------- what the command refuses, before any work
def run_command(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of a command that is refused."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return stopped.value.code, capsys.readouterr().err


REFUSED = [
    (["pretrain", "--energy-epochs", "0"], "--energy-epochs: must be an int >= 1, got 0"),
    (["pretrain", "--energy-epochs", "many"], "--energy-epochs: expected an int, got 'many'"),
    (["pretrain", "--seed", "-1"], "--seed: must be an int in [0, 4294967295], got -1"),
    (["pretrain", "--seed", str(2**64)], "--seed: must be an int in [0, 4294967295]"),
    (["pretrain", "--out", "a-file"], "--out: must be a folder"),
    (["pretrain", "--checkpoints", "a-file"], "--checkpoints: must be a folder"),
    (["pretrain", "--fast", "--ship"], "--ship replaces the package's shipped files"),
    (["pretrain", "--only", "energy_lm"], "needs P_LM's record"),
    (["reproduce", "--seeds", "0"], "--seeds: must be an int >= 1, got 0"),
    (["reproduce", "--seeds", "-1"], "--seeds: must be an int >= 1, got -1"),
    (["reproduce", "--seed", "3"], "unrecognized arguments: --seed 3"),  # no abbreviation of --seeds
    (["reproduce", "--fast", "--ship"], "--ship replaces the package's shipped files"),
    (["reproduce", "--out", "a-file"], "--out: must be a folder"),
    (["bench", "attack", "--ship"], "bench attack` ships no file"),
    (["bench", "perturb", "--fast", "--ship"], "--ship replaces the package's shipped files"),
    (["bench", "perturb", "--out", "a-file"], "--out: must be a folder"),
    (["pretrain", "--conf", "paper"], "unrecognized arguments: --conf paper"),
]


@pytest.mark.parametrize("argv, message", REFUSED, ids=[" ".join(argv) for argv, _ in REFUSED])
def test_bad_arguments_are_refused_before_any_work_naming_the_argument(argv, message, tmp_path, monkeypatch,
                                                                        capsys, shipped_files_unchanged):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr("advebm_teach.trainer.fit", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr("advebm_teach.experiments.reproduce.run_seed", lambda *a, **k: pytest.fail("a seed started"))
    monkeypatch.setattr("advebm_teach.experiments.bench.bench_perturb", lambda *a, **k: pytest.fail("the bench started"))
    code, err = run_command(argv, capsys)
    assert code == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing written


def test_help_lists_every_command_in_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(command in text for command in ("lab", "pretrain", "reproduce", "bench"))
    assert "``" not in text and "--ship" in text


@pytest.mark.parametrize("command", ["lab", "pretrain", "reproduce", "bench"])
def test_every_command_describes_itself(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]  # after the usage line
    assert len(description.split()) > 12, text
    if command == "lab":
        assert "passed on to `jupyter lab`" in " ".join(text.split())


def test_every_option_has_help_text():
    parser = build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
