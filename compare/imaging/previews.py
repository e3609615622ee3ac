"""Pictures of a changed pair for the HTML report.

Two kinds, each before, after and diff: whole-image previews shrunk to at most `PREVIEW_WIDTH`
wide and `PREVIEW_MAX_HEIGHT` tall, and crops of the changed area at full resolution
(`crop_region` picks the area, `make_crops` cuts it), so a change of a single pixel is seen at
its real size. Any canvas within the pixel limit works: thumbnails are shrunk from the image in
place, and the block scans over the mask reduce one side, then the other, so what they allocate
stays within about the mask's own size (a byte a pixel) whatever the canvas's shape.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .pixeldiff import pad_to_canvas

PREVIEW_WIDTH = 400
PREVIEW_MAX_HEIGHT = 65_500
"""The tallest preview: JPEG's largest dimension (a taller canvas is shrunk further)."""

CROP_MAX_WIDTH, CROP_MAX_HEIGHT = 800, 600
"""The largest crop of the changed area, in canvas pixels."""
CROP_MARGIN = 24
"""Unchanged pixels shown around the changed area, on each side, when the crop has room."""
CROP_ORIGIN_KEY = "snapcompare-crop-origin"
"""PNG text chunk of each crop holding where it sits on the canvas, as ``x,y``."""
# A capped crop is placed by counting changed pixels per square block of this side, which
# bounds the search's memory and time by the blocks, not the pixels; a block's count fits a byte.
_DENSITY_BLOCK = 8

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


def preview_factor(canvas_width: int, canvas_height: int) -> int:
    """The whole factor that shrinks a canvas to at most `PREVIEW_WIDTH` wide and
    `PREVIEW_MAX_HEIGHT` tall."""
    return max(1, -(-canvas_width // PREVIEW_WIDTH), -(-canvas_height // PREVIEW_MAX_HEIGHT))


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

    The thumbnails are made with `preview_factor` of the canvas (``mask``'s size), so a changed
    pixel always leaves a mark: a diff picture pixel is red when any pixel it covers changed.
    ``bbox`` bounds the changed pixels (None when there are none).
    """
    height, width = mask.shape
    factor = preview_factor(width, height)
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
    out[y0:y1, x0:x1] = _block_sums(mask[y0 * factor : y1 * factor, x0 * factor : x1 * factor], factor)
    return out


def _block_sums(values: np.ndarray, factor: int) -> np.ndarray:
    """The sum of each ``factor`` x ``factor`` block of a 2-D array, in its own dtype (for bools:
    whether any is True); partial blocks at the edges as they are.

    The longer side is reduced first, then the other, one vectorised addition per position in
    a block: nothing larger than ``values`` over the factor is allocated (nor an index per
    block), whatever the array's shape.
    """
    first = 0 if values.shape[0] >= values.shape[1] else 1
    for axis in (first, 1 - first):
        runs = np.moveaxis(values, axis, 0)
        summed = runs[::factor].copy()
        for offset in range(1, min(factor, runs.shape[0])):
            run = runs[offset::factor]
            summed[: run.shape[0]] += run
        values = np.moveaxis(summed, 0, axis)
    return values


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


@dataclass(frozen=True)
class CropRegion:
    """A rectangle of the diff canvas: top-left corner and size, in pixels."""

    x: int
    y: int
    width: int
    height: int


def crop_region(mask: np.ndarray, bbox: tuple[int, int, int, int] | None) -> CropRegion | None:
    """The part of the canvas a report shows at full resolution; None when nothing changed.

    The changed area ``bbox`` (x0, y0, x1, y1, exclusive ends) of the HxW bool ``mask`` with
    `CROP_MARGIN` around it, shifted inside the canvas. Along an axis where that is longer than
    `CROP_MAX_WIDTH` or `CROP_MAX_HEIGHT`, the crop takes the maximum length and is placed where
    the most changed pixels are (the first such place).
    """
    if bbox is None:
        return None
    height, width = mask.shape
    x0, y0, x1, y1 = bbox
    wanted_x, wanted_y = x1 - x0 + 2 * CROP_MARGIN, y1 - y0 + 2 * CROP_MARGIN
    fits_x, fits_y = wanted_x <= CROP_MAX_WIDTH, wanted_y <= CROP_MAX_HEIGHT
    size_x = min(width, wanted_x, CROP_MAX_WIDTH)
    size_y = min(height, wanted_y, CROP_MAX_HEIGHT)
    start_x = (x0 + x1 - size_x) // 2
    start_y = (y0 + y1 - size_y) // 2
    if not (fits_x and fits_y):
        block_x, block_y = _densest_block(mask[y0:y1, x0:x1], None if fits_x else size_x,
                                          None if fits_y else size_y)
        if not fits_x:
            start_x = x0 + block_x * _DENSITY_BLOCK - (size_x % _DENSITY_BLOCK) // 2
        if not fits_y:
            start_y = y0 + block_y * _DENSITY_BLOCK - (size_y % _DENSITY_BLOCK) // 2
    return CropRegion(
        min(max(start_x, 0), width - size_x), min(max(start_y, 0), height - size_y), size_x, size_y
    )


def _densest_block(part: np.ndarray, size_x: int | None, size_y: int | None) -> tuple[int, int]:
    """The block (column, row) of `_DENSITY_BLOCK` pixels where a window of ``size_x`` by
    ``size_y`` pixels over bool ``part`` holds the most True pixels; None spans a whole axis.

    Counts are summed per block (`_block_sums`, a byte per count: a block holds at most 64),
    then the windows come from the blocks' running sums (4-byte integers while they fit);
    ``part`` itself is not copied.
    """
    blocks = _block_sums(part.view(np.uint8), _DENSITY_BLOCK)  # True is 1
    span_y = blocks.shape[0] if size_y is None else max(1, min(blocks.shape[0], size_y // _DENSITY_BLOCK))
    span_x = blocks.shape[1] if size_x is None else max(1, min(blocks.shape[1], size_x // _DENSITY_BLOCK))
    total = np.int32 if part.size < 2**31 else np.int64
    sums = np.zeros((blocks.shape[0] + 1, blocks.shape[1] + 1), dtype=total)
    np.cumsum(blocks, axis=0, dtype=sums.dtype, out=sums[1:, 1:])
    np.cumsum(sums[1:, 1:], axis=1, dtype=sums.dtype, out=sums[1:, 1:])
    del blocks
    windows = sums[span_y:, span_x:] - sums[:-span_y, span_x:]
    windows -= sums[span_y:, :-span_x]
    windows += sums[:-span_y, :-span_x]
    block_y, block_x = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(block_x), int(block_y)


def make_crops(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, region: CropRegion
) -> dict[str, bytes]:
    """PNGs of ``region`` at full resolution: ``crop-before``, ``crop-after`` and ``crop-diff``.

    ``before`` and ``after`` are HxWx4 RGBA images placed top-left on ``mask``'s canvas (parts
    of the region outside an image are transparent). ``crop-diff`` is transparent with the
    changed pixels red, to lay over the others. Each PNG records the region's corner in the
    `CROP_ORIGIN_KEY` text chunk.
    """
    info = PngInfo()
    info.add_text(CROP_ORIGIN_KEY, f"{region.x},{region.y}")
    ys = slice(region.y, region.y + region.height)
    xs = slice(region.x, region.x + region.width)
    crops = {
        f"crop-{side}": _png(_image(pad_to_canvas(pixels[ys, xs], region.width, region.height)), info)
        for side, pixels in (("before", before), ("after", after))
    }
    overlay = Image.frombuffer(
        "P", (region.width, region.height), np.ascontiguousarray(mask[ys, xs], dtype=np.uint8), "raw", "P", 0, 1
    )
    overlay.putpalette([0, 0, 0, *CHANGED_COLOUR])
    crops["crop-diff"] = _png(overlay, info, transparency=0)
    return crops


def _image(rgba: np.ndarray) -> Image.Image:
    """An RGBA array as an image; an opaque one as RGB, which makes a smaller PNG."""
    if rgba[..., 3].min() == 255:
        return Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
    return Image.fromarray(np.ascontiguousarray(rgba), "RGBA")


def _png(image: Image.Image, info: PngInfo, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3, pnginfo=info, **options)
    return buffer.getvalue()
