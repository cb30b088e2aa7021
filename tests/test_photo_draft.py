"""The photo is decoded at reduced scale (libjpeg's draft mode) where the result allows: every
refusal and its message stay what a full-resolution decode gives."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from certgen.exceptions import PhotoError
from certgen.pdf.photo import _check_background, mean_rgb, prepare_photo

SIZES = [(413, 579), (827, 1158)]
"""300 dpi (embedded as it is, its pixels checked at 1/8) and 600 dpi (downsampled, decoded at 1/2)."""


def _photo(path: Path, size: tuple[int, int], paint: str) -> Path:
    w, h = size
    colours = {"white": (255, 255, 255), "off-white": (236, 234, 228), "tinted": (255, 226, 170), "dark": (90, 90, 90)}
    image = Image.new("RGB", size, colours.get(paint, (255, 255, 255)))
    if paint == "dark-middle":  # a white border, the person dark in the middle
        image.paste((30, 30, 40), (w // 5, h // 5, w - w // 5, h))
    if paint == "dark-top-band":  # half of the top strip dark
        image.paste((0, 0, 0), (0, 0, w, max(2, w // 20) // 2))
    if paint == "dark-side-band":  # a dark line down the left edge
        image.paste((0, 0, 0), (0, 0, max(2, w // 20) // 2, h))
    image.save(path, "JPEG", quality=92)
    return path


def _full_verdict(path: Path) -> str | None:
    """The background check on the photo decoded at full resolution (no draft)."""
    with Image.open(path) as image:
        image.load()
        try:
            _check_background(image.convert("RGB"), path, image.size)
        except PhotoError as exc:
            return str(exc)
    return None


@pytest.mark.parametrize("size", SIZES, ids=["300dpi", "600dpi"])
@pytest.mark.parametrize(
    "paint", ["white", "off-white", "tinted", "dark", "dark-middle", "dark-top-band", "dark-side-band"]
)
def test_the_background_verdict_at_reduced_scale_is_the_full_resolution_one(
    tmp_path: Path, size: tuple[int, int], paint: str
) -> None:
    path = _photo(tmp_path / f"{paint}.jpg", size, paint)
    full = _full_verdict(path)
    expected_refused = paint in ("tinted", "dark", "dark-top-band", "dark-side-band")
    assert (full is not None) == expected_refused, full
    if full is None:
        assert prepare_photo(path, 35, 49).width_px == 413
    else:
        with pytest.raises(PhotoError, match="背景不是白色"):
            prepare_photo(path, 35, 49)


def _broken(data: bytes, how: str) -> bytes:
    middle = len(data) // 2
    if how == "truncated":
        return data[:middle]
    if how == "no-end-marker":
        return data[:-2]
    return data[:middle] + b"\x00garbage\xff\x12" * 50 + data[middle:]  # garbage in the middle


@pytest.mark.parametrize("size", SIZES, ids=["300dpi", "600dpi"])
@pytest.mark.parametrize("how", ["truncated", "no-end-marker", "garbage-in-the-middle"])
def test_a_broken_jpeg_is_refused_with_the_full_decode_message(tmp_path: Path, size: tuple[int, int], how: str) -> None:
    # the draft still reads the whole compressed stream: the refusal is the one Pillow gives decoding
    # the file at full resolution, word for word
    good = _photo(tmp_path / "good.jpg", size, "dark-middle")
    path = tmp_path / "broken.jpg"
    path.write_bytes(_broken(good.read_bytes(), how))
    with Image.open(path) as image, pytest.raises(OSError) as full:  # what a full decode says
        image.load()
    with pytest.raises(PhotoError) as refused:
        prepare_photo(path, 35, 49)
    assert str(refused.value) == f"照片 {path} 已损坏或不完整：{full.value}"


def test_a_downsampled_photo_matches_a_full_resolution_resize(tmp_path: Path) -> None:
    # decoded at 1/2 (still >= the 300-dpi target), then resized: visually the full-resolution result
    image = Image.new("RGB", (827, 1158), (255, 255, 255))
    image.paste((200, 40, 40), (200, 300, 600, 1158))
    image.paste((20, 90, 200), (300, 500, 500, 800))
    path = tmp_path / "p.jpg"
    image.save(path, "JPEG", quality=95)
    prepared = prepare_photo(path, 35, 49)
    assert (prepared.width_px, prepared.height_px) == (413, 578)
    with Image.open(path) as source, Image.open(io.BytesIO(prepared.jpeg)) as embedded:
        reference = source.resize(embedded.size, Image.Resampling.LANCZOS)
        difference = ImageStat.Stat(ImageChops.difference(embedded.convert("RGB"), reference)).mean
    assert max(difference) < 3, difference


@pytest.mark.parametrize("seed", range(6))
def test_the_mean_colour_is_what_imagestat_gives(seed: int) -> None:
    # mean_rgb sums in C what Pillow's ImageStat sums in Python: the same float, bit for bit
    import random

    rng = random.Random(seed)
    w, h = rng.randint(1, 60), rng.randint(1, 60)
    image = Image.frombytes("RGB", (w, h), bytes(rng.randrange(256) for _ in range(w * h * 3)))
    assert mean_rgb(image) == tuple(ImageStat.Stat(image).mean)
    near_white = Image.new("RGB", (w, h), (rng.randint(225, 255), rng.randint(225, 255), rng.randint(225, 255)))
    assert mean_rgb(near_white) == tuple(ImageStat.Stat(near_white).mean)
