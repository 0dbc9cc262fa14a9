"""Write where the course lives into every place that names it, from one value in pyproject.toml.

    python tools/course_links.py           # rewrite README.md and sources/ to agree with pyproject
    python tools/course_links.py --check   # say what disagrees, exit 1 if anything does

The repository is ``[project.urls] Source`` (``https://github.com/OWNER/REPO``) and the branch is
``[tool.advebm-teach] branch``. From them: the README's Binder and Colab links, a launch line under
each student notebook's title, and the GitHub URL the Colab set-up cell installs from. Moving the
course is one edit in pyproject.toml, then this script, then ``tools/build_notebooks.py``;
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

    def launch_line(self, notebook: str) -> str:
        """The line under a student notebook's title (a markdown line of the .py source)."""
        return (f"# Run it: [Colab]({self.colab(notebook)}) · "
                f"[Binder]({self.binder(notebook)}) · or locally, `advebm-teach lab`")


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
    for source in sorted((ROOT / "sources" / "solutions").glob("[0-9]*.py")):
        files[source] = with_links(source.read_text(), home)
    for source in sorted((ROOT / "sources" / "notebooks").glob("[0-9]*.py")):
        files[source] = with_launch_line(with_links(source.read_text(), home), source.stem, home)
    return files


def main(arguments: list[str]) -> int:
    home, check = read_home(), arguments == ["--check"]
    if arguments not in ([], ["--check"]):
        raise SystemExit(f"usage: python tools/course_links.py [--check], got {arguments}")
    expected = expected_files(home)
    stale = [path for path, text in expected.items() if path.read_text() != text]
    for path in stale:
        if check:
            print(f"{path.relative_to(ROOT)} does not point at {home}")
        else:
            path.write_text(expected[path])
            print(f"{path.relative_to(ROOT)}: links now point at {home}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
