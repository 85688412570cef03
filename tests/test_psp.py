"""Tests for isfr.models.psp: the pSp encoder and wrapper (Richardson et al. 2021; ISFRNet section 3.1)."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isfr.models.stylegan2 import Generator
from isfr.models.psp import PSP, GradualStyleEncoder, load_irse50_backbone, n_styles_for

FIXTURE = Path(__file__).parent / "fixtures" / "psp_irse50_18styles.json"
LOAD_ERRORS = ValueError  # check_state_dict


def small_encoder(size: int = 64, n_styles: int = 10, **kw) -> GradualStyleEncoder:
    kw = dict(width=1 / 8, style_dim=32, input_size=size, n_styles=n_styles) | kw
    return GradualStyleEncoder(**kw)


class StandInGenerator(nn.Module):
    """Tiny module with the rosinality Generator interface (size, n_latent, forward(styles, ...))."""

    def __init__(self, size: int, n_latent: int, style_dim: int = 32):
        super().__init__()
        self.size, self.n_latent = size, n_latent
        self.proj = nn.Linear(n_latent * style_dim, 3 * 4 * 4)

    def forward(self, styles, return_latents=False, inject_index=None, truncation=1, truncation_latent=None,
                input_is_latent=False, noise=None, randomize_noise=True):
        assert input_is_latent and len(styles) == 1
        latent = styles[0]
        img = self.proj(latent.flatten(1)).view(-1, 3, 4, 4)
        img = torch.tanh(F.interpolate(img, size=self.size, mode="bilinear", align_corners=False))
        return img, (latent if return_latents else None)


def load_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def marked(shapes: list, prefix: str = "") -> dict:
    """A state dict whose i-th tensor is the constant i (stored as a 1-element expanded view: tiny on disk)."""
    out = {}
    for i, (k, shape) in enumerate(shapes):
        dtype = torch.long if k.endswith("num_batches_tracked") else torch.float32
        out[prefix + k] = torch.full((1,) * len(shape), i, dtype=dtype).expand(shape)
    return out


# ---------------------------------------------------------------- encoder


@pytest.mark.parametrize("size,n_styles", [(64, 10), (128, 12), (256, 14)])
def test_encoder_code_shapes(size, n_styles):
    enc = small_encoder(size, n_styles).eval()
    codes = enc(torch.randn(2, 3, size, size))
    assert codes.shape == (2, n_styles, 32)
    assert torch.isfinite(codes).all()
    assert n_styles_for(size) == n_styles  # 2 log2(size) - 2, as pSp


def test_n_styles_and_taps_follow_psp():
    assert [n_styles_for(s) for s in (64, 128, 256, 1024)] == [10, 12, 14, 18]
    with pytest.raises(ValueError):
        n_styles_for(100)
    with torch.device("meta"):
        # pSp reads c1, c2, c3 after body units 6, 20, 23 (ends of stages 2, 3, 4 of IR-50)
        assert GradualStyleEncoder().taps == (6, 20, 23)
        assert GradualStyleEncoder(num_layers=100).taps == (15, 45, 48)
        assert GradualStyleEncoder(num_layers=152).taps == (10, 46, 49)


def test_style_groups_read_the_right_maps():
    """Styles 0-2 come from the 1/16 map, 3-6 from 1/8, 7.. from 1/4: head depth = log2(map size)."""
    enc = small_encoder(128, 12)
    n_convs = [sum(isinstance(m, nn.Conv2d) for m in head.convs) for head in enc.styles]
    assert n_convs == [3] * 3 + [4] * 4 + [5] * 5  # maps 8, 16, 32 px for a 128 px input
    # changing only the largest map's content changes only the fine styles
    x = torch.randn(1, 3, 128, 128)
    enc.eval()
    with torch.no_grad():
        base = enc(x)
        enc.latlayer2.bias += 1.0  # enters p1 only
        moved = (enc(x) - base).abs().amax(-1)[0]
    assert (moved[:7] == 0).all() and (moved[7:] > 0).all()


def test_blocks_compute_psp_definitions():
    """Head: stride-2 3x3 convs + LeakyReLU(0.01), EqualLinear (w / sqrt(in)); unit: BN-conv-PReLU-conv-BN-SE
    + (MaxPool(1, s) | conv1x1-BN) shortcut; pyramid: bilinear (align_corners=True) upsample-add."""
    torch.manual_seed(0)
    enc = small_encoder(64, 10).eval()
    head, x = enc.styles[0], torch.randn(2, 64, 4, 4)
    h = x
    for conv in head.convs[::2]:
        h = F.leaky_relu(F.conv2d(h, conv.weight, conv.bias, stride=2, padding=1), 0.01)
    want = h.flatten(1) @ (head.linear.weight / math.sqrt(32)).T + head.linear.bias
    assert torch.allclose(head(x), want, atol=1e-5)

    unit, y = enc.body[3], torch.randn(2, 8, 16, 16)  # first unit of stage 2: 8 -> 16 ch, stride 2
    bn0, c1, pr, c2, bn1, se = unit.res_layer
    r = bn1(c2(pr(c1(bn0(y)))))
    r = r * torch.sigmoid(se.fc2(torch.relu(se.fc1(r.mean((2, 3), keepdim=True)))))
    assert c2.stride == (2, 2) and c1.stride == (1, 1)
    assert torch.allclose(unit(y), r + unit.shortcut_layer(y), atol=1e-5)
    same = enc.body[1]  # 8 -> 8 ch, stride 1: identity shortcut
    z = torch.randn(1, 8, 8, 8)
    assert torch.allclose(same(z) - same.res_layer(z), z)
    first = enc.body[0]  # 8 -> 8 ch, stride 2: the shortcut subsamples
    assert torch.equal(first.shortcut_layer(z), z[:, :, ::2, ::2])

    a, b = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 8, 8)
    up = F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True)
    assert torch.allclose(enc._upsample_add(a, b), up + b)


def test_encoder_input_checks():
    enc = small_encoder(64, 10, input_nc=4)
    assert enc(torch.randn(1, 4, 64, 64)).shape == (1, 10, 32)
    with pytest.raises(ValueError, match="input_size"):
        enc(torch.randn(1, 4, 128, 128))
    with pytest.raises(ValueError, match="input_nc"):
        enc(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError):
        GradualStyleEncoder(num_layers=34)


def test_gradients_reach_every_encoder_parameter():
    torch.manual_seed(0)
    enc = small_encoder(64, 10)
    psp = PSP(enc, StandInGenerator(64, 10), latent_avg=torch.randn(32), resolution=32)
    img = psp(torch.randn(2, 3, 64, 64))
    (img**2).mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------- fixture: official key names / shapes


def test_fixture_counts():
    """The official encoder's state_dict: 621 tensors = 465 parameters + 52 BatchNorms x 3 buffers
    (running_mean, running_var, num_batches_tracked); 569 without num_batches_tracked. Parameters
    (what "267.1 M" counts; buffers excluded) = 267,136,704. (A count of 565 keys does not fit any of these.)"""
    fx = load_fixture()
    keys = fx["keys"]
    n_bn = sum(k.endswith("num_batches_tracked") for k, _ in keys)
    buffers = {k for k, _ in keys if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    params = [(k, s) for k, s in keys if k not in buffers]
    assert (len(keys), len(params), n_bn) == (621, 465, 52)
    assert sum(math.prod(s) for _, s in params) == 267_136_704
    assert fx["counts"]["state_dict_keys"] == len(keys) and fx["counts"]["parameters"] == 267_136_704
    assert len({k for k, _ in keys}) == len(keys)


def test_encoder_state_dict_matches_official_fixture():
    with torch.device("meta"):
        enc = GradualStyleEncoder()
    ours = [[k, list(v.shape)] for k, v in enc.state_dict().items()]
    assert ours == load_fixture()["keys"]  # same names, shapes and order
    assert sum(p.numel() for p in enc.parameters()) == 267_136_704


def official_checkpoint(tmp_path, keys=None, opts=None, latent_avg=True, decoder=None) -> Path:
    decoder = decoder or StandInGenerator(1024, 18, 512)
    state = marked(keys or load_fixture()["keys"], "encoder.")
    state |= {"decoder." + k: v for k, v in decoder.state_dict().items()}
    ckpt = {"state_dict": state, "opts": opts if opts is not None else {
        "encoder_type": "GradualStyleEncoder", "input_nc": 3, "label_nc": 0, "output_size": 1024,
        "start_from_latent_avg": True, "learn_in_w": False}}
    if latent_avg:
        ckpt["latent_avg"] = torch.arange(18 * 512, dtype=torch.float32).view(18, 512)
    path = tmp_path / "psp_ffhq_encode.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("opts", [None, {"encoder_type": "GradualStyleEncoder", "start_from_latent_avg": True}])
def test_official_checkpoint_loads_strictly(tmp_path, opts):
    """Older pSp opts lack output_size/input_nc: defaults 1024 / 3, as pSp's inference script."""
    decoder = StandInGenerator(1024, 18, 512)
    path = official_checkpoint(tmp_path, opts=opts, decoder=decoder)
    psp = PSP.from_official_checkpoint(path, resolution=256, decoder=StandInGenerator(1024, 18, 512))
    assert not psp.training
    for i, (k, v) in enumerate(psp.encoder.state_dict().items()):
        assert v.flatten()[0].item() == i, k  # every tensor landed under its own name
    assert torch.equal(psp.decoder.proj.weight, decoder.proj.weight)
    assert torch.equal(psp.latent_avg, torch.arange(18 * 512, dtype=torch.float32).view(18, 512))
    if opts is None:
        with torch.inference_mode():
            img = psp(torch.zeros(1, 3, 256, 256))
        assert img.shape == (1, 3, 256, 256)  # 1024 px generator pooled to 256


def test_official_checkpoint_without_latent_avg(tmp_path):
    """pSp adds latent_avg to every code when its opts say start_from_latent_avg: a file that says so but
    lacks the key is refused, naming it; one whose opts turn it off loads without it."""
    path = official_checkpoint(tmp_path, latent_avg=False)
    with pytest.raises(ValueError, match="'latent_avg'"):
        PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512))
    opts = {"encoder_type": "GradualStyleEncoder", "input_nc": 3, "output_size": 1024, "start_from_latent_avg": False}
    path = official_checkpoint(tmp_path, latent_avg=False, opts=opts)
    assert PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512)).latent_avg is None


@pytest.mark.parametrize("key,shape", [
    ("styles.17.linear.weight", [512, 256]),
    ("input_layer.0.weight", [64, 4, 3, 3]),
])
def test_official_checkpoint_wrong_shape_names_key(tmp_path, key, shape):
    keys = [[k, shape if k == key else s] for k, s in load_fixture()["keys"]]
    path = official_checkpoint(tmp_path, keys=keys)
    with pytest.raises(LOAD_ERRORS, match=key.replace(".", r"\.")):
        PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512))


def test_official_checkpoint_missing_and_extra_keys_named(tmp_path):
    keys = load_fixture()["keys"]
    path = official_checkpoint(tmp_path, keys=[e for e in keys if e[0] != "latlayer1.bias"])
    with pytest.raises(LOAD_ERRORS, match=r"latlayer1\.bias"):
        PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512))
    path = official_checkpoint(tmp_path, keys=keys + [["styles.18.linear.bias", [512]]])
    with pytest.raises(LOAD_ERRORS, match=r"styles\.18\.linear\.bias"):
        PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512))


def test_official_checkpoint_rejects_other_encoder_types(tmp_path):
    path = official_checkpoint(tmp_path, opts={"encoder_type": "BackboneEncoderUsingLastLayerIntoW"})
    with pytest.raises(ValueError, match="GradualStyleEncoder"):
        PSP.from_official_checkpoint(path, decoder=StandInGenerator(1024, 18, 512))


def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="psp_ffhq_encode.pt") as err:
        PSP.from_official_checkpoint(tmp_path / "nope.pt")
    assert "nope.pt" in str(err.value) and "drive.google.com" in str(err.value)
    with pytest.raises(FileNotFoundError, match="model_ir_se50.pth") as err:
        load_irse50_backbone(small_encoder(), tmp_path / "ir.pth")
    assert "ir.pth" in str(err.value)


# ---------------------------------------------------------------- ArcFace IR-SE-50 initialisation


def arcface_file(tmp_path, width_ok=True) -> Path:
    """model_ir_se50.pth layout: input_layer.* and body.* (as the fixture) + the output_layer.* head
    (BatchNorm2d, Dropout, Flatten, Linear, affine BatchNorm1d: pSp's Backbone(112, 50, 'ir_se'))."""
    keys = [e for e in load_fixture()["keys"] if e[0].startswith(("input_layer.", "body."))]
    head = [["output_layer.0." + n, [512]] for n in ("weight", "bias", "running_mean", "running_var")]
    head += [["output_layer.0.num_batches_tracked", []], ["output_layer.3.weight", [512, 512 * 7 * 7]],
             ["output_layer.3.bias", [512]], ["output_layer.4.weight", [512]], ["output_layer.4.bias", [512]],
             ["output_layer.4.running_mean", [512]],
             ["output_layer.4.running_var", [512]], ["output_layer.4.num_batches_tracked", []]]
    sd = {k: v for k, v in marked(keys + head).items() if k.startswith(("input", "body"))}
    sd |= {k: torch.zeros(s) if s else torch.tensor(0) for k, s in head}
    path = tmp_path / "model_ir_se50.pth"
    torch.save(sd, path)
    return path


@pytest.mark.parametrize("input_nc", [3, 4])
def test_irse50_backbone_initialises_body(tmp_path, input_nc):
    path = arcface_file(tmp_path)
    enc = GradualStyleEncoder(n_styles=1, input_nc=input_nc)  # heads are most of the size; 1 is enough here
    head_before = enc.styles[0].linear.weight.clone()
    loaded = load_irse50_backbone(enc, path)
    fixture = [k for k, _ in load_fixture()["keys"] if k.startswith(("input_layer.", "body."))]
    assert sorted(loaded) == sorted(fixture)
    sd = enc.state_dict()
    for i, k in enumerate(fixture):
        if k != "input_layer.0.weight":
            assert sd[k].flatten()[0].item() == i, k
    w = sd["input_layer.0.weight"]
    assert w.shape == (64, input_nc, 3, 3)
    assert (w[:, :3] == 0).all()  # the fixture's first tensor is the constant 0 ...
    if input_nc == 4:
        assert (w[:, 3] == 0).all()  # ... and the mask channel starts at zero
    assert torch.equal(enc.styles[0].linear.weight, head_before)


def test_irse50_backbone_input_rgb_weights_copied(tmp_path):
    path = arcface_file(tmp_path)
    sd = torch.load(path, weights_only=True)
    sd["input_layer.0.weight"] = torch.randn(64, 3, 3, 3)
    torch.save(sd, path)
    enc = GradualStyleEncoder(n_styles=1, input_nc=4)
    load_irse50_backbone(enc, path)
    assert torch.equal(enc.input_layer[0].weight[:, :3], sd["input_layer.0.weight"])
    assert (enc.input_layer[0].weight[:, 3] == 0).all()


def test_irse50_backbone_wrong_width_names_key(tmp_path):
    path = arcface_file(tmp_path)
    with pytest.raises(LOAD_ERRORS, match=r"body\.|input_layer\."):
        load_irse50_backbone(small_encoder(256, 14), path)


def test_arcface_loads_the_official_key_layout_strictly(tmp_path):
    from isfr.models.arcface import load_arcface

    net = load_arcface(arcface_file(tmp_path))
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    sd = torch.load(arcface_file(tmp_path), weights_only=True)
    del sd["output_layer.4.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(LOAD_ERRORS, match=r"(?s)cut\.pth.*output_layer\.4\.weight"):
        load_arcface(tmp_path / "cut.pth")
    with pytest.raises(FileNotFoundError, match="model_ir_se50.pth"):
        load_arcface(tmp_path / "absent.pth")


def test_identity_loss_is_zero_for_the_same_face_and_trains_only_the_output(tmp_path):
    from isfr import losses as L
    from isfr.models.arcface import ArcFace, face_crop_112, identity_loss, load_arcface

    torch.manual_seed(0)
    ref = ArcFace().eval()
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, tmp_path / "a.pth")  # DataParallel prefix
    net = load_arcface(tmp_path / "a.pth")
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    assert face_crop_112(y).shape == (2, 3, 112, 112) and face_crop_112(torch.zeros(1, 3, 1024, 1024)).shape == (1, 3, 112, 112)
    e = net(face_crop_112(y))
    assert e.shape == (2, 512) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(e, ref(face_crop_112(y)))
    assert identity_loss(net, y, y).item() == pytest.approx(0.0, abs=1e-5)
    y_hat = y.flip(-1).clone().requires_grad_(True)
    target = y.clone().requires_grad_(True)
    loss = identity_loss(net, y_hat, target)
    loss.backward()
    assert loss.item() > 1e-4 and y_hat.grad.abs().sum() > 0 and target.grad is None
    total, t = L.psp_encoder_loss(y_hat.detach(), y, torch.zeros(2, 2, 4), vgg=lambda x: [x],
                                  id_fn=lambda a, b: identity_loss(net, a, b), cfg=L.PSPLossConfig(id_lambda=0.1))
    assert t["id"].item() == pytest.approx(loss.item(), rel=1e-4)


# ---------------------------------------------------------------- wrapper


def test_psp_forward_pools_to_working_resolution():
    torch.manual_seed(0)
    psp = PSP(small_encoder(64, 10), StandInGenerator(64, 10), resolution=32).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        img, lat = psp(x, return_latents=True)
        full = psp(x, resize=False)
    assert img.shape == (2, 3, 32, 32) and full.shape == (2, 3, 64, 64)
    assert torch.allclose(img, F.adaptive_avg_pool2d(full, 32))
    assert lat.shape == (2, 10, 32)
    same = PSP(psp.encoder, psp.decoder, resolution=64).eval()
    with torch.no_grad():
        assert torch.equal(same(x), full)  # no pooling when generator size == resolution


def test_latent_avg_is_added():
    torch.manual_seed(0)
    enc = small_encoder(64, 10).eval()
    x = torch.randn(1, 3, 64, 64)
    avg = torch.randn(10, 32)
    with torch.no_grad():
        codes = enc(x)
        assert torch.allclose(PSP(enc, StandInGenerator(64, 10), avg, 64).encode(x), codes + avg)
        one = torch.randn(32)  # (style_dim,) is repeated over the styles
        assert torch.allclose(PSP(enc, StandInGenerator(64, 10), one, 64).encode(x), codes + one)
        assert torch.equal(PSP(enc, StandInGenerator(64, 10), None, 64).encode(x), codes)
        _, lat = PSP(enc, StandInGenerator(64, 10), avg, 64)(x, return_latents=True)
        assert torch.allclose(lat, codes + avg)  # the generator receives the shifted codes
    with pytest.raises(ValueError):
        PSP(enc, StandInGenerator(64, 10), torch.randn(3, 32), 64)


def test_psp_checks_generator_compatibility():
    with pytest.raises(ValueError, match="n_styles"):
        PSP(small_encoder(64, 10), StandInGenerator(64, 12))
    with pytest.raises(ValueError, match="smaller"):
        PSP(small_encoder(64, 10), StandInGenerator(64, 10), resolution=128)


def test_psp_with_stylegan2_generator():
    torch.manual_seed(0)
    g = Generator(64, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)
    psp = PSP(small_encoder(64, 10), g, latent_avg=torch.zeros(32), resolution=32).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        a, b = psp(x), psp(x)
        img, lat = psp(x, return_latents=True)
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b)  # randomize_noise=False: deterministic
    assert torch.equal(img, a) and lat.shape == (2, 10, 32)


def test_official_checkpoint_builds_config_f_decoder(tmp_path):
    """Without ``decoder``: Generator(1024, 512, 8, channel_multiplier=2), loaded strictly."""
    with torch.device("meta"):
        shapes = [[k, list(v.shape)] for k, v in Generator(1024, 512, 8, channel_multiplier=2).state_dict().items()]
    path = official_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    ckpt["state_dict"] |= marked(shapes, "decoder.")
    torch.save(ckpt, path)
    psp = PSP.from_official_checkpoint(path)
    assert psp.decoder.n_latent == 18 and psp.resolution == 256
    for i, (k, v) in enumerate(psp.decoder.state_dict().items()):
        assert v.flatten()[0].item() == i, k
    del ckpt["state_dict"]["decoder.style.1.weight"]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"style\.1\.weight"):
        PSP.from_official_checkpoint(path)
