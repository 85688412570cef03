"""The plain U-Net (isfr.models.unet): the learned baseline and the ladder's first rung."""
from __future__ import annotations

import pytest
import torch

from isfr.models.unet import UNet, UNetConfig


def test_shapes_and_size_of_the_baseline():
    net = UNet(UNetConfig(ngf=24))
    x, m = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.7).float()
    assert net(x * (1 - m), m).shape == (2, 3, 64, 64)
    n = sum(p.numel() for p in net.parameters())
    assert 3.0e6 < n < 3.5e6  # the ladder's calibration U-Net has about 3.3 M parameters
    assert net.widths == [24, 48, 96, 192, 192]


def test_two_encoders_take_a_guess_and_weight_e_i_as_eq1():
    torch.manual_seed(0)
    a, b = UNet(ngf=4, depth=2, img_size=16, encoders=2), UNet(ngf=4, depth=2, img_size=16, encoders=2,
                                                               weighting="paper")
    b.load_state_dict(a.state_dict())
    x, g = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    no_hole, hole = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    hole[..., 4:10, 4:10] = 1
    assert torch.allclose(a(x, g, no_hole), b(x, g, no_hole))  # 1/max(N_M, 1) = 1 without a hole
    assert not torch.allclose(a(x, g, hole), b(x, g, hole))  # 1/36 mutes E_I
    with pytest.raises(TypeError, match="guess"):
        a(x, hole)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="encoders"):
        UNet(encoders=3)
    with pytest.raises(ValueError, match="divisible"):
        UNet(img_size=24, depth=4)
    with pytest.raises(ValueError, match="expected input"):
        UNet(ngf=4, depth=2, img_size=16)(torch.randn(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))


def test_the_sfr_of_layout_unet_is_the_two_encoder_unet_inside_isfrnet():
    """SFRConfig.layout="unet" makes ISFRNet's SFR this U-Net with E_I, E_C and eq.-1 skips, reading the
    SFR's ngf, norm, weighting and size; Unet256-only options are refused, not ignored."""
    from isfr.experiments.config import get_preset
    from isfr.models.isfrnet import ISFRNet, ISFRNetConfig
    from isfr.models.sfr import SFRConfig, SFRGenerator, build_sfr

    P = get_preset("smoke", **{"sfr.layout": "unet", "sfr.weighting": "inverse_ratio", "sfr.norm": "none"})
    model = ISFRNet(ISFRNetConfig.from_preset(P))
    sfr = model.sfr
    assert isinstance(sfr, UNet) and sfr.enc_c is not None
    assert (sfr.cfg.ngf, sfr.cfg.weighting, sfr.cfg.img_size) == (P.sfr.ngf, "inverse_ratio", 64)
    x, m = torch.rand(2, 3, 64, 64) * 2 - 1, (torch.rand(2, 1, 64, 64) > 0.6).float()
    assert model(x, m)["composite"].shape == (2, 3, 64, 64)
    assert isinstance(build_sfr(SFRConfig(ngf=4, img_size=16)), SFRGenerator)  # the default: LGNet's Unet256
    for bad in ({"full_res": True}, {"upsample": "resize_conv"}, {"weighted_levels": "skips"}):
        with pytest.raises(ValueError, match="Unet256 options"):
            build_sfr(SFRConfig(layout="unet", ngf=4, img_size=16, **bad))
    with pytest.raises(ValueError, match="layout"):
        build_sfr(SFRConfig(layout="lgnet", ngf=4, img_size=16))
