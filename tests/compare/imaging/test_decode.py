"""diff_images inputs: encoded bytes, PIL images of every mode, arrays; errors for bad ones."""

from __future__ import annotations

import io
import re
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from compare import ImageDecodeError, ImageError, ImageTooLarge, diff_images
from compare.imaging import decode as image_module
from compare.imaging.decode import FAST_PNG_DECODER, decode_rgba, open_image
from tests.compare.pixel_samples import encode, png_header_only, screen, with_block

pytestmark = pytest.mark.integration

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


def test_sixteen_bit_grey_is_rounded_as_pngjs_reads_it() -> None:
    # pngjs, pixelmatch's reader: Math.floor(v * 255 / 65535 + 0.5). (odiff keeps the high byte.)
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)

    decoded = decode_rgba(encode(Image.fromarray(every)))

    assert np.array_equal(decoded[..., 0], np.floor(every.astype(float) * 255 / 65535 + 0.5).astype(np.uint8))
    assert (decoded[..., 0] == decoded[..., 1]).all() and (decoded[..., 3] == 255).all()


def test_sixteen_bit_grey_of_the_trns_key_is_transparent() -> None:
    grey = Image.fromarray(np.array([[0, 25700, 51400, 25700, 25701]], dtype=np.uint16))
    keyed, plain = encode(grey, transparency=25700), encode(grey)

    decoded = decode_rgba(keyed)

    assert decoded[0, :, 3].tolist() == [255, 0, 255, 0, 255]  # 25701 is not the key
    assert decoded[0, :, 0].tolist() == [0, 100, 200, 100, 100]
    eight = Image.fromarray(np.array([[0, 100, 200, 100, 101]], dtype=np.uint8))
    assert np.array_equal(decode_rgba(encode(eight, transparency=100))[..., 3], decoded[..., 3])
    assert diff_images(keyed, plain, threshold=0, antialiasing=False).changed_pixels == 2


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
@pytest.mark.usefixtures("fast_decoder")
def test_fast_png_decoder_gives_pillows_pixels(rgba: np.ndarray, channels: int, monkeypatch) -> None:
    assert FAST_PNG_DECODER
    png = encode(rgba[..., :channels])
    calls = []
    real = image_module.decode_png

    def recorded(data, size=None):
        pixels = real(data, size)
        calls.append(pixels is not None)
        return pixels

    monkeypatch.setattr(image_module, "decode_png", recorded)

    decoded = decode_rgba(png)

    assert calls == [True]  # the fast path decoded it, not the Pillow fallback
    assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")))


# A PostScript program that never ends: Pillow's EPS plugin would hand it to Ghostscript.
EPS_LOOP = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\nshowpage\n%%EOF\n"


@pytest.fixture
def no_programs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records (and refuses) any attempt to start a program or to open an EPS."""
    import subprocess

    from PIL import EpsImagePlugin

    attempts: list[object] = []

    def refuse(*args, **_kwargs):
        attempts.append(args)
        raise AssertionError("an external program was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    return attempts


def _other_formats(rgba: np.ndarray) -> dict[str, bytes]:
    rgb = Image.fromarray(rgba).convert("RGB")
    return {
        "EPS": EPS_LOOP,
        "EPS written by Pillow": encode(rgb, "EPS"),
        "PPM": encode(rgb, "PPM"),
        "ICO": encode(rgb, "ICO"),
        "PCX": encode(rgb, "PCX"),
        "TGA": encode(rgb, "TGA"),
        "PDF": encode(rgb, "PDF"),
        "EPS behind a PNG signature": b"\x89PNG\r\n\x1a\n" + EPS_LOOP,
    }


def test_only_allowed_formats_reach_a_decoder(rgba: np.ndarray, no_programs: list[object]) -> None:
    for kind, data in _other_formats(rgba).items():
        with pytest.raises(ImageDecodeError) as caught:
            diff_images(data, rgba, name="shot.png")
        message = str(caught.value)
        assert message.startswith("before image 'shot.png': cannot decode"), kind
        assert f"{len(data)} bytes" in message, kind
    assert no_programs == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_allowed_formats_decode_like_pillow(rgba: np.ndarray, fmt: str, no_programs) -> None:
    image = Image.fromarray(rgba).convert("RGB")
    data = encode(image, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(io.BytesIO(data)) as reference:
        expected = np.array(reference.convert("RGBA"))
    assert np.array_equal(decode_rgba(data), expected)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_animated_images_compare_their_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 8), colour) for colour in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    params = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **params)
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.n_frames == 3
    first = np.array(frames[0].convert("RGBA"))
    assert np.array_equal(decode_rgba(data), first)


def _oriented(stored: Image.Image, orientation: int | None, fmt: str) -> bytes:
    params = {"lossless": True} if fmt == "WEBP" else {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    if orientation is None:
        return encode(stored, fmt, **params)
    if fmt == "TIFF":  # a TIFF holds the orientation among its own tags
        return encode(stored, fmt, tiffinfo={0x0112: orientation})
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **params)


T = Image.Transpose
UPRIGHT = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
           6: T.ROTATE_270, 7: T.TRANSVERSE, 8: T.ROTATE_90}
"""The EXIF orientation values' meaning: what turns the stored image upright."""


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_exif_transpose(rgba: np.ndarray, fmt: str, orientation: int) -> None:
    stored = Image.fromarray(rgba).convert("RGB")
    data = _oriented(stored, orientation, fmt)
    with Image.open(io.BytesIO(_oriented(stored, None, fmt))) as untagged:
        raw = untagged.convert("RGBA")
    upright = raw.transpose(UPRIGHT[orientation]) if UPRIGHT[orientation] is not None else raw

    assert size_of(data) == upright.size  # from the header, before any pixel is decoded
    assert np.array_equal(decode_rgba(data), np.array(upright))
    if fmt != "TIFF":  # Pillow turns TIFFs upright itself
        with Image.open(io.BytesIO(data)) as opened:
            assert np.array_equal(decode_rgba(data), np.array(ImageOps.exif_transpose(opened).convert("RGBA")))
    unturned = open_image(data, exif_orientation=False)
    assert unturned.size == stored.size
    assert np.array_equal(unturned.rgba(), np.array(raw))


def test_png_orientation_is_left_alone(rgba: np.ndarray) -> None:
    stored = Image.fromarray(rgba)
    data = _oriented(stored, 6, "PNG")
    assert size_of(data) == stored.size
    assert np.array_equal(decode_rgba(data), rgba)


def test_a_rotated_photo_compares_equal_to_its_upright_self() -> None:
    upright = np.zeros((32, 48, 3), np.uint8)  # colour blocks on JPEG's 16-pixel grid survive
    upright[:16, :16] = (250, 10, 10)
    upright[16:, 32:] = (10, 10, 250)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # tag 6 turns it back
    before = encode(Image.fromarray(upright), "JPEG", quality=100, subsampling=0)
    after = _oriented(stored, 6, "JPEG")

    result = diff_images(before, after)
    assert result.before_size == result.after_size == (48, 32)
    assert result.changed_pixels == 0
    assert open_pair_sizes(before, after, exif_orientation=False) == ((48, 32), (32, 48))


def open_pair_sizes(*images: bytes, exif_orientation: bool) -> tuple[tuple[int, int], ...]:
    opened = [open_image(image, exif_orientation=exif_orientation) for image in images]
    for image in opened:
        image.close()
    return tuple(image.size for image in opened)


def _corrupt_pngs(rgba: np.ndarray) -> dict[str, bytes]:
    good = encode(rgba)
    ihdr_end = 8 + 8 + 13 + 4
    return {
        "bad chunk after the header": good[:ihdr_end] + b"\x00\x00\x00\x04\x01\x02\x03\x04" + good[ihdr_end:],
        "bad header CRC": good[:29] + b"\xde\xad\xbe\xef" + good[33:],
        "truncated header": good[:20],
        "truncated data": good[: len(good) // 2],
        "garbage data": good[:ihdr_end] + bytes(range(256)) * 4,
    }


def test_decode_errors_quote_no_bytes_and_repeat_exactly(rgba: np.ndarray) -> None:
    for kind, data in _corrupt_pngs(rgba).items():
        messages = []
        for _ in range(2):
            with pytest.raises(ImageDecodeError) as caught:
                decode_rgba(data, "shot")
            messages.append(str(caught.value))
        assert messages[0] == messages[1], kind
        assert messages[0].startswith(f"shot: cannot decode {len(data)} bytes of PNG"), kind
        assert not re.search(r"\bb['\"]|0x[0-9a-fA-F]{6}", messages[0]), (kind, messages[0])


def test_exception_text_loses_addresses_and_bytes() -> None:
    from PIL import UnidentifiedImageError

    from compare.imaging.decode import describe_error

    where = io.BytesIO(b"")
    assert describe_error(UnidentifiedImageError(f"cannot identify image file {where!r}")) == "unreadable header"
    assert describe_error(SyntaxError("broken PNG file (chunk b'\\x00it\\'s')")) == (
        "SyntaxError: broken PNG file (chunk b'...')"
    )
    assert describe_error(ValueError(f"bad {object()!r} here")) == "ValueError: bad <object object> here"
    assert describe_error(OSError()) == "OSError"


# A JPEG's decoding work is bounded by its scans, counted as libjpeg finds them.

TOO_MANY = r"cannot decode \d+ bytes of JPEG: a JPEG of more than 500 scans"


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker code, start, end) of each segment of a JPEG Pillow wrote, SOI and EOI aside: a scan
    is its SOS segment and entropy-coded data."""
    segments, position = [], 2
    while data[position + 1] != 0xD9:
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if data[position + 1] == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end).start()
        segments.append((data[position + 1], position, end))
        position = end
    return segments


def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan of a JPEG Pillow wrote."""
    return [(start, end) for code, start, end in _segments(data) if code == 0xDA]


FLAT = Image.new("RGB", (512, 512), (200, 120, 40))


def progressive_jpeg(copies: int, image: Image.Image = FLAT, **params) -> bytes:
    """A progressive JPEG of ``image`` whose last scan (for a flat image a luma AC refinement of a
    dozen bytes that still costs a pass over every block) is repeated ``copies`` times more."""
    data = encode(image, "JPEG", progressive=True, quality=90, **params)
    start, end = _scans(data)[-1]
    return data[:end] + data[start:end] * copies + data[end:]


def test_a_progressive_jpeg_of_too_many_scans_errors_before_decoding() -> None:
    assert len(_scans(progressive_jpeg(image_module.MAX_JPEG_SCANS - 10))) == image_module.MAX_JPEG_SCANS
    decode_rgba(progressive_jpeg(image_module.MAX_JPEG_SCANS - 10))  # at the limit: decoded
    hostile = progressive_jpeg(10_000)  # 10,010 scans, 140 KB
    with pytest.raises(ImageDecodeError, match=TOO_MANY):
        open_image(hostile, "before")


def sequential_jpeg(scans: int) -> bytes:
    """A sequential (baseline) JPEG whose first scan holds its luma alone, ``scans`` times: libjpeg
    then keeps every block for the scans to come, and each scan, of 4 bytes of data, costs a pass
    over the luma's blocks."""
    data = encode(FLAT, "JPEG", quality=90, subsampling=0)
    first = _scans(data)[0][0]
    luma = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(4)  # component 1, Ss 0 Se 63
    return data[:first] + luma * scans + b"\xff\xd9"


def test_a_sequential_jpeg_of_too_many_scans_errors_before_decoding() -> None:
    at_limit = sequential_jpeg(image_module.MAX_JPEG_SCANS)
    assert "progressive" not in Image.open(io.BytesIO(at_limit)).info
    assert decode_rgba(at_limit).shape == (512, 512, 4)  # decoded
    with pytest.raises(ImageDecodeError, match=TOO_MANY):
        open_image(sequential_jpeg(image_module.MAX_JPEG_SCANS + 1), "before")


SKIPPED = {"a byte": b"\x00", "bytes other than 0xFF": b"junk", "fill bytes": b"\xff\xff",
           "a stuffed zero": b"\xff\x00", "a restart marker": b"\xff\xd3"}
"""What libjpeg passes over between two segments (and Pillow's header parse too)."""


@pytest.mark.parametrize("junk", SKIPPED.values(), ids=SKIPPED)
def test_what_libjpeg_passes_over_between_segments_hides_no_scan(junk: bytes) -> None:
    hostile = progressive_jpeg(10_000)
    after_app0 = _segments(hostile)[0][2]

    with pytest.raises(ImageDecodeError, match=TOO_MANY):
        open_image(hostile[:after_app0] + junk + hostile[after_app0:], "before")


def test_a_marker_libjpeg_reads_no_segment_of_takes_no_length() -> None:
    # At a restart, libjpeg passes over a marker code it does not know (jpeg_resync_to_restart)
    # and decodes the scans after it: what follows that code is no segment's length.
    blocks = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((128, 128), Image.Resampling.NEAREST)

    def unknown_code_at_a_restart(copies: int) -> bytes:
        data = progressive_jpeg(copies, image, restart_marker_rows=1)
        restart = re.compile(rb"\xff[\xd0-\xd7]").search(data, _scans(data)[0][0]).start()
        return data[:restart] + b"\xff\x05\xff\xff" + data[restart + 2 :]

    sound = progressive_jpeg(0, image, restart_marker_rows=1)
    reference = np.asarray(Image.open(io.BytesIO(sound)).convert("RGB"), dtype=np.int16)

    def far_off(jpeg: bytes) -> int:
        pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.int16)
        return int(np.count_nonzero(np.abs(pixels - reference).max(axis=2) > 40))

    first_scan_only = sound[: _scans(sound)[1][0]] + b"\xff\xd9"
    assert far_off(unknown_code_at_a_restart(0)) < far_off(first_scan_only) // 2  # the scans after it decoded

    hostile = unknown_code_at_a_restart(600)
    assert len(hostile) - hostile.index(b"\xff\x05\xff\xff") < 0xFFFF  # its "length" would pass over them all
    with pytest.raises(ImageDecodeError, match=TOO_MANY):
        open_image(hostile, "before")


_TOKEN = st.one_of(
    st.integers(0, 0xFE).map(lambda byte: bytes([byte])),
    st.sampled_from([b"\xff\x00", b"\xff\x01", *(bytes([0xFF, code]) for code in range(0xD0, 0xD8))]),
)
JUNK = st.builds(lambda tokens, fill: b"".join(tokens) + b"\xff" * fill,
                 st.lists(_TOKEN, max_size=6), st.integers(0, 3))
"""Bytes libjpeg passes over before a marker: bytes other than 0xFF, stuffed zeros, markers
without a segment (TEM, RSTn), then fill bytes."""

SMALL = progressive_jpeg(30, Image.new("RGB", (16, 16), (200, 120, 40)))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_junk_between_segments_leaves_the_count_as_it_was(data: st.DataObject) -> None:
    starts = [start for _, start, _ in _segments(SMALL)] + [len(SMALL) - 2]  # EOI's too
    junky = SMALL
    for start in sorted(data.draw(st.lists(st.sampled_from(starts), unique=True)), reverse=True):
        junky = junky[:start] + data.draw(JUNK) + junky[start:]

    assert image_module._jpeg_scans(junky, 1000) == image_module._jpeg_scans(SMALL, 1000) == len(_scans(SMALL))


def test_a_jpeg_of_more_segments_than_any_encoder_writes_is_refused_before_it_is_walked_through() -> None:
    # Millions of empty comments would cost the scan count seconds; a real JPEG has a few dozen.
    comment = b"\xff\xfe\x00\x02"
    at_bound = SMALL[:2] + comment * (image_module.MAX_JPEG_SEGMENTS - 1000) + SMALL[2:]
    assert image_module._jpeg_scans(at_bound, 1000) == len(_scans(SMALL))
    decode_rgba(at_bound)
    past = SMALL[:2] + comment * image_module.MAX_JPEG_SEGMENTS + SMALL[2:]
    with pytest.raises(ImageError, match="a JPEG of more than 100,000 segments"):
        open_image(past, "before")


def _grey_png(depth: int, samples: list[int], key: int) -> bytes:
    """A one-row grey PNG of ``depth`` bits holding ``samples``, with tRNS key ``key``."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    bits = "".join(format(sample, f"0{depth}b") for sample in samples)
    row = int(bits.ljust(-(-len(bits) // 8) * 8, "0"), 2).to_bytes(-(-len(bits) // 8), "big")
    header = len(samples).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([depth, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tRNS", key.to_bytes(2, "big"))
            + chunk(b"IDAT", zlib.compress(b"\x00" + row)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("depth", "samples", "key"), [
    (1, [1, 0, 1, 0], 1), (1, [1, 0, 1, 0], 0), (2, [0, 1, 2, 3], 3), (2, [0, 1, 2, 3], 1), (4, [0, 15, 5, 10], 15),
])
def test_a_grey_key_of_fewer_than_8_bits_makes_its_pixels_transparent(depth, samples, key) -> None:
    # As the PNG specification and pngjs have it: the key is compared at the image's own depth.
    alpha = decode_rgba(_grey_png(depth, samples, key), "image")[..., 3].ravel().tolist()
    assert alpha == [0 if sample == key else 255 for sample in samples]
