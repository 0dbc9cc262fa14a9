"""What the notebooks stand on besides the core: the set-up cell (``notebook``), plotly figure
builders (``plots``), the widgets (``widgets``) and the exercises' checkers (``exercises``).
Imports the core and the toy world, never the experiments."""
