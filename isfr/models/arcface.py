"""ArcFace IR-SE-50 face embedding, for pSp's identity loss (stage 1 encoder training, optional).

The network of ``model_ir_se50.pth`` (TreB1eN's InsightFace, shipped by pSp as an auxiliary model):
the IR-SE-50 trunk (:func:`isfr.models.psp.irse_trunk`) on 112x112 RGB faces in [-1, 1], then
``output_layer`` = BatchNorm2d(512) -> Dropout -> Flatten -> Linear(512*7*7, 512) -> BatchNorm1d(512),
and an L2 normalisation. The file is never downloaded here: :func:`load_arcface` says where to get it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isfr.models.pretrained import drop_standin_marker

from .checkpoint_utils import check_state_dict, load_torch_file
from .psp import IRSE50_WHERE, irse_trunk

ARCFACE_FILE = "model_ir_se50.pth"


class ArcFace(nn.Module):
    """IR-SE-50 ArcFace embedding: (B, 3, 112, 112) in [-1, 1] -> (B, 512), unit norm."""

    def __init__(self, drop_ratio: float = 0.6):
        super().__init__()
        self.input_layer, self.body, _ = irse_trunk(50, 3, 1.0, se=True)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (3, 112, 112):
            raise ValueError(f"ArcFace expects (B, 3, 112, 112) faces, got {tuple(x.shape)}")
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def load_arcface(path: str | Path) -> ArcFace:
    """:class:`ArcFace` with ``model_ir_se50.pth`` loaded (strict), frozen, in eval mode."""
    sd = load_torch_file(path, f"{IRSE50_WHERE} and pass its path (PSPLossConfig.arcface_path).")
    sd = {k.removeprefix("module."): v for k, v in drop_standin_marker(sd, path).items()}
    net = ArcFace()
    check_state_dict(net, sd, str(path), f"expected TreB1eN's IR-SE-50 ArcFace ({ARCFACE_FILE}, as pSp ships it)")
    net.load_state_dict(sd)
    return net.eval().requires_grad_(False)


def face_crop_112(x: Tensor) -> Tensor:
    """pSp's ID-loss input: the image at 256 px (resized if needed), rows 35:223 and columns 32:220
    (the face of an FFHQ-aligned frame), average-pooled to 112x112."""
    if x.shape[-1] != 256 or x.shape[-2] != 256:
        x = (F.adaptive_avg_pool2d(x, (256, 256)) if min(x.shape[-2:]) > 256
             else F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False))
    return F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], (112, 112))


def identity_loss(net: ArcFace, y_hat: Tensor, y: Tensor) -> Tensor:
    """pSp's L_ID: mean over the batch of ``1 - <ArcFace(y_hat), ArcFace(y)>`` (unit embeddings; the
    target's embedding carries no gradient)."""
    with torch.no_grad():
        target = net(face_crop_112(y))
    return (1 - (net(face_crop_112(y_hat)) * target).sum(1)).mean()
