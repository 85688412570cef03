"""isfr: a reproducible implementation of ISFRNet (Wang & Shin, 2023).

The package is layered; data flows one way, from files on disk to tables, figures and the ``isfr`` command:
``core`` -> ``data`` -> ``models`` (stage 1 -> 2 -> 3) -> ``losses`` -> ``training`` | ``evaluation`` ->
``experiments`` -> ``apps``. A module imports only from its own layer's entry or from layers below it;
``training`` and ``evaluation`` are siblings and never import each other (tests/test_layers.py checks it,
docs/architecture.md draws it).
"""

#: the layers of the package, lowest first; the entries of one tuple are siblings (neither imports the other)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",), ("data",), ("models",), ("losses",), ("training", "evaluation"), ("experiments",), ("apps",),
)

__version__ = "0.1.0"
