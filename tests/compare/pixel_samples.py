"""Small synthetic images for the pixel diff tests."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RED = (255, 0, 0, 255)


def screen(width: int = 120, height: int = 90, *, label: str = "Settings") -> np.ndarray:
    """A screen-like RGBA image: background, coloured card, anti-aliased text, translucent badge."""
    image = Image.new("RGBA", (width, height), (242, 242, 247, 255))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((6, 6, width - 6, height // 2), radius=6, fill=(0, 122, 255, 255))
    draw.text(
        (10, height // 2 + 6), label, font=ImageFont.load_default(size=16), fill=(0, 0, 0, 255)
    )
    draw.ellipse((width - 30, height - 30, width - 10, height - 10), fill=(255, 59, 48, 128))
    return np.array(image)


def with_block(pixels: np.ndarray, x: int, y: int, size: int, colour=RED) -> np.ndarray:
    """A copy of ``pixels`` with a size x size square of ``colour`` at (x, y)."""
    changed = pixels.copy()
    changed[y : y + size, x : x + size] = colour
    return changed


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **params) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height RGBA but whose pixel data is garbage."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"not zlib data")
        + chunk(b"IEND", b"")
    )
