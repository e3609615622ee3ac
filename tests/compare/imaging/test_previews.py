"""Report previews: one scale for all three pictures, every change visible, and crops of the
changed area at full resolution."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from compare.imaging import previews as previews_module
from compare.imaging.previews import (
    CROP_MARGIN,
    CROP_MAX_HEIGHT,
    CROP_MAX_WIDTH,
    CROP_ORIGIN_KEY,
    PREVIEW_MAX_HEIGHT,
    PREVIEW_WIDTH,
    CropRegion,
    crop_region,
    make_crops,
    make_previews,
    make_thumbnail,
    preview_factor,
)

pytestmark = pytest.mark.unit


def previews(before, after, mask, bbox) -> dict[str, bytes]:
    factor = preview_factor(mask.shape[1], mask.shape[0])
    return make_previews(make_thumbnail(before, factor), make_thumbnail(after, factor), mask, bbox)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


@pytest.mark.parametrize("alpha", [255, 128], ids=["opaque", "translucent"])
def test_previews_share_a_scale_and_mark_a_single_changed_pixel(alpha):
    before = np.full((900, 1000, 4), (250, 250, 250, alpha), dtype=np.uint8)
    after = before.copy()
    after[601, 777] = (0, 0, 0, 255)
    mask = np.zeros((900, 1000), dtype=bool)
    mask[601, 777] = True

    pictures = previews(before, after, mask, (777, 601, 778, 602))

    factor = -(-1000 // PREVIEW_WIDTH)  # 3
    sizes = {kind: Image.open(io.BytesIO(data)).size for kind, data in pictures.items()}
    assert set(sizes.values()) == {(334, 300)}
    diff = decode(pictures["diff"])
    red = (diff[..., 0] > 200) & (diff[..., 1] < 60) & (diff[..., 2] < 60)
    assert np.argwhere(red).tolist() == [[601 // factor, 777 // factor]]
    assert abs(decode(pictures["before"]).mean() - decode(pictures["after"]).mean()) < 1


def test_previews_of_a_pair_without_changes_show_no_red():
    image = np.full((50, 80, 4), 200, dtype=np.uint8)
    diff = decode(previews(image, image, np.zeros((50, 80), dtype=bool), None)["diff"])
    assert not ((diff[..., 0] > 200) & (diff[..., 1] < 60)).any()


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_crop_of_a_small_change_is_the_changed_area_with_a_margin():
    mask = np.zeros((900, 1200), dtype=bool)
    mask[601, 777] = True
    assert crop_region(mask, bbox_of(mask)) == CropRegion(
        777 - CROP_MARGIN, 601 - CROP_MARGIN, 2 * CROP_MARGIN + 1, 2 * CROP_MARGIN + 1
    )
    assert crop_region(mask, None) is None


def test_crop_stays_inside_a_small_canvas():
    mask = np.zeros((20, 12), dtype=bool)
    mask[0, 11] = True
    assert crop_region(mask, bbox_of(mask)) == CropRegion(0, 0, 12, 20)


def test_crop_of_a_large_change_is_capped_and_shows_where_most_changed():
    mask = np.zeros((5000, 3000), dtype=bool)
    mask[10, 10] = True  # a stray pixel far from the real change
    mask[4000:4100, 2500:2700] = True
    region = crop_region(mask, bbox_of(mask))
    assert (region.width, region.height) == (CROP_MAX_WIDTH, CROP_MAX_HEIGHT)
    inside = mask[region.y : region.y + region.height, region.x : region.x + region.width]
    assert inside.sum() == 100 * 200


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(1, 1500),
    height=st.integers(1, 1500),
    points=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)),
                    min_size=1, max_size=6),
)
def test_crop_is_on_the_canvas_within_the_cap_and_shows_a_change(width, height, points):
    mask = np.zeros((height, width), dtype=bool)
    for fx, fy in points:
        mask[int(fy * height), int(fx * width)] = True
    bbox = bbox_of(mask)
    region = crop_region(mask, bbox)
    assert 0 <= region.x and region.x + region.width <= width
    assert 0 <= region.y and region.y + region.height <= height
    assert 1 <= region.width <= CROP_MAX_WIDTH and 1 <= region.height <= CROP_MAX_HEIGHT
    assert mask[region.y : region.y + region.height, region.x : region.x + region.width].any()
    x0, y0, x1, y1 = bbox
    if x1 - x0 + 2 * CROP_MARGIN <= CROP_MAX_WIDTH and y1 - y0 + 2 * CROP_MARGIN <= CROP_MAX_HEIGHT:
        assert region.x <= x0 and x1 <= region.x + region.width
        assert region.y <= y0 and y1 <= region.y + region.height


def test_crops_are_full_resolution_with_an_overlay_and_their_origin():
    before = np.full((300, 200, 4), (240, 240, 240, 255), dtype=np.uint8)
    after = np.full((320, 200, 4), (240, 240, 240, 255), dtype=np.uint8)  # 20 rows taller
    after[150, 100] = (255, 0, 255, 255)
    mask = np.zeros((320, 200), dtype=bool)
    mask[150, 100] = True
    mask[300:, :] = True
    region = CropRegion(90, 290, 30, 30)

    crops = make_crops(before, after, mask, region)

    images = {kind: Image.open(io.BytesIO(data)) for kind, data in crops.items()}
    assert set(images) == {"crop-before", "crop-after", "crop-diff"}
    assert {image.size for image in images.values()} == {(30, 30)}
    assert {image.info[CROP_ORIGIN_KEY] for image in images.values()} == {"90,290"}
    before_crop = np.asarray(images["crop-before"].convert("RGBA"))
    assert (before_crop[:10, :, 3] == 255).all() and (before_crop[10:, :, 3] == 0).all()
    overlay = np.asarray(images["crop-diff"].convert("RGBA"))
    assert (overlay[10:] == (255, 0, 0, 255)).all() and (overlay[:10, :, 3] == 0).all()

    crops = make_crops(before, after, mask, CropRegion(95, 145, 10, 10))
    after_crop = np.asarray(Image.open(io.BytesIO(crops["crop-after"])).convert("RGBA"))
    assert tuple(after_crop[5, 5]) == (255, 0, 255, 255)
    assert (after_crop[..., :3].reshape(-1, 3) == (240, 240, 240)).all(axis=1).sum() == 99
    overlay = np.asarray(Image.open(io.BytesIO(crops["crop-diff"])).convert("RGBA"))
    assert np.argwhere(overlay[..., 3] == 255).tolist() == [[5, 5]]


# Previews and crops for any canvas within --max-pixels.


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 60), width=st.integers(1, 60), factor=st.integers(1, 70),
       seed=st.integers(0, 2**32 - 1))
def test_blocks_are_marked_exactly_where_some_pixel_changed(height, width, factor, seed):
    mask = np.random.default_rng(seed).random((height, width)) < 0.05
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None
    padded = np.zeros((-(-height // factor) * factor, -(-width // factor) * factor), dtype=bool)
    padded[:height, :width] = mask
    expected = padded.reshape(padded.shape[0] // factor, factor, -1, factor).any(axis=(1, 3))

    assert np.array_equal(previews_module._any_in_block(mask, factor, bbox), expected)


def _peak(make) -> int:
    """The numpy memory ``make()`` takes at its peak (beyond what exists already)."""
    tracemalloc.start()
    try:
        make()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("width", "height", "changed"), [
    (400, 66_000, (slice(33_000, 33_010), slice(200, 210))),
    (66_000, 400, (slice(200, 210), slice(33_000, 33_010))),
    (10_000_000, 1, (slice(0, 1), slice(0, 10_000_000))),
    (1, 10_000_000, (slice(0, 10_000_000), slice(0, 1))),
], ids=["400x66000", "66000x400", "10000000x1-all-changed", "1x10000000-all-changed"])
def test_previews_and_crops_of_any_canvas_shape(width, height, changed, capfd):
    before = np.full((height, width, 4), 255, dtype=np.uint8)
    after = before.copy()
    after[changed] = (255, 0, 0, 255)
    mask = np.zeros((height, width), dtype=bool)
    mask[changed] = True
    bbox = (changed[1].start, changed[0].start, changed[1].stop, changed[0].stop)
    factor = preview_factor(width, height)

    pictures = make_previews(make_thumbnail(before, factor), make_thumbnail(after, factor), mask, bbox)
    pictures.update(make_crops(before, after, mask, crop_region(mask, bbox)))

    sizes = {kind: Image.open(io.BytesIO(data)).size for kind, data in pictures.items()}
    assert sizes["before"] == sizes["after"] == sizes["diff"]
    assert sizes["diff"][0] <= PREVIEW_WIDTH and sizes["diff"][1] <= PREVIEW_MAX_HEIGHT
    assert (decode(pictures["diff"])[..., 1] < 60).any()  # the change is marked
    for kind in ("crop-before", "crop-after", "crop-diff"):
        assert sizes[kind][0] <= CROP_MAX_WIDTH and sizes[kind][1] <= CROP_MAX_HEIGHT
    assert capfd.readouterr().err == ""  # no encoder complained on the terminal
    # The block scans hold less than twice the mask (a byte a pixel), whatever its shape.
    assert _peak(lambda: previews_module._any_in_block(mask, factor, bbox)) < 2 * mask.nbytes
    assert _peak(lambda: crop_region(mask, bbox)) < 2 * mask.nbytes
