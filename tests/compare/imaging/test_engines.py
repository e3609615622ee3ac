"""Invariants every engine keeps (the reference results are in test_conformance.py), and the
details that make the OKLab and odiff engines exact."""

from __future__ import annotations

import functools
import hashlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare import diff_images
from compare.imaging import kernel, odiff, oklab, pixelmatch
from compare.imaging.engines import ENGINES
from compare.imaging.kernel import Siblings, many_siblings
from compare.imaging.pixeldiff import pad_to_canvas
from compare.regions import IgnoreRegion, parse_ignore_regions

from . import odiff_layout_reference
from . import pixelmatch_reference as reference
from .compiled import need_compiled_scan

pytestmark = pytest.mark.unit

# Invariants on small random images. A few colours and alphas make equal siblings, anti-aliasing
# slopes and semi-transparent pixels common.
_COLOURS = [
    (0, 0, 0, 255), (255, 255, 255, 255), (128, 128, 128, 255), (0, 122, 255, 255),
    (255, 59, 48, 128), (10, 10, 10, 0), (250, 250, 250, 254), (60, 200, 90, 1),
]


@st.composite
def _pairs(draw):
    w1, h1, w2, h2 = (draw(st.integers(1, 9)) for _ in range(4))
    index = st.integers(0, len(_COLOURS) - 1)
    palette = np.array(_COLOURS, dtype=np.uint8)
    first = palette[np.array(draw(st.lists(index, min_size=w1 * h1, max_size=w1 * h1)))]
    second = palette[np.array(draw(st.lists(index, min_size=w2 * h2, max_size=w2 * h2)))]
    width, height = max(w1, w2), max(h1, h2)
    a = pad_to_canvas(first.reshape(h1, w1, 4), width, height)
    b = pad_to_canvas(second.reshape(h2, w2, 4), width, height)
    ignore = np.array(draw(st.lists(st.booleans(), min_size=width * height,
                                    max_size=width * height))).reshape(height, width)
    return a, b, (min(w1, w2), min(h1, h2)), ignore, ((w1, h1), (w2, h2))


_SCANS = {
    "oklab": lambda a, b, overlap, **kw: oklab.scan(a, b, overlap, **kw),
    "oklab-white-window": lambda a, b, overlap, **kw: oklab.scan(
        a, b, overlap, checkerboard=False, window_size=3, **kw
    ),
    "odiff": lambda a, b, overlap, sizes, **kw: odiff.scan(a, b, overlap, sizes=sizes, **kw),
    "odiff-padded": lambda a, b, overlap, **kw: odiff.scan(a, b, overlap, padded=True, **kw),
    "pixelmatch": lambda a, b, overlap, **kw: pixelmatch.scan(a, b, overlap, **kw),
    "pixelmatch-vectorised": lambda a, b, overlap, **kw: _vectorised(pixelmatch.scan, a, b, overlap, **kw),
}


def _vectorised(scan, *args, **kwargs):
    """``scan(*args, **kwargs)`` with pixelmatch's vectorised scan instead of the compiled one."""
    with mock.patch.object(pixelmatch, "COMPILED_SCAN", False):
        return scan(*args, **kwargs)


@settings(max_examples=300, deadline=None)
@given(pair=_pairs(), threshold=st.sampled_from([0.0, 0.01, 0.1, 0.5]), aa=st.booleans(),
       checkerboard=st.booleans(), ignoring=st.booleans())
def test_pixelmatch_compiled_and_vectorised_scans_agree(
    pair, threshold: float, aa: bool, checkerboard: bool, ignoring: bool
) -> None:
    need_compiled_scan()
    a, b, overlap, ignore, _ = pair
    options = {"threshold": threshold, "antialiasing": aa, "checkerboard": checkerboard,
               "ignore": ignore if ignoring else None}
    compiled = pixelmatch.scan(a, b, overlap, **options)
    vectorised = _vectorised(pixelmatch.scan, a, b, overlap, **options)
    assert np.array_equal(compiled.mask, vectorised.mask)
    assert (compiled.changed_pixels, compiled.aa_pixels, compiled.bbox) == (
        vectorised.changed_pixels, vectorised.aa_pixels, vectorised.bbox)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("engine", list(_SCANS))
@settings(max_examples=60, deadline=None)
@given(pair=_pairs(), threshold=st.sampled_from([0.0, 0.01, 0.1, 0.5]), aa=st.booleans())
def test_invariants(engine: str, pair, threshold: float, aa: bool) -> None:
    a, b, overlap, ignore, sizes = pair
    run = functools.partial(_SCANS[engine], sizes=sizes) if engine == "odiff" else _SCANS[engine]

    scan = run(a, b, overlap, threshold=threshold, antialiasing=aa)
    assert scan.changed_pixels == int(scan.mask.sum())
    assert scan.bbox == _bbox(scan.mask)

    ignored = run(a, b, overlap, threshold=threshold, antialiasing=aa, ignore=ignore)
    assert not (ignored.mask & ignore).any()
    assert ignored.changed_pixels == int(ignored.mask.sum())
    assert ignored.bbox == _bbox(ignored.mask)
    # Ignoring pixels only removes them (anti-aliasing reads neighbours' pixels, not results).
    assert np.array_equal(ignored.mask, scan.mask & ~ignore)

    canvas = (a.shape[1], a.shape[0])
    same = _SCANS[engine](a, a.copy(), canvas, threshold=threshold, antialiasing=aa,
                          **({"sizes": (canvas, canvas)} if engine == "odiff" else {}))
    assert same.changed_pixels == 0 and same.bbox is None and same.aa_pixels == 0
    assert not same.mask.any()
    if scan.window_max is not None:
        assert same.window_max == 0
        assert scan.window_max <= min(scan.changed_pixels, 9)


def test_oklab_tables_are_v8s() -> None:
    """pixelmatch's sRGB-to-linear and cube-root tables as V8 computes them (Math.pow, Math.cbrt);
    C libraries' pow and cbrt differ from V8's in the last bit for some entries."""

    def digest(table: np.ndarray) -> str:
        return hashlib.sha256(table.astype("<f8").tobytes()).hexdigest()

    assert oklab._LIN.shape == (257,) and oklab._CBRT.shape == (4098,)
    assert digest(oklab._LIN) == "9185249704083b80beb49bc264bfab8a8faff51bef6ebb2372400d342f71b52f"
    assert digest(oklab._CBRT) == "6aa02c3a147678b1030bdc23a05a1a7891469c85ad2815efbaecfdedd3600294"


@pytest.mark.parametrize("checkerboard", [True, False])
@pytest.mark.parametrize("colours", [3, 500, 100_000])
@pytest.mark.parametrize("opaque", [True, False])
def test_oklab_colour_cache_is_exact(checkerboard: bool, colours: int, opaque: bool) -> None:
    rng = np.random.default_rng(colours)
    palette = rng.integers(0, 256, (colours, 4), dtype=np.uint8)
    palette[:, 3] = 255 if opaque else rng.choice([255, 255, 0, 1, 128, 254], colours)
    px = palette[rng.integers(0, colours, 50_000)]
    idx = rng.integers(0, 40_000_000, len(px))
    code = np.zeros(len(px), dtype=np.int64)
    if checkerboard:
        code = np.where(px[:, 3] == 255, 0, oklab._background_code(idx))

    cached = oklab._oklab(px, idx, checkerboard)

    assert np.array_equal(cached, oklab._oklab_direct(px, code, checkerboard))


def test_odiff_threshold_is_parsed_as_float32() -> None:
    # odiff's CLI parses -t as f32; 0.3 becomes 0.30000001192..., which moves the fixed-point
    # limit 35215 * t**2 * 4096 (truncated) up by one.
    assert odiff.max_delta(0.3) == 12981658
    assert odiff.max_delta(0.1) == 1442406
    assert odiff.max_delta(0.0) == 0


def _white(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 4), 255, dtype=np.uint8)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_ignore_regions_hide_changes_inside_them_only(engine: str) -> None:
    before = _white(40, 30)
    after = before.copy()
    after[5:10, 5:10, :3] = 0  # 25 px inside the region
    after[20:22, 30:33, :3] = 0  # 6 px outside it

    plain = diff_images(before, after, engine=engine, antialiasing=False)
    ignored = diff_images(before, after, engine=engine, antialiasing=False,
                          ignore_regions=parse_ignore_regions("4:4-12:12"))

    assert plain.changed_pixels == 31
    assert ignored.changed_pixels == 6
    assert ignored.bbox == (30, 20, 33, 22)
    assert not ignored.mask[4:13, 4:13].any()


def test_ignore_regions_also_cover_the_area_outside_the_overlap() -> None:
    before, after = _white(10, 10), _white(12, 10)
    result = diff_images(before, after, ignore_regions=[IgnoreRegion(11, 0, 11, 9)])
    assert result.changed_pixels == 10 and result.bbox == (10, 0, 11, 10)


@pytest.mark.parametrize(("text", "message"), [
    ("1:2-3", "not x1:y1-x2:y2"), ("a:b-c:d", "not x1:y1-x2:y2"), ("5:5-1:9", "inverted"),
    ("-1:0-2:2", "not x1:y1-x2:y2"), ("", "not x1:y1-x2:y2"),
])
def test_bad_ignore_regions_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ignore_regions(text)


def test_engines_and_their_options_are_checked() -> None:
    pixels = _white(4, 4)
    with pytest.raises(ValueError, match="unknown engine 'yiq'"):
        diff_images(pixels, pixels, engine="yiq")
    with pytest.raises(ValueError, match="engine 'odiff' has no option checkerboard"):
        diff_images(pixels, pixels, engine="odiff", checkerboard=False)
    with pytest.raises(ValueError, match="engine 'pixelmatch' has no option window"):
        diff_images(pixels, pixels, engine="pixelmatch", window=3)
    with pytest.raises(ValueError, match="window_size"):
        diff_images(pixels, pixels, window_size=0)


def test_pixelmatch_without_the_checkerboard_blends_over_white() -> None:
    # pixelmatch 7.2.0, test/test.js, "checkerboard: false blends semi-transparent pixels
    # against white": 50% transparent black and opaque grey look alike over white only.
    half_black = np.array([[[0, 0, 0, 128]]], dtype=np.uint8)
    grey = np.array([[[127, 127, 127, 255]]], dtype=np.uint8)
    assert diff_images(half_black, grey, checkerboard=False).changed_pixels == 0
    assert diff_images(half_black, grey).changed_pixels == 1


@pytest.mark.parametrize("engine", list(ENGINES))
def test_window_max_tells_a_block_from_scattered_noise(engine: str) -> None:
    before = _white(64, 64)
    block, noise = before.copy(), before.copy()
    block[10:14, 10:14, :3] = 0  # 16 changed pixels together
    noise[::16, ::4, :3] = 0  # 64 changed pixels, one per 16x4 cell

    together = diff_images(before, block, engine=engine, antialiasing=False, window_size=8)
    scattered = diff_images(before, noise, engine=engine, antialiasing=False, window_size=8)

    assert together.window_max == 16
    assert scattered.changed_pixels == 64 and scattered.window_max == 2
    assert diff_images(before, block, engine=engine).window_max is None


def _brightness_delta(centre: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """pixelmatch 7.2.0's brightness delta of opaque colours (n x 3 int arrays), as it computes it."""
    dr, dg, db = (centre - neighbour).T.astype(np.float64)
    return dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223


def test_pixelmatch_luma_keys_order_opaque_colours_as_its_brightness_delta() -> None:
    # The smallest luma of channel differences (a, b, c) in -255..255, not all zero: for each
    # (a, b) the nearest c, clamped, and its two neighbours.
    c1, c2, c3 = 0.29889531, 0.58662247, 0.11448223
    grid = np.arange(-255, 256, dtype=np.float64)
    a, b = (x.ravel() for x in np.meshgrid(grid, grid, indexing="ij"))
    partial = a * c1 + b * c2
    smallest = np.inf
    for step in (-1, 0, 1):
        c = np.clip(np.round(-partial / c3) + step, -255, 255)
        value = np.abs(partial + c * c3)
        value[(a == 0) & (b == 0) & (c == 0)] = np.inf
        smallest = min(smallest, float(value.min()))
    assert smallest > 2.2e-6
    # Each key is within 1 of its exact scaled luma, so the difference of two keys is within 2
    # of the exact scaled delta, whose magnitude is 0 or at least smallest * 2**22.
    scale = float(1 << pixelmatch._KEY_SHIFT)
    assert smallest * scale > 2 * 2
    channel = np.arange(256, dtype=np.float64)
    exact_rg = (channel[None, :] * c1 + channel[:, None] * c2).reshape(-1) * scale
    assert np.abs(pixelmatch._KEY_RG - exact_rg).max() <= 0.5
    assert np.abs(pixelmatch._KEY_B - channel * c3 * scale).max() <= 0.5
    # And on random colours: the key difference has the delta's sign, two neighbours' keys
    # order as their deltas do, and ties happen exactly for equal colours.
    rng = np.random.default_rng(7)
    centre, n1, n2 = (rng.integers(0, 256, (200_000, 3)) for _ in range(3))
    n2[::3] = n1[::3]
    n2[1::3, 0] = n1[1::3, 0]

    def key(rgb: np.ndarray) -> np.ndarray:
        packed = (rgb[:, 0] | rgb[:, 1] << 8 | rgb[:, 2] << 16 | 255 << 24).astype(np.uint32)
        return pixelmatch._luma_key(packed).astype(np.int64)

    d1, d2 = _brightness_delta(centre, n1), _brightness_delta(centre, n2)
    k1, k2 = key(centre) - key(n1), key(centre) - key(n2)
    assert (np.sign(k1) == np.sign(d1)).all()
    assert (np.sign(k1 - k2) == np.sign(d1 - d2)).all()
    assert ((k1 == k2) == (n1 == n2).all(axis=1)).all()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_the_band_sibling_map_answers_as_pixel_by_pixel_counting(data) -> None:
    width, height = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    palette = np.array([0xFF000000, 0xFFFFFFFF, 0x80FFFFFF], dtype=np.uint32)
    pixels = st.lists(st.integers(0, 2), min_size=width * height, max_size=width * height)
    a, b = (palette[np.array(data.draw(pixels))] for _ in range(2))
    tested = data.draw(st.sets(st.integers(0, width * height - 1), min_size=1))
    idx = np.array(sorted(tested), dtype=np.int64)
    sparse, siblings = Siblings(a, b, idx, width, height), Siblings(a, b, idx, width, height)
    sparse.dense, siblings.dense = False, True
    top, bottom = siblings.rows
    around = np.arange(top * width, bottom * width)  # the band and the rows next to it
    x, y = idx % width, idx // width
    block = [np.clip(y + dy, 0, height - 1) * width + np.clip(x + dx, 0, width - 1)
             for dx in (-1, 0, 1) for dy in (-1, 0, 1)]

    def in_both(at: np.ndarray) -> np.ndarray:
        return many_siblings(a, at, width, height) & many_siblings(b, at, width, height)

    for img in (a, b, a, None):
        if img is None:
            assert (siblings.in_both(around) == in_both(around)).all()
            assert (sparse.in_both(around) == in_both(around)).all()
            expected = np.any([in_both(at) for at in block], axis=0)
        else:
            assert (siblings(img, around) == many_siblings(img, around, width, height)).all()
            expected = np.any([many_siblings(img, at, width, height) for at in block], axis=0)
        # beside: some pixel of the 3x3 block around each tested pixel has such siblings (in
        # img, or in both images for None).
        assert (siblings.beside(img, idx) == expected).all()


def test_the_squared_rgb_distance_bounds_pixelmatch_yiq_delta() -> None:
    # Outside the bounds pixels are decided without their delta: it must never lie outside.
    rng = np.random.default_rng(3)
    p, q = (rng.integers(0, 256, (300_000, 3)) for _ in range(2))
    q[::2] = np.clip(p[::2] + rng.integers(-40, 41, (150_000, 3)), 0, 255)
    dr, dg, db = (p - q).T.astype(np.float64)
    delta = pixelmatch._yiq_delta(dr, dg, db)
    packed = [(x[:, 0] | x[:, 1] << 8 | x[:, 2] << 16 | 255 << 24).astype(np.uint32) for x in (p, q)]
    distance = pixelmatch._squared_distance(*packed)
    assert (distance == ((p - q) ** 2).sum(axis=1)).all()
    assert (delta <= pixelmatch._LARGEST_WEIGHT * distance).all()
    assert (delta >= pixelmatch._SMALLEST_WEIGHT * distance).all()
    # It is also close: a difference along the form's main axis comes within 1% of it.
    form = np.array(pixelmatch._YIQ)
    weights = np.diag([0.5053, 0.299, 0.1957])
    axis = np.linalg.eigh(form.T @ weights @ form)[1][:, -1]
    d = np.round(axis * 100)
    assert 0.99 <= pixelmatch._yiq_delta(*d) / (pixelmatch._LARGEST_WEIGHT * float(d @ d)) <= 1
    d = np.round(np.linalg.eigh(form.T @ weights @ form)[1][:, 0] * 100)
    assert 1 <= pixelmatch._yiq_delta(*d) / (pixelmatch._SMALLEST_WEIGHT * float(d @ d)) <= 1.01


def _random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two small images of one size from a few random colours (so slopes, with darker and
    brighter neighbours, are common), in one of two shapes: translucent or transparent rows
    above or below opaque ones, the head changing only the opaque rows; or transparent pixels of
    unequal colour among opaque ones, the head changing any pixels."""
    width, height = int(rng.integers(1, 9)), int(rng.integers(2, 9))
    colours = rng.integers(0, 256, (int(rng.integers(2, 6)), 4)).astype(np.uint8)
    colours[:, 3] = 255
    first = colours[rng.integers(0, len(colours), (height, width))]
    if rng.random() < 0.5:
        top = int(rng.integers(0, height - 1))
        first[: top + 1, :, 3] = rng.choice([0, 60, 200, 255], (top + 1, width))
        second = first.copy()
        second[top + 1 :] = colours[rng.integers(0, len(colours), (height - top - 1, width))]
        if rng.random() < 0.5:  # or below them
            first, second = first[::-1].copy(), second[::-1].copy()
    else:
        clear = rng.random((height, width)) < 0.5
        first[clear, 3] = 0
        second = first.copy()
        changed = rng.random((height, width)) < 0.3
        second[changed] = colours[rng.integers(0, len(colours), int(changed.sum()))]
        second[changed & (rng.random((height, width)) < 0.5), 3] = 0
    return first, second


def test_pixelmatch_takes_arrays_that_start_between_two_pixels() -> None:
    # A C-contiguous view at an odd byte offset, as diff_images accepts: both scans agree.
    first, second = _random_pair(np.random.default_rng(5))
    height, width = first.shape[:2]
    shifted = [np.frombuffer(b"\0" + img.tobytes(), np.uint8)[1:].reshape(height, width, 4)
               for img in (first, second)]
    assert all(img.ctypes.data % 4 for img in shifted)
    got = pixelmatch.scan(*shifted, (width, height), threshold=0.1, antialiasing=True)
    want = _vectorised(pixelmatch.scan, first, second, (width, height), threshold=0.1, antialiasing=True)
    assert np.array_equal(got.mask, want.mask) and got.changed_pixels == want.changed_pixels


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "vectorised"])
@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), threshold=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0]),
       band=st.sampled_from([1, 16, 1 << 19]), share=st.sampled_from([1, 16, 1 << 30]),
       checkerboard=st.booleans())
def test_pixelmatch_agrees_with_its_reference_pixel_by_pixel(
    compiled: bool, seed: int, threshold: float, band: int, share: int, checkerboard: bool
) -> None:
    # The vectorised scan in row bands of one row up to the whole image, sibling maps never,
    # sometimes or always; the compiled scan has neither.
    if compiled:
        need_compiled_scan()
    first, second = _random_pair(np.random.default_rng(seed))
    height, width = first.shape[:2]
    mask, excluded = reference.count(first, second, threshold, checkerboard)
    with mock.patch.object(kernel, "BAND_PIXELS", band), \
            mock.patch.object(Siblings, "DENSE_SHARE", share), \
            mock.patch.object(pixelmatch, "COMPILED_SCAN", compiled):
        result = pixelmatch.scan(first, second, (width, height), threshold=threshold,
                                 antialiasing=True, checkerboard=checkerboard)
    assert (result.mask == mask).all()
    assert (result.changed_pixels, result.aa_pixels) == (int(mask.sum()), excluded)


def _opaque_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two small opaque images of one size from a few random colours, any share of the head's
    pixels repainted: many identical siblings and slopes, in both images."""
    width, height = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    colours = rng.integers(0, 256, (int(rng.integers(2, 5)), 4)).astype(np.uint8)
    colours[:, 3] = 255
    first = colours[rng.integers(0, len(colours), (height, width))]
    second = first.copy()
    changed = rng.random((height, width)) < rng.random()
    second[changed] = colours[rng.integers(0, len(colours), int(changed.sum()))]
    return first, second


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), engine=st.sampled_from(sorted(ENGINES)),
       threshold=st.sampled_from([0.0, 0.05, 0.1, 0.3]), band=st.sampled_from([1, 16, 1 << 19]),
       make=st.sampled_from([_random_pair, _opaque_pair]))
def test_every_engine_gives_the_same_result_with_or_without_sibling_maps(
    seed: int, engine: str, threshold: float, band: int, make
) -> None:
    # The maps (and each engine's neighbourhood rule on them) only skip work; pixelmatch's
    # vectorised scan uses them, its compiled one does not.
    first, second = make(np.random.default_rng(seed))
    height, width = first.shape[:2]
    results = []
    for share in (1, 1 << 30):  # never mapped, always mapped
        with mock.patch.object(kernel, "BAND_PIXELS", band), \
                mock.patch.object(Siblings, "DENSE_SHARE", share), \
                mock.patch.object(pixelmatch, "COMPILED_SCAN", False):
            results.append(ENGINES[engine].run(
                first, second, (width, height), threshold=threshold, antialiasing=True,
                ignore=None, window_size=None, options={}, sizes=((width, height),) * 2))
    never, always = results
    assert (never.mask == always.mask).all()
    assert (never.changed_pixels, never.aa_pixels) == (always.changed_pixels, always.aa_pixels)


@pytest.mark.parametrize("threshold", [0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0])
def test_pixelmatch_distance_bounds_hold_at_their_edges(threshold: float) -> None:
    max_delta = pixelmatch.MAX_YIQ_DELTA * threshold * threshold
    under, over = pixelmatch._distance_bounds(max_delta)
    assert pixelmatch._LARGEST_WEIGHT * under <= max_delta < pixelmatch._SMALLEST_WEIGHT * over
    # Differences exactly at the bounds, along the form's two extreme axes.
    form = np.array(pixelmatch._YIQ)
    axes = np.linalg.eigh(form.T @ np.diag([0.5053, 0.299, 0.1957]) @ form)[1]
    for axis in (axes[:, 0], axes[:, -1]):
        for bound, expect_over in ((under, False), (over, True)):
            d = np.round(axis * np.sqrt(bound))
            if d @ d == bound and bound <= 3 * 255**2:
                assert (pixelmatch._yiq_delta(*d) > max_delta) == expect_over


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), threshold=st.sampled_from([0.0, 0.01, 0.1, 0.5]),
       aa=st.booleans())
def test_odiff_on_images_of_other_sizes_agrees_with_its_reference_pixel_by_pixel(
    seed: int, threshold: float, aa: bool
) -> None:
    # Two small images of different sizes from a few colours (slopes and equal siblings common),
    # transparent pixels included: odiff's own rule, each image's neighbours within its bounds.
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (int(rng.integers(2, 5)), 4)).astype(np.uint8)
    colours[:, 3] = rng.choice([0, 128, 255, 255, 255], len(colours))
    shapes = [(int(rng.integers(1, 8)), int(rng.integers(1, 8))) for _ in range(2)]
    base, comp = (colours[rng.integers(0, len(colours), shape)] for shape in shapes)
    expected = odiff_layout_reference.count(base, comp, threshold, aa)

    result = diff_images(base, comp, engine="odiff", threshold=threshold, antialiasing=aa)

    assert np.array_equal(result.mask, expected)
    assert result.changed_pixels == int(expected.sum())


def test_odiff_tests_the_changes_of_images_of_other_sizes_for_anti_aliasing_in_bounded_blocks(monkeypatch) -> None:
    # The test holds hundreds of bytes a pixel: run on every changed pixel at once, it would
    # hold far more than the diff is charged for a canvas of noise.
    rng = np.random.default_rng(7)
    colours = np.array([(0, 0, 0, 255), (255, 255, 255, 255), (128, 128, 128, 255), (0, 122, 255, 128)],
                       dtype=np.uint8)
    base, comp = colours[rng.integers(0, 4, (40, 48))], colours[rng.integers(0, 4, (43, 45))]
    whole = diff_images(base, comp, engine="odiff", threshold=0.1, antialiasing=True)
    tested: list[int] = []
    around = odiff._around

    def counted(img, xs, ys):
        tested.append(xs.size)
        return around(img, xs, ys)

    monkeypatch.setattr(odiff, "_AA_BLOCK", 64, raising=False)
    monkeypatch.setattr(odiff, "_around", counted)
    blocks = diff_images(base, comp, engine="odiff", threshold=0.1, antialiasing=True)

    assert whole.changed_pixels > 20 * 64 and whole.aa_pixels > 0
    assert max(tested) <= 64
    assert np.array_equal(blocks.mask, odiff_layout_reference.count(base, comp, 0.1, True))
    assert (blocks.changed_pixels, blocks.aa_pixels) == (whole.changed_pixels, whole.aa_pixels)
