"""The ISFRNet pipeline (section 3, Fig. 1): shapes, compositing, ablation switches, save / load."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from isfr.experiments.config import get_preset
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig


def _cfg(res: int = 64, **switches) -> ISFRNetConfig:
    p = get_preset("smoke", resolution=res)
    return ISFRNetConfig.from_preset(p, **switches)


@pytest.fixture(scope="module")
def net() -> ISFRNet:
    torch.manual_seed(0)
    return ISFRNet(_cfg()).eval()


def _batch(b: int = 2, res: int = 64, ratio: float = 0.3):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(b, 3, res, res, generator=g) * 2 - 1
    mask = (torch.rand(b, 1, res, res, generator=g) < ratio).float()
    return image, mask


@pytest.mark.parametrize("res", [64, 128])
def test_every_stage_output_has_the_image_shape(res):
    net = ISFRNet(_cfg(res)).eval()
    image, mask = _batch(1, res)
    with torch.no_grad():
        out = net(image, mask)
    assert set(out) == {"input", "stage1", "ifr", "ifr_composite", "sfr", "output", "composite"}
    for k, v in out.items():
        assert v.shape == (1, 3, res, res), k
        assert torch.isfinite(v).all(), k


def test_composite_keeps_known_pixels_and_fills_the_hole(net):
    image, mask = _batch()
    with torch.no_grad():
        out = net(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(out["composite"][known], image[known])
    assert torch.equal(out["composite"][~known], out["output"][~known])
    assert torch.equal(out["input"], image * (1 - mask))  # hole pixels never reach the network


def test_empty_mask_returns_the_input_and_full_mask_is_finite(net):
    image, _ = _batch()
    with torch.no_grad():
        empty = net(image, torch.zeros(2, 1, 64, 64))
        full = net(image, torch.ones(2, 1, 64, 64))
    assert torch.equal(empty["composite"], image)
    assert all(torch.isfinite(v).all() for v in full.values())


def test_wrong_sizes_are_refused_with_the_expected_shape(net):
    image, mask = _batch()
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        net(torch.zeros(1, 3, 128, 128), torch.zeros(1, 1, 128, 128))
    with pytest.raises(ValueError, match=r"\(2, 1, 64, 64\)"):
        net(image, mask[:, :, :32, :32])


def test_ablation_switches_change_the_data_flow():
    torch.manual_seed(0)
    image, mask = _batch()
    no_sfr = ISFRNet(_cfg(use_sfr=False)).eval()
    with torch.no_grad():
        o = no_sfr(image, mask)
    assert no_sfr.sfr is None and "sfr" not in o and torch.equal(o["output"], o["ifr"])

    no_ifr = ISFRNet(_cfg(use_ifr=False)).eval()
    seen = {}
    no_ifr.sfr.register_forward_hook(lambda m, args, out: seen.setdefault("e_c", args[1]))
    with torch.no_grad():
        o = no_ifr(image, mask)
    assert no_ifr.ifr is None and "ifr" not in o
    expected = o["stage1"] * mask + o["input"] * (1 - mask)  # section 4.2.2: E_C reads the stage-1 image
    assert torch.allclose(seen["e_c"], expected)
    with pytest.raises(ValueError, match="at least one refinement stage"):
        ISFRNet(_cfg(use_ifr=False, use_sfr=False))


def test_weighting_option_reaches_sfr():
    cfg = _cfg()
    cfg = dataclasses.replace(cfg, sfr=dataclasses.replace(cfg.sfr, weighting="none"))
    assert ISFRNet(cfg).sfr.cfg.weighting == "none"


def test_save_load_round_trip_gives_identical_outputs(net, tmp_path):
    path = tmp_path / "isfrnet.pt"
    net.save(path)
    loaded = ISFRNet.from_checkpoint(path)
    image, mask = _batch()
    with torch.no_grad():
        a, b = net(image, mask), loaded(image, mask)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert loaded.cfg == dataclasses.replace(net.cfg, psp=dataclasses.replace(net.cfg.psp, checkpoint=None))
    assert isinstance(loaded.commit, str)


def test_bad_checkpoints_are_named(net, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ISFRNet.from_checkpoint(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match="not an ISFRNet checkpoint"):
        ISFRNet.from_checkpoint(other)
    good = tmp_path / "good.pt"
    net.save(good)
    ckpt = torch.load(good, weights_only=True)
    key = next(k for k in ckpt["state_dict"] if k.startswith("ifr.") and k.endswith("weight"))
    ckpt["state_dict"][key] = torch.zeros(3)
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        ISFRNet.from_checkpoint(tmp_path / "edited.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(Exception, match="truncated.pt"):
        ISFRNet.from_checkpoint(truncated)


def test_paper_preset_needs_the_psp_file_and_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = ISFRNetConfig.from_preset(get_preset("paper", **{"psp.checkpoint": str(tmp_path / "psp_ffhq_encode.pt")}))
    with pytest.raises(FileNotFoundError, match="psp_ffhq_encode.pt"):
        ISFRNet(cfg)
