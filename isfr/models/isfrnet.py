"""The ISFRNet pipeline (section 3, Fig. 1): pSp-StyleGAN -> IFR -> SFR, with the ablation switches
of Table 1 (section 4.2) and one-file save / load.

Data flow (our reading of Figs. 1, 3 and 5; each step is a composite, known pixels pasted back):

    I_I  = I_gt * (1 - M)                                   masked input
    I_c  = pSp(I_I [, M])                                   stage 1 (raw generator output, pooled)
    I_c' = I_c * M + I_I * (1 - M)                          IFR input (with M as a 4th channel)
    I_IFR = IFR(I_c', M);  I_IFR' = I_IFR * M + I_I * (1 - M)
    I_out = SFR(E_I: I_I, E_C: I_IFR', M);  final = I_out * M + I_I * (1 - M)

Ablations (Table 1): ``use_sfr=False`` is pSp+IFR (section 4.2.1); ``use_ifr=False`` is pSp+SFR,
E_C then reads the stage-1 composite (4.2.2); ``sfr.weighting="none"`` is "without weighting" (4.2.3).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from .checkpoint_utils import check_state_dict, load_torch_file
from .ifr import IFRConfig, IFRGenerator
from .sfr import SFRConfig, build_sfr
from .stage1 import PSPConfig, StyleGANConfig, build_stage1

FORMAT = "isfrnet-v1"


@dataclass
class ISFRNetConfig:
    resolution: int = 256  # section 4.1
    stylegan: StyleGANConfig = field(default_factory=StyleGANConfig)
    psp: PSPConfig = field(default_factory=PSPConfig)
    ifr: IFRConfig = field(default_factory=IFRConfig)
    sfr: SFRConfig = field(default_factory=SFRConfig)
    use_ifr: bool = True  # False: the pSp+SFR ablation (section 4.2.2)
    use_sfr: bool = True  # False: the pSp+IFR ablation (section 4.2.1)

    @classmethod
    def from_preset(cls, preset: Any, **switches: bool) -> "ISFRNetConfig":
        return cls(preset.data.resolution, preset.stylegan, preset.psp, preset.ifr, preset.sfr, **switches)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ISFRNetConfig":
        def sub(kind, value):
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items() if k in names})

        return cls(
            d["resolution"], sub(StyleGANConfig, d["stylegan"]), sub(PSPConfig, d["psp"]),
            sub(IFRConfig, d["ifr"]), sub(SFRConfig, d["sfr"]), d.get("use_ifr", True), d.get("use_sfr", True),
        )


def composite(pred: Tensor, known: Tensor, mask: Tensor) -> Tensor:
    """Known pixels pasted back: ``pred`` inside the hole (M = 1), ``known`` outside."""
    return pred * mask + known * (1 - mask)


def to_stored(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype`` for a smaller file, unless a value of ``t`` lies beyond ``dtype``'s finite range (a
    BatchNorm running variance of 4e5 would become inf in fp16 and zero its channel): such a tensor, and any
    non-floating one, is kept as it is."""
    if not t.is_floating_point() or t.dtype == dtype:
        return t
    fits = t.numel() == 0 or bool(t.abs().max() <= torch.finfo(dtype).max)
    return t.to(dtype) if fits else t


class ISFRNet(nn.Module):
    """Three-stage inpainting network. ``forward`` returns every intermediate image (Fig. 2)."""

    def __init__(self, cfg: ISFRNetConfig, root: Path | None = None):
        super().__init__()
        if not (cfg.use_ifr or cfg.use_sfr):
            raise ValueError("ISFRNet needs at least one refinement stage (use_ifr or use_sfr)")
        self.cfg = cfg
        self.stage1 = build_stage1(cfg.stylegan, cfg.psp, cfg.resolution, root=root)
        self.ifr = IFRGenerator(cfg.ifr) if cfg.use_ifr else None
        self.sfr = build_sfr(cfg.sfr) if cfg.use_sfr else None

    def check_input(self, image: Tensor, mask: Tensor) -> None:
        r = self.cfg.resolution
        if image.dim() != 4 or image.shape[1:] != (3, r, r):
            raise ValueError(f"ISFRNet was built for images of shape (B, 3, {r}, {r}); got {tuple(image.shape)}. "
                             f"Resize the image to {r}x{r} or build the model with resolution={image.shape[-1]}.")
        if mask.shape != (image.shape[0], 1, r, r):
            raise ValueError(f"mask must have shape ({image.shape[0]}, 1, {r}, {r}) to match the image; got {tuple(mask.shape)}")

    def run_stage1(self, masked: Tensor, mask: Tensor) -> Tensor:
        x = torch.cat([masked, mask], 1) if self.stage1.encoder.input_nc == 4 else masked
        return self.stage1(x)

    def e_c_input(self, masked: Tensor, mask: Tensor, i_c: Tensor) -> tuple[Tensor, Tensor | None]:
        """What E_C of SFR reads (section 3.3), and IFR's raw output (None without IFR).

        IFR reads I_c with the known pixels pasted back; E_C reads IFR's output composited the same
        way, or the composited I_c itself when there is no IFR (the pSp+SFR ablation, 4.2.2)."""
        x = composite(i_c, masked, mask)
        if self.ifr is None:
            return x, None
        ifr = self.ifr(x, mask)
        return composite(ifr, masked, mask), ifr

    def refine(self, masked: Tensor, mask: Tensor, i_c: Tensor) -> dict[str, Tensor]:
        """Stages 2 and 3 given the stage-1 image (used by training, where stage 1 is frozen)."""
        out: dict[str, Tensor] = {}
        e_c_input, ifr = self.e_c_input(masked, mask, i_c)
        if ifr is not None:
            out["ifr"], out["ifr_composite"] = ifr, e_c_input
        if self.sfr is not None:
            out["sfr"] = self.sfr(masked, e_c_input, mask)
        out["output"] = out["sfr"] if self.sfr is not None else out["ifr"]
        out["composite"] = composite(out["output"], masked, mask)
        return out

    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """``image``: (B, 3, R, R) in [-1, 1] (hole pixels are ignored); ``mask``: (B, 1, R, R), 1 = hole.

        Returns ``input`` (I_I), ``stage1`` (I_c), ``ifr`` / ``sfr`` (raw outputs of the stages that
        run), ``ifr_composite`` (what E_C reads), ``output`` (last stage, raw) and ``composite``
        (known pixels pasted back). An empty
        mask returns the input unchanged in ``composite``; an all-hole mask is legal.
        """
        self.check_input(image, mask)
        masked = image * (1 - mask)
        i_c = self.run_stage1(masked, mask)
        return {"input": masked, "stage1": i_c, **self.refine(masked, mask, i_c)}

    # ---- one file for the whole pipeline -------------------------------------------------------
    def save(self, path: str | Path, stored_dtype: torch.dtype | None = None, **extra: Any) -> None:
        """Write config, state dict and the git commit to ``path`` atomically; ``stored_dtype`` (e.g.
        ``torch.float16``, half the file) stores the floating tensors in that type where they fit
        (:func:`to_stored`), cast back on load."""
        from isfr.core.utils import atomic_torch_save, git_commit

        state = self.state_dict()
        if stored_dtype is not None:
            state = {k: to_stored(v, stored_dtype) for k, v in state.items()}
            extra["stored_dtype"] = str(stored_dtype).removeprefix("torch.")
        payload = {"format": FORMAT, "config": dataclasses.asdict(self.cfg), "commit": git_commit(),
                   "state_dict": state, **extra}
        atomic_torch_save(payload, path)

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "ISFRNet":
        ckpt = load_torch_file(path, "Train one with notebooks 02-04 (or `isfr train`), or check the path.")
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise ValueError(f"{path} is not an ISFRNet checkpoint (format {FORMAT!r}); "
                             "stage checkpoints from runs/<preset>/ are turned into one by isfr.training.export_pipeline")
        cfg = ISFRNetConfig.from_dict(ckpt["config"])
        cfg.psp.checkpoint = None  # the weights come from this file, not from the pSp release
        model = cls(cfg)
        check_state_dict(model, ckpt["state_dict"], str(path), "the file records its own config; was it edited?")
        model.load_state_dict(ckpt["state_dict"])  # a file stored in fp16 is cast to the model's fp32 here
        model.commit = ckpt.get("commit", "unknown")
        # how its training faces were framed (isfr.data preprocess), for aligning a user's photo the same way
        model.preprocess = ((ckpt.get("preset_config") or {}).get("data") or {}).get("preprocess", "center_crop")
        return model.to(map_location).eval()
