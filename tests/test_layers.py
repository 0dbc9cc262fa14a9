"""The package's layers: core <- toy <- teaching <- experiments, and nothing imports upward.

The core (the top-level modules a student reads beside a notebook) imports only the core; ``toy/``
adds the enumerable world; ``teaching/`` (set-up cell, plots, widgets, checkers) may use both;
``experiments/`` (the code that made the shipped numbers) may use everything. The package's front
doors (``__init__``, ``__main__``, ``cli``) may import any layer. Imports inside functions count.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "advebm_teach"
LAYERS = {"core": 0, "toy": 1, "teaching": 2, "experiments": 3}
FRONT_DOORS = {"advebm_teach", "advebm_teach.__main__", "advebm_teach.cli"}


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of a module of the package (``advebm_teach.x.y``)."""
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 2 else LAYERS["core"]


def imported_modules(path: Path, module: str, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, absolute or relative, at any depth."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found & modules


def upward_imports(package: Path) -> list[str]:
    """``importer -> imported`` for every import of a higher layer by a lower one."""
    wrong, modules = [], {module_name(p, package) for p in package.rglob("*.py")}
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        if module in FRONT_DOORS or module.count(".") == 1 and module.split(".")[1] in LAYERS:
            continue  # front doors, and the sub-packages' own __init__ (docstrings only)
        wrong += [
            f"{module} -> {target}"
            for target in sorted(imported_modules(path, module, modules))
            if layer(target) > layer(module)
        ]
    return wrong


def test_nothing_imports_upward():
    assert upward_imports(PACKAGE) == []


def test_the_check_sees_an_upward_import(tmp_path):
    """A copy of the package where the core's trainer imports the experiments' shipping: caught."""
    import shutil

    copy = tmp_path / "advebm_teach"
    shutil.copytree(
        PACKAGE, copy, ignore=shutil.ignore_patterns("pretrained", "results", "__pycache__")
    )
    trainer = copy / "trainer.py"
    trainer.write_text(
        trainer.read_text() + "\n\ndef later():\n    from .experiments import shipping\n"
    )
    assert upward_imports(copy) == ["advebm_teach.trainer -> advebm_teach.experiments.shipping"]
    toy = copy / "toy" / "ebm.py"
    toy.write_text(toy.read_text() + "\nfrom ..teaching.plots import training_curves\n")
    assert "advebm_teach.toy.ebm -> advebm_teach.teaching.plots" in upward_imports(copy)
