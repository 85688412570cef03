"""Stand-in weight files (isfr.models.pretrained): refused without the flag, never mixed with other files' runs."""
from __future__ import annotations

import shutil

import pytest
import torch

from isfr.models import pretrained as W
from isfr.models import standins as S
from isfr.experiments.config import get_preset
from isfr.models.arcface import ArcFace, load_arcface
from isfr.models.psp import PSP
from isfr.experiments.runs import provenance, run_dir, run_key, run_weights, weights_identity
from isfr.experiments.trained import trained_unet
from isfr.experiments.pipeline import train_unet

from conftest import write_vgg_file

UNET = {"schedule.unet_steps": 2, "schedule.ckpt_every": 1, "schedule.val_every": 1, "schedule.val_images": 1,
        "schedule.log_every": 1, "data.limit": 8, "data.synthetic_train": 8, "data.synthetic_eval": 2}


def test_psp_standin_is_refused_without_the_flag_and_named(tmp_path, monkeypatch):
    """The marker key is checked before anything else is read: the message names file, key and flag."""
    path = tmp_path / "psp_ffhq_encode.pt"
    torch.save({"state_dict": {}, "opts": {}, W.STANDIN_KEY: W.STANDIN_NOTE}, path)
    monkeypatch.delenv(W.STANDIN_ENV, raising=False)
    with pytest.raises(ValueError, match="stand-in pSp checkpoint") as e:
        PSP.from_official_checkpoint(path)
    assert str(path) in str(e.value) and W.STANDIN_ENV in str(e.value)
    assert W.is_standin(path)
    monkeypatch.setenv(W.STANDIN_ENV, "1")  # accepted: it goes on to the (here empty) state_dict
    with pytest.raises(ValueError, match="missing keys"):
        PSP.from_official_checkpoint(path)


def test_psp_standin_writer_matches_the_official_layout(tmp_path, monkeypatch):
    """A reduced stand-in (test size) in pSp's layout: strict load of the decoder, latent_avg = mean W."""
    from isfr.models.stylegan2 import Generator

    path = S.write_psp_standin(tmp_path / "p.pt", size=32, style_dim=16, n_mlp=1, channel_multiplier=1,
                               channel_max=8, width=0.125)
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"state_dict", "opts", "latent_avg", W.STANDIN_KEY}
    assert ckpt["opts"]["output_size"] == 32 and ckpt["latent_avg"].shape == (8, 16)  # 2 log2(32) - 2 styles
    keys = ckpt["state_dict"]
    assert any(k.startswith("encoder.styles.7.") for k in keys) and any(k.startswith("decoder.convs.") for k in keys)
    dec = Generator(32, 16, 1, channel_multiplier=1, channel_max=8)
    dec.load_state_dict({k[8:]: v for k, v in keys.items() if k.startswith("decoder.")}, strict=True)
    again = S.write_psp_standin(tmp_path / "q.pt", size=32, style_dim=16, n_mlp=1, channel_multiplier=1,
                                channel_max=8, width=0.125)
    assert torch.equal(torch.load(again, weights_only=True)["latent_avg"], ckpt["latent_avg"])  # seeded


def test_compact_standins_keep_keys_shapes_and_load_strictly(tmp_path):
    """``compact=True`` (the cut-down dry run on a small disk): same keys, shapes and dtypes in a fraction of
    the bytes; element [i, j, ...] is the (i + j + ...)-th value of the full tensor; pSp's encoder and decoder
    load it strictly and run."""
    from torchvision.models import alexnet

    from isfr.models.backbones import ALEXNET_FILE
    from isfr.models.psp import GradualStyleEncoder
    from isfr.models.stylegan2 import Generator

    t = torch.arange(24.0).reshape(2, 3, 4)
    c = S.compact_tensor(t)
    assert c.shape == t.shape and c[1, 2, 3] == 6.0 and c[0, 1, 0] == 1.0 and c.untyped_storage().nbytes() == 7 * 4
    ints = torch.tensor([3, 1])
    assert S.compact_tensor(ints) is ints  # integer tensors (BatchNorm's num_batches_tracked) as they are
    path = S.write_torchvision_standin(ALEXNET_FILE, tmp_path, compact=True)
    assert path.stat().st_size < 2**20  # the full AlexNet file is 233 MiB
    small, reference = torch.load(path, weights_only=True), alexnet(weights=None).state_dict()
    assert small.keys() == reference.keys()
    for k, v in reference.items():
        assert small[k].shape == v.shape and small[k].dtype == v.dtype, k
    kw = dict(size=32, style_dim=16, n_mlp=1, channel_multiplier=1, channel_max=8, width=0.125)
    full, small = S.write_psp_standin(tmp_path / "full.pt", **kw), S.write_psp_standin(tmp_path / "small.pt", **kw,
                                                                                          compact=True)
    assert small.stat().st_size * 3 < full.stat().st_size
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (full, small))
    w = "decoder.convs.0.conv.weight"
    assert b[w].shape == a[w].shape and b[w][0, 1, 2, 2, 1] == a[w].flatten()[1 + 2 + 2 + 1]
    dec, enc = Generator(32, 16, 1, channel_multiplier=1, channel_max=8), GradualStyleEncoder(input_nc=3, n_styles=8,
                                                                                              style_dim=16, width=0.125)
    for prefix, module in (("decoder.", dec), ("encoder.", enc)):
        module.load_state_dict({k[len(prefix):]: v for k, v in b.items() if k.startswith(prefix)}, strict=True)
    assert torch.isfinite(dec([torch.randn(1, 16)])[0]).all()


def test_arcface_standin_refused_without_the_flag(tmp_path, monkeypatch):
    path = S.write_arcface_standin(tmp_path / "model_ir_se50.pth", compact=True)  # compact: 168 MB less disk
    monkeypatch.delenv(W.STANDIN_ENV, raising=False)
    with pytest.raises(ValueError, match="stand-in ArcFace"):
        load_arcface(path)
    plain = tmp_path / "plain.pth"
    # the official layout, no marker: not a stand-in
    torch.save({k: S.compact_tensor(v) for k, v in ArcFace().state_dict().items()}, plain)
    assert not W.is_standin(plain) and W.is_standin(path)
    monkeypatch.setenv(W.STANDIN_ENV, "1")
    assert isinstance(load_arcface(path), ArcFace)


def test_torchvision_standins_fail_the_release_hash(tmp_path, monkeypatch):
    from isfr.models.backbones import ALEXNET_FILE, load_alexnet_state_dict

    path = S.write_torchvision_standin(ALEXNET_FILE, tmp_path, compact=True)
    assert path == tmp_path / "hub" / "checkpoints" / ALEXNET_FILE and W.is_standin(path)
    assert "classifier.6.weight" in torch.load(path, weights_only=True)  # the whole torchvision state_dict
    monkeypatch.delenv(W.STANDIN_ENV, raising=False)
    with pytest.raises(ValueError, match="sha256"):
        load_alexnet_state_dict(path)


def test_a_run_trained_on_one_weight_file_is_not_reused_with_another(torch_home, tmp_path, monkeypatch):
    """The sha256 of the VGG file in the hub cache is in the run key and the records: another file (a
    stand-in of another seed, or the real one) finds no run; a run folder moved under the other key is
    refused by name; the provenance line says stand-in."""
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    P = get_preset("smoke", **UNET)
    key_none = run_key(P)  # no pretrained file: the key of the overrides alone
    assert weights_identity(P) == {} and W.STANDIN_NOTE not in provenance(P)
    write_vgg_file(torch_home, seed=0)
    key_a = run_key(P)
    assert key_a != key_none and weights_identity(P) == {"vgg16": W.sha256_file(run_weights(P)["vgg16"])[:12]}
    assert W.STANDIN_NOTE in provenance(P)
    assert train_unet(P, progress=False).finished
    folder_a = run_dir(P, "unet")
    assert trained_unet(P) is not None
    write_vgg_file(torch_home, seed=1)  # other weights, same path
    assert run_key(P) not in (key_none, key_a) and run_dir(P, "unet") != folder_a
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trained_unet(P)
    shutil.copytree(folder_a, run_dir(P, "unet"))  # a folder moved under the other key
    with pytest.raises(ValueError, match="pretrained files"):
        trained_unet(P)


def test_standins_written_under_one_folder(tmp_path, monkeypatch):
    """write_standins names every file it wrote, all under the folder given (never the work tree); the
    pSp writer is exercised above at test size, so only its path is checked here (the real one is 1 GB)."""
    calls = {}
    monkeypatch.setattr(S, "write_psp_standin", lambda path, seed=0, compact=False: calls.setdefault("psp", path))
    monkeypatch.setattr(S, "write_torchvision_standin", lambda name, home, seed=0, compact=False: calls.setdefault(name, home))
    out = S.write_standins(tmp_path, seed=3, compact=True)
    assert set(out) == {"psp", "arcface", "vgg16", "alexnet"}
    assert out["psp"] == tmp_path / "weights" / "psp_ffhq_encode.pt" and out["arcface"].is_file()
    assert calls["vgg16-397923af.pth"] == tmp_path / "torch"
