"""``isfr inpaint`` on the inputs a new user tries: exit code, one stderr line naming the file, the cause and a
fix, nothing written and nothing changed on an error; phone photos (EXIF orientation), several faces, large
photos, folder mode; the arguments of ``isfr train`` / ``reproduce`` / ``ladder`` / ``export`` / ``evaluate``
refused before any work; umask, 0/1 masks, one-line warnings."""
from __future__ import annotations

import functools
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageFilter, ImageOps

from isfr.apps import cli
from isfr.experiments.config import get_preset
from isfr.data import draw_face
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig

RES = 64  # the smoke preset's resolution
BOX = (0.3, 0.35, 0.7, 0.65)  # the hole: x0, y0, x1, y1 as fractions


def _save_model(path: Path, **extra) -> Path:
    torch.manual_seed(0)
    ISFRNet(ISFRNetConfig.from_preset(get_preset("smoke"))).save(path, **extra)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A random smoke-size ISFRNet in a file without ``preset`` / ``schedule`` (an old file: no training warning)."""
    return _save_model(tmp_path_factory.mktemp("ckpt") / "isfrnet.pt")


class Ran(NamedTuple):
    rc: int
    err: list[str]
    out: list[str]


@pytest.fixture
def run(monkeypatch, capsys):
    """``cli.main(argv)`` -> (exit code, stderr lines, stdout lines), warnings printed on stderr as the command
    line does; an argparse refusal (``SystemExit``) gives its exit code."""
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # main installs its own; undone after
    monkeypatch.setattr(warnings, "showwarning", lambda msg, cat, fn, ln, file=None, line=None: sys.stderr.write(
        warnings.formatwarning(msg, cat, fn, ln, line)))

    def go(*argv: object) -> Ran:
        capsys.readouterr()
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        got = capsys.readouterr()
        return Ran(rc, got.err.splitlines(), got.out.splitlines())
    return go


# ---------------------------------------------------------------- input files
def _face(size: tuple[int, int] = (RES, RES)) -> Image.Image:
    img = draw_face(0, 0, RES)
    return img if size == (RES, RES) else img.resize(size, Image.Resampling.BICUBIC)


def _box(size: tuple[int, int] = (RES, RES), hole: int = 255) -> np.ndarray:
    w, h = size
    m = np.zeros((h, w), np.uint8)
    m[int(BOX[1] * h):int(BOX[3] * h), int(BOX[0] * w):int(BOX[2] * w)] = hole
    return m


def _png16(arr: np.ndarray, path: Path) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _png(arr: np.ndarray, path: Path) -> Path:
    Image.fromarray(arr).save(path)
    return path


def _truncated(data: bytes, path: Path) -> Path:
    path.write_bytes(data[:len(data) // 2])
    return path


@dataclass
class Case:
    """Files made in ``tmp``: ``make(tmp)`` -> (photo, mask, extra argv); then the expected outcome."""
    make: Callable[[Path], tuple[Path, Path, list[str]]]
    rc: int
    line: str | tuple[str, ...] | None = None  # regex of the one stderr line (error, or warning when rc is 0), or of
    # each line in order; None: silent
    out: str = "out.png"
    written: tuple[str, ...] = ("out.png",)  # new files when rc is 0 (or in folder mode)
    expect: Callable[[Path, Path, Path], None] | None = None  # (photo, mask, out) -> asserts on the result
    checkpoint: Callable[[Path, Path], Path] | None = None  # (tmp, good ckpt) -> the ckpt to pass
    preexisting: dict[str, bytes] | None = None  # files there before; default: an old out.png when rc is not 0
    overwrite: bool | None = None  # pass --overwrite; default: when a file was there before and rc is not 0
    stdout: str | None = None  # regex one stdout line must match

    def before(self) -> dict[str, bytes]:
        if self.preexisting is not None:
            return self.preexisting
        return {"out.png": b"an old result"} if self.rc != 0 else {}


def _photo_mask(photo: Image.Image | Callable[[Path], Path], mask: np.ndarray | Callable[[Path], Path] | None = None,
                args: tuple[str, ...] = ("--no-align",), photo_name: str = "photo.png", mask_name: str = "mask.png"):
    def make(tmp: Path) -> tuple[Path, Path, list[str]]:
        p = photo(tmp) if callable(photo) else tmp / photo_name
        if not callable(photo):
            photo.save(p)
        if callable(mask):
            m = mask(tmp)
        else:
            m = tmp / mask_name
            Image.fromarray(_box(photo.size if isinstance(photo, Image.Image) else (RES, RES)) if mask is None
                            else mask).save(m)
        return p, m, list(args)
    return make


def _kept(expected: Callable[[Path], np.ndarray], hole: Callable[[Path], np.ndarray] | None = None,
          mean_error: float | None = None):
    """Pixels outside the hole are ``expected(photo)`` (+-1: the composite's rounding; or on average within
    ``mean_error``), inside they changed."""
    def check(photo: Path, mask: Path, out: Path) -> None:
        res, src = np.asarray(Image.open(out).convert("RGB")).astype(int), expected(photo).astype(int)
        h = hole(mask) if hole else np.asarray(Image.open(mask)) >= 128
        assert res.shape == src.shape == (RES, RES, 3)
        err = np.abs(res - src)[~h]
        assert err.max() <= 1 if mean_error is None else err.mean() <= mean_error
        assert np.abs(res - src)[h].mean() > 5  # random weights: really inpainted, not copied
    return check


def _rgb(photo: Path) -> np.ndarray:
    return np.asarray(Image.open(photo).convert("RGB"))


GREY16 = (np.add.outer(np.arange(RES), np.arange(RES)) * 500 + 1000).astype(np.uint16)
RGB16 = (np.random.default_rng(0).random((RES, RES, 3)) * 65535).astype(np.uint16)
NOISE = np.random.default_rng(2).integers(0, 256, (128, 128, 3), np.uint8)
ALPHA = np.asarray(_face().convert("RGBA")).copy()
ALPHA[:, :RES // 2, 3] = 0  # left half transparent (its stored colours are the face's)


def _alpha_expected(photo: Path) -> np.ndarray:
    out = np.asarray(_face()).copy()
    out[:, :RES // 2] = 255  # composited on white
    return out


def _model_size(photo: Path, mask: Path, out: Path) -> None:
    assert Image.open(out).size == (RES, RES)


def _copied(photo: Path, mask: Path, out: Path) -> None:
    assert out.read_bytes() == photo.read_bytes()


def _ckpt_half(tmp: Path, good: Path) -> Path:
    return _truncated(good.read_bytes(), tmp / "half.pt")


def _ckpt_random(tmp: Path, good: Path) -> Path:
    (tmp / "random.pt").write_bytes(np.random.default_rng(1).bytes(5000))
    return tmp / "random.pt"


def _jpeg_bytes(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _text(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_text("these are my holiday notes, not a picture\n")
        return tmp / name
    return make


def _folder(tmp: Path) -> tuple[Path, Path, list[str]]:
    photos, masks = tmp / "photos", tmp / "masks"
    photos.mkdir(), masks.mkdir()
    for stem in ("a", "c"):
        _face().save(photos / f"{stem}.png")
    _text("b.jpg")(photos)
    for stem in ("a", "b", "c"):
        Image.fromarray(_box()).save(masks / f"{stem}.png")
    return photos, masks, ["--no-align"]


def _plus(make: Callable[[Path], tuple[Path, Path, list[str]]], *extra: str):
    def more(tmp: Path) -> tuple[Path, Path, list[str]]:
        photo, mask, args = make(tmp)
        return photo, mask, [*args, *extra]
    return more


def _folder_onto_file(tmp: Path) -> tuple[Path, Path, list[str]]:
    photos, masks, args = _folder(tmp)
    (photos / "b.jpg").unlink()
    return photos, masks, args


# ---------------------------------------------------------------- real faces (dlib finds them)
HEAD_HOLE = (105, 120, 155, 160)  # x0, y0, x1, y1 in pixels of _head(): nose and mouth


@functools.lru_cache(maxsize=None)
def _head() -> Image.Image:
    """The astronaut's head from scikit-image's sample photo, 260x300: dlib finds its face (about 64 px wide)."""
    from skimage import data

    return Image.fromarray(data.astronaut()).crop((95, 0, 355, 300))


def _hole_at(size: tuple[int, int], box: tuple[int, int, int, int], scale: float = 1.0) -> np.ndarray:
    m = np.zeros(size[::-1], np.uint8)
    x0, y0, x1, y1 = (round(v * scale) for v in box)
    m[y0:y1, x0:x1] = 255
    return m


def _exif_photo(tmp: Path) -> Path:
    """A phone photo: the head stored turned a quarter to the left, with the EXIF orientation 6 that viewers
    turn it back upright by."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    _head().transpose(Image.Transpose.ROTATE_90).save(tmp / "photo.jpg", quality=95, exif=exif.tobytes())
    return tmp / "photo.jpg"


def _two_faces() -> Image.Image:
    """The head, and beside it a copy at 0.8 of its size (its face at about (404, 118)), on blue."""
    big, small = _head(), _head().resize((208, 240), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (508, 300), (40, 90, 160))
    canvas.paste(big, (0, 0))
    canvas.paste(small, (300, 30))
    return canvas


def _large(tmp: Path) -> Path:
    _head().resize((1300, 1500), Image.Resampling.BICUBIC).save(tmp / "photo.jpg", quality=90)
    return tmp / "photo.jpg"


def _viewed_and_filled(photo: Path, mask: Path, out: Path) -> None:
    """The output is the photo as viewed (no orientation tag), bit-identical outside the hole, changed inside."""
    img = Image.open(out)
    assert ExifTags.Base.Orientation not in img.getexif()
    src = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert("RGB")).astype(int)
    res = np.asarray(img.convert("RGB")).astype(int)
    hole = np.asarray(Image.open(mask)) >= 128
    assert res.shape == src.shape == hole.shape + (3,)
    assert (res[~hole] == src[~hole]).all() and np.abs(res - src)[hole].mean() > 5


def _folder_with(tmp: Path, outputs: tuple[str, ...] = ()) -> tuple[Path, Path, list[str]]:
    """Photos a, b, c with masks a, c (b has none; c's mask has no hole)."""
    photos, masks = tmp / "photos", tmp / "masks"
    photos.mkdir(), masks.mkdir()
    for stem in "abc":
        _face().save(photos / f"{stem}.png")
    Image.fromarray(_box()).save(masks / "a.png")
    Image.fromarray(np.zeros((RES, RES), np.uint8)).save(masks / "c.png")
    return photos, masks, ["--no-align"]


ERR = r"^isfr inpaint: error: "
FIX_PHOTO = r"check that it opens in an image viewer and re-save it as PNG or JPEG$"
CASES: dict[str, Case] = {
    "truncated-jpeg": Case(_photo_mask(lambda t: _truncated(_jpeg_bytes(_face()), t / "photo.jpg")), 1,
                           ERR + r".*photo\.jpg: corrupt or (truncated|unreadable) image \(.*\); " + FIX_PHOTO),
    "png-alpha": Case(_photo_mask(Image.fromarray(ALPHA, "RGBA")), 0,
                      r"^warning: .*photo\.png: 50% of the photo is \(partly\) transparent; its alpha channel is not "
                      r"used: composited on white", expect=_kept(_alpha_expected)),
    "grey-16bit-png": Case(_photo_mask(Image.fromarray(GREY16)), 0,
                           expect=_kept(lambda p: np.repeat(np.rint(GREY16 / 257.0)[..., None], 3, -1))),
    "rgb-16bit-png": Case(_photo_mask(lambda t: _png16(RGB16, t / "photo.png")), 0,
                          expect=_kept(lambda p: (RGB16 / 257.0).round())),
    "cmyk-jpeg": Case(_photo_mask(_face().convert("CMYK"), photo_name="photo.jpg"), 0,  # JPEG: mean error
                      expect=_kept(lambda p: np.asarray(_face()), mean_error=4)),
    "1x1": Case(_photo_mask(Image.new("RGB", (1, 1), (200, 150, 120)), np.full((1, 1), 255, np.uint8)), 1,
                ERR + r".*photo\.png: the photo is 1x1 pixels, too small to inpaint; use a photo of at least 16x16"),
    "32x32-no-align": Case(_photo_mask(_face((32, 32))), 0,
                           r"^warning: .*photo\.png: the photo is 32x32, smaller than the model's 64x64: it is "
                           r"upscaled and the result is 64x64$"),
    "4000x3000": Case(_photo_mask(_face((4000, 3000)), photo_name="photo.jpg"), 0, expect=_model_size),
    "random-noise": Case(_photo_mask(Image.fromarray(NOISE), args=()), 1,
                         ERR + r"no face found in .*photo\.png; pass --no-align if"),
    "flat-colour": Case(_photo_mask(Image.new("RGB", (128, 128), (180, 140, 120)), args=()), 1,
                        ERR + r"no face found in .*photo\.png; pass --no-align if"),
    "mask-all-0": Case(_photo_mask(_face(), np.zeros((RES, RES), np.uint8)), 0,
                       r"^warning: .*mask\.png: mask has no hole pixels .*; writing .*photo\.png unchanged to "
                       r".*out\.png$",
                       expect=_copied),
    "mask-all-255": Case(_photo_mask(_face(), np.full((RES, RES), 255, np.uint8)), 1,
                         ERR + r".*mask\.png: every pixel of the mask is a hole \(white\).*mark only the missing "
                         r"pixels white"),
    "mask-0-1": Case(_photo_mask(_face(), _box(hole=1)), 0, expect=_kept(_rgb, hole=lambda m: np.asarray(
        Image.open(m)) == 1)),
    "mask-blurred": Case(_photo_mask(_face(), np.asarray(Image.fromarray(_box()).filter(ImageFilter.GaussianBlur(3)))),
                         0, expect=_kept(_rgb)),
    "mask-other-size": Case(_photo_mask(_face(), _box((2 * RES, 2 * RES))), 0,
                            r"^warning: .*mask\.png: mask is 128x128 but the photo is 64x64; resizing the mask"),
    "mask-other-shape": Case(_photo_mask(_face(), _box((100, 50))), 1,
                             ERR + r".*mask\.png: the mask is 100x50 but the photo is 64x64 as viewed \(another "
                             r"shape\); draw"),
    "text-as-photo": Case(_photo_mask(_text("photo.jpg")), 1,
                          ERR + r".*photo\.jpg: not an image file \(no image format Pillow knows.*\); " + FIX_PHOTO),
    "text-as-mask": Case(_photo_mask(_face(), _text("mask.jpg")), 1,
                         ERR + r".*mask\.jpg: not an image file .*re-save it as a PNG \(white = hole\)$"),
    "missing-photo": Case(_photo_mask(lambda t: t / "nowhere.jpg"), 1, ERR + r".*nowhere\.jpg: photo not found"),
    "missing-mask": Case(_photo_mask(_face(), lambda t: t / "nomask.png"), 1, ERR + r".*nomask\.png: mask not found"),
    "output-in-missing-folder": Case(_photo_mask(_face()), 1, ERR + r".*the output folder .*no[/\\]such does not "
                                     r"exist; create it first \(mkdir -p ", out="no/such/out.png", preexisting={}),
    "existing-output": Case(_photo_mask(_face()), 1, ERR + r".*out\.png exists; pass --overwrite", overwrite=False),
    "checkpoint-cut-in-half": Case(_photo_mask(_face()), 1, ERR + r".*half\.pt: not a readable ISFRNet checkpoint "
                                   r"\(truncated or not a torch file\); re-export it with "
                                   r"`isfr export --preset <preset>`",
                                   checkpoint=_ckpt_half),
    "random-file-as-checkpoint": Case(_photo_mask(_face()), 1, ERR + r".*random\.pt: not a readable ISFRNet checkpoint "
                                      r"\(truncated or not a torch file\); re-export", checkpoint=_ckpt_random),
    "missing-checkpoint": Case(_photo_mask(_face()), 1, ERR + r".*nope\.pt: ISFRNet checkpoint not found; train one "
                               r"with `isfr train --preset <preset>` .*`isfr export --preset <preset> -o FILE`",
                               checkpoint=lambda t, g: t / "nope.pt"),
    "folder-good-and-bad": Case(_folder, 1, (ERR + r"1 of 3 photo\(s\) failed, 2 written to .*outdir; fix these and "
                                             r"rerun with --skip-existing:$",
                                             r"^  .*photos[/\\]b\.jpg: not an image file .*re-save it as PNG or JPEG$"),
                                out="outdir", written=("outdir/a.png", "outdir/c.png"),
                                preexisting={"outdir/b.png": b"old b"}),
    "folder-onto-a-file": Case(_folder_onto_file, 1, ERR + r".*out\.png is a file; in folder mode the output is a "
                               r"folder"),
    # an output that is a folder: said so, not "unsupported output type"
    "output-is-a-folder": Case(_photo_mask(_face()), 1, ERR + r".*outdir is a folder; give an output file name such as "
                               r".*outdir[/\\]photo\.png", out="outdir", written=(), preexisting={"outdir/keep.png": b"old"}),
    # a phone photo: the mask drawn on it as viewers show it; the output upright, without the orientation tag
    "exif-orientation": Case(_photo_mask(_exif_photo, lambda t: _png(_hole_at(_head().size, HEAD_HOLE), t / "mask.png"),
                                         args=()), 0, expect=_viewed_and_filled,
                             stdout=r"photo\.jpg: filled at 64 px, upscaled x3$"),
    "exif-mask-in-the-stored-frame": Case(
        _photo_mask(_exif_photo, lambda t: _png(_hole_at(_head().size, HEAD_HOLE).T, t / "mask.png"), args=()), 1,
        ERR + r".*mask\.png: the mask is 300x260 but the photo is 260x300 as viewed \(width and height swapped: a "
        r"phone photo's EXIF orientation turns it; draw the mask on the photo as an image viewer shows it\)"),
    # two faces: the one the hole is on is filled, even when it is the smaller
    "two-faces-hole-on-the-smaller": Case(_photo_mask(_two_faces(), _hole_at((508, 300), (385, 125, 425, 160)), args=()),
                                          0, expect=_viewed_and_filled),
    "two-faces-hole-on-neither": Case(_photo_mask(_two_faces(), _hole_at((508, 300), (240, 250, 300, 295)), args=()), 1,
                                      ERR + r".*photo\.png: 100% of the hole lies outside the face crop of every one of "
                                      r"the 2 faces found, and only holes on a face are filled; mark the hole on a face"),
    # a large photo: filled at the model's size and enlarged, said on stdout
    "large-photo": Case(_photo_mask(_large, lambda t: _png(_hole_at((1300, 1500), HEAD_HOLE, 5), t / "mask.png"),
                                    args=()), 0, expect=_viewed_and_filled,
                        stdout=r"photo\.jpg: filled at 64 px, upscaled x1[4-6]$"),
    # folder mode: a rerun carries on, every warning names its file
    "folder-skip-existing": Case(_plus(_folder, "--skip-existing"), 1,
                                 (ERR + r"1 of 2 photo\(s\) failed, 1 written to .*outdir \(1 left as they were: "
                                  r"--skip-existing\)", r"^  .*b\.jpg: not an image file"),
                                 out="outdir", written=("outdir/c.png",), preexisting={"outdir/a.png": b"old a"},
                                 overwrite=False, stdout=r"^1 photo\(s\) skipped: their output exists in .*outdir "
                                 r"\(a\.png\)$"),
    "folder-existing-outputs": Case(_folder, 1, ERR + r"1 output\(s\) exist in .*outdir \(a\.png\); pass --overwrite "
                                    r"to replace them, or --skip-existing to leave them", out="outdir", written=(),
                                    preexisting={"outdir/a.png": b"old a"}, overwrite=False),
    "folder-skip-existing-and-overwrite": Case(_plus(_folder, "--skip-existing"), 2,
                                               r"^isfr inpaint: error: --skip-existing keeps the outputs that exist and "
                                               r"--overwrite replaces them: give one$", out="outdir",
                                               written=(), preexisting={"outdir/a.png": b"old a"}, overwrite=True),
    "folder-warnings-name-their-files": Case(_folder_with, 0, (
        r"^warning: 1 photo\(s\) without a mask in .*masks skipped: b\.png$",
        r"^warning: .*masks[/\\]c\.png: mask has no hole pixels .* writing .*photos[/\\]c\.png unchanged"),
        out="outdir", written=("outdir/a.png", "outdir/c.png")),
    "skip-existing-for-one-photo": Case(_photo_mask(_face(), args=("--no-align", "--skip-existing")), 2,
                                        r"^isfr inpaint: error: --skip-existing is for folder mode", overwrite=False),
}


def _files(tmp: Path) -> dict[str, bytes]:
    return {p.relative_to(tmp).as_posix(): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_inpaint_input(name, tmp_path, ckpt, run):
    case = CASES[name]
    photo, mask, args = case.make(tmp_path)
    model = case.checkpoint(tmp_path, ckpt) if case.checkpoint else ckpt
    pre = case.before()  # an error must leave an existing output as it was; --skip-existing too
    for rel, data in pre.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    overwrite = bool(pre) and case.rc != 0 if case.overwrite is None else case.overwrite
    before = _files(tmp_path)
    rc, err, out = run("inpaint", photo, "--mask", mask, "--checkpoint", model, "-o", tmp_path / case.out,
                       "--no-progress", *args, *(["--overwrite"] if overwrite else []))
    after = _files(tmp_path)
    assert rc == case.rc, err
    lines = (case.line,) if isinstance(case.line, str) else case.line or ()
    assert len(err) == len(lines), err
    for pattern, got in zip(lines, err):
        assert re.search(pattern, got), got
        assert "BytesIO" not in got and "dataset" not in got and "weights_only" not in got and "Traceback" not in got
    if case.stdout:
        assert any(re.search(case.stdout, o) for o in out), out
    if case.rc != 0:
        assert not [o for o in out if o.startswith("wrote")], out  # nothing reported as written
    assert {k: after[k] for k in before} == before  # inputs and existing outputs untouched
    new = set(after) - set(before)
    assert new == (set(case.written) if case.rc == 0 or case.out == "outdir" else set()), new
    if case.expect:
        case.expect(photo, mask, tmp_path / case.out)


def test_output_folder_is_not_created_on_error(tmp_path, ckpt, run):
    photo, mask, _ = _photo_mask(_face())(tmp_path)
    assert run("inpaint", photo, "--mask", mask, "--checkpoint", ckpt, "-o", tmp_path / "new" / "o.png")[0] == 1
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- arguments refused before any work
@dataclass
class Refusal:
    """``isfr <argv>`` (``{tmp}`` in an argument becomes the test's folder): exit code and the last stderr line."""
    argv: str
    rc: int
    line: str  # regex of the last stderr line (the only one unless argparse prints its usage first)
    usage: bool = False  # argparse refuses it: its usage lines come first


ARG = r"^isfr (train|reproduce|ladder|export|dryrun|evaluate|inpaint): error: "
REFUSALS: dict[str, Refusal] = {
    "unknown-variant": Refusal("train --preset small --variants full bogus", 2,
                               ARG + r"unknown variant 'bogus'; the variants are full, psp_ifr, psp_sfr, no_weighting, "
                               r"weight_paper, .*leak_free"),
    "unknown-set-field": Refusal("train --set sfr.nonsense=1", 2,
                                 ARG + r"--set: unknown preset field 'sfr.nonsense'; the fields of sfr are img_ch, .*"
                                 r"weighting, .*layout"),
    "unknown-top-field": Refusal("train --set nonsense=1", 2,
                                 ARG + r"--set: unknown preset field 'nonsense'; the fields at the top are name, data, "
                                 r".*schedule, .*resolution$"),
    "bad-literal-value": Refusal("train --preset small --set sfr.weighting=bogus", 2,
                                 ARG + r"--set: sfr.weighting='bogus': sfr.weighting takes one of 'paper', "
                                 r"'valid_fraction', 'inverse_ratio', 'none'$"),
    "bad-int-value": Refusal("train --set schedule.ifr_steps=many", 2,
                             ARG + r"--set: schedule.ifr_steps='many': schedule.ifr_steps takes int$"),
    "set-without-value": Refusal("train --set sfr.weighting", 2, ARG + r"--set: --set expects FIELD=VALUE"),
    "missing-data-root": Refusal("train --preset small --data-root {tmp}/nowhere", 2,
                                 ARG + r".*nowhere: data root \(argument\) does not exist; set ISFR_DATA_ROOT to"),
    "empty-data-root": Refusal("train --data-root {tmp}", 2, ARG + r".*: no CelebA layout .* and no images found"),
    "main-only-and-ablations-only": Refusal("train --main-only --ablations-only", 2,
                                            ARG + r"--main-only trains the main model alone; it cannot be combined "
                                            r"with --ablations-only$"),
    "main-only-and-variants": Refusal("train --main-only --variants full", 2,
                                      ARG + r"--main-only .* cannot be combined with --variants$"),
    "negative-time-budget": Refusal("train --time-budget-min -5", 2,
                                    ARG + r"argument --time-budget-min: must be at least 0, got -5$", usage=True),
    "reproduce-unknown-notebook": Refusal("reproduce --only 01 09", 2,
                                          ARG + r"unknown notebook prefix '09'; the notebook prefixes are 01, 02, 03, "
                                          r"04, 05, 06, 07, 08$"),
    "reproduce-bad-set": Refusal("reproduce --preset small --set sfr.weighting=bogus", 2, ARG + r"--set: sfr.weighting"),
    "reproduce-missing-data-root": Refusal("reproduce --data-root {tmp}/nowhere", 2, ARG + r".*nowhere: data root"),
    "ladder-unknown-rung": Refusal("ladder --rungs unet nope", 2, ARG + r"unknown rung 'nope'; the rungs are unet, "),
    "ladder-missing-data-root": Refusal("ladder --data-root {tmp}/nowhere", 2, ARG + r".*nowhere: data root"),
    "ladder-zero-steps": Refusal("ladder --preset smoke --steps 0", 2, ARG + r"argument --steps: must be at least 1",
                                 usage=True),
    "export-bad-set": Refusal("export --set resolution=big", 2,
                              ARG + r"--set: resolution='big': resolution takes a power of two >= 8$"),
    "evaluate-limit-below-1": Refusal("evaluate --checkpoint {tmp}/m.pt --limit -1", 2,
                                      ARG + r"argument --limit: must be at least 1, got -1$", usage=True),
    "evaluate-limit-0": Refusal("evaluate --checkpoint {tmp}/m.pt --limit 0", 2,
                                ARG + r"argument --limit: must be at least 1, got 0$", usage=True),
    "dryrun-missing-data-root": Refusal("dryrun --cut-down --data-root {tmp}/nowhere", 2, ARG + r".*nowhere: data root"),
    "evaluate-missing-data-root": Refusal("evaluate --checkpoint {tmp}/m.pt --data-root {tmp}/nowhere", 2,
                                          ARG + r".*nowhere: data root \(argument\) does not exist"),
}


@pytest.fixture
def no_work(monkeypatch):
    """Every entry point that trains, runs notebooks, exports or scores fails the test if it is reached."""
    import isfr.experiments.dryrun
    import isfr.apps.inpaint
    import isfr.experiments.ladder
    import isfr.experiments.reproduce
    import isfr.experiments.trained
    import isfr.experiments.pipeline

    def started(*args, **kwargs):
        raise AssertionError("the work started before the arguments were checked")

    for mod, name in ((isfr.experiments.pipeline, "train_all"), (isfr.experiments.reproduce, "reproduce"), (isfr.experiments.ladder, "run_ladder"),
                      (isfr.experiments.ladder, "write_ladder"), (isfr.experiments.trained, "export_pipeline"), (isfr.experiments.dryrun, "dryrun"),
                      (isfr.apps.inpaint, "evaluate_checkpoint"), (isfr.apps.inpaint, "inpaint_file")):
        monkeypatch.setattr(mod, name, started)


@pytest.mark.parametrize("name", list(REFUSALS))
def test_arguments_are_refused_before_any_work(name, tmp_path, run, no_work, monkeypatch):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)  # the data root is the argument's (else synthetic faces)
    case = REFUSALS[name]
    before = _files(tmp_path)
    rc, err, out = run(*case.argv.format(tmp=tmp_path).split())
    assert rc == case.rc, err
    assert err and re.search(case.line, err[-1]), err
    assert len(err) == 1 or case.usage and all(e.startswith(("usage:", " ")) for e in err[:-1]), err
    assert not out and _files(tmp_path) == before


def test_debug_re_raises(tmp_path):
    from isfr.experiments.config import PresetFieldError

    with pytest.raises(cli.UsageError, match="unknown variant 'bogus'"):
        cli.main(["train", "--variants", "bogus", "--debug"])
    with pytest.raises(cli.UsageError, match="sfr.weighting") as got:
        cli.main(["export", "--set", "sfr.weighting=bogus", "--debug"])
    assert isinstance(got.value.__cause__, PresetFieldError)  # the traceback shows the error under the one line
    with pytest.raises(FileNotFoundError, match="nope.pt"):  # not a usage error: a file
        cli.main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--debug"])


def test_variant_names_are_those_of_isfr_runs():
    from isfr.experiments.runs import VARIANTS

    assert cli.variant_names() == list(VARIANTS)


@pytest.mark.parametrize("argv, within_s", [
    ("train --preset small --variants bogus", 10),  # refused before torch is imported
    ("train --preset small --set sfr.nonsense=1", 60),  # a guard against training starting, not a speed target
    ("train --preset small --data-root {tmp}/nowhere", 60),
])
def test_the_real_command_refuses_in_one_line_without_a_traceback(tmp_path, argv, within_s):
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "ISFR_RUNS_DIR": str(tmp_path / "runs")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "isfr.apps.cli", *argv.format(tmp=tmp_path).split()], capture_output=True,
                          text=True, env=env, timeout=300)
    took = time.monotonic() - start
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("isfr train: error: ")
    assert took < within_s and not (tmp_path / "runs").exists()


def test_the_synthetic_data_warning_is_printed_once_per_command(run, monkeypatch):
    """Every step of ``isfr train`` that loads the data resolves the data root (13 times at smoke); the command
    says once that the faces are synthetic."""
    import isfr.experiments.pipeline
    from isfr.data.roots import resolve_data_root

    def steps(preset, variants, data_root, **kwargs):
        for _ in range(3):
            resolve_data_root(data_root)
        return []

    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    monkeypatch.setattr(isfr.experiments.pipeline, "train_all", steps)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every warning reaches the command's printing
        rc, err, _ = run("train", "--preset", "smoke", "--ablations-only")
    assert rc == 0 and len([e for e in err if "SYNTHETIC" in e]) == 1, err


# ---------------------------------------------------------------- training warnings
@pytest.mark.parametrize("extra, line", [
    ({"preset": "smoke", "steps": "StyleGAN2 30 + pSp 20 steps + IFR 20 + SFR 20 steps (batch 4)",
      "schedule": {r: {"step": n, "total_steps": n, "finished": True} for r, n in (("ifr", 20), ("sfr", 20))}},
     r"^warning: .*smoke\.pt: near-untrained: smoke preset, StyleGAN2 30 \+ pSp 20 steps \+ IFR 20 \+ SFR 20 steps "
     r"\(batch 4\);[^;]*$"),
    ({"preset": "small", "steps": "StyleGAN2 3000 + pSp 1500 steps + IFR 3000 + SFR 8000 steps (batch 16)",
      "schedule": {"ifr": {"step": 3000, "total_steps": 3000, "finished": True},
                   "sfr": {"step": 1200, "total_steps": 8000, "finished": False}}},
     r"^warning: .*smoke\.pt: its runs stopped before the small preset's schedule finished \(sfr 1200/8000 steps\); "
     r"resume with `isfr train --preset small`"),
    ({"preset": "small", "steps": "StyleGAN2 3000 + ..."}, None),  # an older export: no schedule, no warning
])
def test_inpaint_warns_about_undertrained_models(tmp_path, run, extra, line):
    path = _save_model(tmp_path / "smoke.pt", **extra)
    photo, mask, args = _photo_mask(_face())(tmp_path)
    rc, err, _ = run("inpaint", photo, "--mask", mask, "--checkpoint", path, "-o", tmp_path / "out.png", *args)
    assert rc == 0 and len(err) == (line is not None), err
    if line:
        assert re.search(line, err[0]), err[0]


def test_evaluate_warns_about_a_smoke_model_and_reports_a_bad_file(tmp_path, run):
    path = _save_model(tmp_path / "m.pt", preset="smoke", steps="StyleGAN2 30 + pSp 20 steps (batch 4)")
    rc, err, _ = run("evaluate", "--checkpoint", path, "--data-root", "synthetic", "--limit", "1", "--basic-metrics",
                  "--no-progress")
    assert rc == 0
    assert [e for e in err if "near-untrained" in e] == [
        f"warning: {path}: near-untrained: smoke preset, StyleGAN2 30 + pSp 20 steps (batch 4); its results only "
        "show that the code runs (`isfr train --preset small` trains a usable model)"]
    rc, err, _ = run("evaluate", "--checkpoint", _ckpt_half(tmp_path, path), "--data-root", "synthetic")
    assert rc == 1 and len(err) == 1 and "half.pt: not a readable ISFRNet checkpoint" in err[0], err


def test_the_real_command_prints_one_line_warnings(tmp_path, ckpt):
    photo, mask, _ = _photo_mask(_face(), np.zeros((RES, RES), np.uint8))(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "isfr.apps.cli", "inpaint", str(photo), "--mask", str(mask),
                           "--checkpoint", str(ckpt), "-o", str(tmp_path / "o.png")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"warning: {mask}: mask has no hole pixels (white, or 1 in a 0/1 mask, = "
                                        f"hole); writing {photo} unchanged to {tmp_path / 'o.png'}"]


# ---------------------------------------------------------------- masks, help, umask, warnings
def test_user_masks_read_0_1_and_threshold_at_128(tmp_path):
    from isfr.data import load_mask
    from isfr.apps.photos import read_hole_mask

    zero_one = np.zeros((8, 8), np.uint8)
    zero_one[2:5, 3:6] = 1
    Image.fromarray(zero_one).save(tmp_path / "01.png")
    Image.fromarray(zero_one.astype(np.uint16)).save(tmp_path / "01_16bit.png")
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8) + 100  # 100 ... 163: anti-aliased greys
    Image.fromarray(ramp).save(tmp_path / "grey.png")
    assert (read_hole_mask(tmp_path / "01.png", (8, 8)) == (zero_one == 1)).all()
    assert (read_hole_mask(tmp_path / "01_16bit.png", (8, 8)) == (zero_one == 1)).all()
    hole = read_hole_mask(tmp_path / "grey.png", (8, 8))
    assert hole.sum() == 36 and hole.flat[28] and not hole.flat[27]  # 128 ... 163 are holes, 127 is not
    assert not load_mask(tmp_path / "01.png").any()  # the NVIDIA-set reading stays: threshold 128 on 0/255


def test_help_imports_no_torch_and_states_the_mask_threshold(capsys):
    import isfr.experiments.config

    assert cli.PRESETS == isfr.experiments.config.PRESETS
    code = ("import sys\nfrom isfr.apps import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'isfr --help imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
    with pytest.raises(SystemExit):
        cli.main(["inpaint", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ">= 128 count as hole" in text and "maximum is 1 is read as 0/1" in text


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writers_respect_the_umask(tmp_path, umask):
    from isfr.core.utils import atomic_open, atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text("x", tmp_path / "a.txt")
        atomic_write_json({"a": 1}, tmp_path / "b.json")
        atomic_torch_save({"t": torch.ones(1)}, tmp_path / "c.pt")
        with atomic_open(tmp_path / "d.bin") as f:
            f.write(b"x")
        with atomic_path(tmp_path / "e.png") as tmp:
            Image.new("L", (2, 2)).save(tmp)
    finally:
        os.umask(old)
    want = {0o022: 0o644, 0o077: 0o600, 0o002: 0o664}[umask]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == \
        {n: oct(want) for n in ("a.txt", "b.json", "c.pt", "d.bin", "e.png")}


def test_one_line_warnings(monkeypatch):
    from isfr.core.utils import one_line_warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    one_line_warnings()
    assert warnings.formatwarning("two\nlines", UserWarning, "/x/y.py", 3, "code()") == "warning: two lines\n"


def test_each_warning_once_shows_a_repeated_warning_once(monkeypatch):
    from isfr.core.utils import each_warning_once

    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda msg, cat, fn, ln, file=None, line=None: shown.append(str(msg)))
    with warnings.catch_warnings(), each_warning_once():
        warnings.simplefilter("always")
        for text in ("synthetic faces", "synthetic faces", "another", "synthetic faces"):
            warnings.warn(text, UserWarning)
        warnings.warn("synthetic faces", RuntimeWarning)  # another category: shown
    assert shown == ["synthetic faces", "another", "synthetic faces"]


def test_reproduce_help_names_the_notebooks_it_runs(capsys):
    from isfr.experiments.reproduce import numbered_notebooks

    nbs = numbered_notebooks()
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert f"run the numbered notebooks ({nbs[0].name[:2]}-{nbs[-1].name[:2]})" in capsys.readouterr().out


# ---------------------------------------------------------------- the shipped model as the default
@pytest.fixture
def shipped_at(tmp_path, monkeypatch):
    """Point the search for the shipped model at ``tmp_path`` only (no clone's weights/, no installed copy);
    ``place(file)`` makes ``file`` the shipped model, its hash the expected one."""
    import sys

    import isfr.models.shipped as shipped

    monkeypatch.setattr(shipped, "REPO_ROOT", tmp_path / "clone")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setenv("ISFR_WEIGHTS", str(tmp_path / "weights" / shipped.SHIPPED_NAME))

    def place(model: Path) -> Path:
        target = tmp_path / "weights" / shipped.SHIPPED_NAME
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(model.read_bytes())
        monkeypatch.setattr(shipped, "SHIPPED_SHA256", shipped.sha256_of(target))
        return target

    return place


@pytest.mark.parametrize("command", ["inpaint", "evaluate"])
def test_without_checkpoint_and_without_the_shipped_file_one_line_names_the_fixes(command, tmp_path, run, shipped_at):
    argv = (["inpaint", str(_png(np.asarray(_face()), tmp_path / "p.png")), "--mask",
             str(_png(_box(), tmp_path / "m.png")), "-o", str(tmp_path / "o.png"), "--no-align"]
            if command == "inpaint" else ["evaluate", "--data-root", "synthetic", "--limit", "1"])
    rc, err, out = run(*argv)
    assert rc == 1 and len(err) == 1, err
    assert "the shipped model isfrnet_small.pt was not found" in err[0] and "--checkpoint" in err[0]
    assert not (tmp_path / "o.png").exists()


def test_inpaint_without_checkpoint_uses_the_shipped_model_and_says_so(tmp_path, run, shipped_at, ckpt):
    model = shipped_at(ckpt)
    photo = _png(np.asarray(_face()), tmp_path / "p.png")
    rc, err, out = run("inpaint", str(photo), "--mask", str(_png(_box(), tmp_path / "m.png")), "-o",
                       str(tmp_path / "o.png"), "--no-align")
    assert rc == 0, err
    assert out[0].startswith("model: ") and model.name in out[0] and "shipped small ISFRNet" in out[0]
    assert (tmp_path / "o.png").is_file()
    model.write_bytes(model.read_bytes() + b"x")  # a damaged shipped file: its hash, one line
    rc, err, out = run("inpaint", str(photo), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o2.png"),
                       "--no-align")
    assert rc == 1 and len(err) == 1 and "sha256" in err[0] and not (tmp_path / "o2.png").exists()


def test_evaluate_refuses_synthetic_faces_for_a_model_trained_on_celeba(tmp_path, run, monkeypatch, no_work):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    m = _save_model(tmp_path / "celeba.pt", preset="small", data_identity={"kind": "celeba", "tag": "celeba-x"})
    rc, err, out = run("evaluate", "--checkpoint", str(m), "--limit", "1")
    assert rc == 2 and len(err) == 1
    assert "trained on celeba data and no data root is set" in err[0] and "--data-root" in err[0]
