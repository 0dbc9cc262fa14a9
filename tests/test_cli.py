"""The ``advebm-teach`` command, run end to end in fast mode (tiny sizes, every code path)."""

import shutil
import subprocess
import sys

import pytest

from advebm_teach import make_task, sample_lm
from advebm_teach.checkpoints import load_model
from advebm_teach.cli import main


def test_pretrain_fast_writes_loadable_models_that_record_their_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVEBM_FAST", "1")
    argv = ["pretrain", "--config", "course", "--fast", "--out", str(tmp_path / "out"),
            "--checkpoints", str(tmp_path / "checkpoints")]
    main(argv)
    task = make_task("course")
    for kind in ("plm", "energy_lm"):
        model, record = load_model(tmp_path / "out" / kind)
        assert record["command"] == "advebm-teach " + " ".join(argv)
        assert record["fast_mode"] is True and record["kind"] == kind
        assert 0.0 <= record["metrics"]["sample_correctness"] <= 1.0
        assert task.is_well_formed(sample_lm(model, task, 8, seed=0)).all()
    assert "copy_rate" in load_model(tmp_path / "out" / "plm")[1]["metrics"]
    assert "sample_correctness" in load_model(tmp_path / "out" / "energy_lm")[1]["history"][0]


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


def test_lab_serves_the_course(tmp_path):
    """`advebm-teach lab` really starts JupyterLab on the notebooks folder (here as whatever user runs the tests)."""
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
        assert "00_addition_task.ipynb" in {item["name"] for item in listing["content"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as response:
            assert response.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
