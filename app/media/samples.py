"""The demo's sample library: a few small images per topic, drawn with Pillow when the demo
starts, so ``autopilot demo`` shows posts with images offline and ships no binary files."""

from __future__ import annotations

import io
import zlib

from PIL import Image, ImageDraw

__all__ = ["SAMPLE_SIZE_PX", "sample_images"]

#: Width and height of a sample card, in pixels (16:9, small enough to draw in milliseconds).
SAMPLE_SIZE_PX = (480, 270)
_PALETTE = [("#0f4c5c", "#e36414"), ("#283618", "#dda15e"), ("#3d405b", "#f2cc8f"), ("#1d3557", "#a8dadc")]


def sample_images(topic: str, count: int = 2) -> list[tuple[bytes, str, list[str]]]:
    """``count`` PNG cards about ``topic``: (bytes, alt text, tags). Deterministic per topic."""
    seed = zlib.crc32(topic.encode())
    cards = []
    for n in range(count):
        background, accent = _PALETTE[(seed + n) % len(_PALETTE)]
        image = Image.new("RGB", SAMPLE_SIZE_PX, background)
        draw = ImageDraw.Draw(image)
        width, height = SAMPLE_SIZE_PX
        if n % 2 == 0:
            draw.ellipse((width - 190, 40, width - 30, 200), fill=accent)
        else:
            draw.rectangle((width - 200, 60, width - 40, 220), outline=accent, width=12)
        draw.rectangle((30, height - 70, 30 + 14 * len(topic), height - 56), fill=accent)
        draw.text((30, 40), topic.upper(), fill="white")
        out = io.BytesIO()
        image.save(out, format="PNG")
        shape = "a circle" if n % 2 == 0 else "an outlined square"
        alt = f"A title card reading '{topic}' in white, with {shape} in {accent} on {background}"
        cards.append((out.getvalue(), alt, topic.lower().split()))
    return cards
