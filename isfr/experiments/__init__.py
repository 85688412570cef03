"""The paper's experiments: the presets (:mod:`~isfr.experiments.config`), the run registry
(:mod:`~isfr.experiments.runs`), training every stage in order (:mod:`~isfr.experiments.pipeline`), the trained
models and their export (:mod:`~isfr.experiments.trained`), scoring them (:mod:`~isfr.experiments.experiment`),
the equal-compute ladder, the dry run, the figures, the notebooks' set-up and ``isfr reproduce``."""
