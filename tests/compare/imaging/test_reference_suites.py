"""pixelmatch 7.2.0's and odiff 4.5.0's own tests about a diff's result, restated on pictures the
project draws (conformance/suite_cases.py, size_cases.py) with the same property, through
`compare.diff_images` and every decoder path. Each expected value is what pixelmatch 7.2.0 or
the odiff 4.5.0 binary gave on those pictures (conformance/generate.py); each restatement also
asserts what the peer's test itself asserts of its own fixture (nothing changed, something
changed, the same count both ways...). Each cites ``file: test name`` at the peer's tag.

Not restated, being about no diff result snapcompare has: pixelmatch's input validation
("throws error if ..."); odiff's diff image colours and overlays ("diff color: ...",
``diffOverlay``), its mask-or-not switch ("... Diff of mask and no mask are equal"), its PNG
writer ("PNG: Correctly writes and reads large images ...", "PNG: Large image with diff overlay
..."), its diff line and column lists (as lists; their bounds are the bbox, restated), its
server and file-system protocol (errors, requests in sequence or concurrently,
``reduceRamUsage``) and odiff's colour-delta unit tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image

from compare import DiffResult, diff_images

from .conformance_cases import (
    Path,
    case_inputs,
    diff_as_expected,
    expected_values,
    result_index,
)

pytestmark = pytest.mark.unit

PIXELMATCH = "pixelmatch 7.2.0 test/test.js"
ODIFF_CORE = "odiff 4.5.0 src/test_core.zig"
ODIFF_PNG = "odiff 4.5.0 src/test_io_png.zig"
ODIFF_SERVER = "odiff 4.5.0 src/test_server.zig"
ODIFF_NODE = "odiff 4.5.0 npm_packages/tests/src/node-binding.test.cjs"
AT_005 = {"threshold": 0.05, "antialiasing": True}  # test.js's {threshold: 0.05}: includeAA false
ODIFF_DEFAULTS = {"threshold": 0.1, "antialiasing": False}  # odiff's DiffOptions{} and CLI defaults
Claim = Literal["none", "some"] | None


@dataclass(frozen=True)
class Restated:
    """One peer test on a drawn case: the reference whose result it is, the options in
    snapcompare's names, ``given`` passed to diff_images besides, and the peer's own claim:
    ``"none"`` (no pixel changed), ``"some"`` or None (its count only)."""

    cites: str
    case: str
    reference: str
    options: dict[str, Any]
    claim: Claim = None
    given: dict[str, Any] = field(default_factory=dict)


def restate(restated: Restated, decoder: Path) -> DiffResult:
    """diff_images as the peer's test runs, checked against the reference's result and the claim."""
    expected = expected_values(restated.reference, restated.case)
    index = result_index(expected, restated.options, f"{restated.case} {restated.reference}")
    diff = diff_as_expected(restated.reference, restated.case, expected, index, decoder, **restated.given)
    if restated.claim == "none":
        assert diff.changed_pixels == 0 and diff.bbox is None and not diff.mask.any()
    elif restated.claim == "some":
        assert diff.changed_pixels > 0
    return diff


def _params(*restated: Restated) -> list:
    return [pytest.param(r, id=f"{r.cites} -> {r.case}") for r in restated]


RESTATED = _params(
    Restated(f'{PIXELMATCH}: "comparing 1a to 1b, {{"threshold":0.05}}" and with includeAA false, diffMask',
             "labels_moved", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 1a to 1b, {{"threshold":undefined}}"',
             "labels_moved", "pixelmatch", {"threshold": 0.1, "antialiasing": True}, "some"),
    Restated(f'{PIXELMATCH}: "comparing 1a to 1a, {{"threshold":0,"diffMask":true}}", '
             '"comparing 6a to 6a, {"threshold":0}"',
             "labels_same", "pixelmatch", {"threshold": 0, "antialiasing": True}, "none"),
    Restated(f'{PIXELMATCH}: "comparing 2a to 2b" (palette PNGs; alpha, aaColor, diffColor style the output)',
             "map_palette_rerendered", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 3a to 3b"', "markers_moved", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 4a to 4b" (RGB against RGBA)',
             "rgb_vs_rgba_zoomed", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 5a to 5b" (translucent against transparent)',
             "translucent_diagonal_cleared", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 6a to 6b" (anti-aliased rays)',
             "starburst_rerendered", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "comparing 7a to 7b, {{"diffColorAlt":[0,255,0]}}" (diffColorAlt styles the output)',
             "map_palette_rerendered", "pixelmatch", {"threshold": 0.1, "antialiasing": True}, "some"),
    Restated(f'{PIXELMATCH}: "comparing 8a to 5b" (opaque white against transparent)',
             "opaque_white_vs_transparent", "pixelmatch", AT_005, "some"),
    Restated(f'{PIXELMATCH}: "checkerboard: false blends semi-transparent pixels against white" (false)',
             "half_black_vs_grey", "pixelmatch", {"threshold": 0.1, "antialiasing": True, "checkerboard": False},
             "none"),
    Restated(f'{PIXELMATCH}: "checkerboard: false blends semi-transparent pixels against white" (default)',
             "half_black_vs_grey", "pixelmatch", {"threshold": 0.1, "antialiasing": True}, "some"),
    Restated(f'{ODIFF_CORE}: "antialiasing: does not count anti-aliased pixels as different"',
             "antialiased_disc", "odiff", {"threshold": 0.1, "antialiasing": True}),
    Restated(f'{ODIFF_CORE}: "antialiasing: tests different sized AA images"',
             "antialiased_disc_smaller_head", "odiff-sizes", {"threshold": 0.1, "antialiasing": True}, "some"),
    Restated(f'{ODIFF_CORE}: "threshold: uses provided threshold"; {ODIFF_NODE}: "Correctly parses threshold"',
             "fruit_labelled", "odiff", {"threshold": 0.5, "antialiasing": False}, "some"),
    Restated(f'{ODIFF_CORE}: "ignore regions: uses provided ignore regions"; {ODIFF_SERVER}: '
             f'"server: ignore regions support"; {ODIFF_NODE}: "Correctly parses ignore regions"',
             "fruit_labelled", "odiff", {**ODIFF_DEFAULTS, "ignore_regions": [
                 {"x1": 44, "y1": 14, "x2": 76, "y2": 34}, {"x1": 14, "y1": 46, "x2": 48, "y2": 60}]}, "none"),
    Restated(f'{ODIFF_CORE}: "blendSemiTransparentColor: blend semi-transparent colors"',
             "alpha_blend_row", "odiff", ODIFF_DEFAULTS, "none"),
    Restated(f'{ODIFF_CORE}: "unrollIgnoreRegions: should only mark rectangular region pixels, '
             'not entire linear range"',
             "dots_beside_a_region", "odiff", {**ODIFF_DEFAULTS, "ignore_regions": [
                 {"x1": 70, "y1": 50, "x2": 90, "y2": 52}]}, "some"),
    Restated(f'{ODIFF_PNG}: "PNG: finds difference between 2 images", "PNG: Creates correct diff output '
             f'image"; {ODIFF_SERVER}: "server: end-to-end different images show pixel diff"; {ODIFF_NODE}: '
             '"Outputs correct parsed result when images different", "Buffer comparison - different images '
             'show pixel diff"',
             "fruit_labelled", "odiff", ODIFF_DEFAULTS, "some"),
    Restated(f'{ODIFF_PNG}: "PNG: Correctly handles different encodings of transparency"',
             "alpha_levels_palette_vs_rgba", "odiff", ODIFF_DEFAULTS, "none"),
    Restated(f'{ODIFF_SERVER}: "server: end-to-end identical images match"; {ODIFF_NODE}: "Correctly handles '
             'same images", "Buffer comparison - identical images match"',
             "labels_same", "odiff", {"threshold": 0, "antialiasing": False}, "none"),
    Restated(f'{ODIFF_SERVER}: "server: empty ignore regions array works correctly"',
             "fruit_labelled", "odiff", ODIFF_DEFAULTS, "some", {"ignore_regions": []}),
    Restated(f'{ODIFF_SERVER}: "server: integer threshold 0 is respected, not treated as default"',
             "fruit_labelled", "odiff", {"threshold": 0, "antialiasing": False}, "some"),
    Restated(f'{ODIFF_SERVER}: "server: wider compare image not falsely reported as match"',
             "wider_white_head", "odiff-sizes", {"threshold": 0.1, "antialiasing": True}, "some"),
    Restated(f'{ODIFF_NODE}: "Correctly parses antialiasing"',
             "fruit_labelled", "odiff", {"threshold": 0.1, "antialiasing": True}, "some"),
    # odiff's own tests decode JPEG with the accurate DCT, as snapcompare does: the values on
    # Pillow's pixels are theirs (the binary's on the files: test_odiff_on_the_same_files)
    Restated('odiff 4.5.0 src/test_io_jpg.zig: "JPG: finds difference between 2 images", '
             '"JPG: Creates correct diff output image"', "photo_jpeg", "odiff", ODIFF_DEFAULTS, "some"),
)


@pytest.mark.parametrize("restated", RESTATED)
def test_restated(restated: Restated, decoder: Path) -> None:
    restate(restated, decoder)


def test_pixelmatch_ignores_more_at_a_higher_threshold(decoder: Path) -> None:
    # pixelmatch 7.2.0 test/test.js "comparing 1a to 1b": 143 at threshold 0.05, 106 at the default
    lower, default = (restate(Restated(PIXELMATCH, "labels_moved", "pixelmatch", options), decoder)
                      for options in (AT_005, {"threshold": 0.1, "antialiasing": True}))
    assert lower.changed_pixels > default.changed_pixels


def test_odiff_leaves_out_anti_aliased_pixels(decoder: Path) -> None:
    # odiff 4.5.0 src/test_core.zig "antialiasing: does not count anti-aliased pixels as different"
    counted, all_pixels = (restate(Restated(ODIFF_CORE, "antialiased_disc", "odiff", options), decoder)
                           for options in ({"threshold": 0.1, "antialiasing": True}, ODIFF_DEFAULTS))
    assert counted.changed_pixels < all_pixels.changed_pixels


@pytest.mark.parametrize(("cites", "case", "other_way", "everything"), [
    pytest.param(f'{ODIFF_CORE}: "layoutDifference: diff images with different layouts"',
                 "white_4x4_purple_8x8", "purple_8x8_white_4x4", True, id="white 4x4, purple 8x8"),
    pytest.param(f'{ODIFF_CORE}: "layoutDifference: diff images with different layouts (2)"',
                 "rotated_banner", "rotated_banner_back", False, id="banner turned a quarter"),
])
def test_odiff_counts_images_of_other_layouts_alike_both_ways(
    cites: str, case: str, other_way: str, everything: bool, decoder: Path
) -> None:
    one, other = (restate(Restated(cites, name, "odiff-sizes", ODIFF_DEFAULTS, "some"), decoder)
                  for name in (case, other_way))
    assert one.changed_pixels == other.changed_pixels
    # odiff's percentage is its count over the larger width times the larger height: the canvas
    assert one.diff_ratio == one.changed_pixels / (one.canvas_size[0] * one.canvas_size[1])
    assert (one.diff_ratio == 1.0) is everything


def test_odiff_ignores_its_regions_as_rectangles(decoder: Path) -> None:
    # odiff 4.5.0 src/test_core.zig "unrollIgnoreRegions: should only mark rectangular region
    # pixels, not entire linear range": the changes left of the region, on its rows, still count
    region = {"x1": 70, "y1": 50, "x2": 90, "y2": 52}
    diff = restate(Restated(ODIFF_CORE, "dots_beside_a_region", "odiff",
                            {**ODIFF_DEFAULTS, "ignore_regions": [region]}), decoder)
    assert [tuple(map(int, p)) for p in np.argwhere(diff.mask)] == [(50, 10), (51, 10), (52, 10)]


def test_odiff_bounding_rectangle_covers_every_change(decoder: Path) -> None:
    # odiff 4.5.0 src/test_core.zig "diff_cols + diff_lines: derives the bounding rectangle of the
    # changes"; node-binding.test.cjs "Derives the bounding rectangle of changes from diff lines &
    # cols", "Server mode - derives the bounding rectangle ...": the first and last changed column
    # and line, and ignoring exactly that rectangle leaves nothing
    rectangle = {"x1": 16, "y1": 19, "x2": 63, "y2": 56}
    diff = restate(Restated(ODIFF_CORE, "fruit_labelled", "odiff", ODIFF_DEFAULTS, "some"), decoder)
    assert diff.bbox == (rectangle["x1"], rectangle["y1"], rectangle["x2"] + 1, rectangle["y2"] + 1)
    restate(Restated(ODIFF_CORE, "fruit_labelled", "odiff", {**ODIFF_DEFAULTS, "ignore_regions": [rectangle]},
                     "none"), decoder)


def test_odiff_percentage_is_the_share_of_the_canvas(decoder: Path) -> None:
    # node-binding.test.cjs "Correctly calculates and outputs diff percentage": count / (510 * 234)
    diff = restate(Restated(ODIFF_NODE, "fruit_labelled", "odiff", ODIFF_DEFAULTS, "some"), decoder)
    assert diff.diff_ratio == diff.changed_pixels / (128 * 64)


# Formats: odiff's tests decode each file themselves, so besides the values on Pillow's pixels
# (checked by restate) the binary's own values on the same files (``on_files``) are compared:
# equal where odiff decodes as snapcompare does; odiff 4.5.0 reads a BMP's red as blue; the
# binary decodes a JPEG with libjpeg-turbo's fast DCT unless the threshold is 0 (odiff's own
# tests, and snapcompare, use the accurate one), which changes this JPEG's count at 0.01.
ODIFF_FILES = [
    pytest.param('odiff 4.5.0 src/test_io_jpg.zig: "JPG: finds difference between 2 images" at threshold 0',
                 "photo_jpeg", {"threshold": 0, "antialiasing": False}, "some", "alike", id="jpeg threshold 0"),
    pytest.param('odiff 4.5.0 src/test_io_jpg.zig: "JPG: finds difference between 2 images" at 0.01',
                 "photo_jpeg", {"threshold": 0.01, "antialiasing": True}, "some", "fast DCT",
                 id="jpeg threshold 0.01"),
    pytest.param('odiff 4.5.0 src/test_io_bmp.zig: "BMP: finds difference between 2 images"',
                 "photo_bmp", ODIFF_DEFAULTS, "some", "red as blue", id="bmp"),
    pytest.param('odiff 4.5.0 src/test_io_tiff.zig: "TIFF: finds difference between 2 images", '
                 '"TIFF: Creates correct diff output image"', "photo_tiff", ODIFF_DEFAULTS, "some", "alike",
                 id="tiff"),
    pytest.param('odiff 4.5.0 src/test_io_webp.zig: "webp: loads webp image correctly", '
                 '"webp: compares webp with png correctly"', "photo_webp_vs_png", ODIFF_DEFAULTS, "some",
                 "alike", id="webp against png"),
    pytest.param('odiff 4.5.0 src/test_io_webp.zig: "webp: identical WebP images have no differences"',
                 "photo_webp_same", ODIFF_DEFAULTS, "none", "alike", id="webp identical"),
]


@pytest.mark.parametrize(("cites", "case", "options", "claim", "decoding"), ODIFF_FILES)
def test_odiff_on_the_same_files(cites: str, case: str, options: dict, claim: Claim,
                                 decoding: str, decoder: Path) -> None:
    diff = restate(Restated(cites, case, "odiff", options, claim), decoder)
    expected = expected_values("odiff", case)
    on_files = expected["results"][result_index(expected, options, case)]["on_files"]
    binary = (on_files["changed_pixels"], tuple(on_files["bbox"]) if on_files["bbox"] else None)
    if decoding == "alike":
        assert (diff.changed_pixels, diff.bbox) == binary
    elif decoding == "fast DCT":
        assert diff.changed_pixels != binary[0]
    else:
        assert decoding == "red as blue"
        assert diff.changed_pixels != binary[0]
        swapped = diff_images(*map(_red_blue_swapped, case_inputs(case)), engine="odiff", **options)
        assert (swapped.changed_pixels, swapped.bbox) == binary


def _red_blue_swapped(data: bytes) -> np.ndarray:
    """An image's RGBA pixels with red and blue swapped, as odiff 4.5.0 reads a BMP."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))[..., [2, 1, 0, 3]].copy()
