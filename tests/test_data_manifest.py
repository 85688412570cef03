"""Evaluation manifest: determinism, hash, buckets, round trip, procedural and NVIDIA masks."""

from __future__ import annotations

import pytest

from isfr.data import BUCKETS, bucket_of, load_manifest_mask, make_manifest, manifest_hash, paper_range_of
from isfr.data import read_manifest, write_manifest

IMAGES = [f"img{i:03d}" for i in range(6)]


def test_procedural_manifest_deterministic():
    a, b = make_manifest(IMAGES, None, 32, seed=0), make_manifest(IMAGES, None, 32, seed=0)
    assert manifest_hash(a) == manifest_hash(b) and len(manifest_hash(a)) == 64
    assert manifest_hash(make_manifest(IMAGES, None, 32, seed=1)) != manifest_hash(a)
    assert len(a) == len(IMAGES) * 6
    assert list(a["image"][:6]) == [IMAGES[0]] * 6 and list(a["bucket"][:6]) == list(BUCKETS)
    for row in a.itertuples():
        assert bucket_of(row.ratio) == row.bucket and row.paper_range == paper_range_of(row.ratio)
        assert row.mask.startswith(f"procedural:{row.bucket}:")
        assert load_manifest_mask(row.mask, 32, None).mean() == pytest.approx(row.ratio)


def test_write_read_roundtrip(tmp_path):
    df = make_manifest(IMAGES, None, 32, seed=0)
    path = tmp_path / "sub" / "manifest.csv"
    h = write_manifest(df, path)
    back = read_manifest(path)
    assert h == manifest_hash(df) == manifest_hash(back)
    assert [p.name for p in path.parent.iterdir()] == ["manifest.csv"]
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        read_manifest(tmp_path / "nothing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv"):
        read_manifest(tmp_path / "bad.csv")


def test_nvidia_name_needs_masks():
    with pytest.raises(ValueError, match="NVIDIA"):
        load_manifest_mask("01234.png", 32, None)


@pytest.mark.shared_data
def test_real_manifest(nvidia_256):
    from isfr.data import celeba

    names = celeba.celeba_names(nvidia_256.folder.parents[1] / "celeba", "test")
    a = make_manifest(names, nvidia_256, 256, seed=0)
    assert len(a) == 660 * 6 and set(a["bucket"]) == set(BUCKETS)
    assert a.groupby("image")["bucket"].nunique().eq(6).all()
    assert manifest_hash(a) == manifest_hash(make_manifest(names, nvidia_256, 256, seed=0))
    assert manifest_hash(a) != manifest_hash(make_manifest(names, nvidia_256, 256, seed=1))
    assert (a["bucket"] == [bucket_of(r) for r in a["ratio"]]).all()
    assert a.groupby("bucket")["mask"].nunique().min() == 660  # no mask repeats within a bucket
    assert set(a["paper_range"]) == {"", "20-40", "40-60"}
    with pytest.raises(ValueError, match="256px"):
        make_manifest(names, nvidia_256, 128)
