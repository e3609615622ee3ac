"""diff_images inputs: encoded bytes, PIL images of every mode, arrays; errors for bad ones."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from compare import ImageDecodeError, ImageError, ImageTooLarge, diff_images
from compare.imaging import decode as image_module
from compare.imaging.decode import FAST_PNG_DECODER, decode_rgba, open_image
from tests.compare.pixel_samples import encode, png_header_only, screen, with_block

BLOCK = 25  # a 5x5 square changed to red


@pytest.fixture(scope="module")
def rgba() -> np.ndarray:
    return screen()


def _as_mode(rgba: np.ndarray, mode: str) -> Image.Image:
    image = Image.fromarray(rgba)
    if mode == "P":
        return image.convert("RGB").quantize(colors=64)
    return image.convert(mode)


PNG_MODES = ["RGB", "RGBA", "P", "L", "LA", "1"]


@pytest.mark.parametrize(
    ("mode", "as_bytes"),
    [(mode, False) for mode in [*PNG_MODES, "CMYK"]] + [(mode, True) for mode in PNG_MODES],
)
def test_pil_modes_compare_as_their_rgba_conversion(
    rgba: np.ndarray, mode: str, as_bytes: bool
) -> None:
    image = _as_mode(rgba, mode)
    source = encode(image) if as_bytes else image
    expected = np.array(image.convert("RGBA"))

    same = diff_images(source, expected, antialiasing=False)
    changed = diff_images(source, with_block(expected, 40, 10, 5), antialiasing=False)

    assert same.changed_pixels == 0
    assert same.before_size == (rgba.shape[1], rgba.shape[0])
    assert changed.changed_pixels == BLOCK
    assert changed.bbox == (40, 10, 45, 15)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 1000, 257 * 100, 32896, 65535]], dtype=np.uint16)
    sixteen = Image.fromarray(levels)
    assert sixteen.mode == "I;16"
    scaled = Image.fromarray(np.array([[0, 4, 100, 128, 255]], dtype=np.uint8))
    clipped = Image.fromarray(np.array([[0, 255, 255, 255, 255]], dtype=np.uint8))

    assert diff_images(sixteen, scaled, threshold=0).changed_pixels == 0
    assert diff_images(encode(sixteen), scaled, threshold=0).changed_pixels == 0
    assert diff_images(sixteen, clipped, threshold=0, antialiasing=False).changed_pixels == 3


def test_mode_i_is_treated_as_sixteen_bit_grey() -> None:
    wide = Image.fromarray(np.array([[0, 65535, 70000, -5]], dtype=np.int32))
    assert wide.mode == "I"
    expected = Image.fromarray(np.array([[0, 255, 255, 0]], dtype=np.uint8))

    assert diff_images(wide, expected, threshold=0).changed_pixels == 0


def test_jpeg_bytes_decode_like_pillow(rgba: np.ndarray) -> None:
    jpeg = encode(Image.fromarray(rgba).convert("RGB"), "JPEG", quality=85)
    decoded = np.array(Image.open(io.BytesIO(jpeg)).convert("RGBA"))

    assert diff_images(jpeg, decoded, threshold=0).changed_pixels == 0
    assert (
        diff_images(jpeg, with_block(decoded, 0, 0, 5), antialiasing=False).changed_pixels == BLOCK
    )


def test_lossless_webp_bytes_round_trip_exactly(rgba: np.ndarray) -> None:
    webp = encode(rgba, "WEBP", lossless=True, exact=True)

    assert diff_images(webp, rgba, threshold=0).changed_pixels == 0
    assert (
        diff_images(webp, with_block(rgba, 60, 60, 5), antialiasing=False).changed_pixels == BLOCK
    )


def test_bytes_like_inputs_are_accepted(rgba: np.ndarray) -> None:
    png = encode(rgba)

    assert diff_images(bytearray(png), memoryview(png)).changed_pixels == 0


def test_lazily_opened_pil_image_is_loaded(rgba: np.ndarray) -> None:
    lazy = Image.open(io.BytesIO(encode(rgba)))

    assert diff_images(lazy, with_block(rgba, 0, 0, 5), antialiasing=False).changed_pixels == BLOCK


def test_non_contiguous_array_compares_like_its_copy(rgba: np.ndarray) -> None:
    strided = rgba[:, ::2]
    assert not strided.flags.c_contiguous

    assert diff_images(strided, np.ascontiguousarray(strided), threshold=0).changed_pixels == 0
    changed = with_block(np.ascontiguousarray(strided), 0, 0, 5)
    assert diff_images(strided, changed, antialiasing=False).changed_pixels == BLOCK


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 3), np.uint8),
        np.zeros((4, 4, 4), np.float32),
        np.zeros((4, 4), np.uint8),
        np.zeros((0, 4, 4), np.uint8),
    ],
    ids=["rgb-channels", "float", "2d", "empty"],
)
def test_unusable_arrays_raise_image_error(array: np.ndarray) -> None:
    with pytest.raises(ImageError, match="before image"):
        diff_images(array, np.zeros((4, 4, 4), np.uint8))


@pytest.mark.parametrize("value", ["screenshot.png", [[0, 0, 0, 255]], None, 42])
def test_unsupported_types_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="after image: expected encoded image bytes"):
        diff_images(np.zeros((2, 2, 4), np.uint8), value)


def test_garbage_bytes_raise_decode_error_naming_the_input_not_quoting_it() -> None:
    garbage = b"<html>502 Bad Gateway</html>"

    with pytest.raises(ImageDecodeError) as caught:
        diff_images(np.zeros((2, 2, 4), np.uint8), garbage, name="home.png")

    message = str(caught.value)
    assert "after image 'home.png'" in message
    assert f"{len(garbage)} bytes" in message
    assert "not a supported image format" in message
    assert "html" not in message and "502" not in message
    assert isinstance(caught.value, ImageError) and isinstance(caught.value, ValueError)


def test_truncated_png_raises_decode_error_with_header_details(rgba: np.ndarray) -> None:
    png = encode(rgba)
    truncated = png[: len(png) // 2]

    with pytest.raises(ImageDecodeError) as caught:
        diff_images(truncated, png)

    message = str(caught.value)
    assert message.startswith("before image: cannot decode")
    assert f"{len(truncated)} bytes" in message
    assert "PNG RGBA 120x90" in message


def test_empty_bytes_raise_decode_error() -> None:
    with pytest.raises(ImageDecodeError, match="before image: cannot decode 0 bytes"):
        diff_images(b"", b"")


def test_canvas_over_max_pixels_raises_before_decoding() -> None:
    # The pixel data is garbage: only a header-only size check can report ImageTooLarge.
    claims_49m = png_header_only(7000, 7000)

    with pytest.raises(ImageTooLarge) as caught:
        diff_images(claims_49m, claims_49m)

    assert caught.value.pixels == 49_000_000
    assert caught.value.max_pixels == 40_000_000
    assert "7000x7000" in str(caught.value)
    with pytest.raises(ImageDecodeError):
        diff_images(claims_49m, claims_49m, max_pixels=50_000_000)


def size_of(image) -> tuple[int, int]:
    opened = open_image(image)
    opened.close()
    return opened.size


def test_open_image_reads_only_the_header(rgba: np.ndarray) -> None:
    assert size_of(png_header_only(7000, 5000)) == (7000, 5000)  # its pixel data is missing
    assert size_of(encode(rgba, "WEBP")) == (120, 90)
    assert size_of(Image.fromarray(rgba)) == (120, 90)
    assert size_of(rgba) == (120, 90)


def test_decompression_bomb_header_raises_too_large_and_guard_stays_on() -> None:
    bomb = png_header_only(50_000, 50_000)

    with pytest.raises(ImageTooLarge, match="decompression-bomb"):
        diff_images(bomb, bomb, max_pixels=10**10)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb))


def test_union_canvas_counts_against_max_pixels() -> None:
    wide = encode(np.zeros((1, 5000, 4), np.uint8))
    tall = encode(np.zeros((9000, 1, 4), np.uint8))

    with pytest.raises(ImageTooLarge, match="5000x9000"):
        diff_images(wide, tall)


def test_max_pixels_is_inclusive() -> None:
    pixels = np.zeros((100, 100, 4), np.uint8)

    assert diff_images(pixels, pixels, max_pixels=10_000).total_pixels == 10_000
    with pytest.raises(ImageTooLarge):
        diff_images(pixels, pixels, max_pixels=9_999)


@pytest.mark.parametrize("channels", [3, 4], ids=["rgb", "rgba"])
def test_fast_png_decoder_gives_pillows_pixels(rgba: np.ndarray, channels: int, monkeypatch) -> None:
    pytest.importorskip("imagecodecs", reason="the optional fast PNG decoder is not installed")
    assert FAST_PNG_DECODER
    png = encode(rgba[..., :channels])
    calls = []
    real = image_module.decode_png

    def recorded(data):
        pixels = real(data)
        calls.append(pixels is not None)
        return pixels

    monkeypatch.setattr(image_module, "decode_png", recorded)

    decoded = decode_rgba(png)

    assert calls == [True]  # the fast path decoded it, not the Pillow fallback
    assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")))
