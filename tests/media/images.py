"""Images made in memory for the media tests (and the demo's sample library uses the same idea)."""

from __future__ import annotations

import io

from PIL import Image

#: GPS IFD pointer tag in EXIF.
GPS_IFD = 0x8825


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), *, color: str = "teal",
                mode: str = "RGB", gps: bool = False, frames: int = 1) -> bytes:
    """An image of ``size`` in ``fmt``; with ``gps`` a JPEG/WebP carrying EXIF with a GPS position."""
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    options: dict = {}
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
        options["exif"] = exif.tobytes()
    if frames > 1:
        others = [Image.new(mode, size, c) for c in ("red", "blue", "green", "white")[: frames - 1]]
        image.save(out, format=fmt, save_all=True, append_images=others, duration=120, loop=0)
    else:
        image.save(out, format=fmt, **options)
    return out.getvalue()


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()
