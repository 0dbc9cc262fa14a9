"""The code that made the shipped numbers: pre-training (``pretrain``), the paper's reproduction
(``reproduce``), the embedding-perturbation study (``perturb_study``), the benchmarks (``bench``),
and where their outputs go (``shipping``)."""
