"""Uploads are judged by their bytes, cleaned of metadata, and fitted to each platform's limits."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from app.media.images import ImageLimits, ImageRefused, clean_upload, fit_to_limits, thumbnail
from app.platforms import PLATFORMS
from tests.media.images import GPS_IFD, exif_of, image_bytes


@pytest.mark.parametrize(("fmt", "content_type"), [
    ("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_the_four_formats_are_accepted_and_identified_by_their_bytes(fmt, content_type):
    clean = clean_upload(image_bytes(fmt, (40, 30)))
    assert (clean.content_type, clean.width, clean.height) == (content_type, 40, 30)


def test_a_text_file_named_like_an_image_is_refused():
    with pytest.raises(ImageRefused, match="not a JPEG, PNG, WebP or GIF"):
        clean_upload(b"hello, I am plain text pretending to be photo.jpg")


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'])
def test_svg_is_refused_with_the_reason(svg):
    with pytest.raises(ImageRefused, match="SVG"):
        clean_upload(svg)


def test_a_format_pillow_reads_but_we_do_not_take_is_refused():
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="BMP")
    with pytest.raises(ImageRefused, match="not a JPEG"):
        clean_upload(out.getvalue())


def test_an_upload_over_the_byte_limit_is_refused():
    with pytest.raises(ImageRefused, match="the most accepted is 100"):
        clean_upload(image_bytes("PNG", (64, 64)), max_bytes=100)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    with pytest.raises(ImageRefused, match="pixels"):
        clean_upload(image_bytes("PNG", (200, 100)), max_pixels=10_000)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` with a tiny compressed body: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_clearly_without_decoding_it():
    bomb = _png_header_only(100_000, 100_000)  # 10 gigapixels declared, a few hundred bytes
    assert len(bomb) < 1000
    with pytest.raises(ImageRefused, match="decompression bomb"):
        clean_upload(bomb)


def test_pillows_own_bomb_guard_is_reported_the_same_way(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageRefused, match="decompression bomb"):
        clean_upload(image_bytes("PNG", (100, 100)), max_pixels=10**9)


def test_a_truncated_image_is_refused():
    data = image_bytes("JPEG", (300, 200))
    with pytest.raises(ImageRefused, match="damaged or truncated|could not be read"):
        clean_upload(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_exif_with_a_gps_position_is_stripped(fmt):
    original = image_bytes(fmt, (32, 32), gps=True)
    assert exif_of(original).get_ifd(GPS_IFD)  # the fixture does carry a position
    clean = clean_upload(original)
    exif = exif_of(clean.data)
    assert not exif.get_ifd(GPS_IFD) and 0x010F not in exif


def test_the_exif_orientation_is_applied_before_it_is_dropped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(out, format="JPEG", exif=exif.tobytes())
    clean = clean_upload(out.getvalue())
    assert (clean.width, clean.height) == (20, 40)
    assert 0x0112 not in exif_of(clean.data)


def test_an_animated_gif_keeps_its_frames():
    clean = clean_upload(image_bytes("GIF", (20, 20), mode="P", frames=3))
    assert clean.animated and clean.frames == 3
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.n_frames == 3


def test_a_thumbnail_is_small_and_a_still():
    data, content_type = thumbnail(clean_upload(image_bytes("PNG", (1200, 600))).data, 320)
    with Image.open(io.BytesIO(data)) as image:
        assert max(image.size) == 320 and content_type == "image/jpeg"


LIMITS = ImageLimits(content_types=frozenset({"image/jpeg", "image/png", "image/gif"}),
                     max_bytes=60_000, max_pixels=250_000, max_per_post=4)


def test_an_image_within_the_limits_is_sent_unchanged():
    data = image_bytes("PNG", (100, 100))
    assert fit_to_limits(data, "image/png", LIMITS) == (data, "image/png")


def test_a_webp_goes_where_webp_is_not_taken_as_a_jpeg():
    fitted, content_type = fit_to_limits(image_bytes("WEBP", (100, 100)), "image/webp", LIMITS)
    assert content_type == "image/jpeg" and fitted[:3] == b"\xff\xd8\xff"


def test_a_big_still_is_resized_under_the_pixel_and_byte_limits():
    import os
    noisy = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    fitted, content_type = fit_to_limits(out.getvalue(), "image/png", LIMITS, platform="X")
    with Image.open(io.BytesIO(fitted)) as image:
        assert image.size[0] * image.size[1] <= LIMITS.max_pixels
    assert len(fitted) <= LIMITS.max_bytes and content_type == "image/jpeg"


def test_an_oversized_animation_is_refused_with_the_reason():
    data = image_bytes("GIF", (600, 600), mode="P", frames=3)
    with pytest.raises(ImageRefused, match="animated image.*pixel limit.*lose its frames"):
        fit_to_limits(data, "image/gif", LIMITS, platform="X")


def test_a_platform_that_forbids_re_encoding_refuses_instead():
    strict = ImageLimits(frozenset({"image/png"}), 10**6, 10**6, 1, may_reencode=False)
    with pytest.raises(ImageRefused, match="Strict does not take this image: image/jpeg is not accepted"):
        fit_to_limits(image_bytes("JPEG", (10, 10)), "image/jpeg", strict, platform="Strict")


def test_every_platform_declares_its_image_limits():
    for platform in PLATFORMS.values():
        limits = platform.images
        assert limits.content_types and limits.max_bytes > 0 and limits.max_pixels > 0
        assert limits.max_per_post >= 1
