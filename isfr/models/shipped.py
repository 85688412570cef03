"""The trained ``small`` ISFRNet that ships with the repository, in ``weights/`` (model card:
``weights/README.md``): the default model of ``isfr inpaint``, ``isfr evaluate`` and notebook 07.

The file is an ``isfr export`` of the main model with its floating tensors stored in half precision
(:data:`STORED_DTYPE`, 27.8 MB instead of 55; a tensor beyond fp16's range stays fp32) and cast to fp32 on load;
:func:`as_stored` gives any model the weights such a file gives back, so that what the tables score is what ships.
It is read with ``weights_only=True`` and checked against :data:`SHIPPED_SHA256` first.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

from isfr.core.paths import REPO_ROOT
from isfr.models.isfrnet import to_stored
from isfr.models.pretrained import sha256_file

SHIPPED_NAME = "isfrnet_small.pt"
#: sha256 of ``weights/isfrnet_small.pt``; the model card states the same value (a test checks both).
SHIPPED_SHA256 = "f4873c634dd8d5222d62e537ffa07dc0db83c440e88e58cb880b14a1a6ab34cc"
STORED_DTYPE = torch.float16


def shipped_locations() -> list[Path]:
    """Where the shipped file is looked for: ``$ISFR_WEIGHTS`` (a file), the clone's ``weights/``, and the
    ``share/isfr/weights/`` folder a non-editable ``pip install .`` puts it in."""
    env = os.environ.get("ISFR_WEIGHTS")
    return ([Path(env)] if env else []) + [REPO_ROOT / "weights" / SHIPPED_NAME,
                                           Path(sys.prefix) / "share" / "isfr" / "weights" / SHIPPED_NAME]


sha256_of = sha256_file  # the pretrained files' hash (hashed once per path, size and modification time)


def check_sha256(path: str | os.PathLike, expected: str) -> None:
    """One line naming ``path``, the expected and the actual hash, unless they are equal."""
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"{path}: sha256 {actual} is not the shipped model's {expected}; the file is damaged or "
                         f"another model: restore it with `git checkout -- weights/{SHIPPED_NAME}`, or give "
                         "another model with --checkpoint")


def shipped_model_path(expected: str | None = None) -> Path:
    """The shipped file, its sha256 checked (``expected`` defaults to :data:`SHIPPED_SHA256`); a missing file is a
    ``FileNotFoundError`` naming every place looked at and the fixes that exist."""
    expected = SHIPPED_SHA256 if expected is None else expected
    places = shipped_locations()
    found = next((p for p in places if p.is_file()), None)
    if found is None or not expected:
        raise FileNotFoundError(
            f"the shipped model {SHIPPED_NAME} was not found (looked in {', '.join(str(p) for p in places)}); give a "
            "model with --checkpoint (`isfr train --preset small --main-only` writes one), or set ISFR_WEIGHTS to "
            f"the file from a clone's weights/ folder")
    check_sha256(found, expected)
    return found


@torch.no_grad()
def as_stored(model: nn.Module) -> nn.Module:
    """``model`` with every floating parameter and buffer rounded through :data:`STORED_DTYPE` where a shipped file
    stores it so (:func:`isfr.models.isfrnet.to_stored`), in place: the weights a shipped file gives back, bit for
    bit, so that a table scored on it scores the shipped model."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            t.copy_(to_stored(t, STORED_DTYPE).to(t.dtype))
    return model
