"""The fast PNG decoder: exactly Pillow's pixels for every colour type, bit depth and row filter it
takes, None for what it leaves; and the mask encoder."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from compare import ImageDecodeError, diff_images
from compare.imaging import decode as image_module
from compare.imaging.decode import decode_rgba
from compare.imaging.png import decode_png, encode_mask, with_adler32_made_right

from .compiled import need_fast_decoder

pytestmark = pytest.mark.unit

needs_fast_decoder = pytest.mark.usefixtures("fast_decoder")

NONE, SUB, UP, AVERAGE, PAETH = range(5)


def _filter_row(kind: int, row: np.ndarray, above: np.ndarray, channels: int) -> np.ndarray:
    """Filter one row of bytes the way a PNG encoder does (``above`` is zeros for the first row)."""
    x, b = row.astype(np.int16), above.astype(np.int16)
    a = np.concatenate([np.zeros(channels, np.int16), x[:-channels]])
    c = np.concatenate([np.zeros(channels, np.int16), b[:-channels]])
    if kind == NONE:
        predicted = np.zeros_like(x)
    elif kind == SUB:
        predicted = a
    elif kind == UP:
        predicted = b
    elif kind == AVERAGE:
        predicted = (a + b) // 2
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        predicted = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - predicted) % 256).astype(np.uint8)


def _chunk(kind: bytes, body: bytes, *, crc_flip: int = 0) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind)) ^ crc_flip
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(
    pixels: np.ndarray,
    filters: list[int],
    *,
    idat_parts: int = 1,
    extra_chunks: tuple[tuple[bytes, bytes], ...] = (),
    interlace: int = 0,
    stream_tail: bytes = b"",
) -> bytes:
    """An 8-bit RGB (HxWx3) or RGBA (HxWx4) PNG whose row ``y`` uses filter ``filters[y]``."""
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    above = np.zeros(width * channels, np.uint8)
    body = bytearray()
    for y in range(height):
        body.append(filters[y])
        body += _filter_row(filters[y], rows[y], above, channels).tobytes()
        above = rows[y]
    stream = zlib.compress(bytes(body) + stream_tail, 6)
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, interlace)
    cut = -(-len(stream) // idat_parts)
    idats = [_chunk(b"IDAT", stream[i : i + cut]) for i in range(0, len(stream), cut)]
    extras = [_chunk(kind, body) for kind, body in extra_chunks]
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), *extras, *idats, _chunk(b"IEND", b"")]
    )


def pillows_rgba(png: bytes) -> np.ndarray:
    """What snapcompare decodes ``png`` to through Pillow alone (16-bit grey scaled, not clipped)."""
    return decode_rgba(Image.open(io.BytesIO(png)))


def _screen_like(rng: np.random.Generator, height: int, width: int, channels: int) -> np.ndarray:
    """Flat bands with noisy patches: rows where every filter choice matters."""
    pixels = np.repeat(rng.integers(0, 256, (height, 1, channels), dtype=np.uint8), width, axis=1)
    patch = rng.integers(0, 256, (height // 2, width // 2, channels), dtype=np.uint8)
    pixels[: height // 2, : width // 2] = patch
    return pixels


@needs_fast_decoder
@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(1, 24),
    channels=st.sampled_from([3, 4]),
    filters=st.lists(st.integers(0, 4), min_size=1, max_size=24),
    idat_parts=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_filter_sequence_decodes_to_pillows_pixels(
    width: int, channels: int, filters: list[int], idat_parts: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(filters), width, channels), dtype=np.uint8)
    png = encode_png(pixels, filters, idat_parts=idat_parts)

    decoded = decode_png(png)

    assert decoded is not None
    assert decoded.shape == (len(filters), width, 4) and decoded.flags.c_contiguous
    assert np.array_equal(decoded, pillows_rgba(png))


@needs_fast_decoder
@pytest.mark.parametrize(
    "pattern",
    [
        [UP, PAETH, PAETH, UP, UP, AVERAGE, SUB, PAETH, UP, NONE, UP, PAETH],
        [PAETH, UP] * 150,  # runs that depend on one another through Up rows, level after level
        [AVERAGE] * 300,
    ],
    ids=["mixed", "chained-runs", "all-average"],
)
@pytest.mark.parametrize("channels", [3, 4], ids=["rgb", "rgba"])
def test_dependent_rows_decode_to_pillows_pixels(pattern: list[int], channels: int) -> None:
    rng = np.random.default_rng(len(pattern) + channels)
    filters = (pattern * (300 // len(pattern) + 1))[:300]
    pixels = _screen_like(rng, 300, 97, channels)
    png = encode_png(pixels, filters)

    assert np.array_equal(decode_png(png), pillows_rgba(png))


@needs_fast_decoder
def test_diff_through_the_fast_decoder_equals_diff_through_pillow() -> None:
    rng = np.random.default_rng(3)
    before = _screen_like(rng, 120, 80, 4)
    after = before.copy()
    after[40:50, 10:30] = (255, 0, 0, 255)
    filters = list(rng.integers(0, 5, 120))

    fast = diff_images(encode_png(before, filters), encode_png(after, filters[::-1]))
    reference = diff_images(Image.fromarray(before), Image.fromarray(after))

    assert fast.changed_pixels == reference.changed_pixels == 200
    assert np.array_equal(fast.mask, reference.mask)


COMBINATIONS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4),
                (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)]  # every (colour type, bit depth) PNG allows
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _packed_rows(samples: np.ndarray, depth: int) -> np.ndarray:
    """Rows of samples (HxN, one per channel value) as PNG bytes of ``depth`` bits."""
    if depth == 16:
        return samples.astype(">u2").view(np.uint8).reshape(samples.shape[0], -1)
    if depth == 8:
        return samples.astype(np.uint8)
    bits = np.unpackbits(samples.astype(np.uint8)[..., None], axis=-1)[..., 8 - depth :]
    return np.packbits(bits.reshape(samples.shape[0], -1), axis=1)


def any_png(colour: int, depth: int, samples: np.ndarray, *, palette: bytes = b"",
            trns: bytes | None = None, interlace: bool = False, actl: bool = False) -> bytes:
    """A PNG of any colour type and bit depth from HxWxC samples, rows unfiltered."""
    height, width = samples.shape[:2]
    passes = [samples[y::dy, x::dx] for x, y, dx, dy in ADAM7] if interlace else [samples]
    stream = b"".join(
        np.hstack(
            [np.zeros((part.shape[0], 1), np.uint8), _packed_rows(part.reshape(part.shape[0], -1), depth)]
        ).tobytes()
        for part in passes if part.size
    )
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlace))
    chunks = [_chunk(b"IHDR", header)]
    if actl:
        chunks.append(_chunk(b"acTL", struct.pack(">II", 1, 0)))
    if palette:
        chunks.append(_chunk(b"PLTE", palette))
    if trns is not None:
        chunks.append(_chunk(b"tRNS", trns))
    chunks += [_chunk(b"IDAT", zlib.compress(stream)), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@st.composite
def pngs(draw) -> tuple[bytes, bool]:
    """(a PNG of any colour type, bit depth, size and interlacing, whether Wuffs may take it)."""
    colour, depth = draw(st.sampled_from(COMBINATIONS))
    height, width = draw(st.integers(1, 19)), draw(st.integers(1, 19))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    entries = draw(st.integers(1, 2**depth)) if colour == 3 else 0
    top = entries if colour == 3 else 2**depth
    samples = rng.integers(0, top, (height, width, CHANNELS[colour]))
    palette = rng.integers(0, 256, 3 * entries, dtype=np.uint8).tobytes()
    trns = None
    if colour in (0, 2, 3) and draw(st.booleans()):
        if colour == 3:
            trns = rng.integers(0, 256, draw(st.integers(1, entries)), dtype=np.uint8).tobytes()
        else:
            key = samples[0, 0]  # a pixel of the key colour at least
            trns = b"".join(int(v).to_bytes(2, "big") for v in key)
    png = any_png(colour, depth, samples, palette=palette, trns=trns, interlace=draw(st.booleans()))
    taken = (colour, depth) != (0, 16) and (trns is None or colour == 3)
    return png, taken


@needs_fast_decoder
@settings(max_examples=300, deadline=None)
@given(case=pngs())
def test_every_colour_type_and_bit_depth_decodes_to_pillows_pixels_or_is_handed_back(case) -> None:
    png, taken = case

    decoded = decode_png(png)

    assert (decoded is not None) == taken
    if decoded is not None:
        assert decoded.flags.c_contiguous
        assert np.array_equal(decoded, pillows_rgba(png))


def _rgb_pixels() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (6, 5, 3), dtype=np.uint8)


def _plain(pixels: np.ndarray, **options) -> bytes:
    return encode_png(pixels, [NONE] * pixels.shape[0], **options)


@needs_fast_decoder
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: any_png(0, 16, p[..., :1].astype(np.uint16) * 257), id="16-bit-grey"),
        pytest.param(lambda p: _plain(p, extra_chunks=((b"tRNS", bytes(6)),)), id="trns-colour-key"),
        pytest.param(lambda p: any_png(2, 8, p, actl=True), id="animated"),
        pytest.param(lambda p: any_png(3, 8, p[..., :1] % 4), id="palette-missing"),
        pytest.param(lambda p: _plain(p)[: len(_plain(p)) // 2], id="truncated"),
        pytest.param(lambda p: _plain(p, stream_tail=b"extra"), id="extra-data"),
        pytest.param(lambda p: encode_png(p, [NONE, SUB, 5, UP, NONE, NONE]), id="bad-filter-type"),
        pytest.param(lambda p: b"GIF89a" + bytes(40), id="not-png"),
    ],
)
def test_pngs_it_does_not_take_are_handed_back(make) -> None:
    assert decode_png(make(_rgb_pixels())) is None


@needs_fast_decoder
def test_a_bad_filter_type_is_reported_by_the_general_decoder() -> None:
    png = encode_png(_rgb_pixels(), [NONE, SUB, 5, UP, NONE, NONE])

    with pytest.raises(ImageDecodeError, match="cannot decode"):
        diff_images(png, png)


def _with_bad_adler(pixels: np.ndarray) -> bytes:
    png = _plain(pixels)
    idat = png.index(b"IDAT")
    length = int.from_bytes(png[idat - 4 : idat], "big")
    stream = png[idat + 4 : idat + 4 + length]
    stream = stream[:-1] + bytes([stream[-1] ^ 0xFF])
    return png[: idat - 4] + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


@needs_fast_decoder
@pytest.mark.parametrize("fast", [True, False], ids=["wuffs", "pillow"])
def test_a_bad_zlib_checksum_is_checked_by_neither_decoder(fast: bool, monkeypatch) -> None:
    pixels = _rgb_pixels()
    png = _with_bad_adler(pixels)
    with pytest.raises(OSError, match="broken data stream"):
        Image.open(io.BytesIO(png)).load()  # Pillow alone refuses it
    monkeypatch.setattr(image_module, "FAST_PNG_DECODER", fast)

    assert np.array_equal(decode_rgba(png)[..., :3], pixels)


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: _plain(p), id="sound"),
    pytest.param(lambda p: _with_bad_adler(p)[:-40], id="truncated"),
    pytest.param(lambda p: _rebuilt(_plain(p), bad_zlib_header), id="bad-zlib-header"),
    pytest.param(lambda p: _rebuilt(_plain(p), lambda chunks: [c for c in chunks if c[0] != b"IDAT"]), id="no-idat"),
])
def test_only_a_checksum_that_is_the_only_fault_is_made_right(make) -> None:
    assert with_adler32_made_right(make(_rgb_pixels())) is None


def test_a_checksum_made_right_leaves_the_rest_as_it_was() -> None:
    sound = encode_png(_rgb_pixels(), [NONE] * 6, idat_parts=3)
    repaired = with_adler32_made_right(_rebuilt(sound, bad_adler))

    assert repaired is not None and pillows_rgba(repaired).tobytes() == pillows_rgba(sound).tobytes()
    assert [kind for kind, _ in _chunks(repaired)] == [b"IHDR", b"IDAT", b"IEND"]


# The same bytes, the same result, whichever decoder runs.


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, whole chunk) of each chunk of ``png``."""
    out, position = [], 8
    while position < len(png):
        length, kind = struct.unpack_from(">I4s", png, position)
        out.append((kind, png[position : position + 12 + length]))
        position += 12 + length
    return out


def _rebuilt(png: bytes, change) -> bytes:
    """``png`` with its chunk list changed by ``change``: a list of (kind, chunk) to a new one."""
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunk for _, chunk in change(_chunks(png)))


def trns_after_idat(chunks):
    """tRNS moved to just before IEND."""
    trns = [item for item in chunks if item[0] == b"tRNS"]
    rest = [item for item in chunks if item[0] != b"tRNS"]
    return rest[:-1] + trns + rest[-1:]


AFTER_THE_IMAGE_DATA = {
    "pHYs of 1 byte": _chunk(b"pHYs", b"\x00"),
    "gAMA of 1 byte": _chunk(b"gAMA", b"\x00"),
    "stray fdAT": _chunk(b"fdAT", b"\x00\x00\x00\x01xxxx"),
    "length past the end": struct.pack(">I", 1 << 30) + b"tEXt" + b"xx",
}
"""Chunks Pillow cannot read, put after the image data: browsers and Wuffs read no chunk there."""


def _then(tail: bytes):
    """A change of `_rebuilt` putting ``tail`` just before IEND."""
    return lambda chunks: [*chunks[:-1], (b"", tail), *chunks[-1:]]


damaged_chunk_after_idat = _then(AFTER_THE_IMAGE_DATA["pHYs of 1 byte"])


def bad_adler(chunks):
    """The zlib stream's Adler-32 damaged (the last IDAT's CRC-32 made right again)."""
    last = max(index for index, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    kind, chunk = chunks[last]
    return [*chunks[:last], (kind, _chunk(kind, chunk[8:-5] + bytes([chunk[-5] ^ 0xFF]))), *chunks[last + 1 :]]


def bad_zlib_header(chunks):
    """The zlib stream's header damaged (the first IDAT's CRC-32 made right again)."""
    first = next(index for index, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    kind, chunk = chunks[first]
    return [*chunks[:first], (kind, _chunk(kind, bytes([chunk[8] ^ 0x01]) + chunk[9:-4])), *chunks[first + 1 :]]


def bad_idat_crc(chunks):
    """The IDAT's CRC-32 damaged."""
    return [(kind, chunk[:-1] + bytes([chunk[-1] ^ 0xFF]) if kind == b"IDAT" else chunk) for kind, chunk in chunks]


def _decoded(png: bytes, fast: bool, monkeypatch) -> np.ndarray | str:
    """Pixels through the path ``fast`` picks, or the decode error's kind."""
    monkeypatch.setattr(image_module, "FAST_PNG_DECODER", fast)
    try:
        return decode_rgba(png)
    except ImageDecodeError:
        return "refused"


def _variants() -> list:
    """Every colour type and bit depth, interlaced or not: as made, then damaged or out of order."""
    rng = np.random.default_rng(24)
    cases = []
    for colour, depth in COMBINATIONS:
        for interlace in (False, True):
            entries = min(2**depth, 5) if colour == 3 else 0
            samples = rng.integers(0, entries if colour == 3 else 2**depth, (7, 13, CHANNELS[colour]))
            palette = rng.integers(0, 256, 3 * entries, dtype=np.uint8).tobytes()
            png = any_png(colour, depth, samples, palette=palette, interlace=interlace)
            made = {"as made": png, "bad Adler-32": _rebuilt(png, bad_adler),
                    "bad IDAT CRC": _rebuilt(png, bad_idat_crc)}
            made["damaged chunk after IDAT"] = _rebuilt(png, damaged_chunk_after_idat)
            if colour in (0, 2, 3):
                key = b"".join(int(v).to_bytes(2, "big") for v in samples[0, 0])
                trns = bytes([0, 128, 255, 7, 64][:entries]) if colour == 3 else key
                late = any_png(colour, depth, samples, palette=palette, trns=trns, interlace=interlace)
                made["tRNS after IDAT"] = _rebuilt(late, trns_after_idat)
                made["tRNS after IDAT, then a damaged chunk"] = _rebuilt(
                    late, lambda chunks: damaged_chunk_after_idat(trns_after_idat(chunks)))
                made["a damaged chunk, then tRNS"] = _rebuilt(
                    late, lambda chunks: trns_after_idat(damaged_chunk_after_idat(chunks)))
            mode = "adam7" if interlace else "flat"
            cases += [pytest.param(data, id=f"{colour}-{depth}-{mode}-{what}") for what, data in made.items()]
    return cases


@needs_fast_decoder
@pytest.mark.parametrize("png", _variants())
def test_the_same_bytes_decode_the_same_whichever_decoder_runs(png: bytes, monkeypatch) -> None:
    fast, pillow = _decoded(png, True, monkeypatch), _decoded(png, False, monkeypatch)

    if isinstance(pillow, str):
        assert fast == pillow
    else:
        assert not isinstance(fast, str) and np.array_equal(fast, pillow)


@pytest.mark.parametrize("fast", [True, False], ids=["wuffs", "pillow"])
@pytest.mark.parametrize("tail", AFTER_THE_IMAGE_DATA.values(), ids=AFTER_THE_IMAGE_DATA)
def test_a_chunk_pillow_cannot_read_after_the_image_data_is_left_unread(tail: bytes, fast: bool, monkeypatch) -> None:
    if fast:
        need_fast_decoder()
    pixels = _rgb_pixels()

    decoded = _decoded(_rebuilt(_plain(pixels), _then(tail)), fast, monkeypatch)

    assert not isinstance(decoded, str) and np.array_equal(decoded[..., :3], pixels)


def _cut_stream(chunks):
    """The zlib stream cut in half (the IDAT's CRC-32 right)."""
    return [(kind, _chunk(kind, chunk[8 : 8 + (len(chunk) - 12) // 2]) if kind == b"IDAT" else chunk)
            for kind, chunk in chunks]


@pytest.mark.parametrize("fast", [True, False], ids=["wuffs", "pillow"])
@pytest.mark.parametrize("damage", [_cut_stream, bad_zlib_header], ids=["cut-stream", "bad-zlib-header"])
def test_damaged_image_data_is_refused_whatever_chunk_follows(damage, fast: bool, monkeypatch) -> None:
    if fast:
        need_fast_decoder()
    png = _rebuilt(_rebuilt(_plain(_rgb_pixels()), damage), damaged_chunk_after_idat)

    assert _decoded(png, fast, monkeypatch) == "refused"


@needs_fast_decoder
@pytest.mark.parametrize("data", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_buffers_other_than_bytes_decode(data) -> None:
    png = _plain(_rgb_pixels())

    assert np.array_equal(decode_png(data(png)), pillows_rgba(png))


@needs_fast_decoder
def test_ancillary_chunks_are_skipped() -> None:
    pixels = _rgb_pixels()
    extras = ((b"gAMA", struct.pack(">I", 45455)), (b"tEXt", b"k\0v"))
    png = encode_png(pixels, [PAETH] * 6, extra_chunks=extras)

    assert np.array_equal(decode_png(png), pillows_rgba(png))


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    density=st.floats(0, 1),
)
@example(height=3, width=9, seed=0, density=0.0)  # nothing changed: the all-zero mask
@example(height=105, width=300, seed=1, density=0.5)  # 4,095 bytes of rows: stored
@example(height=106, width=300, seed=1, density=0.5)  # 4,134 bytes of rows: compressed
def test_mask_round_trips_through_pillow(
    height: int, width: int, seed: int, density: float
) -> None:
    mask = np.random.default_rng(seed).random((height, width)) < density

    png = encode_mask(mask)
    decoded = Image.open(io.BytesIO(png))

    assert (decoded.mode, decoded.size) == ("1", (width, height))
    assert np.array_equal(np.asarray(decoded.convert("L")) == 255, mask)
    length = struct.unpack_from(">I", png, 33)[0]
    zlib.decompress(png[41 : 41 + length])  # a whole zlib stream with a right Adler-32


@pytest.mark.parametrize("height, width", [
    (1, 1), (1, 8 * 65535), (1, 8 * 65535 + 1), (2, 8 * 65535), (37, 13), (12000, 1280),
])
def test_an_all_zero_mask_is_a_valid_png_of_zeros(height: int, width: int) -> None:
    # Rows of 65,536 bytes fill whole runs of the repeated deflate piece exactly, or one more.
    png = encode_mask(np.zeros((height, width), dtype=bool))

    length, kind = struct.unpack_from(">I4s", png, 33)  # the chunk after the signature and IHDR
    assert kind == b"IDAT"
    data = png[41 : 41 + length]
    assert struct.unpack_from(">I", png, 41 + length)[0] == zlib.crc32(data, zlib.crc32(b"IDAT"))
    # zlib checks the stream's Adler-32 as it inflates.
    assert zlib.decompress(data) == bytes(height * (-(-width // 8) + 1))
    decoded = Image.open(io.BytesIO(png))
    assert (decoded.mode, decoded.size) == ("1", (width, height))
    assert not np.asarray(decoded.convert("L")).any()


@needs_fast_decoder
def test_threads_decode_at_once_each_getting_its_own_pixels() -> None:
    # A Wuffs decoder is not thread-safe; each thread must get its own.
    rng = np.random.default_rng(11)
    images = [_screen_like(rng, 200 + 7 * i, 150, 3 + i % 2) for i in range(16)]
    pngs = [encode_png(pixels, [i % 5] * pixels.shape[0]) for i, pixels in enumerate(images)]

    with ThreadPoolExecutor(4) as pool:
        decoded = list(pool.map(decode_png, pngs * 3))

    for png, pixels in zip(pngs * 3, decoded, strict=True):
        assert np.array_equal(pixels, pillows_rgba(png))
