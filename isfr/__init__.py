"""isfr: a reproducible implementation of ISFRNet (Wang & Shin, 2023).

Data flows one way: ``isfr.data`` -> ``isfr.models`` (stage 1 -> 2 -> 3) ->
``isfr.losses`` (training) or ``isfr.metrics`` (evaluation) -> tables and figures.
"""

__version__ = "0.1.0"
