"""Image loading: corrupt files, exotic modes, square preprocessing, tensor range."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from isfr.data.images import image_to_tensor, load_rgb, load_square, tensor_to_image, to_square


def _face(w: int = 178, h: int = 218) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def test_truncated_jpeg_names_file(tmp_path):
    path = tmp_path / "broken.jpg"
    _face().save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="broken.jpg.*re-download"):
        load_rgb(path)
    with pytest.raises(ValueError, match="broken.jpg"):
        load_square(path, 64)


def test_truncated_png_and_garbage(tmp_path):
    png = tmp_path / "cut.png"
    _face().save(png)
    png.write_bytes(png.read_bytes()[:-200])
    with pytest.raises(ValueError, match="cut.png"):
        load_rgb(png)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="junk.jpg.*remove"):
        load_rgb(junk)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_rgb(tmp_path / "nope.jpg")


def test_grayscale_and_palette(tmp_path):
    Image.new("L", (10, 12), 77).save(tmp_path / "g.png")
    img = load_rgb(tmp_path / "g.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (77, 77, 77)
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 200, 10, 30])
    pal.save(tmp_path / "p.png")
    assert load_rgb(tmp_path / "p.png").getpixel((3, 3)) == (200, 10, 30)


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255  # red under ...
    arr[:2, :, 3] = 255  # opaque top half, fully transparent bottom half
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    img = load_rgb(tmp_path / "a.png")
    assert img.getpixel((0, 0)) == (255, 0, 0)
    assert img.getpixel((0, 3)) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(tmp_path / "c.jpg", quality=100)
    r, g, b = load_rgb(tmp_path / "c.jpg").getpixel((8, 8))
    assert r > 240 and g < 15 and b > 240  # magenta


def test_16bit_png_scaled(tmp_path):
    arr = np.full((6, 6), 65535, np.uint16)
    arr[0, 0] = 257 * 100
    Image.fromarray(arr).save(tmp_path / "d.png")
    img = load_rgb(tmp_path / "d.png")
    assert img.mode == "RGB" and img.getpixel((1, 1)) == (255, 255, 255) and img.getpixel((0, 0)) == (100,) * 3


def test_center_crop_keeps_aspect_resize_squashes():
    # a 100x200 image: left half black, right half white, top 40 rows red
    arr = np.zeros((200, 100, 3), np.uint8)
    arr[:, 50:] = 255
    arr[:40] = (255, 0, 0)
    img = Image.fromarray(arr)
    crop = np.asarray(to_square(img, 20, "center_crop"))
    squash = np.asarray(to_square(img, 20, "resize"))
    assert crop.shape == squash.shape == (20, 20, 3)
    assert (crop[0, 0] == 0).all()  # the central square (rows 50-150) is below the red band
    assert (squash[0, 0] == (255, 0, 0)).all()  # the full frame keeps it
    with pytest.raises(ValueError, match="preprocess"):
        to_square(img, 20, "stretch")


@pytest.mark.parametrize("res", [64, 128, 256])
def test_load_square_jpeg_draft_matches_full_decode(tmp_path, res):
    path = tmp_path / "f.jpg"
    smooth = np.linspace(0, 255, 178)[None, :, None] * np.ones((218, 1, 3))
    Image.fromarray(smooth.astype(np.uint8)).save(path, quality=95)
    fast = np.asarray(load_square(path, res), np.float32)
    ref = np.asarray(to_square(load_rgb(path), res), np.float32)
    assert fast.shape == (res, res, 3)
    assert np.abs(fast - ref).mean() < 2.0


def test_tensor_range_and_roundtrip():
    img = _face(32, 32)
    t = image_to_tensor(img)
    assert t.shape == (3, 32, 32) and t.dtype.is_floating_point
    assert t.min() >= -1 and t.max() <= 1
    full = image_to_tensor(np.stack([np.arange(256, dtype=np.uint8)] * 3, -1)[None])
    assert full.min() == -1 and full.max() == 1
    assert (np.asarray(tensor_to_image(t)) == np.asarray(img)).all()
