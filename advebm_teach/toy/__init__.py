"""The enumerable world: a toy EBM small enough that log Z, its samples and its likelihood gradient
are exact (``ebm``), and the estimators of that gradient measured against it (``estimators``)."""
