"""Draw the cases that restate pixelmatch's and odiff's own tests (their base and head images and
their own option sets); `conformance.generate` then runs the references on them.

    python -m conformance.suite_cases

Each case draws, small and in code, pictures with the property of the peer tests it names
(pixelmatch 7.2.0 ``test/test.js``, odiff 4.5.0 ``src/test_*.zig``,
``npm_packages/tests/src/node-binding.test.cjs``): the peers' own fixtures are not used. Its own
option sets are the peer tests' options in snapcompare's names (pixelmatch's default
``includeAA: false`` is ``antialiasing: true``; odiff's library default is ``antialiasing: false``),
the first one giving the case's mask. `tests/compare/imaging/test_reference_suites.py` restates
each test on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from conformance.drawing import write_case
from conformance.size_cases import disc, rotated_banner

Pictures = tuple[Image.Image, Image.Image]
WHITE, TRANSPARENT = (255, 255, 255, 255), (0, 0, 0, 0)
SCALE = 4  # shapes are drawn this many times larger, then reduced: anti-aliased edges


@dataclass(frozen=True)
class Drawn:
    """A drawn case: what draws its base and head, their file formats, its own option sets."""

    draw: Callable[[], Pictures]
    options: dict[str, list[dict]] = field(default_factory=dict)
    formats: tuple[str, str] = ("png", "png")


def options(threshold: float, antialiasing: bool, **more) -> dict:
    """One option set in snapcompare's names."""
    return {"threshold": threshold, "antialiasing": antialiasing, **more}


def regions(*boxes: tuple[int, int, int, int]) -> list[dict]:
    """Ignore regions, corners included, as a manifest lists them."""
    return [dict(zip(("x1", "y1", "x2", "y2"), box, strict=True)) for box in boxes]


def antialiased(size: tuple[int, int], paint: Callable[[ImageDraw.ImageDraw, int], None],
                background: tuple[int, ...] = WHITE, scale: int = SCALE) -> Image.Image:
    """An RGBA picture of ``size`` painted by ``paint(draw, scale)`` at ``scale`` times the size
    and reduced with a box filter (``scale`` 1: drawn as it is, aliased)."""
    width, height = size
    image = Image.new("RGBA", (width * scale, height * scale), background)
    paint(ImageDraw.Draw(image), scale)
    return image if scale == 1 else image.resize(size, Image.Resampling.BOX)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own font at ``size`` pixels (anti-aliased glyphs)."""
    return ImageFont.load_default(size=size)


def labels(places: Iterable[tuple[int, int]]) -> Image.Image:
    """Red anti-aliased "Test" labels with a dark halo on 128x64 white, one at each (x, y)."""
    image = Image.new("RGBA", (128, 64), WHITE)
    draw = ImageDraw.Draw(image)
    for place in places:
        draw.text(place, "Test", font=font(11), fill=(220, 0, 0, 255), stroke_width=1,
                  stroke_fill=(40, 0, 0, 255))
    return image


LABELS = [(4, 4), (40, 10), (84, 3), (12, 30), (60, 34), (96, 44), (30, 48)]


def _labels_moved() -> Pictures:
    moved = [(5, 4), (40, 12), (84, 3), (12, 30), (63, 34), (96, 44), (50, 50)]
    return labels(LABELS), labels(moved)


def _labels_same() -> Pictures:
    return labels(LABELS), labels(LABELS)


def _map(scale: float, label_texts: tuple[str, str], shift: int = 0) -> Image.Image:
    """A map-like RGBA picture: land, a lake, roads and two place names; ``scale`` zooms it."""
    def paint(draw: ImageDraw.ImageDraw, s: int) -> None:
        z = s * scale
        draw.polygon([(60 * z, 40 * z), (90 * z, 30 * z), (100 * z, 70 * z), (70 * z, 90 * z)],
                     fill=(170, 205, 235, 255))
        for points, width in (([(0, 20), (50, 35), (96, 25)], 3), ([(20, 0), (30 + shift, 50), (25, 96)], 2),
                              ([(0, 80), (60, 60), (96, 90)], 4)):
            draw.line([(x * z, y * z) for x, y in points], fill=(250, 200, 90, 255), width=round(width * z))
    image = antialiased((96, 96), paint, background=(242, 238, 228, 255))
    draw = ImageDraw.Draw(image)
    draw.text((4, 40), label_texts[0], font=font(10), fill=(70, 60, 60, 255))
    draw.text((40, 84), label_texts[1], font=font(9), fill=(110, 100, 100, 255))
    return image


def _palette(image: Image.Image) -> Image.Image:
    """``image`` in 64 colours, as a palette PNG holds it."""
    return image.convert("RGB").quantize(64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _map_palette_rerendered() -> Pictures:
    # the head's road bends 1 px further, a name is darker text where there was none, one is gone
    return _palette(_map(1, ("Uptown", "Lake"))), _palette(_map(1, ("Uptowns", ""), shift=1))


def _markers(places: Iterable[tuple[int, int]]) -> Image.Image:
    """Blue round markers with a white centre, anti-aliased, on white."""
    def paint(draw: ImageDraw.ImageDraw, s: int) -> None:
        for x, y in places:
            draw.ellipse((x * s, y * s, (x + 9) * s, (y + 9) * s), fill=(30, 110, 170, 255))
            draw.ellipse(((x + 3) * s, (y + 3) * s, (x + 6) * s, (y + 6) * s), fill=WHITE)
    return antialiased((128, 64), paint)


def _markers_moved() -> Pictures:
    places = [(5, 5), (20, 9), (44, 30), (70, 12), (90, 40), (110, 8), (30, 50)]
    moved = places[:3] + [(71, 12), (90, 42), (108, 9), (30, 50)]
    return _markers(places), _markers(moved)


def _rgb_vs_rgba_zoomed() -> Pictures:
    # the base is an RGB PNG, the head an RGBA PNG of the map zoomed in
    return _map(1, ("Uptown", "Lake")).convert("RGB"), _map(1.25, ("Uptown", "Lake"))


def _gradient_triangle(upper: tuple[int, int, int, int], diagonal_alpha: int) -> Image.Image:
    """A 64x64 lower-left triangle shading red to green to blue, the diagonal at
    ``diagonal_alpha``, the upper-right half ``upper``."""
    y, x = np.mgrid[0:64, 0:64]
    pixels = np.zeros((64, 64, 4), dtype=np.uint8)
    pixels[...] = upper
    lower, diagonal = x < y, x == y
    pixels[lower] = np.stack([255 - 4 * y, 4 * x, 4 * (y - x), np.full_like(x, 255)], axis=-1)[lower]
    pixels[diagonal] = np.stack([255 - 2 * x, 0 * x, 2 * x, np.full_like(x, diagonal_alpha)], axis=-1)[diagonal]
    return Image.fromarray(pixels, "RGBA")


def _translucent_diagonal_cleared() -> Pictures:
    return _gradient_triangle(TRANSPARENT, 128), _gradient_triangle(TRANSPARENT, 0)


def _opaque_white_vs_transparent() -> Pictures:
    return _gradient_triangle(WHITE, 255), _gradient_triangle(TRANSPARENT, 0)


def _starburst(scale: int) -> Image.Image:
    """Red rays from the centre of a 96x96 white square, anti-aliased at ``scale``."""
    def paint(draw: ImageDraw.ImageDraw, s: int) -> None:
        centre = 48 * s
        for ray in range(24):
            angle = ray * np.pi / 12
            ends = [(centre + 70 * s * np.cos(angle + d), centre + 70 * s * np.sin(angle + d)) for d in (0, 0.07)]
            draw.polygon([(centre, centre), *ends], fill=(200, 20, 30, 255))
    return antialiased((96, 96), paint, scale=scale)


def _starburst_rerendered() -> Pictures:
    return _starburst(4), _starburst(3)


def _half_black_vs_grey() -> Pictures:
    return Image.new("RGBA", (1, 1), (0, 0, 0, 128)), Image.new("RGBA", (1, 1), (127, 127, 127, 255))


def _antialiased_disc() -> Pictures:
    return disc(200, 4), disc(200, 1)


def _white_4x4_purple_8x8() -> Pictures:
    return Image.new("RGBA", (4, 4), WHITE), Image.new("RGBA", (8, 8), (128, 0, 128, 255))


def _swapped(draw: Callable[[], Pictures]) -> Callable[[], Pictures]:
    """The pictures of ``draw`` the other way round."""
    return lambda: draw()[::-1]


def fruit(text: bool) -> Image.Image:
    """An orange-like textured disc and a leaf over a translucent shadow on transparent; with
    ``text``, a word written over the fruit and another in the shadow."""
    def paint(draw: ImageDraw.ImageDraw, s: int) -> None:
        draw.ellipse((14 * s, 44 * s, 110 * s, 60 * s), fill=(90, 60, 40, 90))
        draw.ellipse((30 * s, 6 * s, 84 * s, 54 * s), fill=(240, 140, 30, 255))
        draw.polygon([(80 * s, 10 * s), (112 * s, 4 * s), (96 * s, 22 * s)], fill=(60, 150, 50, 255))
    image = antialiased((128, 64), paint, background=TRANSPARENT)
    pixels = np.asarray(image).copy()
    grain = np.random.default_rng(5).integers(-12, 13, pixels.shape[:2])
    opaque = pixels[..., 3] == 255
    pixels[..., :3][opaque] = np.clip(pixels[..., :3][opaque] + grain[opaque, None], 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    if text:
        draw = ImageDraw.Draw(image)
        draw.text((46, 16), "Ok", font=font(14), fill=(250, 200, 60, 255))
        draw.text((16, 48), "fresh", font=font(9), fill=(120, 40, 20, 255))
    return image


def _fruit_labelled() -> Pictures:
    return fruit(False), fruit(True)


def _dots_beside_a_region() -> Pictures:
    # three changed pixels inside the region 70:50-90:52 and three left of it on its rows
    base = Image.new("RGBA", (100, 56), (200, 200, 200, 255))
    head = base.copy()
    for place in ((75, 50), (80, 51), (85, 52), (10, 50), (10, 51), (10, 52)):
        head.putpixel(place, (20, 20, 20, 255))
    return base, head


def _alpha_levels_palette_vs_rgba() -> Pictures:
    # 256 palette entries, each its own colour and alpha (from 0 to 255; the transparent ones of
    # different colours): the base a palette PNG with a tRNS chunk, the head those pixels as RGBA
    entries = np.arange(256)
    index = entries.astype(np.uint8).reshape(16, 16)
    colours = np.stack([entries, entries * 7 % 256, 255 - entries], axis=-1).astype(np.uint8)
    alphas = np.concatenate([np.zeros(16), np.linspace(1, 255, 240)]).round().astype(np.uint8)
    base = Image.fromarray(index, "P")
    base.putpalette(colours.ravel().tolist())
    base.info["transparency"] = alphas.tobytes()
    head = Image.fromarray(np.concatenate([colours, alphas[:, None]], axis=-1)[index], "RGBA")
    return base, head


def _alpha_blend_row() -> Pictures:
    # (0, 128, 255) at alphas 255, 0, 5, 51, 128 and, opaque, each blended over white (rounded):
    # the values of odiff's "blendSemiTransparentColor" test
    alphas = (255, 0, 5, 51, 128)
    base = Image.new("RGBA", (5, 1))
    head = Image.new("RGBA", (5, 1))
    for x, alpha in enumerate(alphas):
        base.putpixel((x, 0), (0, 128, 255, alpha))
        head.putpixel((x, 0), tuple(round(255 + (c - 255) * alpha / 255) for c in (0, 128, 255)) + (255,))
    return base, head


def photo(changed: bool) -> Image.Image:
    """A 64x40 RGB picture with photographic grain; ``changed`` adds two shapes and raises the red
    of a patch by 60 (a change odiff counts at threshold 0.1 in red, and would not in blue)."""
    y, x = np.mgrid[0:40, 0:64]
    pixels = np.stack([x * 4, 60 + y * 3, 200 - x - 2 * y], axis=-1)
    pixels = pixels + np.random.default_rng(7).normal(0, 6, pixels.shape)
    if changed:
        pixels[26:36, 42:58, 0] += 60
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((6, 6, 26, 26), fill=(230, 120, 30))
    draw.rectangle((36, 3, 56, 16), fill=(40, 160, 70))
    if changed:
        draw.ellipse((40, 5, 52, 14), fill=(250, 230, 40))
        draw.rectangle((9, 28, 20, 37), fill=(200, 30, 160))
    return image


def _photos() -> Pictures:
    return photo(False), photo(True)


def _photo_and_itself() -> Pictures:
    return photo(False), photo(False)


ODIFF_DEFAULTS = options(0.1, False)  # odiff's DiffOptions{}
PIXELMATCH_AT_005 = options(0.05, True)  # test.js's {threshold: 0.05}

DRAWN: dict[str, Drawn] = {
    # pixelmatch test/test.js: "comparing 1a to 1b" at {threshold: 0.05} (also with includeAA: false
    # and diffMask), and at the default threshold
    "labels_moved": Drawn(_labels_moved, {"pixelmatch": [PIXELMATCH_AT_005, options(0.1, True)]}),
    # "comparing 1a to 1a" {threshold: 0, diffMask}, "comparing 6a to 6a" {threshold: 0}; odiff
    # src/test_server.zig "server: end-to-end identical images match"
    "labels_same": Drawn(_labels_same, {"pixelmatch": [options(0, True)], "odiff": [options(0, False)]}),
    # "comparing 2a to 2b" (palette PNGs, {threshold: 0.05, alpha, aaColor, diffColor}) and
    # "comparing 7a to 7b" ({diffColorAlt}: changes that darken and that lighten)
    "map_palette_rerendered": Drawn(_map_palette_rerendered,
                                       {"pixelmatch": [PIXELMATCH_AT_005, options(0.1, True)]}),
    # "comparing 3a to 3b": markers moved
    "markers_moved": Drawn(_markers_moved, {"pixelmatch": [PIXELMATCH_AT_005]}),
    # "comparing 4a to 4b": an RGB PNG against an RGBA PNG of the map zoomed
    "rgb_vs_rgba_zoomed": Drawn(_rgb_vs_rgba_zoomed, {"pixelmatch": [PIXELMATCH_AT_005]}),
    # "comparing 5a to 5b": a translucent edge against a transparent one
    "translucent_diagonal_cleared": Drawn(_translucent_diagonal_cleared, {"pixelmatch": [PIXELMATCH_AT_005]}),
    # "comparing 6a to 6b": rays anti-aliased differently
    "starburst_rerendered": Drawn(_starburst_rerendered, {"pixelmatch": [PIXELMATCH_AT_005]}),
    # "comparing 8a to 5b": opaque white against transparent
    "opaque_white_vs_transparent": Drawn(_opaque_white_vs_transparent, {"pixelmatch": [PIXELMATCH_AT_005]}),
    # "checkerboard: false blends semi-transparent pixels against white"
    "half_black_vs_grey": Drawn(_half_black_vs_grey,
                                   {"pixelmatch": [options(0.1, True, checkerboard=False), options(0.1, True)]}),
    # odiff src/test_core.zig "antialiasing: does not count anti-aliased pixels as different"
    "antialiased_disc": Drawn(_antialiased_disc, {"odiff": [options(0.1, True)]}),
    # "layoutDifference: diff images with different layouts", both ways
    "white_4x4_purple_8x8": Drawn(_white_4x4_purple_8x8, {"odiff": [ODIFF_DEFAULTS]}),
    "purple_8x8_white_4x4": Drawn(_swapped(_white_4x4_purple_8x8), {"odiff": [ODIFF_DEFAULTS]}),
    # "layoutDifference: diff images with different layouts (2)", the other way (size_cases has the first)
    "rotated_banner_back": Drawn(_swapped(rotated_banner), {"odiff": [ODIFF_DEFAULTS]}),
    # src/test_io_png.zig "PNG: finds difference between 2 images", "PNG: Creates correct diff
    # output image"; src/test_core.zig "threshold: uses provided threshold" (0.5), "ignore regions:
    # uses provided ignore regions" (both changes), "diff_cols + diff_lines: derives the bounding
    # rectangle of the changes" (ignoring it); src/test_server.zig "server: integer threshold 0 is
    # respected"; node-binding.test.cjs "Correctly parses antialiasing"
    "fruit_labelled": Drawn(_fruit_labelled, {"odiff": [
        ODIFF_DEFAULTS, options(0.5, False), options(0, False), options(0.1, True),
        options(0.1, False, ignore_regions=regions((44, 14, 76, 34), (14, 46, 48, 60))),
        options(0.1, False, ignore_regions=regions((16, 19, 63, 56))),  # odiff's bbox at its defaults
    ]}),
    # src/test_core.zig "unrollIgnoreRegions: should only mark rectangular region pixels, not
    # entire linear range"
    "dots_beside_a_region": Drawn(_dots_beside_a_region, {"odiff": [
        options(0.1, False, ignore_regions=regions((70, 50, 90, 52))), ODIFF_DEFAULTS]}),
    # src/test_io_png.zig "PNG: Correctly handles different encodings of transparency"
    "alpha_levels_palette_vs_rgba": Drawn(_alpha_levels_palette_vs_rgba, {"odiff": [ODIFF_DEFAULTS]}),
    # src/test_core.zig "blendSemiTransparentColor: blend semi-transparent colors"
    "alpha_blend_row": Drawn(_alpha_blend_row, {"odiff": [ODIFF_DEFAULTS],
                                                   "pixelmatch": [options(0.1, True, checkerboard=False)]}),
    # src/test_io_jpg.zig "JPG: finds difference between 2 images", "JPG: Creates correct diff
    # output image" (odiff's tests decode JPEG with the accurate DCT, its binary only at threshold
    # 0: at 0.01 its fast DCT changes the count)
    "photo_jpeg": Drawn(_photos, {"odiff": [ODIFF_DEFAULTS, options(0, False), options(0.01, True)]},
                           ("jpg", "jpg")),
    # src/test_io_bmp.zig "BMP: finds difference between 2 images"
    "photo_bmp": Drawn(_photos, {"odiff": [ODIFF_DEFAULTS]}, ("bmp", "bmp")),
    # src/test_io_tiff.zig "TIFF: finds difference between 2 images", "TIFF: Creates correct diff
    # output image"
    "photo_tiff": Drawn(_photos, {"odiff": [ODIFF_DEFAULTS]}, ("tiff", "tiff")),
    # src/test_io_webp.zig "webp: loads webp image correctly", "webp: compares webp with png correctly"
    "photo_webp_vs_png": Drawn(_photo_and_itself, {"odiff": [ODIFF_DEFAULTS]}, ("webp", "png")),
    # src/test_io_webp.zig "webp: identical WebP images have no differences"
    "photo_webp_same": Drawn(_photo_and_itself, {"odiff": [ODIFF_DEFAULTS]}, ("webp", "webp")),
}


def main() -> None:
    """Write each case's inputs and own option sets under conformance/cases."""
    for name, case in DRAWN.items():
        print(f"wrote {write_case(name, case.draw(), case.formats, case.options)}")


if __name__ == "__main__":
    main()
