"""Small pictures of a changed pair for the HTML report: before, after and the diff."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .pixeldiff import pad_to_canvas

PREVIEW_WIDTH = 400

CHANGED_COLOUR = (255, 0, 0)
# The diff picture shows the original faded at pixelmatch's default opacity of 0.1, so its grey
# levels span only 229..255: the picture fits a small palette, one byte per pixel, which encodes
# several times faster than RGB.
_DARKEST_FADED = 229
_CHANGED_INDEX = 255 - _DARKEST_FADED + 1
_PALETTE = [level for grey in range(_DARKEST_FADED, 256) for level in (grey, grey, grey)] + list(
    CHANGED_COLOUR
)


@dataclass(frozen=True)
class Thumbnail:
    """An image shrunk for the report: its RGBA pixels and a JPEG of them."""

    pixels: np.ndarray
    jpeg: bytes


def preview_factor(canvas_width: int) -> int:
    """The whole factor that shrinks a canvas ``canvas_width`` wide to at most `PREVIEW_WIDTH`."""
    return max(1, -(-canvas_width // PREVIEW_WIDTH))


def make_thumbnail(rgba: np.ndarray, factor: int) -> Thumbnail:
    """Shrink an HxWx4 RGBA image by averaging ``factor`` x ``factor`` blocks."""
    small = _shrink(rgba, factor)
    return Thumbnail(small, _jpeg(small))


def make_previews(
    before: Thumbnail,
    after: Thumbnail,
    mask: np.ndarray,
    bbox: tuple[int, int, int, int] | None,
) -> dict[str, bytes]:
    """The before and after JPEGs and a PNG diff picture, all on one scale.

    The thumbnails are made with `preview_factor` of the canvas (``mask``'s width), so a changed
    pixel always leaves a mark: a diff picture pixel is red when any pixel it covers changed.
    ``bbox`` bounds the changed pixels (None when there are none).
    """
    height, width = mask.shape
    factor = preview_factor(width)
    small_height, small_width = -(-height // factor), -(-width // factor)
    return {
        "before": before.jpeg,
        "after": after.jpeg,
        "diff": _diff_picture(
            pad_to_canvas(after.pixels, small_width, small_height),
            _any_in_block(mask, factor, bbox),
        ),
    }


def _shrink(rgba: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (Pillow's reduce), as an RGBA array."""
    opaque = bool(rgba[..., 3].min() == 255)
    # Reducing RGBA premultiplies alpha over the whole frame first; for an opaque image the
    # alpha byte is padding, and RGBX skips that pass (three times faster on a phone screen).
    mode = "RGBX" if opaque else "RGBA"
    height, width = rgba.shape[:2]
    image = Image.frombuffer(mode, (width, height), np.ascontiguousarray(rgba), "raw", mode, 0, 1)
    small = np.array(image.reduce(factor) if factor > 1 else image)
    if opaque:
        small[..., 3] = 255
    return small


def _jpeg(rgba: np.ndarray) -> bytes:
    """JPEG of an RGBA image flattened over white (an opaque one is encoded as it is)."""
    height, width = rgba.shape[:2]
    if rgba[..., 3].min() == 255:
        flat = Image.frombuffer("RGBX", (width, height), rgba, "raw", "RGBX", 0, 1)
    else:
        image = Image.fromarray(rgba, "RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _any_in_block(mask: np.ndarray, factor: int, bbox: tuple[int, int, int, int] | None) -> np.ndarray:
    """Shrink a bool mask by ``factor``: a block is True when any pixel in it is.

    Only the blocks over ``bbox`` are looked at, since no pixel outside it changed.
    """
    height, width = mask.shape
    out = np.zeros((-(-height // factor), -(-width // factor)), dtype=bool)
    if bbox is None:
        return out
    x0, y0 = bbox[0] // factor, bbox[1] // factor
    x1, y1 = -(-bbox[2] // factor), -(-bbox[3] // factor)
    blocks = np.zeros(((y1 - y0) * factor, (x1 - x0) * factor), dtype=bool)
    part = mask[y0 * factor : y1 * factor, x0 * factor : x1 * factor]
    blocks[: part.shape[0], : part.shape[1]] = part
    out[y0:y1, x0:x1] = blocks.reshape(y1 - y0, factor, x1 - x0, factor).any(axis=(1, 3))
    return out


def _diff_picture(base: np.ndarray, changed: np.ndarray) -> bytes:
    """A pixelmatch-style diff picture as a palette PNG: ``base`` (HxWx4 RGBA) faded grey over
    white (its luma at opacity 0.1 times its alpha), the pixels of the HxW ``changed`` mask red."""
    out = _faded_index(base)
    out[changed] = _CHANGED_INDEX
    height, width = changed.shape
    picture = Image.frombuffer("P", (width, height), out, "raw", "P", 0, 1)
    picture.putpalette(_PALETTE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _faded_index(rgba: np.ndarray) -> np.ndarray:
    """Palette index of each pixel's faded grey: 255 - ceil((255 - luma) * 0.1 * alpha / 255).

    Luma in integer thousandths (weights 299/587/114) stays within a grey level of pixelmatch's
    float weights and avoids float temporaries.
    """
    r, g, b, a = (rgba[..., c].astype(np.uint32) for c in range(4))
    darkness = (255_000 - (r * 299 + g * 587 + b * 114)) * a
    drop = (darkness + 2_549_999) // 2_550_000
    return np.ascontiguousarray(255 - _DARKEST_FADED - drop, dtype=np.uint8)
