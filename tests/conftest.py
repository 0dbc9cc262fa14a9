"""Unit-test settings: fast mode (the repository's conftest.py lifts it again for every notebook
kernel nbval starts); the shipped files (weights, results) checked unchanged around every command
a test runs and over the whole session."""

import hashlib
import os
from pathlib import Path

import pytest
import torch

from advebm_teach import AdditionTask, TransformerEnergy
from advebm_teach.toy.ebm import ToyEBM

os.environ.setdefault("ADVEBM_FAST", "1")  # the unit tests' long pipelines run small

PACKAGE = Path(__file__).resolve().parent.parent / "advebm_teach"
SHIPPED = (PACKAGE / "pretrained", PACKAGE / "results")


def shipped_checksums() -> dict[str, str]:
    """SHA-256 of every shipped weight and result file, by path."""
    return {
        str(path.relative_to(PACKAGE)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in SHIPPED
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


@pytest.fixture
def shipped_files_unchanged():
    """Fails the test if anything under ``pretrained/`` or ``results/`` changed while it ran."""
    before = shipped_checksums()
    yield
    assert not changed_files(before, shipped_checksums()), (
        "a command without --ship changed shipped files"
    )


def energy_with_random_readout(task: AdditionTask, seed: int = 0, head: str = "mean",
                               **kwargs) -> TransformerEnergy:
    """A small energy for ``task`` whose read-out is random, as after fine-tuning (a fresh one is 0)."""
    torch.manual_seed(seed)
    kwargs = {"d_model": 16, "n_heads": 2, "ff_dim": 32, **kwargs}
    model = TransformerEnergy.for_task(task, head=head, **kwargs).eval()
    torch.nn.init.normal_(model.energy_readout.weight, std=0.5)
    torch.nn.init.normal_(model.energy_readout.bias, std=0.5)
    return model


def sharp_toy(length: int, seed: int = 0) -> ToyEBM:
    """A toy EBM over 3 symbols with its weights scaled up (hidden 2x, read-out 3x): a p_theta with
    clear modes, the samplers' and estimators' sterner test."""
    model = ToyEBM(3, length, seed=seed, hidden=8)
    with torch.no_grad():
        model.hidden_weight.mul_(2.0)
        model.out_weight.mul_(3.0)
    return model


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one intra-op thread on a busy 2-core machine; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_sessionstart(session):
    session.config.shipped_at_start = shipped_checksums()


def pytest_sessionfinish(session, exitstatus):
    """No test may change a shipped file: the whole run fails if one did, naming the files."""
    changed = changed_files(getattr(session.config, "shipped_at_start", {}), shipped_checksums())
    changed = changed if hasattr(session.config, "shipped_at_start") else []
    if changed:
        print(f"\nshipped files changed during the tests: {changed}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
