"""``python -m advebm_teach ...`` is the ``advebm-teach`` command."""

from .cli import main

main()
