"""diff_images: sizes, threshold, anti-aliasing, tall pages, mask PNG, invariants."""

from __future__ import annotations

import dataclasses
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from pixelmatch import pixelmatch

from compare import DiffResult, diff_images
from compare.regions import IgnoreRegion
from tests.compare.pixel_samples import encode, screen, with_block

pytestmark = pytest.mark.unit

WHITE = (255, 255, 255, 255)
BLACK = (0, 0, 0, 255)


def _filled(width: int, height: int, colour) -> np.ndarray:
    return np.tile(np.array(colour, np.uint8), (height, width, 1))


def _edge(height: int = 12, width: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A hard white/black vertical edge, and the same edge with a grey anti-aliasing column."""
    hard = _filled(width, height, WHITE)
    hard[:, width // 2 :] = BLACK
    smooth = hard.copy()
    smooth[:, width // 2] = (128, 128, 128, 255)
    return hard, smooth


# Sizes


def test_one_pixel_and_106_square_differ() -> None:
    result = diff_images(_filled(1, 1, WHITE), _filled(106, 106, WHITE))

    assert result.changed_pixels == 106 * 106 - 1
    assert result.total_pixels == 106 * 106
    assert result.bbox == (0, 0, 106, 106)
    assert result.before_size == (1, 1)
    assert result.after_size == (106, 106)
    assert result.canvas_size == (106, 106)
    assert not result.mask[0, 0]
    assert result.diff_ratio == pytest.approx((106 * 106 - 1) / (106 * 106))


def test_pixels_outside_the_overlap_count_whatever_their_alpha() -> None:
    transparent = (0, 0, 0, 0)
    result = diff_images(_filled(10, 10, transparent), _filled(12, 11, transparent))

    assert result.changed_pixels == 12 * 11 - 10 * 10
    assert result.mask[10:, :].all() and result.mask[:, 10:].all()
    assert not result.mask[:10, :10].any()
    assert result.bbox == (0, 0, 12, 11)


def test_narrower_after_marks_the_missing_columns() -> None:
    result = diff_images(_filled(8, 5, WHITE), _filled(6, 5, WHITE))

    assert result.changed_pixels == 2 * 5
    assert result.bbox == (6, 0, 8, 5)


# Ignore regions


def test_a_region_covers_what_of_it_lies_on_the_canvas_and_one_outside_it_nothing() -> None:
    before, after = _filled(8, 5, WHITE), _filled(8, 5, BLACK)
    # Reaching one past the right edge and far below it; beside the canvas; a duplicate once cut.
    regions = [IgnoreRegion(6, 1, 8, 99), IgnoreRegion(8, 0, 9, 4), IgnoreRegion(6, 1, 7, 4)]

    result = diff_images(before, after, ignore_regions=regions)

    assert result.ignore_regions == (IgnoreRegion(6, 1, 7, 4),)
    assert not result.mask[1:, 6:].any()
    assert result.changed_pixels == 8 * 5 - 2 * 4
    outside = diff_images(before, after, ignore_regions=[IgnoreRegion(8, 0, 9, 4)])
    assert (outside.changed_pixels, outside.ignore_regions) == (8 * 5, ())


# Threshold


def test_threshold_is_pixelmatch_yiq_sensitivity() -> None:
    # Grey 200 -> 205 has a YIQ delta of about 12.6, i.e. threshold sqrt(12.6 / 35215) ~ 0.0189.
    before = _filled(50, 50, (200, 200, 200, 255))
    after = with_block(before, 10, 10, 20, (205, 205, 205, 255))

    assert diff_images(before, after, threshold=0).changed_pixels == 400
    assert diff_images(before, after, threshold=0.018).changed_pixels == 400
    assert diff_images(before, after, threshold=0.02).changed_pixels == 0


def test_threshold_one_ignores_even_black_to_white() -> None:
    # Black to white is 0.5053 * 255**2 = 32857 < 35215: the most tolerant threshold accepts it.
    black, white = _filled(4, 4, BLACK), _filled(4, 4, WHITE)

    assert diff_images(black, white, threshold=1).changed_pixels == 0
    assert diff_images(black, white, threshold=0.96).changed_pixels == 16


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "0.1", True, None])
def test_invalid_threshold_is_rejected(threshold: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        diff_images(_filled(1, 1, WHITE), _filled(1, 1, WHITE), threshold=threshold)


def test_invalid_options_are_rejected() -> None:
    pixels = _filled(1, 1, WHITE)
    with pytest.raises(ValueError, match="max_pixels"):
        diff_images(pixels, pixels, max_pixels=0)


# Anti-aliasing


def test_antialiasing_on_excludes_an_anti_aliased_edge() -> None:
    hard, smooth = _edge()

    on = diff_images(hard, smooth)
    off = diff_images(hard, smooth, antialiasing=False)

    assert (on.changed_pixels, on.aa_pixels, on.bbox) == (0, 12, None)
    assert (off.changed_pixels, off.aa_pixels, off.bbox) == (12, 0, (10, 0, 11, 12))


def test_antialiasing_keeps_real_changes() -> None:
    before = screen()
    after = with_block(before, 40, 20, 6)

    result = diff_images(before, after)

    assert result.changed_pixels == 36
    assert result.bbox == (40, 20, 46, 26)


# Semi-transparent pixels


def test_semi_transparent_pixels_blend_over_the_checkerboard() -> None:
    # The same colour at alpha 0 and 255 differs over the checkerboard; the RGB of fully
    # transparent pixels does not matter.
    clear_red = _filled(6, 6, (255, 0, 0, 0))
    clear_blue = _filled(6, 6, (0, 0, 255, 0))

    assert diff_images(clear_red, clear_blue, threshold=0).changed_pixels == 0
    assert (
        diff_images(clear_red, _filled(6, 6, (255, 0, 0, 255)), antialiasing=False).changed_pixels
        == 36
    )


# Tall pages and concurrency


def test_tall_page_end_to_end() -> None:
    page = _filled(1170, 30_000, (242, 242, 247, 255))
    page[100:29_900:700, 40:1130] = (255, 255, 255, 255)
    after = with_block(page, 500, 29_000, 40, (255, 59, 48, 255))

    result = diff_images(page, encode(after, compress_level=1))

    assert result.changed_pixels == 1600
    assert result.bbox == (500, 29_000, 540, 29_040)
    assert result.mask.shape == (30_000, 1170)


def test_concurrent_diffs_match_sequential_ones() -> None:
    base = screen(200, 150)
    pairs = [(base, with_block(base, 10 * i, 5 * i, 5 + i)) for i in range(8)]
    sequential = [diff_images(a, b) for a, b in pairs]

    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lambda pair: diff_images(*pair), pairs))

    assert [r.changed_pixels for r in concurrent] == [r.changed_pixels for r in sequential]
    assert all(np.array_equal(c.mask, s.mask) for c, s in zip(concurrent, sequential, strict=True))


# DiffResult and mask PNG


def test_result_is_immutable() -> None:
    result = diff_images(_filled(2, 2, WHITE), _filled(2, 2, WHITE))

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.changed_pixels = 1  # type: ignore[misc]


def test_mask_png_round_trips_as_a_compact_bilevel_png() -> None:
    before = screen(400, 300)
    result = diff_images(before, with_block(before, 100, 200, 30))

    png = result.mask_png()
    decoded = Image.open(io.BytesIO(png))

    assert decoded.mode == "1"
    assert decoded.size == (400, 300)
    assert np.array_equal(np.asarray(decoded.convert("L")) == 255, result.mask)
    assert set(np.unique(np.asarray(decoded.convert("L")))) == {0, 255}
    assert len(png) < 400 * 300 // 50


def test_anti_aliased_pixels_are_counted_apart_from_changes() -> None:
    hard, smooth = _edge()
    after = with_block(smooth, 2, 2, 3, (0, 0, 255, 255))

    result = diff_images(hard, after)

    assert result.aa_pixels == 12
    assert result.changed_pixels == int(result.mask.sum())


# Invariants

COLOURS = st.tuples(*[st.integers(0, 255)] * 3, st.sampled_from([0, 90, 255, 255]))


@st.composite
def images(
    draw, width: int | None = None, height: int | None = None, opaque: bool = False
) -> np.ndarray:
    """Small images over a few colours, so equal siblings and slopes (anti-aliasing paths) occur."""
    width = width or draw(st.integers(1, 9))
    height = height or draw(st.integers(1, 9))
    palette = np.array(draw(st.lists(COLOURS, min_size=1, max_size=4)), np.uint8)
    if opaque:
        palette[:, 3] = 255
    picks = draw(arrays(np.uint8, (height, width), elements=st.integers(0, len(palette) - 1)))
    return palette[picks]


@st.composite
def same_size_pairs(draw, opaque: bool = False) -> tuple[np.ndarray, np.ndarray]:
    first = draw(images(opaque=opaque))
    height, width = first.shape[:2]
    second = first.copy()
    edits = draw(images(width, height, opaque=opaque))
    where = draw(arrays(np.bool_, (height, width)))
    second[where] = edits[where]
    return first, second


def _assert_consistent(result: DiffResult) -> None:
    assert result.changed_pixels == int(result.mask.sum())
    ys, xs = np.nonzero(result.mask)
    if ys.size:
        assert result.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    else:
        assert result.bbox is None


@settings(max_examples=60, deadline=None)
@given(images(), st.booleans())
def test_an_image_never_differs_from_itself(pixels: np.ndarray, antialiasing: bool) -> None:
    result = diff_images(pixels, pixels.copy(), threshold=0, antialiasing=antialiasing)

    assert (result.changed_pixels, result.aa_pixels, result.bbox) == (0, 0, None)
    assert not result.mask.any()


@settings(max_examples=80, deadline=None)
@given(same_size_pairs(), st.sampled_from([0, 0.05, 0.1, 0.5]), st.booleans())
def test_counts_mask_and_bbox_agree_and_swapping_is_symmetric(
    pair, threshold: float, antialiasing: bool
) -> None:
    first, second = pair

    forward = diff_images(first, second, threshold=threshold, antialiasing=antialiasing)
    backward = diff_images(second, first, threshold=threshold, antialiasing=antialiasing)

    _assert_consistent(forward)
    assert np.array_equal(forward.mask, backward.mask)
    assert forward.aa_pixels == backward.aa_pixels


@settings(max_examples=60, deadline=None)
@given(images(), images(), st.booleans())
def test_different_sizes_mark_everything_outside_the_overlap(
    first: np.ndarray, second: np.ndarray, aa: bool
) -> None:
    result = diff_images(first, second, antialiasing=aa)

    _assert_consistent(result)
    overlap_h = min(first.shape[0], second.shape[0])
    overlap_w = min(first.shape[1], second.shape[1])
    outside = np.ones_like(result.mask)
    outside[:overlap_h, :overlap_w] = False
    assert result.mask[outside].all()
    assert result.canvas_size == (
        max(first.shape[1], second.shape[1]),
        max(first.shape[0], second.shape[0]),
    )


@settings(max_examples=60, deadline=None)
@given(same_size_pairs(opaque=True), st.sampled_from([0, 0.05, 0.1, 0.3]), st.booleans())
def test_opaque_images_agree_with_the_pixelmatch_port(
    pair, threshold: float, antialiasing: bool
) -> None:
    # The PyPI port follows an older pixelmatch that differs from 7.x only for translucent pixels.
    first, second = pair
    height, width = first.shape[:2]

    expected = pixelmatch(
        first.tobytes(),
        second.tobytes(),
        width,
        height,
        threshold=threshold,
        includeAA=not antialiasing,
    )

    assert (
        diff_images(first, second, threshold=threshold, antialiasing=antialiasing).changed_pixels
        == expected
    )
