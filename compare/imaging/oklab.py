"""OKLab HyAB pixel diff: pixelmatch's main branch, vectorised over the differing pixels only.

Reference: github.com/mapbox/pixelmatch at commit c6fee35 ("blend with white rather than grey in
AA check"), file ``index.js``. Results match it exactly: float64 arithmetic in the reference's
order, its lookup tables (sRGB to linear, cube root with linear interpolation) and its scan
orders.

Per pixel: both colours go to toe-corrected OKLab (semi-transparent pixels composited over
pixelmatch's checkerboard, or over white with ``checkerboard=False``); a pixel is over the
threshold when the HyAB distance ``|dLr| + sqrt(da^2 + db^2)`` exceeds ``threshold`` (black to
white is 1.0). With ``antialiasing`` on, pixels that look like anti-aliasing in either image
(gamma-space luma slope test, semi-transparent pixels composited over white) are not counted.

Canvas rule: the images are already padded top-left with transparent black to the union canvas.
Inside the overlap of the two originals a pixel counts when pixelmatch counts it on the padded
canvas; every canvas pixel outside the overlap counts as changed. ``window_size`` also reports
pixelmatch's ``windowSize`` result, the largest count in any NxN window of pixelmatch's own mask
on the padded canvas (before the outside-the-overlap rule). Ignored pixels never count, in the
window either.
"""

from __future__ import annotations

import functools

import numpy as np

from .kernel import (
    Siblings,
    antialiased_pixelmatch,
    find_changes,
    mark_outside_overlap,
    window_max,
)
from .scan import Scan

# sRGB byte -> linear light, as pixelmatch's table holds it: ((c + 0.055) / 1.055) ** 2.4 as
# evaluated by V8, whose pow differs from C libraries' in the last bit for some entries, so the
# values are spelled out. A 257th entry repeats the last one for interpolation.
_LIN = np.array([
    0.0, 0.0003035269835488375, 0.000607053967097675, 0.0009105809506465125,
    0.00121410793419535, 0.0015176349177441874, 0.001821161901293025, 0.0021246888848418626,
    0.0024282158683907, 0.0027317428519395373, 0.003035269835488375, 0.003346535763899161,
    0.003676507324047436, 0.004024717018496307, 0.004391442037410293, 0.004776953480693729,
    0.005181516702338386, 0.005605391624202723, 0.006048833022857055, 0.006512090792594474,
    0.006995410187265387, 0.007499032043226175, 0.008023192985384994, 0.008568125618069307,
    0.009134058702220787, 0.009721217320237847, 0.010329823029626938, 0.010960094006488246,
    0.011612245179743887, 0.012286488356915872, 0.012983032342173012, 0.013702083047289686,
    0.014443843596092545, 0.01520851442291271, 0.01599629336550963, 0.016807375752887384,
    0.017641954488384078, 0.018500220128379697, 0.019382360956935723, 0.0202885630566524,
    0.021219010376003558, 0.02217388479338738, 0.02315336617811041, 0.024157632448504756,
    0.025186859627361627, 0.026241221894849898, 0.027320891639074897, 0.028426039504420793,
    0.0295568344378088, 0.030713443732993635, 0.03189603307301153, 0.033104766570885055,
    0.03433980680868217, 0.03560131487502034, 0.03688945040110004, 0.0382043715953465,
    0.03954623527673283, 0.04091519690685319, 0.042311410620809675, 0.043735029256973465,
    0.04518620438567554, 0.0466650863368801, 0.048171824226889426, 0.04970656598412723,
    0.05126945837404324, 0.052860647023180246, 0.05448027644244237, 0.05612849004960009,
    0.05780543019106723, 0.0595112381629812, 0.06124605423161761, 0.06301001765316767,
    0.06480326669290577, 0.06662593864377289, 0.06847816984440017, 0.07036009569659588,
    0.07227185068231748, 0.07421356838014963, 0.07618538148130785, 0.07818742180518633,
    0.08021982031446831, 0.0822827071298148, 0.08437621154414882, 0.08650046203654976,
    0.08865558628577294, 0.09084171118340767, 0.09305896284668747, 0.0953074666309647,
    0.09758734714186246, 0.09989872824711389, 0.1022417330881013, 0.10461648409110419,
    0.10702310297826761, 0.10946171077829933, 0.1119324278369056, 0.11443537382697373,
    0.11697066775851084, 0.11953842798834562, 0.12213877222960187, 0.12477181756095049,
    0.12743768043564743, 0.1301364766903643, 0.13286832155381798, 0.13563332965520566,
    0.13843161503245183, 0.14126329114027164, 0.14412847085805777, 0.14702726649759498,
    0.14995978981060856, 0.15292615199615017, 0.1559264637078274, 0.1589608350608804,
    0.16202937563911096, 0.1651321945016676, 0.16826940018969075, 0.1714411007328226,
    0.17464740365558504, 0.17788841598362914, 0.18116424424986022, 0.184474994500441,
    0.18782077230067787, 0.1912016827407914, 0.19461783044157582, 0.19806931955994886,
    0.20155625379439707, 0.20507873639031693, 0.20863687014525575, 0.21223075741405523,
    0.21586050011389923, 0.21952619972926923, 0.2232279573168085, 0.22696587351009836,
    0.23074004852434915, 0.23455058216100522, 0.238397573812271, 0.24228112246555486,
    0.24620132670783548, 0.25015828472995344, 0.25415209433082675, 0.2581828529215958,
    0.26225065752969623, 0.26635560480286247, 0.2704977910130658, 0.27467731206038465,
    0.2788942634768104, 0.2831487404299921, 0.2874408377269175, 0.29177064981753587,
    0.2961382707983211, 0.3005437944157765, 0.3049873140698863, 0.30946892281750854,
    0.31398871337571754, 0.31854677812509186, 0.32314320911295075, 0.3277780980565422,
    0.33245153634617935, 0.33716361504833037, 0.341914424908661, 0.3467040563550296,
    0.35153259950043936, 0.3564001441459435, 0.3613067797835095, 0.3662525955988395,
    0.3712376804741491, 0.37626212299090644, 0.3813260114325301, 0.386429433787049,
    0.39157247774972326, 0.39675523072562685, 0.40197777983219574, 0.4072402119017367,
    0.41254261348390375, 0.4178850708481375, 0.4232676699860717, 0.4286904966139067,
    0.4341536361747489, 0.4396571738409188, 0.44520119451622786, 0.45078578283822346,
    0.45641102318040466, 0.4620769996544071, 0.467783796112159, 0.47353149614800955,
    0.4793201831008268, 0.4851499400560704, 0.4910208498478356, 0.4969329950608704,
    0.5028864580325687, 0.5088813208549338, 0.5149176653765214, 0.5209955732043543,
    0.5271151257058131, 0.5332764040105052, 0.5394794890121071, 0.5457244613701866,
    0.5520114015120001, 0.5583403896342679, 0.5647115057049292, 0.5711248294648731,
    0.5775804404296506, 0.5840784178911641, 0.5906188409193369, 0.5972017883637634,
    0.6038273388553378, 0.6104955708078648, 0.6172065624196511, 0.6239603916750761,
    0.6307571363461468, 0.6375968739940326, 0.6444796819705821, 0.6514056374198242,
    0.6583748172794486, 0.665387298282272, 0.6724431569576875, 0.6795424696330938,
    0.6866853124353134, 0.6938717612919899, 0.7011018919329731, 0.7083757798916868,
    0.7156935005064807, 0.7230551289219693, 0.7304607400903537, 0.7379104087727308,
    0.7454042095403874, 0.7529422167760779, 0.7605245046752924, 0.7681511472475071,
    0.7758222183174236, 0.7835377915261935, 0.7912979403326302, 0.799102738014409,
    0.8069522576692516, 0.8148465722161012, 0.8227857543962835, 0.8307698767746546,
    0.83879901174074, 0.846873231509858, 0.8549926081242338, 0.8631572134541023,
    0.8713671191987973, 0.8796223968878317, 0.8879231178819663, 0.8962693533742664,
    0.9046611743911496, 0.9130986517934192, 0.9215818562772946, 0.9301108583754237,
    0.938685728457888, 0.9473065367331999, 0.9559733532492861, 0.9646862478944651,
    0.9734452903984125, 0.9822505503331171, 0.9911020971138298, 1.0,
])
_LIN = np.append(_LIN, _LIN[-1])

# Linear sRGB -> LMS (the rows of Ottosson's OKLab M1 matrix).
_M1 = (
    (0.4122214708, 0.5363325363, 0.0514459929),
    (0.2119034982, 0.6806995451, 0.1073969566),
    (0.0883024619, 0.2817188376, 0.6299787005),
)
# Per-byte LMS contributions of each channel for opaque pixels, coefficient * LIN[byte], as
# 3 x 256 tables (rows l, m, s) for red, green and blue.
_M1_LUT = [np.stack([row[c] * _LIN[:256] for row in _M1]) for c in range(3)]
# Successive differences of the interpolated tables (the reference subtracts the same two
# entries at run time).
_LIN_STEP = _LIN[1:] - _LIN[:-1]

_TOE_K1 = 0.206
_TOE_K2 = 0.03
_TOE_K3 = (1 + _TOE_K1) / (1 + _TOE_K2)
_TOE_K4 = 4 * _TOE_K2 * _TOE_K3  # evaluated left to right, as pixelmatch's 4 * K2 * K3 * L is

_CBRT_N = 4096


def _cbrt_fdlibm(x: np.ndarray) -> np.ndarray:
    """Cube root of positive normal float64s, bit for bit as V8's Math.cbrt computes it
    (FreeBSD msun's algorithm: exponent/3 estimate, polynomial to 23 bits, one Newton step)."""
    hx = (x.view(np.uint64) >> np.uint64(32)).astype(np.uint64)
    t = ((hx // np.uint64(3) + np.uint64(715094163)) << np.uint64(32)).view(np.float64)
    r = (t * t) * (t / x)
    t = t * (
        (1.87595182427177009643 + r * (-1.88497979543377169875 + r * 1.621429720105354466140))
        + ((r * r) * r) * (-0.758397934778766047437 + r * 0.145996192886612446982)
    )
    t = ((t.view(np.uint64) + np.uint64(0x80000000)) & np.uint64(0xFFFFFFFFC0000000)).view(
        np.float64
    )
    s = t * t
    r = x / s
    w = t + t
    r = (r - t) / (w + r)
    root: np.ndarray = t + t * r
    return root


# Cube root of i / 4096 for i in 0..4097 (one entry of padding beyond 1.0).
_CBRT = np.concatenate(([0.0], _cbrt_fdlibm(np.arange(1, _CBRT_N + 2) / _CBRT_N)))
_CBRT_STEP = _CBRT[1:] - _CBRT[:-1]


def _cbrt_lut(x: np.ndarray) -> np.ndarray:
    t = x * _CBRT_N
    i = t.astype(np.intp)
    return np.take(_CBRT, i) + np.take(_CBRT_STEP, i) * (t - i)


def _lin_lut(v: np.ndarray) -> np.ndarray:
    """sRGB -> linear for fractional 0..255 channel values, interpolating the table."""
    i = v.astype(np.intp)
    return np.take(_LIN, i) + np.take(_LIN_STEP, i) * (v - i)


def _toe(lightness: np.ndarray) -> np.ndarray:
    x = _TOE_K3 * lightness - _TOE_K1
    return 0.5 * (x + np.sqrt(x * x + _TOE_K4 * lightness))


def _background_code(idx: np.ndarray) -> np.ndarray:
    """Which of pixelmatch's four checkerboard colours lies behind the pixels at ``idx``: bit 0
    set for green 207 (else 48), bit 1 for blue 207 (else 48); red is always 48.

    pixelmatch derives the pattern from the byte offset k = 4 * index; its red term uses k's
    parity, which is always even.
    """
    k = 4.0 * idx
    green = (k / 1.618033988749895).astype(np.int64) % 2
    blue = (k / 2.618033988749895).astype(np.int64) % 2
    return green + 2 * blue


def _lms(px: np.ndarray, code: np.ndarray, checkerboard: bool) -> np.ndarray:
    """Linear LMS sums (3 x n: l, m, s) of n x 4 RGBA pixels, composited over the background
    ``code`` (see _background_code; white without the checkerboard) when not opaque."""
    opaque = px[:, 3] == 255
    if opaque.all():
        return _lms_opaque(px)
    out = np.empty((3, len(px)))
    if opaque.any():
        sel = np.flatnonzero(opaque)
        out[:, sel] = _lms_opaque(px[sel])
    sel = np.flatnonzero(~opaque)
    sub = px[sel].T.astype(np.int32)
    alpha = sub[3]
    rest = 255 - alpha
    bgs: tuple[int | np.ndarray, int | np.ndarray, int | np.ndarray]
    if checkerboard:
        bits = code[sel]
        bgs = (48, 48 + 159 * (bits & 1), 48 + 159 * (bits >> 1))
    else:
        bgs = (255, 255, 255)
    linear = [_lin_lut((sub[c] * alpha + bg * rest) / 255) for c, bg in zip(range(3), bgs, strict=True)]
    for row, (c0, c1, c2) in enumerate(_M1):
        out[row, sel] = (c0 * linear[0] + c1 * linear[1]) + c2 * linear[2]
    return out


def _lms_opaque(px: np.ndarray) -> np.ndarray:
    r, g, b = px[:, :3].T.astype(np.intp)
    red, green, blue = _M1_LUT
    sums: np.ndarray = (np.take(red, r, axis=1) + np.take(green, g, axis=1)) + np.take(blue, b, axis=1)
    return sums


def _oklab(px: np.ndarray, idx: np.ndarray, checkerboard: bool) -> np.ndarray:
    """Cube-rooted l, m, s and toe-corrected lightness Lr (4 x n) of the pixels at ``idx``."""
    code = np.zeros(len(px), dtype=np.int64)
    if checkerboard:
        sel = np.flatnonzero(px[:, 3] != 255)
        if sel.size:
            code[sel] = _background_code(idx[sel])
    if len(px) < _CACHE_MIN:
        return _oklab_direct(px, code, checkerboard)
    return _oklab_cached(px, code, checkerboard)


def _oklab_direct(px: np.ndarray, code: np.ndarray, checkerboard: bool) -> np.ndarray:
    out = np.empty((4, len(px)))
    out[:3] = _cbrt_lut(_lms(px, code, checkerboard))
    l_root, m_root, s_root = out[:3]
    out[3] = _toe((0.2104542553 * l_root + 0.7936177850 * m_root) - 0.0040720468 * s_root)
    return out


# Large pixel sets repeat few colours: convert each (colour, background) once through a
# direct-mapped table keyed by a multiplicative hash; colliding keys are converted directly.
# Keys are the packed colour, with the background code above it only when some pixel has one.
_CACHE_MIN = 2048
_HASH32 = (np.uint32, np.uint32(0x9E3779B1), 32)
_HASH64 = (np.uint64, np.uint64(0x9E3779B97F4A7C15), 64)


def _oklab_cached(px: np.ndarray, code: np.ndarray, checkerboard: bool) -> np.ndarray:
    """_oklab_direct, computed once per distinct (packed colour, background code) key."""
    bits = min(16, len(px).bit_length() - 2)
    key = np.ascontiguousarray(px).view(np.uint32).reshape(-1)
    wide = bool(code.any())
    dtype, multiplier, width = _HASH64 if wide else _HASH32
    if wide:
        key = key.astype(np.uint64) | (code.astype(np.uint64) << np.uint64(32))
    slots = (key * multiplier) >> dtype(width - bits)
    keys: np.ndarray = np.zeros(1 << bits, dtype=dtype)
    occupied = np.zeros(1 << bits, dtype=bool)
    keys[slots] = key
    occupied[slots] = True
    filled = np.flatnonzero(occupied)
    stored = keys[filled]
    colours = (stored & dtype(0xFFFFFFFF)).astype(np.uint32).view(np.uint8).reshape(-1, 4)
    codes = (stored >> dtype(32)).astype(np.int64) if wide else np.zeros(filled.size, np.int64)
    table = np.empty((4, 1 << bits))
    table[:, filled] = _oklab_direct(colours, codes, checkerboard)
    out = np.take(table, slots, axis=1)
    missed = np.flatnonzero(np.take(keys, slots) != key)
    if missed.size:
        out[:, missed] = _oklab_direct(px[missed], code[missed], checkerboard)
    return out


def _over_threshold(
    p: np.ndarray, q: np.ndarray, idx: np.ndarray, threshold: float, checkerboard: bool
) -> np.ndarray:
    """Whether the HyAB distance of each pixel pair exceeds ``threshold``."""
    dl, dm, ds, dlr = _oklab(p, idx, checkerboard) - _oklab(q, idx, checkerboard)
    rest = threshold - np.abs(dlr)
    da = (1.9779984951 * dl - 2.4285922050 * dm) + 0.4505937099 * ds
    db = (0.0259040371 * dl + 0.7827717662 * dm) - 0.8086757660 * ds
    over: np.ndarray = ~((rest > 0) & (da * da + db * db <= rest * rest))
    return over


# a * (c - 255) for index a * 256 + c: a channel's share of pixelmatch's composited brightness
# numerator, as an exact float64.
_WEIGHTED = (np.arange(256.0)[:, None] * (np.arange(256.0)[None, :] - 255.0)).reshape(-1)


def _weighted(values: np.ndarray) -> np.ndarray:
    """a * (c - 255) of the red, green and blue of packed RGBA pixels (3 x n float64)."""
    high = (values >> 16) & 0xFF00  # alpha * 256
    keys = np.stack((values & 0xFF, (values >> 8) & 0xFF, (values >> 16) & 0xFF))
    keys |= high
    return np.take(_WEIGHTED, keys)


class _Centres:
    """The pixels under test, prepared once for the brightness deltas to their neighbours."""

    def __init__(self, img: np.ndarray, idx: np.ndarray) -> None:
        self.values = np.take(img, idx)
        self.px = self.values.view(np.uint8).reshape(-1, 4)
        self.opaque = bool(self.px[:, 3].min(initial=255) == 255)
        self._weighted: np.ndarray | None = None

    def weighted(self) -> np.ndarray:
        if self._weighted is None:
            self._weighted = _weighted(self.values)
        return self._weighted


def _brightness_delta(centre: _Centres, values: np.ndarray) -> np.ndarray:
    """pixelmatch's brightness delta of each centre to a neighbour (packed RGBA): the luma
    difference of the two composited over white, or half the alpha difference where that is
    exactly 0 but alpha differs.

    The reference computes (r1 * a1 - r2 * a2 - 255 * (a1 - a2)) / 255 per channel; the integer
    numerator equals a1 * (r1 - 255) - a2 * (r2 - 255), and for two opaque pixels the quotient is
    exactly r1 - r2, as the reference's opaque branch has it.
    """
    other = values.view(np.uint8).reshape(-1, 4)
    if centre.opaque and other[:, 3].min(initial=255) == 255:
        dr, dg, db = np.subtract(centre.px[:, :3].T, other[:, :3].T, dtype=np.float64)
        opaque_delta: np.ndarray = dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223
        return opaque_delta
    dr, dg, db = (centre.weighted() - _weighted(values)) / 255
    d: np.ndarray = dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223
    flat = d == 0
    if flat.any():
        da = centre.px[:, 3].astype(np.int32) - other[:, 3]
        flat &= da != 0
        d[flat] = da[flat] / 2
    return d


def _antialiased(
    img: np.ndarray, other: np.ndarray, idx: np.ndarray, siblings: Siblings, width: int,
    height: int,
) -> np.ndarray:
    """pixelmatch's slope detector for the pixels ``idx`` of ``img`` (a flat uint32 canvas;
    ``other`` is read through ``siblings``)."""
    centre = _Centres(img, idx)
    return antialiased_pixelmatch(
        idx, siblings, width, height,
        lambda nb: _brightness_delta(centre, np.take(img, nb)),
    )


def scan(
    a: np.ndarray,
    b: np.ndarray,
    overlap: tuple[int, int],
    *,
    threshold: float,
    antialiasing: bool,
    ignore: np.ndarray | None = None,
    checkerboard: bool = True,
    window_size: int | None = None,
) -> Scan:
    """Compare two padded canvases as pixelmatch c6fee35 does; see the module docstring."""
    height, width = a.shape[:2]
    threshold = float(threshold)

    def over_threshold(idx: np.ndarray, a32: np.ndarray, b32: np.ndarray) -> np.ndarray:
        return _over_threshold(_pixels(a32, idx), _pixels(b32, idx), idx, threshold, checkerboard)

    # pixelmatch's own mask is needed on the whole canvas only for the window count.
    found = find_changes(a, b, overlap, ignore,
                         region=(width, height) if window_size is not None else None,
                         over_threshold=over_threshold,
                         antialiased=functools.partial(_antialiased, width=width, height=height)
                         if antialiasing else None,
                         one_neighbour_in_both=True)
    window = window_max(found.mask, window_size, found.bounds.get()) if window_size is not None else None
    outside = mark_outside_overlap(found.mask, *overlap, ignore, found.bounds)
    return Scan(
        mask=found.mask,
        changed_pixels=found.changed_in_overlap + outside,
        aa_pixels=found.aa_in_overlap,
        bbox=found.bounds.get(),
        window_max=window,
    )


def _pixels(img: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take(img, idx).view(np.uint8).reshape(-1, 4)
