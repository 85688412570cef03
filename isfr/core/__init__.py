"""The base every layer may import: where things live (:mod:`~isfr.core.paths`) and small helpers for
seeds, atomic writes, the git commit, threads and warnings (:mod:`~isfr.core.utils`)."""
