"""Change fingerprints: free of position, exact at the identical level, coarse at the similar one."""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from compare import diff_images
from compare.imaging.fingerprint import (
    SIMILAR,
    SimilarParams,
    fingerprint_change,
    identical_id,
    similar_id,
)

pytestmark = pytest.mark.unit

ID = re.compile(r"(i1|s1)-[0-9a-f]{16}")


def screen(width: int, height: int, background: tuple[int, int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(background, dtype=np.uint8), (height, width, 4)).copy()


def drawn(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> np.ndarray:
    out = image.copy()
    out[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    return out


def fingerprints(before: np.ndarray, after: np.ndarray):
    result = diff_images(before, after, antialiasing=False)
    return fingerprint_change(result.mask, result.bbox, before, after)


backgrounds = st.tuples(*[st.integers(0, 255)] * 3, st.just(255))
patches = arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(4)))
positions = st.tuples(st.integers(2, 30), st.integers(2, 30))


@settings(max_examples=60, deadline=None)
@given(background=backgrounds, patch=patches, first=positions, second=positions,
       sizes=st.tuples(st.integers(0, 12), st.integers(0, 12)))
def test_the_same_change_elsewhere_on_any_canvas_has_the_same_ids(background, patch, first, second, sizes):
    patch[..., 3] = 255
    one = screen(40, 40, background)
    other = screen(40 + sizes[0], 40 + sizes[1], background)
    here = fingerprints(one, drawn(one, patch, *first))
    there = fingerprints(other, drawn(other, patch, *second))
    assert here == there
    if here is not None:
        assert ID.fullmatch(here.identical) and ID.fullmatch(here.similar)
        assert here.identical.startswith("i1-") and here.similar.startswith("s1-")


masks = arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24)))


def with_bbox(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def pixels_for(mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, mask.shape + (4,), dtype=np.uint8),
            rng.integers(0, 256, mask.shape + (4,), dtype=np.uint8))


@settings(max_examples=80, deadline=None)
@given(mask=masks, seed=st.integers(0, 2**32 - 1), side=st.sampled_from(["before", "after"]),
       pick=st.integers(0, 10**6), channel=st.integers(0, 3), delta=st.integers(1, 255))
def test_any_other_colour_of_a_changed_pixel_gives_another_identical_id(mask, seed, side, pick, channel, delta):
    if not mask.any():
        return
    bbox = with_bbox(mask)
    before, after = pixels_for(mask, seed)
    found = fingerprint_change(mask, bbox, before, after)
    ys, xs = np.nonzero(mask)
    y, x = ys[pick % len(ys)], xs[pick % len(xs)]
    recoloured = {"before": before, "after": after}
    recoloured[side] = recoloured[side].copy()
    recoloured[side][y, x, channel] = (int(recoloured[side][y, x, channel]) + delta) % 256
    again = fingerprint_change(mask, bbox, recoloured["before"], recoloured["after"])
    assert again.identical != found.identical
    assert again.similar == found.similar  # the mask's shape alone


@settings(max_examples=80, deadline=None)
@given(mask=masks, seed=st.integers(0, 2**32 - 1), pick=st.integers(0, 10**6))
def test_unchanged_pixels_do_not_count_and_every_changed_pixel_does(mask, seed, pick):
    if not mask.any():
        return
    bbox = with_bbox(mask)
    before, after = pixels_for(mask, seed)
    found = identical_id(mask, bbox, before, after)
    ys, xs = np.nonzero(~mask)
    if len(ys):
        elsewhere = after.copy()
        elsewhere[ys[pick % len(ys)], xs[pick % len(xs)]] ^= 0xFF
        assert identical_id(mask, bbox, before, elsewhere) == found
    # One pixel more or less in the mask: another change.
    y, x = divmod(pick % mask.size, mask.shape[1])
    flipped = mask.copy()
    flipped[y, x] = not flipped[y, x]
    if flipped.any():
        assert identical_id(flipped, with_bbox(flipped), before, after) != found


@settings(max_examples=40, deadline=None)
@given(mask=masks, seed=st.integers(0, 2**32 - 1), grow=st.tuples(*[st.integers(0, 5)] * 4))
def test_ids_depend_on_the_change_alone_not_on_the_canvas_around_it(mask, seed, grow):
    if not mask.any():
        return
    left, top, right, bottom = grow
    before, after = pixels_for(mask, seed)
    canvas = np.pad(mask, ((top, bottom), (left, right)))
    pad = ((top, bottom), (left, right), (0, 0))
    found = fingerprint_change(mask, with_bbox(mask), before, after)
    assert fingerprint_change(canvas, with_bbox(canvas), np.pad(before, pad), np.pad(after, pad)) == found


def test_pixels_past_a_smaller_image_are_transparent_black_as_on_the_diff_canvas():
    small = screen(20, 10, (200, 200, 200, 255))
    large = drawn(screen(20, 16, (200, 200, 200, 255)), np.full((4, 4, 4), 90, np.uint8), 3, 8)
    result = diff_images(small, large)
    padded = np.zeros_like(large)
    padded[:10] = small
    assert result.bbox == (0, 8, 20, 16)
    assert (fingerprint_change(result.mask, result.bbox, small, large)
            == fingerprint_change(result.mask, result.bbox, padded, large))


def test_nothing_changed_has_no_fingerprint():
    image = screen(8, 8, (1, 2, 3, 255))
    result = diff_images(image, image)
    assert result.bbox is None
    assert fingerprint_change(result.mask, result.bbox, image, image) is None


def test_ids_are_stable_across_runs_and_versions():
    # Fixed values: an algorithm change must change the ids' version prefix.
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:9, 10:30] = True
    mask[7, 31] = True
    before = screen(40, 30, (255, 255, 255, 255))
    after = drawn(before, np.full((4, 20, 4), (200, 30, 30, 255), np.uint8), 10, 5)
    after[7, 31] = (0, 0, 0, 255)
    found = fingerprint_change(mask, (10, 5, 32, 9), before, after)
    assert found.identical == identical_id(mask, (10, 5, 32, 9), before, after)
    assert found.similar == similar_id(mask, (10, 5, 32, 9))
    assert (found.identical, found.similar) == ("i1-3f3b72c1e47c4633", "s1-76de894284f8c810")


def test_similar_ids_tolerate_a_few_pixels_and_tell_scales_apart():
    shape = np.zeros((64, 64), dtype=bool)
    shape[16:48, 8:56] = True
    frayed = shape.copy()
    frayed[16, 8] = frayed[47, 55] = False
    assert similar_id(frayed, (8, 16, 56, 48)) == similar_id(shape, (8, 16, 56, 48))
    big = np.kron(shape, np.ones((8, 8), dtype=bool))
    assert similar_id(big, (64, 128, 448, 384)) != similar_id(shape, (8, 16, 56, 48))
    unscaled = SimilarParams(SIMILAR.grid, SIMILAR.dilation, SIMILAR.thresholds, scale=False)
    assert similar_id(shape, (8, 16, 56, 48), unscaled) != similar_id(shape, (8, 16, 56, 48))


def reference_similar_id(mask: np.ndarray, bbox, params: SimilarParams) -> str:
    """The similar id as the module doc states it, pixel by pixel: dilate, pad to a centred
    square, count each cell, quantise, hash."""
    x0, y0, x1, y1 = bbox
    shape = np.pad(mask[y0:y1, x0:x1], params.dilation)
    for _ in range(params.dilation):
        rows = shape.copy()
        rows[1:] |= shape[:-1]
        rows[:-1] |= shape[1:]
        shape = rows.copy()
        shape[:, 1:] |= rows[:, :-1]
        shape[:, :-1] |= rows[:, 1:]
    side = max(shape.shape)
    square = np.zeros((side, side), dtype=bool)
    top, left = (side - shape.shape[0]) // 2, (side - shape.shape[1]) // 2
    square[top:top + shape.shape[0], left:left + shape.shape[1]] = shape
    edges = [k * side // params.grid for k in range(params.grid + 1)]
    levels = bytearray()
    for i in range(params.grid):
        for j in range(params.grid):
            count = int(square[edges[i]:edges[i + 1], edges[j]:edges[j + 1]].sum())
            area = max((edges[i + 1] - edges[i]) * (edges[j + 1] - edges[j]), 1)
            levels.append(sum(count * 1_000_000 >= t * area for t in params.thresholds))
    digest = hashlib.sha256(b"snapcompare similar change\0" + params.tag() + b"\0")
    if params.scale:
        digest.update(struct.pack("<I", side.bit_length()))
    digest.update(bytes(levels))
    return "s1-" + digest.hexdigest()[:16]


@settings(max_examples=150, deadline=None)
@given(mask=arrays(bool, st.tuples(st.integers(1, 70), st.integers(1, 70))),
       params=st.builds(SimilarParams, st.sampled_from([1, 3, 8, 16]), st.integers(0, 2),
                        st.just((2_000, 20_000, 80_000)), st.booleans()))
def test_the_similar_id_is_the_one_the_module_doc_states(mask, params):
    if mask.any():
        assert similar_id(mask, with_bbox(mask), params) == reference_similar_id(mask, with_bbox(mask), params)
