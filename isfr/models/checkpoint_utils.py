"""Helpers for loading third-party checkpoints with error messages that name the fix.

Shared by the StyleGAN2, pSp, IFR and SFR loaders (see ``docs/conventions.md``: errors name the
file and the fix).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["check_state_dict", "diff_state_dict", "load_torch_file", "torch_load_error"]


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def diff_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """What stops ``state_dict`` loading into ``model`` with ``strict=True``: missing keys, unexpected
    keys and ``(key, checkpoint shape, model shape)`` of every shape mismatch (model order)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [(k, tuple(getattr(state_dict[k], "shape", ())), tuple(v.shape)) for k, v in expected.items()
                  if k in state_dict and tuple(getattr(state_dict[k], "shape", ())) != tuple(v.shape)]
    return missing, unexpected, mismatched


def check_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str,
    hint: str = "",
    max_items: int = 5,
) -> None:
    """Raise ``ValueError`` unless ``state_dict`` loads into ``model`` with ``strict=True``.

    The message lists the first ``max_items`` missing keys, unexpected keys and shape mismatches,
    names ``source`` (usually the checkpoint path) and ends with ``hint`` (which option to change).
    """
    missing, unexpected, shapes = diff_state_dict(model, state_dict)
    mismatched = [f"{k}: checkpoint {_fmt_shape(a)} vs model {_fmt_shape(b)}" for k, a, b in shapes]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"State dict from {source} does not match {type(model).__name__}:"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
        if items:
            more = f" (+{len(items) - max_items} more)" if len(items) > max_items else ""
            lines.append(f"  {len(items)} {title}{more}: " + "; ".join(items[:max_items]))
    if hint:
        lines.append(hint)
    raise ValueError("\n".join(lines))


def torch_load_error(path: str | os.PathLike, err: BaseException, fix: str = "") -> ValueError:
    """A one-line ``ValueError`` for ``torch.load``'s failure ``err`` on ``path``, ending with ``fix``.

    Files holding Python objects that ``weights_only=True`` refuses are told apart from files that are
    not torch checkpoints at all (truncated downloads, other formats), whose torch error says to pass
    ``weights_only=False`` too; either way only the first sentence of torch's text is kept.
    """
    text = str(err)
    if "Unsupported global" in text:  # a real checkpoint with pickled objects
        name = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        return ValueError(f"{os.fspath(path)}: the checkpoint holds Python objects that a safe load refuses "
                          f"({name.group(1) if name else 'a pickled class'}); if you trust the file, load it "
                          "with isfr.models.checkpoint_utils.load_torch_file(path, weights_only=False)")
    first = re.split(r"(?<=\.)\s|\n", text.strip(), maxsplit=1)[0].rstrip(".") if text.strip() else ""
    why = type(err).__name__ + ("" if isinstance(err, pickle.UnpicklingError) or not first else f": {first}")
    return ValueError(f"{os.fspath(path)}: not a readable torch checkpoint (truncated, or not written by "
                      f"torch.save: {why})" + (f"; {fix}" if fix else ""))


def load_torch_file(path: str | os.PathLike, where_to_get: str = "", weights_only: bool = True):
    """``torch.load(path, map_location="cpu")`` with errors that say where to get the file.

    A missing file is a ``FileNotFoundError``, an unreadable one a one-line ``ValueError``
    (:func:`torch_load_error`), both ending with ``where_to_get``. ``weights_only=True`` (default)
    also accepts ``argparse.Namespace`` entries (training scripts such as rosinality's ``train.py``
    store their ``args`` that way).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {path!r}. {where_to_get}".rstrip())
    try:
        if not weights_only:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise torch_load_error(path, e, where_to_get) from e
