"""Losses of section 3.4 against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from isfr import losses as L


def _img(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 1, *torch.tensor(values).shape)


# ---------------------------------------------------------------- eq. 2
def test_masked_l1_hand_value():
    out = _img([[1.0, 2.0], [3.0, 4.0]])
    gt = torch.zeros_like(out)
    mask = _img([[1.0, 0.0], [0.0, 1.0]])
    assert L.masked_l1_loss(out, gt, mask, "all").item() == pytest.approx(5 / 4)
    assert L.masked_l1_loss(out, gt, mask, "hole").item() == pytest.approx(5 / 2)


def test_masked_l1_hole_norm_counts_channels():
    out = torch.ones(1, 3, 2, 2)
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1
    # 3 masked elements (one pixel x 3 channels), each |1 - 0| = 1
    assert L.masked_l1_loss(out, torch.zeros_like(out), mask, "hole").item() == pytest.approx(1.0)
    assert L.masked_l1_loss(out, torch.zeros_like(out), mask, "all").item() == pytest.approx(3 / 12)


@pytest.mark.parametrize("norm", ["all", "hole"])
def test_masked_l1_no_hole_and_all_hole(norm):
    out, gt = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    zero = L.masked_l1_loss(out, gt, torch.zeros(2, 1, 4, 4), norm)
    assert zero.item() == 0.0 and not torch.isnan(zero)
    full = L.masked_l1_loss(out, gt, torch.ones(2, 1, 4, 4), norm)
    assert full.item() == pytest.approx((out - gt).abs().mean().item(), rel=1e-6)


# ---------------------------------------------------------------- eqs. 3-4
def test_discriminator_loss_matches_sigmoid_log():
    r, f = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7, 1.5])
    expected = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    assert L.discriminator_loss(r, f).item() == pytest.approx(expected.item(), rel=1e-6)


def test_generator_adversarial_forms():
    f = torch.tensor([-0.5, 0.7, 1.5])
    ns = -torch.log(torch.sigmoid(f)).mean()
    sat = torch.log(1 - torch.sigmoid(f)).mean()
    assert L.generator_adversarial_loss(f).item() == pytest.approx(ns.item(), rel=1e-6)
    assert L.generator_adversarial_loss(f, "saturating").item() == pytest.approx(sat.item(), rel=1e-6)
    with pytest.raises(ValueError):
        L.generator_adversarial_loss(f, "hinge")


def test_adversarial_losses_stable_for_large_logits():
    big = torch.tensor([100.0, -100.0])
    for v in (L.discriminator_loss(big, -big), L.generator_adversarial_loss(big),
              L.generator_adversarial_loss(-big, "saturating")):
        assert torch.isfinite(v)


class _RecordingD(torch.nn.Module):
    """Stub discriminator: records its input, returns a logit map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        return self.conv(x)


def test_ifr_fake_is_generator_output_and_gradient_flows():
    torch.manual_seed(0)
    out = torch.randn(1, 3, 8, 8, requires_grad=True)
    gt, mask = torch.randn(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)  # no hole: only adv gives gradient
    d1 = _RecordingD()
    total, terms = L.ifr_generator_loss(out, gt, mask, d1)
    assert d1.seen[-1] is out
    total.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert terms["rec"].item() == 0.0
    assert total.item() == pytest.approx(0.1 * terms["adv"].item(), rel=1e-6)


def test_module_logits_method_is_preferred():
    """A discriminator whose forward returns sigmoid probabilities is scored on its logits."""

    class ProbD(_RecordingD):
        def logits(self, x):
            return super().forward(x)

        def forward(self, x, return_logits=False):
            z = self.logits(x)
            return z if return_logits else torch.sigmoid(z)

    class Wrapper(torch.nn.Module):  # stands in for DistributedDataParallel: forwards, no .logits
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *a, **k):
            return self.module(*a, **k)

    d, x = ProbD(), torch.randn(1, 3, 8, 8)
    z = d.logits(x)
    assert torch.equal(L.d_logits(d, x), z)
    assert torch.equal(L.d_logits(Wrapper(d), x), z)
    _, terms = L.ifr_generator_loss(x, x, torch.zeros(1, 1, 8, 8), d)
    assert terms["adv"].item() == pytest.approx(L.generator_adversarial_loss(z).item(), rel=1e-6)


def test_sfr_uses_d2_on_output():
    out = torch.randn(1, 3, 16, 16, requires_grad=True)
    gt, mask = torch.randn(1, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    d2 = _RecordingD()
    total, terms = L.sfr_generator_loss(out, gt, mask, d2, _stub_vgg)
    assert d2.seen[-1] is out
    total.backward()
    assert out.grad.abs().sum() > 0
    assert set(terms) == {"rec", "perceptual", "style", "tv", "adv"}


# ---------------------------------------------------------------- eqs. 6-9
def test_l1_loss():
    out = _img([[1.0, -2.0], [3.0, 0.0]])
    assert L.l1_loss(out, torch.zeros_like(out)).item() == pytest.approx(6 / 4)


def _stub_vgg(x: torch.Tensor) -> list[torch.Tensor]:
    return [x, 2 * x.sum(dim=(2, 3), keepdim=True)]


def test_perceptual_with_stub_extractor():
    out = _img([[1.0, 2.0], [3.0, 4.0]])
    gt = torch.zeros_like(out)
    # layer 1: mean |x| = 10/4 = 2.5; layer 2: one element, |2 * 10| = 20
    assert L.perceptual_loss(_stub_vgg(out), _stub_vgg(gt)).item() == pytest.approx(22.5)


def test_gram_normalisation():
    feat = torch.tensor([[1.0, 2.0, 2.0], [0.0, 1.0, 3.0]]).view(1, 2, 1, 3)  # C=2, H=1, W=3
    expected = torch.tensor([[9.0, 8.0], [8.0, 10.0]]) / 6  # F F^T / (C H W)
    assert torch.allclose(L.gram_matrix(feat)[0], expected)
    # mean over the C x C entries: (9 + 8 + 8 + 10) / 6 / 4
    zero = torch.zeros_like(feat)
    assert L.style_loss([feat], [zero]).item() == pytest.approx(35 / 24)
    assert L.style_loss([feat, feat], [zero, zero]).item() == pytest.approx(70 / 24)


def test_gram_scale_invariant_to_spatial_size():
    """K_p on both sides: tiling a feature map does not change its Gram matrix."""
    feat = torch.randn(1, 4, 3, 3)
    assert torch.allclose(L.gram_matrix(feat), L.gram_matrix(feat.repeat(1, 1, 2, 2)), atol=1e-5)


_TV_IMG = [[0.0, 1.0, 3.0], [2.0, 5.0, 9.0], [4.0, 8.0, 16.0]]


def test_tv_corner_hole_known_dilated_region():
    out = _img(_TV_IMG)
    mask = torch.zeros(1, 1, 3, 3)
    mask[..., 0, 0] = 1
    r = L.dilate_mask(mask)
    assert torch.equal(r[0, 0], torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 0]]))
    # R = {(0,0),(0,1),(1,0),(1,1)}: horizontal |1-0|+|5-2| = 4, vertical |2-0|+|5-1| = 6
    assert L.tv_loss(out, mask).item() == pytest.approx(10 / 9)


def test_tv_centre_hole_covers_all_pairs():
    out = _img(_TV_IMG)
    mask = torch.zeros(1, 1, 3, 3)
    mask[..., 1, 1] = 1
    # horizontal 3 + 7 + 12 = 22, vertical 4 + 7 + 13 = 24
    assert L.tv_loss(out, mask).item() == pytest.approx(46 / 9)


def test_tv_no_hole_is_zero():
    assert L.tv_loss(torch.randn(1, 3, 5, 5), torch.zeros(1, 1, 5, 5)).item() == 0.0


# ---------------------------------------------------------------- config / totals
def test_lambdas_default_to_paper_and_lgnet_swaps():
    c = L.LossConfig()
    assert (c.lambda1_rec, c.lambda2_adv) == (1.0, 0.1)
    assert (c.lambda3_rec, c.lambda4_perceptual, c.lambda5_style, c.lambda6_tv, c.lambda7_adv) == (
        50.0, 120.0, 0.05, 0.1, 1.0)
    assert (c.perceptual_weight, c.style_weight) == (120.0, 0.05)
    g = L.LossConfig(style_perceptual_weights="lgnet")
    assert (g.perceptual_weight, g.style_weight) == (0.05, 120.0)
    with pytest.raises(ValueError):
        L.LossConfig(style_perceptual_weights="swapped")


@pytest.mark.parametrize("weights", ["paper", "lgnet"])
def test_sfr_total_is_weighted_sum(weights):
    torch.manual_seed(1)
    out, gt = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    cfg = L.LossConfig(style_perceptual_weights=weights)
    total, t = L.sfr_generator_loss(out, gt, mask, _RecordingD(), _stub_vgg, cfg)
    expected = (50 * t["rec"] + cfg.perceptual_weight * t["perceptual"] + cfg.style_weight * t["style"]
                + 0.1 * t["tv"] + 1.0 * t["adv"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_sfr_loss_on_composite_ignores_known_pixels():
    torch.manual_seed(2)
    out, gt = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    cfg = L.LossConfig(sfr_loss_on="composite")
    total, t = L.sfr_generator_loss(out, gt, mask, _RecordingD(), _stub_vgg, cfg)
    assert t["rec"].item() == pytest.approx(((out - gt).abs() * mask).mean().item(), rel=1e-6)
    total.backward()
    assert out.grad[(mask == 0).expand_as(out)].abs().max() == 0  # known pixels are pasted: no gradient
    assert out.grad[(mask == 1).expand_as(out)].abs().max() > 0
    _, printed = L.sfr_generator_loss(out, gt, mask, _RecordingD(), _stub_vgg, L.LossConfig())
    assert printed["rec"].item() == pytest.approx((out - gt).abs().mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="sfr_loss_on"):
        L.LossConfig(sfr_loss_on="hole")


@pytest.mark.parametrize("fill", [0.0, 1.0])
@pytest.mark.parametrize("norm", ["all", "hole"])
def test_totals_finite_for_all_valid_and_all_hole(fill, norm):
    out = torch.randn(1, 3, 8, 8, requires_grad=True)
    gt, mask = torch.randn(1, 3, 8, 8), torch.full((1, 1, 8, 8), fill)
    cfg = L.LossConfig(masked_l1_norm=norm)
    for total, terms in (L.ifr_generator_loss(out, gt, mask, _RecordingD(), cfg),
                         L.sfr_generator_loss(out, gt, mask, _RecordingD(), _stub_vgg, cfg)):
        assert torch.isfinite(total)
        assert all(torch.isfinite(v) for v in terms.values())
        total.backward()
        assert torch.isfinite(out.grad).all()


# ---------------------------------------------------------------- pSp encoder loss
def test_w_norm_hand_value():
    w = torch.zeros(2, 2, 2)
    w[0, 0, 0], w[0, 1, 1] = 3.0, 4.0  # sample 0: norm 5; sample 1: 0
    assert L.w_norm_loss(w).item() == pytest.approx(2.5)
    assert L.w_norm_loss(w + 1, torch.ones(2, 2)).item() == pytest.approx(2.5)


def test_psp_encoder_loss_terms_and_id_hook():
    y, y_hat = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    w = torch.zeros(1, 2, 2)
    w[0, 0, 0] = 2.0
    total, t = L.psp_encoder_loss(y_hat, y, w, lpips_fn=lambda a, b: (a - b).abs().mean((1, 2, 3)))
    assert t["l2"].item() == 1.0 and t["perceptual"].item() == 1.0 and t["w_norm"].item() == 2.0
    assert total.item() == pytest.approx(1.0 + 0.8 + 0.005 * 2.0)
    _, t2 = L.psp_encoder_loss(y_hat, y, w, vgg=_stub_vgg)
    assert t2["perceptual"].item() == pytest.approx(1.0 + 2 * 16)
    with pytest.raises(ValueError, match="lpips_fn or vgg"):
        L.psp_encoder_loss(y_hat, y, w)
    with pytest.raises(ValueError, match="id_fn.*ArcFace"):
        L.psp_encoder_loss(y_hat, y, w, vgg=_stub_vgg, cfg=L.PSPLossConfig(id_lambda=0.1))
    assert not math.isnan(total.item())


class _DtypeVGG(torch.nn.Module):
    """Records the dtype it is fed and whether autocast was on inside it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[tuple[torch.dtype, bool, torch.dtype]] = []

    def forward(self, x):
        y = self.conv(x)
        self.seen.append((x.dtype, torch.is_autocast_enabled("cpu"), y.dtype))
        return [y]


def test_perceptual_and_style_run_in_fp32_under_autocast():
    out, gt = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16), torch.randn(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    vgg = _DtypeVGG()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        L.sfr_generator_loss(out, gt, mask, _RecordingD(), vgg, L.LossConfig())
    assert vgg.seen and all(s == (torch.float32, False, torch.float32) for s in vgg.seen)
    vgg.seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the old behaviour, kept as an option (a ladder rung)
        L.sfr_generator_loss(out, gt, mask, _RecordingD(), vgg, L.LossConfig(vgg_precision="autocast"))
    assert vgg.seen and all(s[1] and s[2] == torch.bfloat16 for s in vgg.seen)


def test_zero_weight_terms_are_not_computed():
    out, gt = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    cfg = L.LossConfig(lambda4_perceptual=0, lambda5_style=0, lambda6_tv=0, lambda7_adv=0)
    assert not cfg.uses_vgg and not cfg.uses_d2
    total, terms = L.sfr_generator_loss(out, gt, mask, None, None, cfg)  # no VGG, no D2 needed
    assert set(terms) == {"rec"}
    assert total.item() == pytest.approx(50 * (out - gt).abs().mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="d2"):
        L.sfr_generator_loss(out, gt, mask, None, None, L.LossConfig(lambda4_perceptual=0, lambda5_style=0))
    with pytest.raises(ValueError, match="vgg"):
        L.sfr_generator_loss(out, gt, mask, _RecordingD(), None, L.LossConfig())
