"""Checkers of the notebooks' exercises, one module per topic; each returns a ``Verdict``.

``task`` (notebook 00), ``ebm`` (01), ``estimators`` (02), ``embedding`` (03, 04),
``discrete`` (05), ``spurious`` (06), ``algorithm1`` (07); ``verdict`` holds what they share.
The model solutions are in ``solutions/``, never in a student's notebook.
"""

from .verdict import Verdict

__all__ = ["Verdict"]
