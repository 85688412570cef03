"""docs/architecture.md states the parameter count of every network each preset builds: the page's
numbers are the expected values, the code's models give the actual ones (built here, parameters
counted), so the test fails when either changes without the other."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch.nn as nn

from isfr.experiments.config import get_preset, with_resolution
from isfr.models.discriminators import PatchDiscriminator
from isfr.models.ifr import IFRGenerator
from isfr.models.sfr import build_sfr

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
COUNT = re.compile(r"\b(\d+(?:\.\d+)?) M\b")  # "5.48 M": a parameter count in millions
ROW = re.compile(r"^\| (IFR|SFR|D) \| `(\w+)` \| (\d+) px \| (.+?) \| (\d+\.\d+) M \|$")


def _rows() -> list[tuple[str, str, int, str, str]]:
    """(network, preset, resolution, layout and width, count as printed) of each row of the page's table."""
    return [(m[1], m[2], int(m[3]), m[4], m[5]) for line in PAGE.read_text().splitlines() if (m := ROW.match(line))]


def _build(network: str, preset: str, resolution: int) -> tuple[nn.Module, object]:
    P = with_resolution(get_preset(preset), resolution)
    if network == "IFR":
        return IFRGenerator(P.ifr), P.ifr
    if network == "SFR":
        return build_sfr(P.sfr), P.sfr
    return PatchDiscriminator(P.disc), P.disc


def test_every_count_on_the_page_is_a_row_of_its_table():
    """A count written anywhere else (prose, another table) would escape the comparison below."""
    lines = PAGE.read_text().splitlines()
    stray = [line for line in lines if COUNT.search(line) and not ROW.match(line)]
    assert not stray, f"{PAGE.name}: parameter counts outside the table of counts: {stray}"
    assert len(_rows()) == sum(bool(COUNT.search(line)) for line in lines) >= 11


@pytest.mark.parametrize("network,preset,resolution,layout,printed",
                         [pytest.param(*r, id=f"{r[0]}-{r[1]}-{r[2]}px") for r in _rows()])
def test_page_count_equals_the_code(network, preset, resolution, layout, printed):
    model, cfg = _build(network, preset, resolution)
    n = sum(p.numel() for p in model.parameters())
    decimals = len(printed.split(".")[1])
    assert f"{n / 1e6:.{decimals}f}" == printed, (
        f"{PAGE.name} gives {network} of `{preset}` at {resolution} px as {printed} M; the code builds {n:,} "
        f"parameters ({n / 1e6:.{decimals}f} M): fix the page or the code")
    width = int(re.search(r"\bn[gd]f (\d+)", layout)[1])
    assert width == (cfg.ndf if network == "D" else cfg.ngf), f"{network} of `{preset}`: width on the page {width}"
    if network == "SFR":
        assert f"`{cfg.layout}`" in layout, f"SFR of `{preset}`: the page says {layout!r}, the code {cfg.layout!r}"


def test_small_sfr_is_the_two_encoder_unet_of_about_five_million():
    """The fact the page had wrong (12.9 M at width 32): `small` trains layout "unet" at ngf 24."""
    rows = {(net, preset): printed for net, preset, _, _, printed in _rows()}
    assert rows[("SFR", "small")] == "5.30"
    P = get_preset("small")
    assert (P.sfr.layout, P.sfr.ngf) == ("unet", 24)
