"""Backbone loading from torchvision-format files in the hub cache (the tests write the files)."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from isfr.models import backbones as B

from conftest import ALEX_CONVS, write_alexnet_file, write_vgg_file


def test_hub_path_honours_torch_home(torch_home):
    assert B.hub_checkpoint_path(B.VGG16_FILE) == torch_home / "hub" / "checkpoints" / B.VGG16_FILE


def test_missing_vgg_file_error_names_path_and_file(torch_home):
    with pytest.raises(FileNotFoundError) as e:
        B.load_vgg16_features("imagenet")
    msg = str(e.value)
    assert "torch.hub.get_dir()/checkpoints/vgg16-397923af.pth" in msg  # as the tables that quote it print it
    assert str(torch_home) not in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg


def test_missing_alexnet_file_error_names_path(torch_home):
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth") as e:
        B.load_alexnet_state_dict()
    assert "torch.hub.get_dir()/checkpoints/" in str(e.value) and str(torch_home) not in str(e.value)


def _manual_vgg(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    mean = torch.tensor(B.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(B.IMAGENET_STD).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std

    def conv(h, i):
        return F.relu(F.conv2d(h, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1))

    h = F.max_pool2d(conv(conv(h, 0), 2), 2)
    p1 = h
    h = F.max_pool2d(conv(conv(h, 5), 7), 2)
    p2 = h
    h = F.max_pool2d(conv(conv(conv(h, 10), 12), 14), 2)
    return [p1, p2, h]


def test_vgg_loads_file_and_matches_manual_forward(torch_home):
    sd = write_vgg_file(torch_home)
    vgg = B.load_vgg16_features("imagenet")
    assert vgg.random_features is False and vgg.standin  # the file the test wrote fails the name's sha256
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    got, want = vgg(x), _manual_vgg(x, sd)
    assert [t.shape[1:] for t in got] == [(64, 16, 16), (128, 8, 8), (256, 4, 4)]
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-5)


def test_vgg_file_missing_key_is_reported(torch_home):
    sd = write_vgg_file(torch_home)
    del sd["features.14.bias"]
    torch.save(sd, B.hub_checkpoint_path(B.VGG16_FILE))
    with pytest.raises(ValueError, match="features.14.bias"):
        B.load_vgg16_features("imagenet")


def test_vgg_random_mode_sets_flag_seeded_and_keeps_global_rng(torch_home):
    with pytest.raises(ValueError, match="allow_random"):
        B.load_vgg16_features("random")
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = B.load_vgg16_features("random", allow_random=True, seed=7)
    assert torch.equal(before, torch.random.get_rng_state())
    b = B.load_vgg16_features("random", allow_random=True, seed=7)
    c = B.load_vgg16_features("random", allow_random=True, seed=8)
    assert a.random_features and a.label == "random VGG features"
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert all(torch.equal(p, q) for p, q in zip(a(x), b(x)))
    assert not torch.equal(a(x)[2], c(x)[2])


def test_vgg_imagenet_falls_back_to_random_only_when_allowed(torch_home):
    vgg = B.load_vgg16_features("imagenet", allow_random=True)
    assert vgg.random_features is True


def test_alexnet_state_dict_from_file(torch_home):
    sd = write_alexnet_file(torch_home)
    got = B.load_alexnet_state_dict()
    assert set(got) == {f"{i}.{p}" for i in ALEX_CONVS for p in ("weight", "bias")}
    assert torch.equal(got["6.weight"], sd["features.6.weight"])


def test_non_release_files_refused_without_the_standin_flag(torch_home, monkeypatch):
    """torchvision's names carry a sha256 prefix: a file that fails it (a stand-in) is refused by default,
    naming the file, the URL and the flag; accepted with the flag and then labelled a stand-in."""
    from isfr.models.pretrained import STANDIN_ENV

    write_vgg_file(torch_home)
    write_alexnet_file(torch_home)
    monkeypatch.delenv(STANDIN_ENV)
    with pytest.raises(ValueError, match="sha256") as e:
        B.load_vgg16_features("imagenet", allow_random=True)  # no silent fallback to random either
    assert B.VGG16_FILE in str(e.value) and B.VGG16_URL in str(e.value) and STANDIN_ENV in str(e.value)
    with pytest.raises(ValueError, match=B.ALEXNET_FILE):
        B.load_alexnet_state_dict()
    monkeypatch.setenv(STANDIN_ENV, "1")
    vgg = B.load_vgg16_features("imagenet")
    assert vgg.standin and not vgg.random_features and "stand-in" in vgg.label


def test_release_file_passes_the_hash_check(tmp_path, monkeypatch):
    """A file whose name prefixes its sha256 is the release: loaded without the flag, not a stand-in."""
    import hashlib

    from isfr.models.pretrained import STANDIN_ENV, is_standin

    monkeypatch.delenv(STANDIN_ENV, raising=False)
    sd = write_vgg_file(tmp_path)  # written under tmp_path/hub/checkpoints/<VGG16_FILE>
    src = tmp_path / "hub" / "checkpoints" / B.VGG16_FILE
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    release = tmp_path / f"vgg16-{digest[:8]}.pth"
    src.rename(release)
    vgg = B.load_vgg16_features("imagenet", path=release)
    assert not vgg.standin and not is_standin(release) and vgg.label == "ImageNet VGG-16 features"
    assert torch.equal(vgg.slices[0][0].weight, sd["features.0.weight"])
