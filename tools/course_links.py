"""Write where the course lives, and how it starts on Colab, into every place that says so.

    python tools/course_links.py           # rewrite README.md and sources/ to agree with pyproject
    python tools/course_links.py --check   # say what disagrees, exit 1 if anything does

The repository is ``[project.urls] Source`` (``https://github.com/OWNER/REPO``) and the branch is
``[tool.advebm-teach] branch``. From them: the README's Binder and Colab links, a launch line under
each student notebook's title, and every notebook's first cell (``SETUP_CELL``), which on Colab
installs the course from that repository. Notebooks that train or attack the neural models also
carry Colab's ``accelerator: GPU`` metadata, so Colab offers a GPU runtime. Moving the course is
one edit in pyproject.toml, then this script, then ``tools/build_notebooks.py``;
``tests/test_course_links.py`` fails while any place disagrees.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)/?$")


@dataclass(frozen=True)
class Home:
    """Where the course lives: a GitHub repository and a branch."""

    owner: str
    repo: str
    branch: str

    def binder(self, notebook: str) -> str:
        return (f"https://mybinder.org/v2/gh/{self.owner}/{self.repo}/{self.branch}"
                f"?urlpath=lab/tree/notebooks/{notebook}.ipynb")

    def colab(self, notebook: str) -> str:
        return (f"https://colab.research.google.com/github/{self.owner}/{self.repo}/blob/"
                f"{self.branch}/notebooks/{notebook}.ipynb")

    def pip_source(self) -> str:
        return f"advebm-teach @ git+https://github.com/{self.owner}/{self.repo}@{self.branch}"

    def setup_cell(self) -> str:
        """Every notebook's first code cell (py:percent source), installing from this home."""
        return SETUP_CELL.replace("{pip_source}", self.pip_source())

    def launch_line(self, notebook: str) -> str:
        """The line under a student notebook's title (a markdown line of the .py source)."""
        return (f"# Run it: [Colab]({self.colab(notebook)}) · "
                f"[Binder]({self.binder(notebook)}) · or locally, `advebm-teach lab`")


#: Every notebook's first cell. On Colab (and only there) it installs the course once, with every
#: package Colab already has pinned at its installed version by a constraints file: Colab's own
#: torch (its CUDA build), numpy and ipywidgets (7.x, which Colab's custom widgets need) stay as
#: they are, and only what is missing (such as anywidget) is added. Anywhere else it installs
#: nothing. ``setup_notebook`` then enables Colab's widget manager and prints the device, the torch
#: version and whether a GPU is in use. tests/test_colab_setup.py runs it on a simulated Colab.
SETUP_CELL = """\
# %%
# Course setup: the same first cell in every notebook. On Colab it installs the course, keeping
# every package Colab already has (its torch, numpy, ipywidgets) at its version; anywhere else it
# installs nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess
    import tempfile
    from importlib import metadata, util

    if util.find_spec("advebm_teach") is None:
        installed = {dist.metadata["Name"]: dist.version for dist in metadata.distributions()}
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
            keep.writelines(f"{name}=={version}\\n" for name, version in installed.items() if name)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", keep.name,
                        "{pip_source}"],
                       check=True)

import advebm_teach

print(advebm_teach.setup_notebook())

"""
#: The first code cell of a source, up to the next cell.
SETUP = re.compile(r"^# %%\n# Course setup:.*?(?=^# %%)", re.MULTILINE | re.DOTALL)

#: Notebooks that train or attack the neural models, and so gain from a GPU. 01 and 02 compute
#: exactly on the toy EBM, in float64, on the CPU (MPS has no float64), and ask for none.
GPU_NOTEBOOKS = ("00", "03", "04", "05", "06", "07")
#: Colab's notebook metadata for them (Colab offers this runtime when the notebook opens), where
#: jupytext writes it in a source's header, with the filter line that keeps it in the .py
COLAB_GPU_METADATA = "#   accelerator: GPU\n#   colab:\n#     gpuType: T4\n"
KEEP_COLAB_METADATA = "#     notebook_metadata_filter: accelerator,colab\n"
HEADER_START, HEADER_TEXT = "# jupyter:\n", "#     text_representation:\n"


def with_setup_cell(source: str, home: Home) -> str:
    """A notebook source whose first code cell is ``home``'s setup cell."""
    if not SETUP.search(source):
        raise ValueError("no '# Course setup:' cell found")
    return SETUP.sub(lambda _: home.setup_cell(), source, count=1)


def with_gpu_metadata(source: str, notebook: str) -> str:
    """A source whose jupytext header asks Colab for a GPU exactly when ``notebook`` gains from
    one (``GPU_NOTEBOOKS``), laid out as jupytext writes it."""
    source = source.replace(COLAB_GPU_METADATA, "").replace(KEEP_COLAB_METADATA, "")
    if notebook[:2] in GPU_NOTEBOOKS:
        source = source.replace(HEADER_START, HEADER_START + COLAB_GPU_METADATA, 1)
        source = source.replace(HEADER_TEXT, KEEP_COLAB_METADATA + HEADER_TEXT, 1)
    return source


def read_home(pyproject: Path = ROOT / "pyproject.toml") -> Home:
    """The course's home from ``pyproject.toml``."""
    settings = tomllib.loads(pyproject.read_text())
    source = settings["project"]["urls"]["Source"]
    match = GITHUB.match(source)
    if not match:
        raise ValueError(f"[project.urls] Source must be https://github.com/OWNER/REPO, "
                         f"got {source!r}")
    return Home(match[1], match[2], settings["tool"]["advebm-teach"]["branch"])


BINDER = re.compile(r"https://mybinder\.org/v2/gh/[^)\s]*?notebooks/([0-9]{2}_[a-z0-9_]+)\.ipynb")
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]*?"
                   r"notebooks/([0-9]{2}_[a-z0-9_]+)\.ipynb")
PIP_SOURCE = re.compile(r"advebm-teach @ git\+https://github\.com/[^\"'\s]+")
LAUNCH_LINE = re.compile(r"^# Run it: .*\n#\n", re.MULTILINE)  # with the blank line after it
TITLE = re.compile(r"^(# %% \[markdown\]\n# # [0-9]{2} · .*\n)", re.MULTILINE)


def with_links(text: str, home: Home) -> str:
    """``text`` with every Binder, Colab and install link pointing at ``home``."""
    text = BINDER.sub(lambda m: home.binder(m[1]), text)
    text = COLAB.sub(lambda m: home.colab(m[1]), text)
    return PIP_SOURCE.sub(home.pip_source(), text)


def with_launch_line(source: str, notebook: str, home: Home) -> str:
    """A student notebook's source with its launch line right under the title."""
    source = LAUNCH_LINE.sub("", source)
    title = TITLE.search(source)
    if not title:
        raise ValueError(f"{notebook}: no '# NN · Title' markdown cell found")
    line = home.launch_line(notebook)
    start = title.end()
    rest = source[start:].removeprefix("#\n").removeprefix("\n")
    return source[:start] + "#\n" + line + "\n#\n" + rest


def expected_files(home: Home) -> dict[Path, str]:
    """Every file that names the course's home, as it should read."""
    files = {ROOT / "README.md": with_links((ROOT / "README.md").read_text(), home)}
    for source in sorted((ROOT / "sources").glob("*/[0-9]*.py")):
        text = with_gpu_metadata(with_setup_cell(with_links(source.read_text(), home), home),
                                 source.stem)
        if source.parent.name == "notebooks":
            text = with_launch_line(text, source.stem, home)
        files[source] = text
    return files


def main(arguments: list[str]) -> int:
    home, check = read_home(), arguments == ["--check"]
    if arguments not in ([], ["--check"]):
        raise SystemExit(f"usage: python tools/course_links.py [--check], got {arguments}")
    expected = expected_files(home)
    stale = [path for path, text in expected.items() if path.read_text() != text]
    for path in stale:
        if check:
            print(f"{path.relative_to(ROOT)}: links, setup cell or GPU request out of date")
        else:
            path.write_text(expected[path])
            print(f"{path.relative_to(ROOT)}: rewritten for {home}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
