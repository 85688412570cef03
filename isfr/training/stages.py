"""What differs per stage: models, losses, optimisers (the loop itself is :mod:`isfr.training.loop`).

Stages are trained in sequence, earlier stages frozen (section 3):

- ``StyleGANStage``: a small StyleGAN2 generator, only when no pretrained one is given (ours:
  non-saturating logistic loss, lazy R1, EMA generator; no path-length regulariser, no mixing);
- ``PSPStage``: the pSp encoder on masked faces, generator frozen (pSp losses: L2 + perceptual +
  w-norm; section 3.1 uses a pretrained pSp as is, which is the paper preset);
- ``IFRStage``: IFR + D1 with eq. 5 (section 3.4), stage 1 frozen;
- ``SFRStage``: SFR + D2 with eq. 10, stages 1 and 2 frozen.

Adam with lr 1e-4 and default betas for IFR, SFR and their discriminators (section 4.1).
Each ``validate`` returns ``val_score`` = PSNR (dB) of the composite on fixed val pairs, higher is
better, so ``best.pt`` is chosen on the val split.
"""
from __future__ import annotations

import functools

from typing import Iterable, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from isfr import losses as L
from isfr.models.isfrnet import ISFRNet, composite
from isfr.models.stylegan2 import Discriminator, Generator

from isfr.training.context import StepContext


def _psnr(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-image PSNR (dB) of [-1, 1] images on the [0, 1] scale (a quick val score, not the metric)."""
    mse = ((pred.float().clamp(-1, 1) - gt.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=betas)


def _freeze(m: nn.Module) -> nn.Module:
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _set_requires_grad(m: nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


class _Validated:
    """Shared ``validate``: PSNR of the stage's composite over the val batches. Also moves the
    frozen parts a stage uses but does not checkpoint (earlier stages, VGG) to the loop's device."""

    val_mode = "max"
    _device: torch.device | None = None

    def frozen(self) -> list[nn.Module]:
        return []

    def to_device(self, device: torch.device) -> None:
        if self._device != device:
            for m in self.frozen():
                m.to(device)
            self._device = device

    def predict(self, batch: Mapping[str, Tensor], ctx: StepContext) -> Tensor:
        """The stage's output on a val batch, with the same precision per part as ``train_step``."""
        raise NotImplementedError

    def validate(self, batches: Iterable[Mapping[str, Tensor]], ctx: StepContext) -> dict[str, float]:
        scores = []
        self.to_device(ctx.device)
        for b in batches:
            image, mask = b["image"].to(ctx.device), b["mask"].to(ctx.device)
            pred = self.predict({"image": image, "mask": mask}, ctx)
            scores.append(_psnr(composite(pred.float(), image, mask), image))
        return {"val_score": torch.cat(scores).mean().item()}


# ---------------------------------------------------------------------------- stage 1a: StyleGAN2


class StyleGANStage:
    """Train a StyleGAN2 generator on unmasked faces (only when no pretrained one exists)."""

    name = "stylegan"

    def __init__(self, generator: Generator, discriminator: Discriminator, lr: float = 2e-3,
                 r1_gamma: float = 1.0, r1_every: int = 16, ema_beta: float = 0.999):
        self.g, self.d = generator, discriminator
        self.g_ema = _freeze(Generator(generator.size, generator.style_dim, generator.n_mlp,
                                       channels=generator.channels))
        self.g_ema.load_state_dict(generator.state_dict())
        self.r1_gamma, self.r1_every, self.ema_beta = r1_gamma, r1_every, ema_beta
        # StyleGAN2's lazy-regularisation correction of Adam's lr and betas
        c = r1_every / (r1_every + 1)
        self._opt = {"g": torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.0, 0.99)),
                     "d": torch.optim.Adam(discriminator.parameters(), lr=lr * c, betas=(0.0, 0.99 ** c))}

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d, "g_ema": self.g_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def _sample(self, g: nn.Module, n: int, device: torch.device) -> Tensor:
        z = torch.randn(n, self.g.style_dim, device=device)
        return g([z])[0]

    def train_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        real = batch["image"].to(ctx.device)
        g, d = ctx.nets["g"], ctx.nets["d"]
        _set_requires_grad(self.g, False)
        _set_requires_grad(self.d, True)
        with ctx.autocast():
            with torch.no_grad():
                fake = self._sample(g, real.shape[0], ctx.device)
            d_loss = F.softplus(d(fake.detach())).mean() + F.softplus(-d(real)).mean()
        ctx.backward(d_loss, self._opt["d"])
        out = {"d": d_loss.detach()}
        if ctx.step % self.r1_every == 0:  # lazy R1 on reals, in fp32
            real_r = real.detach().requires_grad_(True)
            real_out = d(real_r)
            (grad,) = torch.autograd.grad(real_out.sum(), real_r, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            # "+ 0 * real_out": every D parameter joins the graph, so DDP's reducer completes
            ctx.backward(self.r1_gamma / 2 * r1 * self.r1_every + 0 * real_out.sum(), self._opt["d"])
            out["r1"] = r1.detach()
        _set_requires_grad(self.g, True)
        _set_requires_grad(self.d, False)
        with ctx.autocast():
            g_loss = F.softplus(-d(self._sample(g, real.shape[0], ctx.device))).mean()
        ctx.backward(g_loss, self._opt["g"])
        out["g"] = g_loss.detach()
        with torch.no_grad():
            for p_ema, p in zip(self.g_ema.parameters(), self.g.parameters()):
                p_ema.lerp_(p.detach(), 1 - self.ema_beta)
        return out


# ---------------------------------------------------------------------------- stage 1b: pSp encoder


class PSPStage(_Validated):
    """Train the pSp encoder of ``model.stage1`` on masked faces, the generator frozen."""

    name = "psp"

    def __init__(self, model: ISFRNet, vgg: nn.Module | None, lr: float = 1e-4, betas=(0.9, 0.999),
                 loss_cfg: L.PSPLossConfig | None = None):
        self.model, self.vgg, self.loss_cfg = model, vgg, loss_cfg or L.PSPLossConfig()
        self.arcface = None
        if self.loss_cfg.id_lambda > 0:  # pSp's ID loss; the file is required (load_arcface names it)
            from isfr.models.arcface import load_arcface

            if not self.loss_cfg.arcface_path:
                raise ValueError("PSPLossConfig.id_lambda > 0 needs arcface_path (pSp's model_ir_se50.pth); "
                                 "set psp_loss.arcface_path or psp_loss.id_lambda=0")
            self.arcface = load_arcface(self.loss_cfg.arcface_path)
        _freeze(model.stage1.decoder)
        self._opt = {"encoder": _adam(model.stage1.encoder.parameters(), lr, betas)}

    def modules(self) -> dict[str, nn.Module]:
        return {"psp": self.model.stage1}  # encoder (trained) + generator (frozen) + latent_avg

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def frozen(self) -> list[nn.Module]:
        return [m for m in (self.vgg, self.arcface) if m is not None]

    def _id_fn(self):
        from isfr.models.arcface import identity_loss

        return None if self.arcface is None else functools.partial(identity_loss, self.arcface)

    def predict(self, batch, ctx) -> Tensor:
        image, mask = batch["image"], batch["mask"]
        with ctx.autocast():
            return self.model.run_stage1(image * (1 - mask), mask)

    def train_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        self.to_device(ctx.device)
        image, mask = batch["image"].to(ctx.device), batch["mask"].to(ctx.device)
        masked = image * (1 - mask)
        x = torch.cat([masked, mask], 1) if self.model.stage1.encoder.input_nc == 4 else masked
        with ctx.autocast():
            y_hat, codes = ctx.nets["psp"](x, return_latents=True)  # W+ codes, latent_avg included
            loss, terms = L.psp_encoder_loss(y_hat.float(), image, codes.float(), latent_avg=self.model.stage1.latent_avg,
                                             vgg=self.vgg, id_fn=self._id_fn(), cfg=self.loss_cfg)
        ctx.backward(loss, self._opt["encoder"])
        return {"loss": loss.detach(), **terms}


# ---------------------------------------------------------------------------- stages 2 and 3


class _GANStage(_Validated):
    """A generator judged by a patch discriminator (none when its loss has no adversarial term);
    stage 1 (and IFR for SFR) frozen."""

    gen_key = ""
    d_key = ""

    def __init__(self, model: ISFRNet | None, disc: nn.Module | None, loss_cfg: L.LossConfig, lr: float, betas,
                 generator: nn.Module | None = None):
        self.model, self.disc, self.loss_cfg = model, disc, loss_cfg
        self.gen = generator if generator is not None else getattr(model, self.gen_key)
        if model is not None:
            _freeze(model.stage1)
        self._opt = {"g": _adam(self.gen.parameters(), lr, betas)}
        if disc is not None:
            self._opt["d"] = _adam(disc.parameters(), lr, betas)

    def modules(self) -> dict[str, nn.Module]:
        return {self.gen_key: self.gen, **({self.d_key: self.disc} if self.disc is not None else {})}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def frozen(self) -> list[nn.Module]:
        return [self.model.stage1]

    def frozen_inputs(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        masked = image * (1 - mask)
        with torch.no_grad():
            return {"masked": masked, "i_c": self.model.run_stage1(masked, mask).float()}

    def d_step(self, real: Tensor, fake: Tensor, ctx: StepContext) -> Tensor:
        d = ctx.nets[self.d_key]
        _set_requires_grad(self.disc, True)
        with ctx.autocast():
            loss = L.discriminator_loss(L.d_logits(d, real), L.d_logits(d, fake.detach()))  # eq. 3
        ctx.backward(loss, self._opt["d"])
        _set_requires_grad(self.disc, False)
        return loss.detach()


class IFRStage(_GANStage):
    """IFR + D1, eq. 5. ``mask_constraint=False`` drops the M of eq. 2 (the pSp+IFR ablation, 4.2.1)."""

    name, gen_key, d_key = "ifr", "ifr", "d1"

    def __init__(self, model: ISFRNet, d1: nn.Module, loss_cfg: L.LossConfig | None = None, lr: float = 1e-4,
                 betas=(0.9, 0.999), mask_constraint: bool = True):
        super().__init__(model, d1, loss_cfg or L.LossConfig(), lr, betas)
        self.mask_constraint = mask_constraint

    def predict(self, batch, ctx) -> Tensor:
        image, mask = batch["image"], batch["mask"]
        f = self.frozen_inputs(image, mask)  # fp32, as in train_step
        with ctx.autocast():
            return ctx.nets["ifr"](composite(f["i_c"], f["masked"], mask), mask)

    def train_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        self.to_device(ctx.device)
        image, mask = batch["image"].to(ctx.device), batch["mask"].to(ctx.device)
        f = self.frozen_inputs(image, mask)
        with ctx.autocast():
            out = ctx.nets["ifr"](composite(f["i_c"], f["masked"], mask), mask)
        d_loss = self.d_step(image, out, ctx)
        with ctx.autocast():
            rec_mask = mask if self.mask_constraint else torch.ones_like(mask)
            loss, terms = L.ifr_generator_loss(out.float(), image, rec_mask, ctx.nets["d1"], self.loss_cfg)
        ctx.backward(loss, self._opt["g"])
        return {"loss": loss.detach(), "d1": d_loss, **terms}


class SFRStage(_GANStage):
    """SFR + D2, eq. 10 (VGG-16 features for eqs. 7-8; say so when they are random).

    Also trains any refinement generator with any subset of eq. 10's terms (the learned U-Net
    baseline and the rungs of :mod:`isfr.experiments.ladder`): ``generator`` replaces ``model.sfr`` and is stored
    under ``key``. ``guess`` is what its second encoder reads: ``"ifr"`` the IFR output composited
    (the stage-1 output without IFR; the paper), ``"masked"`` I_I again, ``"none"`` nothing (a
    one-encoder generator reading (I_I, M)); only ``"ifr"`` runs stages 1-2 (``model`` may be None
    otherwise). D2 and VGG are used only when the loss weights them (``d2`` / ``vgg`` may be None).
    ``guess_dropout`` (ours, ``guess="ifr"`` only): the probability that a training sample's E_C reads I_I
    instead of the IFR output, so that the SFR cannot learn to copy a poor guess (validation and inference
    always read the guess).
    """

    name, gen_key, d_key = "sfr", "sfr", "d2"

    def __init__(self, model: ISFRNet, d2: nn.Module | None, vgg: nn.Module | None, loss_cfg: L.LossConfig | None = None,
                 lr: float = 1e-4, betas=(0.9, 0.999), generator: nn.Module | None = None, key: str = "sfr",
                 guess: Literal["ifr", "masked", "none"] = "ifr", guess_dropout: float = 0.0):
        loss_cfg = loss_cfg or L.LossConfig()
        self.name = self.gen_key = key
        super().__init__(model, d2 if loss_cfg.uses_d2 else None, loss_cfg, lr, betas, generator)
        if guess not in ("ifr", "masked", "none"):
            raise ValueError(f"SFRStage: guess must be 'ifr', 'masked' or 'none', got {guess!r}")
        if guess == "ifr" and model is None:
            raise ValueError("SFRStage: guess='ifr' reads stages 1-2: pass the model holding them")
        if not 0 <= guess_dropout < 1 or (guess_dropout and guess != "ifr"):
            raise ValueError(f"SFRStage: guess_dropout must be in [0, 1) and needs guess='ifr', got {guess_dropout!r} "
                             f"with guess={guess!r}")
        self.vgg, self.guess, self.guess_dropout = (vgg if loss_cfg.uses_vgg else None), guess, guess_dropout
        if model is not None and model.ifr is not None:
            _freeze(model.ifr)

    def frozen(self) -> list[nn.Module]:
        m = self.model
        upstream = [m.stage1] + ([m.ifr] if m.ifr is not None else []) if self.guess == "ifr" else []
        return upstream + ([self.vgg] if self.vgg is not None else [])

    def _inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        """The generator's inputs: (I_I, [E_C's input,] M); E_C reads the IFR output (or the stage-1 output
        without IFR), composited, computed in fp32 under no_grad (stages 1-2 are frozen)."""
        if self.guess != "ifr":
            masked = image * (1 - mask)
            return (masked, mask) if self.guess == "none" else (masked, masked, mask)
        f = self.frozen_inputs(image, mask)
        with torch.no_grad():
            e_c = self.model.e_c_input(f["masked"], mask, f["i_c"])[0].float()
        return f["masked"], e_c, mask

    def predict(self, batch, ctx) -> Tensor:
        inputs = self._inputs(batch["image"], batch["mask"])
        with ctx.autocast():
            return ctx.nets[self.gen_key](*inputs)

    def train_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        self.to_device(ctx.device)
        image, mask = batch["image"].to(ctx.device), batch["mask"].to(ctx.device)
        if self.guess_dropout:  # per sample, from a generator seeded by the step (resumes exactly)
            u = torch.rand(len(image), generator=torch.Generator().manual_seed(7_919 * ctx.step + 1))
            keep = (u >= self.guess_dropout).to(ctx.device)
            masked = image * (1 - mask)
            e_c = masked.clone()  # stages 1-2 run only on the samples that read the guess (eval mode: per sample)
            if keep.any():
                e_c[keep] = self._inputs(image[keep], mask[keep])[1]
            inputs = (masked, e_c, mask)
        else:
            inputs = self._inputs(image, mask)
        with ctx.autocast():
            out = ctx.nets[self.gen_key](*inputs)
        d_loss = self.d_step(image, out, ctx) if self.disc is not None else None
        with ctx.autocast():
            loss, terms = L.sfr_generator_loss(out.float(), image, mask, ctx.nets.get(self.d_key), self.vgg,
                                               self.loss_cfg)
        ctx.backward(loss, self._opt["g"])
        return {"loss": loss.detach(), **({"d2": d_loss} if d_loss is not None else {}), **terms}
