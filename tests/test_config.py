"""Presets (isfr.experiments.config): overrides, the resolution shorthand and its consistency check."""
from __future__ import annotations

import pytest

from isfr.experiments.config import PRESETS, get_preset, parse_overrides
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


@pytest.mark.parametrize("overrides, message", [
    ({"sfr.weighting": "bogus"}, r"^sfr.weighting='bogus': sfr.weighting takes one of 'paper', 'valid_fraction', "
                                 r"'inverse_ratio', 'none'$"),
    ({"sfr.nonsense": 1}, r"^unknown preset field 'sfr.nonsense'; the fields of sfr are img_ch, ei_mask, .*, layout, "
                          r"full_res$"),
    ({"data.fractions.nope": 1}, r"^unknown preset field 'data.fractions.nope'; the fields of data.fractions are "
                                 r"test, val$"),
    ({"sfr.weighting.x": 1}, r"^unknown preset field 'sfr.weighting.x': sfr.weighting is a value, not a group"),
    ({"schedule.ifr_steps": "many"}, r"^schedule.ifr_steps='many': schedule.ifr_steps takes int$"),
    ({"schedule.ifr_steps": 1.5}, r"takes int$"),
    ({"psp.finetune": 1}, r"^psp.finetune=1: psp.finetune takes bool$"),
    ({"schedule.sfr_lr_decay": (10, "x")}, r"takes tuple\[int, float\] \| None$"),
    ({"sfr.weighted_levels": "some"}, r"takes one of 'all', 'skips', 'bottleneck' \| tuple\[int, \.\.\.\]$"),
    ({"resolution": "big"}, r"^resolution='big': resolution takes a power of two >= 8$"),
])
def test_a_bad_override_names_the_field_and_the_valid_choices(overrides, message):
    from isfr.experiments.config import PresetFieldError

    with pytest.raises(PresetFieldError, match=message) as got:
        get_preset("small", **overrides)
    assert isinstance(got.value, KeyError) and isinstance(got.value, ValueError)  # one line, unquoted
    assert str(got.value) == got.value.args[0]


@pytest.mark.parametrize("overrides", [
    {"sfr.weighting": "none"}, {"schedule.lr": 1}, {"schedule.sfr_lr_decay": [10, 0.5]},
    {"schedule.sfr_lr_decay": None}, {"sfr.weighted_levels": (1, 2)}, {"sfr.weighted_levels": "skips"},
    {"data.root": "faces"}, {"seed": 3}, {"psp.checkpoint": None},
])
def test_good_overrides_are_taken(overrides):
    p = get_preset("small", **overrides)
    key, value = next(iter(overrides.items()))
    obj = p
    for part in key.split("."):
        obj = getattr(obj, part)
    assert obj == value
