"""What an uploaded image must be, how it is cleaned, and how it is fitted to a platform.

An upload is judged by its bytes, never by its file name or the browser's content type: Pillow
identifies it among the four formats every platform takes (JPEG, PNG, WebP, GIF). SVG is
refused outright (it is a document that can carry scripts and external references, and no
platform in the registry accepts it). The pixel count is checked from the header *before* any
pixel is decoded, so a decompression bomb (a small file declaring an enormous canvas) is
refused without allocating it; Pillow's own guard (``DecompressionBombError``) is kept as a
second line and reported the same way.

Every accepted image is re-encoded from its pixels, which drops whatever metadata it carried
(EXIF with its GPS position, XMP, comments, embedded thumbnails). The EXIF orientation is
applied first, so a phone photo does not come out sideways once its EXIF is gone.

Pure: bytes in, bytes out, no I/O.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from app.config import DEFAULT_MEDIA_MAX_UPLOAD_BYTES, DEFAULT_MEDIA_MAX_UPLOAD_PIXELS
from app.errors import AutopilotError
from app.platforms import ImageLimits

__all__ = [
    "ALLOWED_CONTENT_TYPES", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_MAX_UPLOAD_PIXELS",
    "DEFAULT_THUMBNAIL_PX", "CleanImage", "ImageLimits", "ImageRefused", "MediaError",
    "clean_upload", "fit_to_limits", "thumbnail",
]

#: Pillow format name -> content type, for the formats an upload may be.
ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
ALLOWED_CONTENT_TYPES = frozenset(ALLOWED_FORMATS.values())
_FORMAT_OF = {content_type: fmt for fmt, content_type in ALLOWED_FORMATS.items()}
#: The file extension stored objects get, by content type.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}

#: The largest upload accepted into the library, in bytes (the largest any platform takes is
#: X's 15 MB for an animated GIF; stills are re-encoded per platform when bigger than it takes).
#: ``MEDIA_MAX_UPLOAD_BYTES`` overrides it.
DEFAULT_MAX_UPLOAD_BYTES = DEFAULT_MEDIA_MAX_UPLOAD_BYTES
#: The most pixels an upload may declare (width x height): LinkedIn's documented ceiling,
#: 36,152,320, is the largest of the platforms'; anything bigger is a bomb or a poster.
DEFAULT_MAX_UPLOAD_PIXELS = DEFAULT_MEDIA_MAX_UPLOAD_PIXELS
#: The longest side of a library thumbnail, in pixels.
DEFAULT_THUMBNAIL_PX = 320
#: JPEG quality of re-encoded stills: visually lossless for photos at a third of the size.
DEFAULT_JPEG_QUALITY = 88
#: Qualities tried, in order, when a still must shrink to fit a platform's byte limit.
_FIT_QUALITIES = (85, 75, 65, 55)
#: Each further attempt scales the image by this much when quality alone is not enough.
_FIT_SCALE_STEP = 0.8
_FIT_MAX_ROUNDS = 8


class MediaError(AutopilotError):
    """Something about an image or its storage went wrong."""


class ImageRefused(MediaError):
    """An image that cannot be taken (upload) or cannot be sent to a platform; says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class CleanImage:
    """An accepted upload: re-encoded without metadata, with what the library records of it."""

    data: bytes
    content_type: str
    width: int
    height: int
    frames: int = 1

    @property
    def animated(self) -> bool:
        return self.frames > 1

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def _refuse_svg(data: bytes) -> None:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and (b"<svg" in data[:4096].lower() or head.startswith(b"<?xml")):
        raise ImageRefused("SVG images are not accepted (they can carry scripts); "
                           "upload a JPEG, PNG, WebP or GIF")


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The image's header, read without decoding pixels; refused when it is none of ours."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (and above twice its limit, raises) on huge canvases; either way a
            # bomb: our own pixel check below says so in words a user understands.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"the image declares more pixels than the {max_pixels:,} allowed "
                           "(a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRefused("the file is not a JPEG, PNG, WebP or GIF image "
                           "(judged by its contents, not its name)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRefused(f"the image could not be read: {exc}") from None
    return image


def clean_upload(data: bytes, *, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                 max_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS) -> CleanImage:
    """Check an upload and return it re-encoded without metadata; :class:`ImageRefused` says
    why it was not taken (nothing is stored then)."""
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > max_bytes:
        raise ImageRefused(f"the file is {len(data):,} bytes; the most accepted is {max_bytes:,}")
    _refuse_svg(data)
    image = _open(data, max_pixels)
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRefused("the image has no pixels")
    if width * height > max_pixels:
        raise ImageRefused(f"the image is {width}x{height} = {width * height:,} pixels; "
                           f"the most accepted is {max_pixels:,} (a decompression bomb?)")
    content_type = ALLOWED_FORMATS[str(image.format)]
    frames = int(getattr(image, "n_frames", 1) or 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            encoded = _reencode(image, content_type, frames)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"the image declares more pixels than the {max_pixels:,} allowed "
                           "(a decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRefused(f"the image is damaged or truncated: {exc}") from None
    if len(encoded.data) > max_bytes:
        raise ImageRefused(f"the image is {len(encoded.data):,} bytes once cleaned; "
                           f"the most accepted is {max_bytes:,}")
    return encoded


def _reencode(image: Image.Image, content_type: str, frames: int) -> CleanImage:
    """The image's pixels alone, in its own format (no EXIF, XMP, ICC text or comments)."""
    fmt = _FORMAT_OF[content_type]
    out = io.BytesIO()
    if frames > 1:
        # Animation timing lives in the frames' info; everything else is dropped.
        duration = [frame.info.get("duration", 100) for frame in ImageSequence.Iterator(image)]
        image.seek(0)
        sequence = [_bare(frame.copy()) for frame in ImageSequence.Iterator(image)]
        sequence[0].save(out, format=fmt, save_all=True, append_images=sequence[1:],
                         duration=duration, loop=int(image.info.get("loop", 0)), **_options(fmt))
        width, height = image.size
    else:
        upright = _bare(ImageOps.exif_transpose(image))
        if fmt == "JPEG" and upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        upright.save(out, format=fmt, **_options(fmt))
        width, height = upright.size
    return CleanImage(out.getvalue(), content_type, width, height, frames)


def _bare(image: Image.Image) -> Image.Image:
    """The same pixels with no metadata left for the encoder to copy."""
    image.info = {key: value for key, value in image.info.items()
                  if key in ("transparency", "duration")}
    return image


def _options(fmt: str) -> dict[str, Any]:
    if fmt == "JPEG":
        return {"quality": DEFAULT_JPEG_QUALITY, "optimize": True}
    if fmt == "WEBP":
        return {"quality": DEFAULT_JPEG_QUALITY}
    if fmt == "PNG":
        return {"optimize": True}
    return {}


def thumbnail(data: bytes, size_px: int = DEFAULT_THUMBNAIL_PX) -> tuple[bytes, str]:
    """A small still of a cleaned image (its first frame): PNG when it has transparency,
    JPEG otherwise. Returns (bytes, content type)."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        small = image.copy()
    small.thumbnail((size_px, size_px))
    out = io.BytesIO()
    if small.mode in ("RGBA", "LA", "P") and ("transparency" in small.info or small.mode != "P"):
        small.convert("RGBA").save(out, format="PNG", optimize=True)
        return out.getvalue(), "image/png"
    small.convert("RGB").save(out, format="JPEG", quality=80, optimize=True)
    return out.getvalue(), "image/jpeg"


def fits(content_type: str, size_bytes: int, width: int, height: int, frames: int,
         limits: ImageLimits) -> str | None:
    """Why an image does not fit ``limits`` as it is; None when it does."""
    if content_type not in limits.content_types:
        return f"{content_type} is not accepted (accepted: {', '.join(sorted(limits.content_types))})"
    max_bytes = limits.max_animated_bytes if frames > 1 and limits.max_animated_bytes else limits.max_bytes
    if size_bytes > max_bytes:
        return f"{size_bytes:,} bytes is over the {max_bytes:,}-byte limit"
    if width * height > limits.max_pixels:
        return f"{width}x{height} is over the {limits.max_pixels:,}-pixel limit"
    return None


def fit_to_limits(data: bytes, content_type: str, limits: ImageLimits, *,
                  platform: str = "the platform") -> tuple[bytes, str]:
    """The image as ``platform`` takes it: unchanged when it fits, else resized and re-encoded
    (a still only) when the platform allows; :class:`ImageRefused` with the reason otherwise.

    Returns (bytes, content type).
    """
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        frames = int(getattr(image, "n_frames", 1) or 1)
        why = fits(content_type, len(data), width, height, frames, limits)
        if why is None:
            return data, content_type
        if not limits.may_reencode:
            raise ImageRefused(f"{platform} does not take this image: {why}")
        if frames > 1:
            raise ImageRefused(f"{platform} does not take this animated image: {why} "
                               "(an animation is not re-encoded: it would lose its frames)")
        image.load()
        still = image.copy()
    target = _target_type(still, limits)
    if target is None:
        raise ImageRefused(f"{platform} does not take this image: {why}, and it accepts no "
                           "format it could be converted to")
    scale = min(1.0, (limits.max_pixels / (width * height)) ** 0.5)
    for _ in range(_FIT_MAX_ROUNDS):
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        resized = still.resize(size, Image.Resampling.LANCZOS) if size != still.size else still
        for encoded in _encodings(resized, target):
            if len(encoded) <= limits.max_bytes and size[0] * size[1] <= limits.max_pixels:
                return encoded, target
        scale *= _FIT_SCALE_STEP
    raise ImageRefused(f"{platform} does not take this image: {why}, and it could not be "
                       f"shrunk under {limits.max_bytes:,} bytes")


def _target_type(image: Image.Image, limits: ImageLimits) -> str | None:
    transparent = image.mode in ("RGBA", "LA") or "transparency" in image.info
    preferences = (["image/png", "image/webp"] if transparent else []) + ["image/jpeg", "image/webp", "image/png"]
    return next((t for t in preferences if t in limits.content_types), None)


def _encodings(image: Image.Image, content_type: str) -> Iterator[bytes]:
    """The image encoded as ``content_type``, smaller each time (made lazily: the first that
    fits ends the search)."""
    fmt = _FORMAT_OF[content_type]
    if fmt in ("JPEG", "WEBP"):
        source = image.convert("RGB") if fmt == "JPEG" else image
        for quality in _FIT_QUALITIES:
            out = io.BytesIO()
            source.save(out, format=fmt, quality=quality, optimize=fmt == "JPEG")
            yield out.getvalue()
    else:
        out = io.BytesIO()
        image.save(out, format=fmt, optimize=True)
        yield out.getvalue()
