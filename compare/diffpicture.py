"""The people-facing diff picture: faded grey original, changed pixels red, anti-aliasing yellow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CHANGED_COLOUR = (255, 0, 0)
AA_COLOUR = (255, 255, 0)
# The original shows through at pixelmatch's default opacity of 0.1, so its grey levels span only
# 229..255: the picture fits a small palette, one byte per pixel, which encodes several times faster
# than RGB.
_DARKEST_FADED = 229
_GREYS = 255 - _DARKEST_FADED + 1
_CHANGED_INDEX = _GREYS
_AA_INDEX = _GREYS + 1
_PALETTE = (
    [level for grey in range(_DARKEST_FADED, 256) for level in (grey, grey, grey)]
    + list(CHANGED_COLOUR)
    + list(AA_COLOUR)
)
# Rows are rendered in bands of about this many pixels to bound temporaries on tall pages.
_BAND_PIXELS = 1 << 20


def render_diff_picture(
    base: np.ndarray,
    changed: np.ndarray,
    aa: np.ndarray | None = None,
    *,
    crop: tuple[int, int, int, int] | None = None,
) -> bytes:
    """Draw a pixelmatch-style diff picture and return it as a palette PNG.

    ``base`` is the HxWx4 uint8 RGBA image drawn faded underneath (its luma, at opacity 0.1 times
    its alpha, over white), ``changed`` and ``aa`` are bool HxW masks marked red and yellow.
    ``crop`` (x0, y0, x1, y1, exclusive ends) limits the picture to that box; None draws the whole
    canvas. zlib level 1 keeps writing fast on tall pages.
    """
    x0, y0, x1, y1 = crop if crop is not None else (0, 0, base.shape[1], base.shape[0])
    out = np.empty((y1 - y0, x1 - x0), dtype=np.uint8)
    band = max(1, _BAND_PIXELS // max(x1 - x0, 1))
    for top in range(y0, y1, band):
        bottom = min(y1, top + band)
        rows = out[top - y0 : bottom - y0]
        rows[...] = _faded_index(base[top:bottom, x0:x1])
        if aa is not None:
            rows[aa[top:bottom, x0:x1]] = _AA_INDEX
        rows[changed[top:bottom, x0:x1]] = _CHANGED_INDEX
    picture = Image.frombuffer("P", (x1 - x0, y1 - y0), out, "raw", "P", 0, 1)
    picture.putpalette(_PALETTE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _faded_index(rgba: np.ndarray) -> np.ndarray:
    """Palette index of each pixel's faded grey: 255 - ceil((255 - luma) * 0.1 * alpha / 255).

    Luma in integer thousandths (weights 299/587/114) stays within a grey level of pixelmatch's
    float weights and avoids float temporaries the size of the picture.
    """
    r, g, b, a = (rgba[..., c].astype(np.uint32) for c in range(4))
    darkness = (255_000 - (r * 299 + g * 587 + b * 114)) * a
    drop = (darkness + 2_549_999) // 2_550_000
    return (255 - _DARKEST_FADED - drop).astype(np.uint8)
