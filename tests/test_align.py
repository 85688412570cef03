"""Face alignment (isfr.data.align): CelebA template, align_face, paste_back, ffhq_align, no-face error."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.transform import SimilarityTransform

from isfr.data import load_rgb, load_square
from isfr.data.align import (CELEBA_TEMPLATE, CELEBA_TEMPLATE_STD, align_face, choose_face, crop_share,
                             detect_landmarks, ffhq_align, ffhq_quad, paste_back, template_pixels, upscale_factor)


@pytest.fixture(scope="module")
def celeba_photos(data_root):
    photos = sorted((data_root / "celeba" / "img_align_celeba").glob("*.jpg"))
    if len(photos) < 3:
        pytest.skip(f"no CelebA images under {data_root / 'celeba' / 'img_align_celeba'}")
    return photos


def test_template_is_a_plausible_face_layout():
    t = CELEBA_TEMPLATE
    assert t.shape == (5, 2) and ((t > 0.2) & (t < 0.8)).all() and (CELEBA_TEMPLATE_STD < 0.03).all()
    assert t[0, 0] > t[1, 0] > 0.5 > t[3, 0] > t[2, 0]  # the two eyes, outer corners outside inner ones
    assert abs(t[:4, 1].mean() - 0.525) < 0.03 and t[4, 1] > t[:4, 1].max() + 0.1  # nose below the eyes
    assert abs((t[0, 0] + t[2, 0]) / 2 - 0.5) < 0.02  # horizontally centred


def test_align_face_lands_the_landmarks_on_the_template(celeba_photos):
    errs = []
    for path in celeba_photos[:3]:
        photo = load_rgb(path)
        aligned, t = align_face(photo, 256, name=path.name)
        assert aligned.size == (256, 256) and isinstance(t, SimilarityTransform)
        # CelebA faces are already aligned: the transform is close to our center crop + resize
        assert abs(t.scale / (256 / 178) - 1) < 0.15 and abs(t.rotation) < 0.15
        lm = detect_landmarks(aligned)  # detected again in the aligned crop
        assert lm is not None
        errs.append(np.linalg.norm(lm - template_pixels(256), axis=1).mean())
    # within ~1.5% of the crop on average (the template's own spread is 1-2.5%; poses that a similarity
    # transform cannot fix exactly leave a few pixels)
    assert np.mean(errs) < 0.015 * 256 and max(errs) < 0.025 * 256, errs


def test_aligned_celeba_face_looks_like_the_training_crop(celeba_photos):
    path = celeba_photos[0]
    aligned, _ = align_face(load_rgb(path), 128)
    diff = np.abs(np.asarray(aligned, float) - np.asarray(load_square(path, 128), float)).mean()
    assert diff < 40  # same framing up to a few pixels (a random pair of faces differs by far more)


def test_paste_back_changes_hole_pixels_only(celeba_photos):
    photo = load_rgb(celeba_photos[1])
    aligned, t = align_face(photo, 128)
    w, h = photo.size
    hole = np.zeros((h, w), bool)
    hole[100:140, 60:120] = True
    red = Image.new("RGB", (128, 128), (255, 0, 0))
    out = np.asarray(paste_back(photo, red, t, None, mask_original=hole))
    src = np.asarray(photo)
    assert out.shape == src.shape and (out[~hole] == src[~hole]).all()
    assert (out[hole] == [255, 0, 0]).all()
    # the aligned mask warped back instead of the original one: still nothing outside the hole changes
    m_aligned = np.zeros((128, 128), bool)
    m_aligned[50:80, 40:90] = True
    out2 = np.asarray(paste_back(photo, red, t, m_aligned))
    changed = (out2 != src).any(-1)
    assert changed.any() and (out2[changed] == [255, 0, 0]).all()


def test_paste_back_warns_for_holes_outside_the_crop():
    photo = Image.new("RGB", (100, 100), (10, 20, 30))
    t = SimilarityTransform(scale=2.0, translation=(-60, -60))  # crop covers photo pixels 30..62
    hole = np.zeros((100, 100), bool)
    hole[0:10, 0:10] = hole[40:50, 40:50] = True
    with pytest.warns(UserWarning, match=r"^me\.jpg: 50% of the hole lies outside the aligned face crop"):
        out = np.asarray(paste_back(photo, Image.new("RGB", (64, 64), (200, 0, 0)), t, None, mask_original=hole,
                                    name="me.jpg"))
    assert (out[40:50, 40:50] == [200, 0, 0]).all() and (out[0:10, 0:10] == [10, 20, 30]).all()


def test_no_face_raises_naming_the_file():
    grey = Image.new("RGB", (200, 240), (128, 128, 128))
    with pytest.raises(ValueError, match=r"no face found in grey\.jpg; pass --no-align"):
        align_face(grey, 64, name="grey.jpg")
    with pytest.raises(ValueError, match="no face found in the image"):
        ffhq_align(grey, 64)


def test_ffhq_quad_follows_the_recipe():
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48] = (40, 50), (80, 50)  # eyes 40 px apart, level
    lm[48], lm[54] = (45, 90), (75, 90)  # mouth 40 px below the eyes
    quad = ffhq_quad(lm)
    # x = eye_to_eye - rot90(eye_to_mouth) -> (40, 0) + (40, 0) normalised, * max(2*40, 1.8*40) = 80
    c = np.array([60, 54])
    assert np.allclose(quad, [c + (-80, -80), c + (-80, 80), c + (80, 80), c + (80, -80)])


def test_ffhq_align_on_celeba(celeba_photos):
    aligned, t = ffhq_align(load_rgb(celeba_photos[0]), 128)
    assert aligned.size == (128, 128)
    lm = detect_landmarks(aligned, 68)
    assert lm is not None
    eyes = (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2
    assert abs(eyes[0] - 64) < 6 and 35 < eyes[1] < 70  # eyes centred, upper middle


def test_ffhq_preprocess_option_realigns_and_falls_back(celeba_photos, tmp_path):
    """DataConfig(preprocess="ffhq"): FFHQ framing for the pretrained pSp; no face -> centre crop."""
    path = celeba_photos[0]
    aligned = np.asarray(load_square(path, 64, "ffhq"), dtype=float)
    cropped = np.asarray(load_square(path, 64, "center_crop"), dtype=float)
    assert aligned.shape == cropped.shape == (64, 64, 3)
    assert np.abs(aligned - cropped).mean() > 5  # a different framing, not the same crop
    grey = tmp_path / "grey.png"
    Image.new("RGB", (80, 100), (128, 128, 128)).save(grey)
    with pytest.warns(RuntimeWarning, match="grey.png"):
        out = load_square(grey, 32, "ffhq")
    assert out.size == (32, 32)


def test_the_face_is_chosen_by_the_share_of_the_hole_its_crop_holds():
    # two 32 px crops of a 100 x 100 photo: photo pixels 10..41 and 60..91 on both axes (scale 1)
    left, right = SimilarityTransform(translation=(-10, -10)), SimilarityTransform(translation=(-60, -60))
    hole = np.zeros((100, 100), bool)
    hole[65:75, 50:70] = True  # 200 pixels: 100 inside the right crop (x >= 60), none inside the left
    assert crop_share(left, hole, 32) == 0 and crop_share(right, hole, 32) == 0.5
    assert choose_face([left, right], hole, 32) is right  # not the first (the largest) face
    assert choose_face([left, right], None, 32) is left  # no hole to go by: the largest
    hole[65:75, 45:50] = True  # 50 more outside: 40% inside the right crop
    with pytest.raises(ValueError, match=r"^me\.jpg: 60% of the hole lies outside the face crop of every one of the 2 "
                                         r"faces found, and only holes on a face are filled; mark the hole on a face"):
        choose_face([left, right], hole, 32, name="me.jpg")
    with pytest.raises(ValueError, match=r"outside the face crop of the face found"):
        choose_face([right], hole, 32)


def test_upscale_factor_is_photo_pixels_per_crop_pixel():
    assert upscale_factor(SimilarityTransform(scale=0.1, rotation=0.3, translation=(5, 7))) == pytest.approx(10)
    assert upscale_factor(SimilarityTransform(scale=2.0)) == pytest.approx(0.5)
