"""Losses of ISFRNet section 3.4 (eqs. 2-10), plus the pSp encoder loss.

Conventions (docs/conventions.md): images ``(B, 3, H, W)`` in [-1, 1]; mask ``(B, 1, H, W)``,
1 = hole (the paper's ``M``). Discriminators ``D1`` (IFR) and ``D2`` (SFR) end in a sigmoid
(sec. 3.2); the totals take the discriminator and use its ``.logits(x)`` (pre-sigmoid scores,
``isfr.models.discriminators``) if it has one, else call it and treat the result as logits; every
log D / log(1 - D) is computed with numerically stable BCE-with-logits.

Printed slips in section 3.4 and our reading (the one place this list is kept)
------------------------------------------------------------------------------
1. Eqs. 3-4 write the fake as ``I_c`` ("an input image of IFR", i.e. the pSp output).
   A GAN loss on the generator's *input* trains nothing; the fake is the generator's
   output (``I_o`` for IFR, ``I_output`` for SFR).
2. Eq. 3 is written as the quantity D maximises. We return the minimisation form
   ``-[log D(I_gt) + log(1 - D(fake))]`` (standard BCE), which has the same optimum.
3. Eq. 4 is the saturating generator loss ``log(1 - D(G))``. Default is the non-saturating
   ``-log D(G)`` (Goodfellow et al. 2014; what the PConv / EdgeConnect / LGNet code uses);
   the literal form is ``LossConfig.gan_generator_form="saturating"``.
4. Eq. 10 names ``L_adv^{D1}``, but SFR is judged by its own discriminator ``D2`` (sec. 3.2,
   Fig. 4). :func:`sfr_generator_loss` takes ``d2``.
5. Eq. 8 puts ``K_p`` on the output Gram matrix only and divides by ``C_p C_p``. We read it as in
   Liu et al. 2018 (partial convolutions): both Gram matrices are normalised by
   ``K_p = 1/(C_p H_p W_p)`` and the L1 norm over the ``C_p x C_p`` entries is divided by
   ``C_p C_p`` (i.e. the mean over Gram entries, also over the batch) -- no further division.
6. Eq. 10's printed weights are perceptual 120, style 0.05. The recipe they come from
   (PConv / LGNet: perceptual 0.05, style 120) suggests they are swapped.
   ``LossConfig(style_perceptual_weights="lgnet")`` swaps them; default keeps the printed values.
7. Norms ``||.||_1`` in eqs. 2 and 6 are read as means (see :func:`masked_l1_loss` for eq. 2's
   two choices, ``LossConfig.masked_l1_norm``); eq. 7's ``N_Psi`` is the element count of
   the activation (incl. batch), so each term is an element mean.
8. Eq. 9 ("total variance") is total variation over neighbour pairs both inside ``R``, the hole
   dilated by one pixel (3x3 max-pool), summed and divided by the element count of ``I_out``.
9. Eq. 10 writes ``L_per`` / ``L_sty`` for eqs. 7-8's ``L_perceptual`` / ``L_style``.
10. Eqs. 6-10 read ``I_output``, the raw output, so the known pixels (pasted back before scoring)
    also carry gradient. Default as printed; ``LossConfig.sfr_loss_on="composite"`` computes every
    term on ``I_output * M + I_gt * (1 - M)`` instead (only the hole is learned).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Discriminator = Callable[[Tensor], Tensor]  # image in [-1, 1] -> logits, or a module with .logits()
FeatureExtractor = Callable[[Tensor], Sequence[Tensor]]  # e.g. isfr.models.backbones.VGG16Features


@dataclass
class LossConfig:
    """Loss weights of eqs. 5 and 10 (paper values by default) and reading options."""

    lambda1_rec: float = 1.0  # eq. 5, L_rec^IFR
    lambda2_adv: float = 0.1  # eq. 5, L_adv^D1
    lambda3_rec: float = 50.0  # eq. 10, L_rec^SFR
    lambda4_perceptual: float = 120.0  # eq. 10, L_per (printed value; see "lgnet")
    lambda5_style: float = 0.05  # eq. 10, L_sty (printed value; see "lgnet")
    lambda6_tv: float = 0.1  # eq. 10, L_tv
    lambda7_adv: float = 1.0  # eq. 10, L_adv (D2, slip 4)
    style_perceptual_weights: Literal["paper", "lgnet"] = "paper"  # "lgnet": perceptual 0.05, style 120
    gan_generator_form: Literal["non_saturating", "saturating"] = "non_saturating"  # eq. 4 (slip 3)
    masked_l1_norm: Literal["all", "hole"] = "all"  # eq. 2 normalisation
    sfr_loss_on: Literal["output", "composite"] = "output"  # eqs. 6-10 read I_output as printed; "composite":
    # out * M + I_gt * (1 - M), so only hole pixels carry gradient (what is scored; ours, an option)
    vgg_precision: Literal["fp32", "autocast"] = "fp32"  # ours: eqs. 7-8's VGG features in fp32 even under
    # bf16/fp16 autocast (Gram matrices of low-precision features are noise); "autocast": as the rest of the step

    def __post_init__(self) -> None:
        if self.style_perceptual_weights not in ("paper", "lgnet"):
            raise ValueError(f"style_perceptual_weights must be 'paper' or 'lgnet', "
                             f"got {self.style_perceptual_weights!r}")
        if self.gan_generator_form not in ("non_saturating", "saturating"):
            raise ValueError(f"gan_generator_form must be 'non_saturating' or 'saturating', "
                             f"got {self.gan_generator_form!r}")
        if self.masked_l1_norm not in ("all", "hole"):
            raise ValueError(f"masked_l1_norm must be 'all' or 'hole', got {self.masked_l1_norm!r}")
        if self.sfr_loss_on not in ("output", "composite"):
            raise ValueError(f"sfr_loss_on must be 'output' or 'composite', got {self.sfr_loss_on!r}")
        if self.vgg_precision not in ("fp32", "autocast"):
            raise ValueError(f"vgg_precision must be 'fp32' or 'autocast', got {self.vgg_precision!r}")

    @property
    def uses_vgg(self) -> bool:
        """Whether eq. 10 needs VGG features (its perceptual or style term has a non-zero weight)."""
        return self.perceptual_weight != 0 or self.style_weight != 0

    @property
    def uses_d2(self) -> bool:
        """Whether eq. 10 has an adversarial term (D2 is trained only then)."""
        return self.lambda7_adv != 0

    @property
    def perceptual_weight(self) -> float:
        """lambda4 as used: the printed value, or the style weight under "lgnet"."""
        return self.lambda5_style if self.style_perceptual_weights == "lgnet" else self.lambda4_perceptual

    @property
    def style_weight(self) -> float:
        """lambda5 as used: the printed value, or the perceptual weight under "lgnet"."""
        return self.lambda4_perceptual if self.style_perceptual_weights == "lgnet" else self.lambda5_style


# ---------------------------------------------------------------- IFR (eqs. 2-5)
def masked_l1_loss(out: Tensor, gt: Tensor, mask: Tensor, norm: Literal["all", "hole"] = "all") -> Tensor:
    """Eq. 2: ``||(I_o - I_gt) * M||_1``, normalised.

    ``norm="all"`` (default): divided by the number of elements of ``I_o`` (B*3*H*W), the
    ``L_hole`` of partial convolutions; its scale grows with the hole ratio.
    ``norm="hole"``: divided by the number of masked elements (3 * sum(M)); mean error per hole
    pixel, independent of the hole ratio. The two differ by the hole ratio (0.1-0.6), i.e.
    they change the balance against the adversarial term materially. No hole -> 0.
    """
    diff = (out - gt).abs() * mask
    if norm == "all":
        return diff.mean()
    if norm == "hole":
        n = mask.expand_as(diff).sum()
        return diff.sum() / n.clamp_min(1.0)
    raise ValueError(f"norm must be 'all' or 'hole', got {norm!r}")


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Eq. 3 in minimisation form: ``-E[log D(I_gt)] - E[log(1 - D(fake))]``.

    ``real_logits`` = ``d_logits(D, I_gt)``, ``fake_logits`` = ``d_logits(D, output.detach())``:
    the fake is the generator's output, not ``I_c`` (slip 1). Means over all logits (patch maps).
    """
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_adversarial_loss(
    fake_logits: Tensor, form: Literal["non_saturating", "saturating"] = "non_saturating"
) -> Tensor:
    """Eq. 4 for the generator, ``fake_logits`` = D(generator output) (not detached).

    ``"saturating"``: the literal ``E[log(1 - D(G))]`` = ``-softplus(logit)``.
    ``"non_saturating"`` (default): ``-E[log D(G)]`` = ``softplus(-logit)`` (slip 3).
    """
    if form == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if form == "saturating":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"form must be 'non_saturating' or 'saturating', got {form!r}")


def d_logits(d: Discriminator, x: Tensor) -> Tensor:
    """Pre-sigmoid scores of ``x``: ``d(x, return_logits=True)`` when ``d`` (or the module inside a
    DistributedDataParallel wrapper) has a ``logits`` method, else ``d(x)``. Calling through
    ``forward`` keeps DDP's gradient synchronisation."""
    inner = getattr(d, "module", d)
    return d(x, return_logits=True) if callable(getattr(inner, "logits", None)) else d(x)


def ifr_generator_loss(
    out: Tensor, gt: Tensor, mask: Tensor, d1: Discriminator, cfg: LossConfig | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 5: ``lambda1 L_rec^IFR + lambda2 L_adv^D1``; D1 sees the IFR output ``out``.

    Returns ``(total, {"rec": ..., "adv": ...})`` (unweighted terms, detached).
    Gradients also reach ``d1``'s parameters: zero them before its own step.
    """
    cfg = cfg or LossConfig()
    rec = masked_l1_loss(out, gt, mask, cfg.masked_l1_norm)
    adv = generator_adversarial_loss(d_logits(d1, out), cfg.gan_generator_form)
    total = cfg.lambda1_rec * rec + cfg.lambda2_adv * adv
    return total, {"rec": rec.detach(), "adv": adv.detach()}


# ---------------------------------------------------------------- SFR (eqs. 6-10)
def l1_loss(out: Tensor, gt: Tensor) -> Tensor:
    """Eq. 6: ``||I_output - I_gt||_1`` as the mean over all elements (no mask)."""
    return (out - gt).abs().mean()


def perceptual_loss(feats_out: Sequence[Tensor], feats_gt: Sequence[Tensor]) -> Tensor:
    """Eq. 7: ``sum_p ||Psi_p(out) - Psi_p(gt)||_1 / N_{Psi_p}`` (element mean per layer)."""
    _check_same_len(feats_out, feats_gt)
    return torch.stack([(a - b).abs().mean() for a, b in zip(feats_out, feats_gt)]).sum()


def gram_matrix(feat: Tensor) -> Tensor:
    """``K_p Psi Psi^T`` with ``K_p = 1/(C_p H_p W_p)`` (eq. 8): ``(B, C, H, W) -> (B, C, C)``."""
    b, c, h, w = feat.shape
    with torch.autocast(feat.device.type, enabled=False):  # fp16 sums of ~1e4 products overflow
        f = feat.float().reshape(b, c, h * w) / (c * h * w) ** 0.5
        return torch.bmm(f, f.transpose(1, 2))


def style_loss(feats_out: Sequence[Tensor], feats_gt: Sequence[Tensor]) -> Tensor:
    """Eq. 8 (slip 5): ``sum_p ||G_p(out) - G_p(gt)||_1 / (C_p C_p)``, ``G_p`` from :func:`gram_matrix`.

    The division by ``C_p C_p`` makes each term the mean over the Gram entries (and batch).
    """
    _check_same_len(feats_out, feats_gt)
    return torch.stack([(gram_matrix(a) - gram_matrix(b)).abs().mean()
                        for a, b in zip(feats_out, feats_gt)]).sum()


def dilate_mask(mask: Tensor) -> Tensor:
    """The region R of eq. 9: the hole dilated by one pixel (3x3 max-pool, stride 1)."""
    return F.max_pool2d(mask, kernel_size=3, stride=1, padding=1)


def tv_loss(out: Tensor, mask: Tensor) -> Tensor:
    """Eq. 9: total variation over neighbour pairs with both pixels in R = :func:`dilate_mask`.

    ``sum |I[i,j+1]-I[i,j]| + sum |I[i+1,j]-I[i,j]|`` over such pairs and channels, divided by
    ``N_{I_out}`` = B*C*H*W. No hole -> R empty -> 0.
    """
    r = dilate_mask(mask)
    pair_h = r[..., :, 1:] * r[..., :, :-1]
    pair_v = r[..., 1:, :] * r[..., :-1, :]
    tv_h = ((out[..., :, 1:] - out[..., :, :-1]).abs() * pair_h).sum()
    tv_v = ((out[..., 1:, :] - out[..., :-1, :]).abs() * pair_v).sum()
    return (tv_h + tv_v) / out.numel()


def sfr_generator_loss(
    out: Tensor,
    gt: Tensor,
    mask: Tensor,
    d2: Discriminator | None,
    vgg: FeatureExtractor | None,
    cfg: LossConfig | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 10: ``l3 L_rec + l4 L_per + l5 L_sty + l6 L_tv + l7 L_adv^{D2}`` (slip 4: D2).

    ``vgg``: e.g. :func:`isfr.models.backbones.load_vgg16_features` (say "random VGG features" in every
    output when its ``random_features`` is True), run in fp32 unless ``cfg.vgg_precision="autocast"``.
    A term whose weight is 0 is not computed (``vgg`` / ``d2`` may then be None). Returns
    ``(total, terms)``; ``terms`` are the unweighted, detached terms computed, of
    ``rec, perceptual, style, tv, adv``.
    """
    cfg = cfg or LossConfig()
    if cfg.sfr_loss_on == "composite":
        out = out * mask + gt * (1 - mask)
    weights = {"rec": cfg.lambda3_rec, "perceptual": cfg.perceptual_weight, "style": cfg.style_weight,
               "tv": cfg.lambda6_tv, "adv": cfg.lambda7_adv}
    terms = {"rec": l1_loss(out, gt)}
    if cfg.uses_vgg:
        if vgg is None:
            raise ValueError("sfr_generator_loss: the perceptual / style terms need vgg features")
        low = cfg.vgg_precision == "autocast"
        with nullcontext() if low else torch.autocast(out.device.type, enabled=False):
            f_out = vgg(out if low else out.float())
            with torch.no_grad():
                f_gt = vgg(gt if low else gt.float())
        if weights["perceptual"]:
            terms["perceptual"] = perceptual_loss(f_out, f_gt)
        if weights["style"]:
            terms["style"] = style_loss(f_out, f_gt)
    if weights["tv"]:
        terms["tv"] = tv_loss(out, mask)
    if cfg.uses_d2:
        if d2 is None:
            raise ValueError("sfr_generator_loss: lambda7_adv > 0 needs the discriminator d2")
        terms["adv"] = generator_adversarial_loss(d_logits(d2, out), cfg.gan_generator_form)
    total = torch.stack([weights[k] * v.float() for k, v in terms.items()]).sum()
    return total, {k: v.detach() for k, v in terms.items()}


def _check_same_len(a: Sequence[Tensor], b: Sequence[Tensor]) -> None:
    if len(a) != len(b):
        raise ValueError(f"feature lists differ in length: {len(a)} vs {len(b)}")


# ---------------------------------------------------------------- pSp encoder (stage 1)
@dataclass
class PSPLossConfig:
    """pSp (Richardson et al. 2021, eq. 1 there) weights, from pSp's super-resolution recipe."""

    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8  # LPIPS if a model is given, else VGG perceptual (eq. 7 form)
    w_norm_lambda: float = 0.005  # ||w - w_avg||_2 over the W+ codes
    id_lambda: float = 0.0  # pSp uses 0.1; ours 0: needs ArcFace IR-SE50 weights (arcface_path), not shipped
    arcface_path: str | None = None  # pSp's model_ir_se50.pth; required when id_lambda > 0


def w_norm_loss(latents: Tensor, latent_avg: Tensor | None = None) -> Tensor:
    """pSp's L_reg: ``mean_b ||w_b - w_avg||_2`` with the norm over all (n_styles, 512) entries."""
    w = latents - latent_avg if latent_avg is not None else latents
    return w.flatten(1).norm(p=2, dim=1).mean()


def psp_encoder_loss(
    y_hat: Tensor,
    y: Tensor,
    latents: Tensor,
    *,
    latent_avg: Tensor | None = None,
    lpips_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    vgg: FeatureExtractor | None = None,
    id_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    cfg: PSPLossConfig | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """pSp encoder loss: ``l2 MSE + lpips Perc + w_norm L_reg (+ id L_id)``.

    ``Perc`` is ``lpips_fn(y_hat, y).mean()`` when given (e.g. ``lpips.LPIPS(net='alex')`` with the
    trunk loaded as in :mod:`isfr.evaluation.metrics`), else :func:`perceptual_loss` on ``vgg`` features
    (one of them is required when ``lpips_lambda > 0``). ``latents``: ``(B, n_styles, 512)``.
    ``L_id`` is ``id_fn(y_hat, y)`` (pSp's ArcFace loss, :func:`isfr.models.arcface.identity_loss`),
    required when ``id_lambda > 0``; dlib's descriptor is not differentiable and is never a loss.
    """
    cfg = cfg or PSPLossConfig()
    terms: dict[str, Tensor] = {"l2": F.mse_loss(y_hat, y)}
    if cfg.lpips_lambda > 0:
        if lpips_fn is not None:
            terms["perceptual"] = lpips_fn(y_hat, y).mean()
        elif vgg is not None:
            with torch.no_grad():
                f_y = vgg(y)
            terms["perceptual"] = perceptual_loss(vgg(y_hat), f_y)
        else:
            raise ValueError("psp_encoder_loss: lpips_lambda > 0 needs lpips_fn or vgg.")
    if cfg.w_norm_lambda > 0:
        terms["w_norm"] = w_norm_loss(latents, latent_avg)
    if cfg.id_lambda > 0:
        if id_fn is None:
            raise ValueError("psp_encoder_loss: id_lambda > 0 needs id_fn, pSp's ArcFace identity loss "
                             "(isfr.models.arcface.identity_loss with load_arcface(PSPLossConfig.arcface_path)); "
                             "without ArcFace weights set id_lambda=0.")
        terms["id"] = id_fn(y_hat, y)
    weights = {"l2": cfg.l2_lambda, "perceptual": cfg.lpips_lambda, "w_norm": cfg.w_norm_lambda,
               "id": cfg.id_lambda}
    total = torch.stack([weights[k] * v for k, v in terms.items()]).sum()
    return total, {k: v.detach() for k, v in terms.items()}
