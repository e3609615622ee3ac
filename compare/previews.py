"""Small pictures of a changed pair for the HTML report: before, after and the diff."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .diffpicture import render_diff_picture

PREVIEW_WIDTH = 400


def make_previews(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> dict[str, bytes]:
    """JPEG thumbnails of ``before`` and ``after`` and a PNG diff picture, all on one scale.

    The scale shrinks the canvas (``mask``'s shape) to at most `PREVIEW_WIDTH` pixels wide by a
    whole factor, so a changed pixel always leaves a mark: a thumbnail pixel is red when any
    pixel it covers changed.
    """
    height, width = mask.shape
    factor = max(1, -(-width // PREVIEW_WIDTH))
    small_after = _shrink(after, factor)
    return {
        "before": _jpeg(_shrink(before, factor)),
        "after": _jpeg(small_after),
        "diff": render_diff_picture(_on_canvas(small_after, mask.shape, factor), _any_in_block(mask, factor)),
    }


def _shrink(rgba: np.ndarray, factor: int) -> np.ndarray:
    image = Image.fromarray(rgba, "RGBA")
    if factor > 1:
        image = image.reduce(factor)
    return np.asarray(image)


def _jpeg(rgba: np.ndarray) -> bytes:
    image = Image.fromarray(rgba, "RGBA")
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _any_in_block(mask: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a bool mask by ``factor``: a block is True when any pixel in it is."""
    height, width = mask.shape
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.zeros((rows * factor, cols * factor), dtype=bool)
    padded[:height, :width] = mask
    return padded.reshape(rows, factor, cols, factor).any(axis=(1, 3))


def _on_canvas(rgba: np.ndarray, canvas: tuple[int, int], factor: int) -> np.ndarray:
    """Place a shrunk image top-left on the shrunk canvas (transparent elsewhere)."""
    rows, cols = -(-canvas[0] // factor), -(-canvas[1] // factor)
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    h, w = min(rows, rgba.shape[0]), min(cols, rgba.shape[1])
    out[:h, :w] = rgba[:h, :w]
    return out
