"""Settings for every test run, notebooks included (tests/conftest.py adds the unit tests' own).

nbval starts a notebook's kernel while setting up its first cell, and the kernel inherits this
process's environment. The unit tests run in fast mode (``ADVEBM_FAST=1``, set by tests/conftest.py
or by the caller); the notebooks' stored outputs are the full course, so fast mode is lifted while
a kernel starts: notebooks run as students run them. (A hook in tests/conftest.py would not see the
notebooks' items: a conftest's hooks apply to its own folder only.)
"""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    if type(item).__name__ != "IPyNbCell":
        yield
        return
    fast = os.environ.pop("ADVEBM_FAST", None)
    try:
        yield
    finally:
        if fast is not None:
            os.environ["ADVEBM_FAST"] = fast
