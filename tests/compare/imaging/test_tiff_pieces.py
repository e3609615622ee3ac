"""A TIFF's strips and tiles are counted from its IFD before Pillow reads it: Pillow holds a few
hundred bytes for each and decodes an uncompressed one a strip or tile at a time in Python."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from compare.engine.budget import decode_cost
from compare.formats import MAX_TIFF_ENTRIES, MAX_TIFF_PIECES
from compare.imaging.decode import ImageDecodeError, decode_rgba, open_image
from compare.inputs.manifest import manifest_from_folder

pytestmark = pytest.mark.unit

SHORT, LONG = 3, 4
_CODES = {SHORT: "H", LONG: "I"}
_MAGIC = {("<", False): b"II*\x00", (">", False): b"MM\x00*", ("<", True): b"II+\x00", (">", True): b"MM\x00+"}


def _tiff(pixels: np.ndarray, *, rows: int = 1, tile: int | None = None, extra: int = 0,
          order: str = "<", big: bool = False) -> bytes:
    """An uncompressed 8-bit TIFF (BigTIFF with ``big``) of ``pixels``: HxW grey, or HxWxN with a
    plane for each sample; in strips of ``rows`` rows or ``tile`` x ``tile`` tiles, listing
    ``extra`` pieces more than it has (each the first again)."""
    planes = [pixels] if pixels.ndim == 2 else [pixels[..., k] for k in range(pixels.shape[2])]
    height, width = pixels.shape[:2]
    pieces = []
    for plane in planes:
        if tile is None:
            pieces += [plane[y:y + rows].tobytes() for y in range(0, height, rows)]
        else:
            padded = np.zeros((-(-height // tile) * tile, -(-width // tile) * tile), np.uint8)
            padded[:height, :width] = plane
            pieces += [padded[y:y + tile, x:x + tile].tobytes()
                       for y in range(0, height, tile) for x in range(0, width, tile)]
    pieces += pieces[:1] * extra
    separate = 1 if len(planes) == 1 else 2
    tags = {256: (LONG, [width]), 257: (LONG, [height]), 258: (SHORT, [8] * len(planes)), 259: (SHORT, [1]),
            262: (SHORT, [1 if len(planes) == 1 else 2]), 277: (SHORT, [len(planes)]), 284: (SHORT, [separate])}
    offsets, counts = (273, 279) if tile is None else (324, 325)
    tags[offsets] = (LONG, [0] * len(pieces))
    tags[counts] = (LONG, [len(piece) for piece in pieces])
    tags |= {278: (LONG, [rows])} if tile is None else {322: (LONG, [tile]), 323: (LONG, [tile])}

    def packed(kind: int, values: list[int]) -> bytes:
        return struct.pack(order + _CODES[kind] * len(values), *values)

    number, field = ("Q", 8) if big else ("I", 4)  # counts and offsets; bytes of a value in an entry
    head = _MAGIC[order, big] + (struct.pack(order + "HHQ", 8, 0, 16) if big else struct.pack(order + "I", 8))
    arrays_at = len(head) + struct.calcsize(order + ("Q" if big else "H")) + len(tags) * (4 + 2 * field) + field
    arrays = sum(len(body) for body in (packed(*tag) for tag in tags.values()) if len(body) > field)
    tags[offsets] = (LONG, list(arrays_at + arrays + np.cumsum([0] + [len(piece) for piece in pieces[:-1]])))
    ifd, tail = struct.pack(order + ("Q" if big else "H"), len(tags)), b""
    for tag, (kind, values) in sorted(tags.items()):
        body = packed(kind, [int(value) for value in values])
        value = body.ljust(field, b"\x00")
        if len(body) > field:
            value, tail = struct.pack(order + number, arrays_at + len(tail)), tail + body
        ifd += struct.pack(order + "HH" + number, tag, kind, len(values)) + value
    return head + ifd + bytes(field) + tail + b"".join(pieces)


def _grey(height: int, width: int, samples: int = 1) -> np.ndarray:
    shape = (height, width) if samples == 1 else (height, width, samples)
    return np.random.default_rng(height * 7 + width).integers(0, 256, shape, dtype=np.uint8)


def _pillows(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


HEADERS = pytest.mark.parametrize(("order", "big"), [("<", False), (">", False), ("<", True)],
                                  ids=["little-endian", "big-endian", "bigtiff"])  # Pillow reads no big-endian BigTIFF


@HEADERS
@pytest.mark.parametrize(("pixels", "layout", "pieces"), [
    (_grey(10, 4), {}, 10),
    (_grey(10, 4), {"rows": 4}, 3),
    (_grey(20, 20), {"tile": 16}, 4),
    (_grey(5, 6, 3), {}, 15),
    (_grey(20, 20, 3), {"tile": 16}, 12),
], ids=["a-strip-a-row", "strips-of-4-rows", "tiles", "a-plane-a-sample", "tiles-a-plane-a-sample"])
def test_a_tiff_of_the_strips_or_tiles_its_size_needs_decodes_exactly(pixels, layout, pieces, order, big) -> None:
    data = _tiff(pixels, order=order, big=big, **layout)
    assert len(_pillows(data).tile) == pieces

    decoded = decode_rgba(data)

    assert np.array_equal(decoded, np.asarray(_pillows(data).convert("RGBA")))
    assert np.array_equal(decoded[..., :3], pixels if pixels.ndim == 3 else np.dstack([pixels] * 3))


@pytest.fixture
def no_pillow(monkeypatch) -> None:
    """Pillow's parse of a header fails the test."""
    def refused(*_args, **_kwargs):
        raise AssertionError("Pillow parsed the header")

    monkeypatch.setattr(Image, "open", refused)


@HEADERS
@pytest.mark.parametrize(("pixels", "layout", "message"), [
    (_grey(10, 4), {}, "a TIFF of 11 strips where its 4x10 size needs 10 at most"),
    (_grey(20, 20), {"tile": 16}, "a TIFF of 5 tiles where its 20x20 size needs 4 at most"),
    (_grey(5, 6, 3), {}, "a TIFF of 16 strips where its 6x5 size needs 15 at most"),
], ids=["strips", "tiles", "a-plane-a-sample"])
@pytest.mark.usefixtures("no_pillow")
def test_a_tiff_of_more_strips_or_tiles_than_its_size_needs_is_refused_before_pillow_reads_it(
    pixels, layout, message, order, big
) -> None:
    # Pillow decodes every piece listed, those past the image's end over it again.
    with pytest.raises(ImageDecodeError, match=message):
        open_image(_tiff(pixels, extra=1, order=order, big=big, **layout), "before")


@pytest.mark.usefixtures("no_pillow")
def test_a_tiff_of_more_strips_than_any_encoder_writes_is_refused_before_pillow_reads_it() -> None:
    # One-row strips of one pixel: millions of them cost Pillow gigabytes and a minute.
    past = _tiff(_grey(MAX_TIFF_PIECES + 1, 1))

    with pytest.raises(ImageDecodeError, match="a TIFF of 65,537 strips, more than 65,536"):
        open_image(past, "before")
    assert decode_cost(past) is None


def test_a_tiff_of_as_many_strips_as_may_be_decodes_exactly() -> None:
    pixels = _grey(MAX_TIFF_PIECES, 1)
    assert np.array_equal(decode_rgba(_tiff(pixels))[..., 0], pixels)


@pytest.mark.usefixtures("no_pillow")
def test_a_bigtiff_of_more_entries_than_a_tiff_may_have_is_refused_before_pillow_reads_it() -> None:
    # A classic TIFF's IFD holds 65,535 entries at most; Pillow reads each of a BigTIFF's in Python.
    entries = MAX_TIFF_ENTRIES + 1
    header = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16)
    ifd = struct.pack("<Q", entries) + struct.pack("<HHQQ", 256, 16, 1, 1) * entries
    with pytest.raises(ImageDecodeError, match="a TIFF whose first IFD has 65,536 entries, more than 65,535"):
        open_image(header + ifd, "before")


@pytest.mark.usefixtures("no_pillow")
def test_a_folder_s_manifest_leaves_such_a_tiff_unsized_without_pillow(tmp_path) -> None:
    # A TIFF under a name of another format: the bytes, not the name, say what it is.
    (tmp_path / "strips.png").write_bytes(_tiff(_grey(MAX_TIFF_PIECES + 1, 1)))
    entry = manifest_from_folder(tmp_path).manifest.images["strips.png"]
    assert (entry.width, entry.height) == (None, None)


@pytest.mark.parametrize("offset", [2**63, 2**64 - 1, 10**6])
def test_a_tiff_whose_first_ifd_lies_past_its_end_is_refused_as_undecodable(offset, tmp_path) -> None:
    data = b"II+\x00" + struct.pack("<HHQ", 8, 0, offset)
    with pytest.raises(ImageDecodeError, match="a TIFF whose first IFD lies past its end"):
        open_image(data, "before")
    (tmp_path / "far.png").write_bytes(data)
    entry = manifest_from_folder(tmp_path).manifest.images["far.png"]
    assert (entry.width, entry.height) == (None, None)
