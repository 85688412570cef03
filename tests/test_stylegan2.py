"""StyleGAN2 (isfr.models.stylegan2): shapes, rosinality key/shape compatibility, loading, W+ path,
truncation, gradients, determinism and the pure-torch upfirdn2d."""

import json
from pathlib import Path

import pytest
import torch

from isfr.models.stylegan2 import (
    Discriminator,
    Generator,
    ModulatedConv2d,
    infer_generator_config,
    load_rosinality_generator,
    upfirdn2d,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(size: int) -> dict:
    return json.loads((FIXTURES / f"rosinality_stylegan2_{size}_cm2.json").read_text())


def small_g(size: int = 32, **kw) -> Generator:
    torch.manual_seed(0)
    return Generator(size, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=16, **kw)


def shapes(module: torch.nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("size", [32, 64, 256])
def test_output_shape_reduced_width(size):
    g = small_g(size).eval()
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 32, generator=gen)
    with torch.inference_mode():
        img, lat = g([z], return_latents=True, generator=gen)
    assert img.shape == (2, 3, size, size) and img.is_contiguous()
    assert lat.shape == (2, g.n_latent, 32) and g.n_latent == 2 * size.bit_length() - 4
    assert torch.isfinite(img).all()
    d = Discriminator(size, channel_multiplier=1, channel_max=16)
    with torch.no_grad():
        assert d(img.clone()).shape == (2, 1)


@pytest.mark.parametrize("size", [256, 1024])
def test_names_and_shapes_match_rosinality_fixture(size):
    """Keys (in order) and shapes equal an independent record of rosinality's classes."""
    ref = fixture(size)
    with torch.device("meta"):
        g = Generator(size, 512, 8, channel_multiplier=2)
        d = Discriminator(size, channel_multiplier=2)
    assert shapes(g) == ref["generator"]["state_dict"]
    assert list(g.state_dict()) == list(ref["generator"]["state_dict"])
    assert shapes(d) == ref["discriminator"]["state_dict"]
    assert sum(p.numel() for p in g.parameters()) == ref["generator"]["num_parameters"]
    assert sum(p.numel() for p in d.parameters()) == ref["discriminator"]["num_parameters"]
    assert g.n_latent == ref["generator"]["n_latent"]


def test_config_f_1024_parameter_count():
    ref = fixture(1024)["generator"]
    assert ref["num_parameters"] == 30_370_060  # config-f g_ema, ~30.4M
    with torch.device("meta"):
        g = Generator(1024, 512, 8, channel_multiplier=2)
    assert sum(p.numel() for p in g.parameters()) == ref["num_parameters"] and g.n_latent == 18


def test_load_checkpoint_built_from_fixture(tmp_path):
    gen = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=gen) for k, s in fixture(256)["generator"]["state_dict"].items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(512)}, path)
    g = load_rosinality_generator(path)  # size / channel_multiplier / style_dim / n_mlp inferred
    assert (g.size, g.style_dim, g.n_mlp, g.n_latent) == (256, 512, 8, 14)
    assert all(torch.equal(v, sd[k]) for k, v in g.state_dict().items())
    assert torch.equal(g.latent_avg, torch.zeros(512))
    g2 = load_rosinality_generator(path, size=256, channel_multiplier=2, style_dim=512)
    assert torch.equal(g2.convs[3].conv.weight, sd["convs.3.conv.weight"])
    with pytest.raises(ValueError, match="size=256"):
        load_rosinality_generator(path, size=128)


def test_load_errors_name_the_key_and_the_fix(tmp_path):
    sd = small_g(32).state_dict()
    bad = dict(sd, **{"convs.1.conv.weight": torch.zeros(1, 16, 8, 3, 3)})
    torch.save({"g_ema": bad}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"convs\.1\.conv\.weight"):
        load_rosinality_generator(tmp_path / "bad.pt", channel_multiplier=1, channel_max=16)
    torch.save({"g_ema": dict(sd, extra_key=torch.zeros(1))}, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match="extra_key"):
        load_rosinality_generator(tmp_path / "extra.pt")
    torch.save({"g": sd}, tmp_path / "nokey.pt")
    with pytest.raises(ValueError, match="g_ema"):
        load_rosinality_generator(tmp_path / "nokey.pt")
    with pytest.raises(ValueError, match="channel_multiplier"):
        load_rosinality_generator(tmp_path / "nokey.pt", key="g", channel_multiplier=2)
    g = load_rosinality_generator(tmp_path / "nokey.pt", key="g")  # widths inferred as a channels dict
    assert g.channels[32] == 16 and infer_generator_config(sd)["channels"][4] == 16
    with pytest.raises(FileNotFoundError, match=r"missing\.pt.*stylegan2-ffhq-config-f\.pt"):
        load_rosinality_generator(tmp_path / "missing.pt")


def test_w_plus_path_equals_z_path_and_uses_every_code():
    g = small_g(32).eval()
    z = torch.randn(2, 32)
    with torch.inference_mode():
        a, lat = g([z], return_latents=True, randomize_noise=False)
        w = g.get_latent(z)
        b, _ = g([w.unsqueeze(1).repeat(1, g.n_latent, 1)], input_is_latent=True, randomize_noise=False)
        assert torch.allclose(a, b, atol=1e-6) and torch.allclose(lat[:, 3], w)
        for i in range(g.n_latent):  # every W+ entry influences the image
            wp = lat.clone()
            wp[:, i] += 1.0
            c, _ = g([wp], input_is_latent=True, randomize_noise=False)
            assert (c - a).abs().max() > 1e-4, i
        with pytest.raises(ValueError, match="W\\+"):
            g([lat[:, :3]], input_is_latent=True)


def test_style_mixing_inject_index():
    g = small_g(32).eval()
    w1, w2 = torch.randn(1, 32), torch.randn(1, 32)
    with torch.inference_mode():
        _, lat = g([w1, w2], input_is_latent=True, inject_index=3, return_latents=True)
    assert torch.equal(lat[0, :3], w1.expand(3, -1)) and torch.equal(lat[0, 3:], w2.expand(g.n_latent - 3, -1))


def test_truncation_with_mean_latent():
    g = small_g(32).eval()
    gen = torch.Generator().manual_seed(3)
    mean = g.mean_latent(256, generator=gen)
    assert mean.shape == (1, 32)
    z = torch.randn(2, 32, generator=gen)
    with torch.inference_mode():
        full, _ = g([z], randomize_noise=False)
        half, _ = g([z], truncation=0.5, truncation_latent=mean, randomize_noise=False)
        zero, _ = g([z], truncation=0.0, truncation_latent=mean, randomize_noise=False)
        ref, _ = g([mean], input_is_latent=True, randomize_noise=False)
    assert (full - half).abs().max() > 1e-3
    assert torch.allclose(zero[0], zero[1], atol=1e-6) and torch.allclose(zero[:1], ref, atol=1e-6)
    with pytest.raises(ValueError, match="truncation_latent"):
        g([z], truncation=0.5)


@pytest.mark.parametrize("fused_modconv", [None, True])
def test_gradients_reach_every_parameter(fused_modconv):
    g, d = small_g(32, fused_modconv=fused_modconv), Discriminator(32, channel_multiplier=1, channel_max=16)
    gen = torch.Generator().manual_seed(0)
    img, _ = g([torch.randn(4, 32, generator=gen)], generator=gen)
    (d(img).sum() + img.square().mean()).backward()
    for name, m in (("G", g), ("D", d)):
        for n, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{n}"


def test_deterministic_given_noise_and_latents():
    g = small_g(64).eval()
    with torch.no_grad():  # noise strengths start at 0 (rosinality); make noise matter
        for n, p in g.named_parameters():
            if n.endswith("noise.weight"):
                p.fill_(0.5)
    z = torch.randn(3, 32)
    with torch.inference_mode():
        a, _ = g([z], randomize_noise=False)
        b, _ = g([z], randomize_noise=False)
        c, _ = g([z], generator=torch.Generator().manual_seed(5))
        e, _ = g([z], generator=torch.Generator().manual_seed(5))
        f, _ = g([z], generator=torch.Generator().manual_seed(6))
        n = g.make_noise(generator=torch.Generator().manual_seed(1))
        h, _ = g([z], noise=n)
        single = torch.cat([g([z[i : i + 1]], randomize_noise=False)[0] for i in range(3)])
    assert torch.equal(a, b) and torch.equal(c, e) and not torch.equal(c, f) and not torch.equal(a, h)
    assert [t.shape[-1] for t in n] == [getattr(g.noises, f"noise_{i}").shape[-1] for i in range(g.num_layers)]
    assert torch.allclose(a, single, atol=1e-5)  # grouped conv over the batch == one sample at a time
    g.channels_last = False
    with torch.inference_mode():
        assert torch.allclose(a, g([z], randomize_noise=False)[0], atol=1e-5)


@pytest.mark.parametrize("mode", ["plain", "upsample", "downsample"])
def test_modulated_conv_fused_equals_unfused(mode):
    torch.manual_seed(0)
    m = ModulatedConv2d(6, 5, 3, 8, upsample=mode == "upsample", downsample=mode == "downsample")
    x, s = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
    a = m(x, s)
    for fused in (True, False, None):
        for xx in (x, x.contiguous(memory_format=torch.channels_last)):
            for n in (3, 1):
                m.fused = fused
                assert torch.allclose(a[:n], m(xx[:n], s[:n]), atol=1e-5), (fused, n)


def naive_upfirdn2d(x, k, up, down, p0, p1):
    """Definition: zero-insert, pad (crop if negative), true 2-D convolution, subsample."""
    b, c, h, w = x.shape
    u = torch.zeros(b, c, h * up, w * up, dtype=torch.float64)
    u[:, :, ::up, ::up] = x.double()
    u = torch.nn.functional.pad(u, [p0, p1, p0, p1])
    kh, kw = k.shape
    oh, ow = u.shape[2] - kh + 1, u.shape[3] - kw + 1
    out = torch.zeros(b, c, oh, ow, dtype=torch.float64)
    for i in range(oh):
        for j in range(ow):
            win = u[:, :, i : i + kh, j : j + kw]
            out[:, :, i, j] = (win * k.double().flip([0, 1])).sum((-1, -2))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad", [(1, 1, (1, 1)), (1, 1, (2, 1)), (1, 2, (2, 2)), (1, 2, (1, 1)), (2, 1, (2, 1)), (2, 1, (1, 1)),
                    (2, 1, (0, -1)), (2, 2, (1, 2)), (1, 1, (-1, 2))]
)
def test_upfirdn2d_matches_definition(up, down, pad):
    torch.manual_seed(0)
    x, k = torch.randn(2, 3, 7, 7), torch.rand(4, 4)  # asymmetric kernel catches flips
    ref = naive_upfirdn2d(x, k, up, down, *pad)
    out = upfirdn2d(x, k, up=up, down=down, pad=pad)
    assert out.shape == ref.shape and torch.allclose(out.double(), ref, atol=1e-5)


def test_bad_size_raises():
    with pytest.raises(ValueError, match="power of two"):
        Generator(48, 32, 2)
    with pytest.raises(ValueError, match="channel"):
        Generator(2048, 32, 2)


def test_double_backward_for_r1_and_path_length():
    """R1 (grad of D wrt reals) and path-length (grad of G wrt W) regularisers need create_graph."""
    g, d = small_g(32), Discriminator(32, channel_multiplier=1, channel_max=16)
    real = torch.randn(4, 3, 32, 32, requires_grad=True)
    (gr,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    gr.square().sum().backward()
    assert all(p.grad is not None for p in d.parameters() if p.ndim > 1)
    w = g.get_latent(torch.randn(2, 32)).unsqueeze(1).repeat(1, g.n_latent, 1)
    img, _ = g([w], input_is_latent=True, randomize_noise=False)
    (gw,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), w, create_graph=True)
    gw.square().sum().backward()
    assert g.convs[0].conv.weight.grad.abs().sum() > 0
