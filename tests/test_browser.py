"""The AttackStepper in a real browser: JupyterLab runs a notebook, Chromium (driven by Playwright) steps it.

What only a browser shows: the widget and its plotly figures render from JupyterLab's installed extensions,
moving the slider (by keyboard, and by its Play button) reaches the kernel, and the kernel's
updates reach the plots, without a JavaScript error. On both renderers: the FigureWidgets chosen
off Colab, and the course's PlotlyView chosen on Colab (``renderer="html"``, forced here in
JupyterLab), which must draw with the plotly.js it carries and leave no page-global ``Plotly``.

Debian's Chromium (``apt-get install chromium chromium-driver``) and the ``playwright`` module (the ``dev``
extra) are needed; never ``playwright install``. Without them the test skips, except in CI (``CI=true``),
where ``.ci/run`` installs them and a missing browser is a failure. A screenshot of each stepper goes to
``test-artifacts/<notebook>.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
SCRATCH = Path(__file__).with_name("browser_notebook.py")  # a quick notebook of our own, converted in the test
#: the scratch notebooks written from SCRATCH, by the renderer their `parameters` cell sets
SCRATCH_RENDERERS = {f"{SCRATCH.stem}.ipynb": None, f"{SCRATCH.stem}_html.ipynb": "html"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER_SETTINGS = {  # JupyterLab user settings: nothing saves, asks or pops up behind the test's back
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    # Render every cell (no windowing), so the widget is in the page wherever its cell is.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
STEPPER = ".advebm-attack-stepper"


# Console errors that are not the page's fault, as substrings of "text location". None seen so far with
# JupyterLab 4.6 + ipywidgets 8.1 + plotly 7.1 + Chromium 156 (every console.error fails the test). If one has
# to be added, make it a narrow substring and say here why it is harmless.
KNOWN_CONSOLE_NOISE: tuple[str, ...] = ()


def console_noise(text: str) -> bool:
    return any(noise in text for noise in KNOWN_CONSOLE_NOISE)


@pytest.fixture(scope="module")
def browser_available() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright module (pip install -e '.[dev]')")
    if missing:
        reason = "real-browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI installs them, so their absence is a failure here")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(browser_available, tmp_path_factory) -> dict:
    """A JupyterLab server on a temporary copy of notebooks/ (plus the scratch notebook); stopped afterwards."""
    base = tmp_path_factory.mktemp("lab")
    folder = base / "notebooks"
    shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name, renderer in SCRATCH_RENDERERS.items():
        notebook = jupytext.read(SCRATCH)
        (parameters,) = [cell for cell in notebook.cells
                         if "parameters" in cell.metadata.get("tags", ())]
        parameters.source = f"renderer = {renderer!r}"
        jupytext.write(notebook, folder / name)
    settings = base / "settings"
    for relative, values in USER_SETTINGS.items():
        (settings / relative).parent.mkdir(parents=True, exist_ok=True)
        (settings / relative).write_text(json.dumps(values))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ADVEBM_FAST": "1", "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_DATA_DIR": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "IPYTHONDIR": str(base / "ipython")}
    log = open(base / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
         f"--ServerApp.root_dir={folder}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline, ready = time.monotonic() + 60, False
        while time.monotonic() < deadline and not ready:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2):
                    ready = True
            except OSError:
                assert server.poll() is None, (base / "server.log").read_text()
                time.sleep(0.3)
        assert ready, "JupyterLab did not answer within 60 s:\n" + (base / "server.log").read_text()
        for relative, values in USER_SETTINGS.items():  # the server reads our user settings
            plugin = relative.removesuffix(".jupyterlab-settings").replace("-extension/", "-extension:")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}", timeout=5) as response:
                assert values.items() <= json.load(response)["settings"].items(), f"user settings of {plugin} not applied"
        yield {"url": f"http://127.0.0.1:{port}", "folder": folder, "base": base}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


# The first stepper's four plots, found by their boxes' classes (see widgets.PLOT_NAMES).
PLOTS_STATE = """stepper => ['saliency', 'candidates', 'energy', 'correctness'].map(name => {
    const gd = document.querySelector(`${stepper} .advebm-plot-${name} .js-plotly-plot`);
    return gd ? (gd.data ? gd.data.length : 'no data') : 'missing';
})"""
PLOTS_DRAWN = f"stepper => ({PLOTS_STATE})(stepper).every(n => n === 1 || n === 2)"


def artifact(notebook: str, suffix: str = "") -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{Path(notebook).stem}{suffix}.png"


def clear_outputs(path: Path) -> None:
    """A fresh run: stale widget views in saved outputs would point at models that no longer exist."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, path)


NOTEBOOK_CASES = [
    pytest.param("05_discrete_attacks.ipynb", 240, id="05_discrete_attacks"),
    *(pytest.param(name, 60, id=Path(name).stem) for name in SCRATCH_RENDERERS),
]


def wait_until(condition, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


@pytest.mark.parametrize(("notebook", "run_timeout_s"), NOTEBOOK_CASES)
def test_attack_stepper_steps_in_jupyterlab(lab, notebook, run_timeout_s, tmp_path):
    """Run all cells, find the first stepper, step it: its heatmap and energy marker follow, no JS error."""
    from playwright.sync_api import sync_playwright

    clear_outputs(lab["folder"] / notebook)
    errors: list[str] = []

    def on_console(message) -> None:
        text = f"{message.text} {message.location}"
        if message.type == "error" and not console_noise(text):
            errors.append(f"console.error: {text}")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        try:
            # A workspace of its own: the server's default one would reopen the previous test's notebook.
            page.goto(f"{lab['url']}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}")
            page.wait_for_function("""path => {
                const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                return panel && panel.sessionContext && panel.context && panel.context.path === path;
            }""", arg=notebook, timeout=60_000)
            # Resolves when every cell has run (so the kernel is free to answer the slider), with whether
            # all of them succeeded; or fails after run_timeout_s.
            all_ran = page.evaluate("""async (ms) => {
                const panel = window.jupyterapp.shell.currentWidget;
                await panel.context.ready;
                await panel.sessionContext.ready;
                const late = new Promise((_, reject) => setTimeout(
                    () => reject(new Error(`cells still running after ${ms} ms`)), ms));
                return await Promise.race([window.jupyterapp.commands.execute('notebook:run-all-cells'), late]);
            }""", run_timeout_s * 1000)
            assert all_ran is True, f"{notebook}: a cell failed (run-all-cells returned {all_ran!r})"
            stepper = page.locator(STEPPER).first
            stepper.wait_for(timeout=10_000)
            stepper.scroll_into_view_if_needed()
            wait_until(lambda: page.evaluate(PLOTS_DRAWN, STEPPER), 30,
                       f"the stepper's plots were not all drawn within 30 s: {page.evaluate(PLOTS_STATE, STEPPER)}")

            heatmap = stepper.locator(".advebm-plot-saliency .js-plotly-plot")
            energy = stepper.locator(".advebm-plot-energy .js-plotly-plot")

            def heatmap_state() -> str:  # the cells (saliency, tokens) and the chosen-position marker
                return heatmap.evaluate("gd => JSON.stringify([gd.data[0].z, gd.data[0].text, gd.data[1].x])")

            def marker() -> list:
                return energy.evaluate("gd => Array.from(gd.data[1].x)")

            steps = energy.evaluate("gd => gd.data[0].x.length") - 1
            assert steps >= 1, "the stepper's trace has no step to take"
            before = heatmap_state()
            assert marker() == [0], "the energy line's marker should start at step 0"

            handle = stepper.locator(".noUi-handle").first
            # A step may leave the heatmap as it was (the same position kept its token); the last one
            # (no choice left) always empties it. So: step until it changes, checking the marker each time.
            for step in range(1, steps + 1):
                handle.press("ArrowRight")
                wait_until(lambda: marker() == [step], 15, f"the energy line's marker did not move to step {step}")
                try:  # the heatmap's update is a message of its own: give it a moment
                    wait_until(lambda: heatmap_state() != before, 3, "")
                    break
                except AssertionError:
                    continue
            assert heatmap_state() != before, f"the saliency heatmap did not change in {steps} steps"

            # The Play button (jslinked to the slider, in the browser): stop goes back to step 0,
            # play runs to the last step, one step per interval, each via the kernel to the plots.
            play = stepper.locator(".widget-play")
            play.locator("button", has=page.locator("i.fa-stop")).click()
            wait_until(lambda: marker() == [0] and heatmap_state() == before, 15,
                       "Play's stop did not bring the plots back to step 0")
            play.locator("button", has=page.locator("i.fa-play")).click()
            wait_until(lambda: marker() == [steps], 15 + steps,
                       f"Play did not run the energy line's marker to step {steps}")
            wait_until(lambda: heatmap_state() != before, 3, "Play left the heatmap at step 0")
            wait_until(lambda: play.locator("i.fa-play").count() == 1, 5,
                       "Play did not stop at the last step")
            if SCRATCH_RENDERERS.get(notebook) == "html":  # plotly.js came with the view
                assert page.evaluate("() => typeof window.Plotly") == "undefined", (
                    "the PlotlyView left a page-global Plotly")
            stepper.screenshot(path=str(artifact(notebook)))
            artifact(notebook, "-failed").unlink(missing_ok=True)  # from an earlier run
        except Exception:
            page.screenshot(path=str(artifact(notebook, "-failed")), full_page=True)
            stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
            print(f"screenshot: {artifact(notebook, '-failed')}\ncell stderr: {stderr}\nJS errors: {errors}")
            raise
        finally:
            try:  # free the kernel (and its CPU) for the next notebook
                page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
            finally:
                context.close()
    assert not errors, "JavaScript errors in the page:\n" + "\n".join(errors)
