"""A PNG the fast decoder reads is sized from its chunks, without Pillow's header parse: the
outcome (pixels, or the kind of error) must be what the Pillow path gives, whatever chunks
precede the image data."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from compare import ImageError
from compare.engine.budget import DECODE_BYTES_PER_PIXEL, FAST_PNG_BYTES_PER_PIXEL, DecodeCost, decode_cost
from compare.imaging import decode as image_module
from compare.imaging import png as png_module
from compare.imaging.decode import decode_rgba, open_image
from compare.imaging.png import MAX_PNG_CHUNKS, read_chunks

pytestmark = pytest.mark.unit


def _png(width: int = 6, height: int = 5) -> bytes:
    rng = np.random.default_rng(width * 31 + height)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA").save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, body: bytes, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind)) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _outcome(data: bytes, fast: bool) -> tuple[str, bytes | str]:
    saved = image_module.FAST_PNG_DECODER
    image_module.FAST_PNG_DECODER = fast
    try:
        return "pixels", decode_rgba(data, "shot").tobytes()
    except ImageError as exc:
        return "error", type(exc).__name__
    finally:
        image_module.FAST_PNG_DECODER = saved


CHUNK_KINDS = [b"sRGB", b"gAMA", b"pHYs", b"tEXt", b"iCCP", b"zTXt", b"abcd", b"\x01\x02\x03\x04", b"tRNS"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CHUNK_KINDS), st.binary(max_size=12), st.booleans()), max_size=3),
       st.booleans())
def test_chunks_before_the_image_data_give_the_pillow_paths_outcome(chunks, bad_header_crc) -> None:
    png = _png()
    header_end = 8 + 25
    head = bytearray(png[:header_end])
    if bad_header_crc:
        head[-1] ^= 1
    data = bytes(head) + b"".join(_chunk(k, b, ok) for k, b, ok in chunks) + png[header_end:]
    assert _outcome(data, fast=True) == _outcome(data, fast=False)


def test_a_second_header_leaves_the_size_to_pillow() -> None:
    # The first IHDR says 1x1, a second one (its checksum right) the size of the image data:
    # the size is not taken from the first, so the pixel limit sees the size Pillow decodes.
    png = _png(30, 20)
    small = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
    data = png[:8] + small + png[8:]
    assert read_chunks(data).size is None
    opened = open_image(data)
    assert opened.size == (30, 20)
    assert opened.rgba().shape == (20, 30, 4)
    assert _outcome(data, fast=True) == _outcome(data, fast=False)


@pytest.mark.usefixtures("fast_decoder")
def test_a_plain_screenshot_png_is_sized_without_pillow(monkeypatch) -> None:
    png = _png(7, 3)
    assert read_chunks(png).plain and read_chunks(png).size == (7, 3)

    def refused(*_args, **_kwargs):
        raise AssertionError("Pillow parsed the header")

    monkeypatch.setattr(image_module, "open_allowed", refused)
    opened = open_image(png)
    assert opened.size == (7, 3)
    assert opened.rgba().shape == (3, 7, 4)


def test_a_header_pillow_would_refuse_is_left_to_pillow() -> None:
    png = _png()
    broken = png[:29] + b"\xde\xad\xbe\xef" + png[33:]  # the IHDR's checksum
    assert not read_chunks(broken).plain
    assert not read_chunks(png[:33] + _chunk(b"zTXt", b"k\x00\x00x") + png[33:]).plain  # not a plain chunk


def test_pillows_bomb_limit_applies_to_a_size_read_without_it(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(image_module.ImageTooLarge, match="decompression-bomb guard"):
        open_image(_png(6, 5))


@pytest.fixture
def walked(monkeypatch) -> list[int]:
    """The chunks each walk over a PNG's chunks stepped through, one entry a walk."""
    steps: list[int] = []
    chunks = png_module._chunks

    def counted(data):
        steps.append(0)
        for chunk in chunks(data):
            steps[-1] += 1
            yield chunk

    monkeypatch.setattr(png_module, "_chunks", counted)
    return steps


@pytest.mark.usefixtures("fast_decoder")
@pytest.mark.parametrize("text", [False, True], ids=["plain", "text-before-the-image-data"])
def test_a_pngs_chunks_are_walked_once_for_its_cost_and_once_for_its_pixels(walked, text) -> None:
    # A text chunk before the image data leaves the header to Pillow, the pixels to Wuffs.
    png = _png(30, 20)
    if text:
        png = png[:33] + _chunk(b"tEXt", b"k\x00v") + png[33:]

    per_pixel = DECODE_BYTES_PER_PIXEL["PNG"] if text else FAST_PNG_BYTES_PER_PIXEL
    assert decode_cost(png) == DecodeCost((30, 20), 30 * 20 * per_pixel)
    assert len(walked) == 1

    decode_rgba(png)
    assert len(walked) == 2


def _with_empty_chunks(png: bytes, count: int) -> bytes:
    """``png`` with ``count`` empty private chunks before its IEND."""
    end = png.rindex(b"IEND") - 4
    return png[:end] + _chunk(b"zzZz", b"") * count + png[end:]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "pillow"])
def test_a_png_of_more_chunks_than_any_encoder_writes_is_refused_before_it_is_walked_through(
    walked, fast: bool, monkeypatch
) -> None:
    # Each chunk costs a step in Python however few bytes it holds (Pillow's steps cost more):
    # millions of empty ones would cost seconds. A plain PNG has 3 chunks: IHDR, IDAT and IEND.
    monkeypatch.setattr(image_module, "FAST_PNG_DECODER", fast)
    png = _png()
    at_bound = _with_empty_chunks(png, MAX_PNG_CHUNKS - 3)
    assert np.array_equal(decode_rgba(at_bound), decode_rgba(png))

    def refused(*_args, **_kwargs):
        raise AssertionError("Pillow parsed the header")

    monkeypatch.setattr(image_module, "open_allowed", refused)
    walked.clear()
    with pytest.raises(image_module.ImageDecodeError, match="a PNG of more than 100,000 chunks"):
        open_image(_with_empty_chunks(png, 3 * MAX_PNG_CHUNKS), "before")
    assert walked == [MAX_PNG_CHUNKS + 1]
    with pytest.raises(image_module.ImageDecodeError, match="a PNG of more than 100,000 chunks"):
        open_image(_with_empty_chunks(png, MAX_PNG_CHUNKS - 2), "before")
    assert decode_cost(_with_empty_chunks(png, MAX_PNG_CHUNKS - 2)) is None
