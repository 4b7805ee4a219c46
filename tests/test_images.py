"""The image-opening policy: a pixel budget checked from the header, JPEGs over it decoded at a
reduced scale, everything else refused with an ImageError naming the file."""

from __future__ import annotations

import io

import pytest
from hostile_files import bomb_png, huge_jpeg, truncated, zero_bytes
from PIL import Image

from geobridge.images import ImageError, open_image


def png(path, size=(40, 30)):
    Image.new("RGB", size, (10, 200, 30)).save(path)
    return path


def test_a_normal_image_is_decoded_at_full_resolution(tmp_path):
    image = open_image(png(tmp_path / "a.png"))
    assert image.size == (40, 30) and image.mode == "RGB" and image.getpixel((0, 0)) == (10, 200, 30)


def test_a_bomb_is_refused_from_its_header_with_the_file_named(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert err.value.code == "too_many_pixels" and str(path) in str(err.value)
    assert "40000 x 40000" in str(err.value)


def test_a_huge_jpeg_is_decoded_at_a_reduced_scale_within_the_budget(tmp_path):
    path = huge_jpeg(tmp_path / "pano.jpg", 20_000, 10_000)  # 200 Mpx, 5 x the default budget
    image = open_image(path)
    assert image.size == (5_000, 2_500)  # 1/4 scale: the largest that fits 40 Mpx
    assert open_image(path, max_side=1_000).size == (1_000, 500)


def test_the_budget_is_configurable(tmp_path, monkeypatch):
    path = png(tmp_path / "a.png", (100, 100))
    with pytest.raises(ImageError, match="5,000-pixel budget"):
        open_image(path, max_pixels=5_000)
    monkeypatch.setenv("GEOBRIDGE_MAX_PIXELS", "9000")
    with pytest.raises(ImageError, match="9,000-pixel budget"):
        open_image(path)


@pytest.mark.parametrize(
    "damage, code",
    [("truncated", "corrupt"), ("zero", "empty"), ("text", "not_an_image"), ("missing", "missing")],
)
def test_damaged_files_are_image_errors(tmp_path, damage, code):
    good = tmp_path / "good.jpg"
    Image.effect_noise((64, 64), 40).convert("RGB").save(good, quality=95)
    bad = tmp_path / "bad.jpg"
    if damage == "truncated":
        truncated(good, bad, 0.4)
    elif damage == "zero":
        zero_bytes(bad)
    elif damage == "text":
        bad.write_text("id,lat\n")
    with pytest.raises(ImageError) as err:
        open_image(bad)
    assert err.value.code == code and isinstance(err.value, ValueError) and str(bad) in str(err.value)


def test_bytes_are_accepted_and_named(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    assert open_image(buffer.getvalue()).size == (8, 8)
    with pytest.raises(ImageError, match="upload: is empty"):
        open_image(b"", name="upload")
