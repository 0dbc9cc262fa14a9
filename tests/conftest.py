"""Test-wide settings: fast mode for every test and every notebook kernel nbval starts."""

import os

os.environ.setdefault("ADVEBM_FAST", "1")  # set before nbval starts kernels, which inherit it
