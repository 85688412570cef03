"""Presets (isfr.config): overrides, the resolution shorthand and its consistency check."""
from __future__ import annotations

import pytest

from isfr.config import PRESETS, get_preset, parse_overrides
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig


@pytest.mark.parametrize("name", PRESETS)
def test_named_presets_are_consistent(name):
    p = get_preset(name)
    assert p.name == name and p.ifr.img_size == p.sfr.img_size == p.data.resolution


def test_resolution_sets_every_field_and_builds():
    p = get_preset("smoke", resolution=32)
    assert (p.data.resolution, p.ifr.img_size, p.sfr.img_size, p.disc.img_size, p.stylegan.size) == (32,) * 5
    out = ISFRNet(ISFRNetConfig.from_preset(p)).eval()
    import torch

    y = out(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    assert y["output"].shape == (1, 3, 32, 32)


def test_paper_generator_stays_at_1024_when_the_resolution_changes():
    p = get_preset("paper", resolution=128)
    assert p.stylegan.size == 1024 and p.data.resolution == p.sfr.img_size == 128


def test_one_resolution_field_alone_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"sfr.img_size=256.*resolution=128"):
        get_preset("paper", **{"data.resolution": 128})
    with pytest.raises(ValueError, match="power of two"):
        get_preset("small", resolution=48)


def test_overrides_parse_and_unknown_fields_fail():
    assert parse_overrides(["resolution=32", "sfr.weighting=none"]) == {"resolution": 32, "sfr.weighting": "none"}
    with pytest.raises(KeyError, match="sfr.nope"):
        get_preset("smoke", **{"sfr.nope": 1})
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_overrides(["oops"])
