"""Image inputs for the pixel diff: header-only sizes, decoding to RGBA arrays, image errors."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from ..formats import SUPPORTED_FORMATS, open_allowed, sniff_format
from .png import AVAILABLE as _FAST_PNG_AVAILABLE
from .png import MAX_PNG_CHUNKS, decode_png, read_chunks, with_adler32_made_right

FAST_PNG_DECODER: bool = _FAST_PNG_AVAILABLE
"""Whether the fast PNG decoder (`compare.imaging.png.decode_png`: Wuffs, compiled at install) was
built, and so is used for the PNGs whose pixels it gives exactly as Pillow does."""

ImageInput = bytes | bytearray | memoryview | Image.Image | np.ndarray
"""Encoded image bytes (PNG, JPEG, WebP...), a PIL image of any mode, or an HxWx4 uint8 array."""

MAX_JPEG_SCANS = 500
"""Scans a JPEG may have, at most: libjpeg-turbo's own limit for untrusted input
(``TJPARAM_SCANLIMIT`` 500, as its fuzzers and ``tjbench -limitscans`` set it). Each scan of a
progressive JPEG, or of a sequential one whose first scan holds some of its components only,
costs a pass over every block of the components it holds however few bytes it has, so the
scans bound the decoding work (encoders write about 10, a single one for most sequential
JPEGs); a JPEG of one scan's work grows with its bytes."""

MAX_JPEG_SEGMENTS = 100_000
"""Segments a JPEG may have, at most (encoders write a few dozen): each costs the scan count a
step, so a file of millions of empty comments would cost seconds before any decoding."""

_JPEG_SEGMENT = re.compile(rb"\xff[\xc0-\xcf\xd9-\xdd\xe0-\xef\xfe]")
"""A marker libjpeg reads a segment's length after (SOFn, DHT, DAC, SOS, DQT, DNL, DRI, APPn,
COM), or EOI: 0xFF and its code. A search passes over what libjpeg passes over before a marker:
bytes other than 0xFF, fill bytes (0xFF), stuffed zeros (0xFF00), markers without a segment
(RSTn, TEM), and the codes it does not know (at a restart it looks past them, elsewhere it
stops there)."""

_ORIENTED = frozenset({"JPEG", "WEBP", "TIFF"})
"""Formats whose EXIF orientation is applied: those that browsers and viewers rotate by it."""

_TURNED_BY_PILLOW = frozenset({"TIFF"})
"""Formats Pillow itself turns upright as their orientation tag says, header size included."""

_T = Image.Transpose
_UPRIGHT = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM, 5: _T.TRANSPOSE,
            6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}
"""What turns an image with each EXIF orientation upright (as ``ImageOps.exif_transpose``)."""
_AS_STORED = {**_UPRIGHT, 6: _T.ROTATE_90, 8: _T.ROTATE_270}
"""The inverse of each of `_UPRIGHT`: what turns an upright image back as it was stored."""

_SIXTEEN_BIT_GREY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
"""Modes of 16-bit grey, which Pillow clips to 0..255 when converting to 8 bits: scaled instead,
rounded as pngjs (pixelmatch's reference reader) rounds; a pixel of the tRNS colour key
(``info["transparency"]``) is transparent, as Pillow makes it in 8-bit grey."""


class ImageError(ValueError):
    """An input image cannot be used for a comparison."""


class ImageDecodeError(ImageError):
    """Encoded bytes are not a decodable image (unknown format, truncated or corrupt)."""


class ImageTooLarge(ImageError):
    """The comparison canvas exceeds the allowed number of pixels.

    ``pixels`` is the canvas size in pixels when known (None when Pillow's decompression-bomb guard
    refused the header), ``max_pixels`` the limit that was exceeded.
    """

    def __init__(self, message: str, *, pixels: int | None, max_pixels: int) -> None:
        super().__init__(message)
        self.pixels = pixels
        self.max_pixels = max_pixels


class OpenedImage:
    """One input whose size is known (from the header, for bytes); pixels decode on demand.

    ``fast_png`` says whether it is a PNG sized from its chunks for the fast decoder, its header
    left unparsed by Pillow (which parses it only if the decoder hands the PNG back).
    """

    __slots__ = ("label", "size", "fast_png", "_source", "_detail", "_owned", "_png", "_png_size", "_transpose")

    def __init__(
        self,
        label: str,
        size: tuple[int, int],
        source: Image.Image | np.ndarray | None,
        detail: str,
        owned: bool,
        png: bytes | bytearray | memoryview | None = None,
        png_size: tuple[int, int] | None = None,
        transpose: Image.Transpose | None = None,
    ) -> None:
        self.label = label
        self.size = size
        self.fast_png = png is not None and source is None
        self._source = source
        self._detail = detail
        self._owned = owned
        self._png = png
        self._png_size = png_size
        self._transpose = transpose

    def rgba(self) -> np.ndarray:
        """Decode (if needed) and return the pixels as a C-contiguous HxWx4 uint8 array.

        Call it once: an image opened from bytes is closed after decoding.
        """
        source = self._source
        if isinstance(source, np.ndarray):
            return np.ascontiguousarray(source)
        try:
            fast = (decode_png(self._png, self._png_size) if self._png is not None and self._png_size is not None
                    and FAST_PNG_DECODER else None)
            if fast is not None:
                return fast
            if source is None:  # a PNG sized for the fast decoder, which handed it back
                assert self._png is not None
                read = f"{len(self._png)} bytes of PNG"
                source = self._source = _pillow_header(self._png, "PNG", self.label, read)
                self._detail = _described(read, source)
            try:
                source = self._loaded(source)
                if self._transpose is not None:
                    source = source.transpose(self._transpose)
            except Image.DecompressionBombError as exc:
                raise _bomb(self.label, exc) from exc
            except MemoryError:
                raise
            except Exception as exc:
                raise ImageDecodeError(
                    f"{self.label}: cannot decode {self._detail}: {describe_error(exc)}"
                ) from exc
            return _pil_to_rgba(source, self.label)
        finally:
            self.close()

    def _loaded(self, image: Image.Image) -> Image.Image:
        """``image`` with its pixels loaded (a PNG's by `_load_png`); for a PNG Pillow refuses for its
        zlib checksum alone, the image of its bytes with that checksum made right, as the fast
        decoder does not check it (`compare.imaging.png.with_adler32_made_right`)."""
        try:
            if self._png is None:
                image.load()
            else:
                _load_png(image, self._png)
            return image
        except OSError:
            repaired = with_adler32_made_right(self._png) if self._png is not None else None
            if repaired is None:
                raise
        self.close()
        self._source = open_allowed(io.BytesIO(repaired), "PNG")
        _load_png(self._source, repaired)
        return self._source

    def close(self) -> None:
        """Release an image opened from bytes (decoding closes it too); a no-op for others."""
        if self._owned and isinstance(self._source, Image.Image):
            self._source.close()


def _load_png(image: Image.Image, data: bytes | bytearray | memoryview) -> None:
    """Load the pixels of a PNG opened from its bytes ``data``; of the chunks after its image data,
    those up to one Pillow cannot read (damaged, truncated, out of place) are read, the rest left:
    the fast decoder, as browsers, reads none of them. Image data Pillow refuses is still refused:
    a cut stream before those chunks are read, a damaged one by its decoder's state checked after
    them. A grey PNG of 2 or 4 bits has its tRNS key scaled as Pillow scales its samples to 8
    bits, so that the pixels of that value are transparent (Pillow keeps the key as written)."""
    if isinstance(image, PngImagePlugin.PngImageFile):
        image.load_end = functools.partial(_chunks_after_pixels, image.load_end)  # type: ignore[method-assign]
    image.load()
    depth, colour_type = data[24], data[25]  # IHDR's, right after the signature and its header
    key = image.info.get("transparency")
    if colour_type == 0 and depth in (2, 4) and isinstance(key, int):  # Pillow scales a 1-bit key itself
        image.info["transparency"] = key * 255 // ((1 << depth) - 1)


def _chunks_after_pixels(load_end: Callable[[], None]) -> None:
    """Pillow's reading of a PNG's chunks after its image data (``load_end``), given up where one
    of them cannot be read; the chunks before it stay applied (a tRNS, for one)."""
    try:
        load_end()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - the pixels are whole: a chunk after them is left unread
        pass


def open_image(image: ImageInput, label: str = "image", *, exif_orientation: bool = True) -> OpenedImage:
    """Identify an input and read its size without decoding pixels; ``label`` names it in errors.

    Bytes must be in one of `compare.formats.SUPPORTED_FORMATS`. Only the first frame of an animated image is
    used. With ``exif_orientation``, a JPEG, WebP or TIFF is turned upright as its EXIF
    orientation says (as ``ImageOps.exif_transpose``), and its size is the upright size.

    Raises TypeError for unsupported input types, ImageDecodeError for bytes that are not an image,
    ImageTooLarge when Pillow's decompression-bomb guard refuses the header, and ImageError for
    arrays that are not non-empty HxWx4 uint8.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _open_bytes(image, label, exif_orientation)
    if isinstance(image, Image.Image):
        width, height = image.size
        return OpenedImage(
            label, image.size, image, f"PIL image {image.mode} {width}x{height}", owned=False
        )
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4:
            raise ImageError(
                f"{label}: expected an HxWx4 uint8 RGBA array, "
                f"got shape {image.shape} dtype {image.dtype}"
            )
        height, width = image.shape[:2]
        if width == 0 or height == 0:
            raise ImageError(f"{label}: empty image array of shape {image.shape}")
        return OpenedImage(label, (width, height), image, f"array {image.shape}", owned=False)
    raise TypeError(
        f"{label}: expected encoded image bytes, a PIL.Image.Image or an HxWx4 uint8 array, "
        f"got {type(image).__name__}"
    )


def _open_bytes(data: bytes | bytearray | memoryview, label: str, exif_orientation: bool) -> OpenedImage:
    # Error messages give the size and format only: never bytes of an untrusted input.
    if len(data) == 0:
        raise ImageDecodeError(f"{label}: cannot decode 0 bytes (empty input)")
    kind = sniff_format(data)
    if kind is None:
        raise ImageDecodeError(
            f"{label}: cannot decode {len(data)} bytes: not a supported image format "
            f"({', '.join(SUPPORTED_FORMATS)})"
        )
    read = f"{len(data)} bytes of {kind}"
    chunks = read_chunks(data) if kind == "PNG" else None
    if chunks is not None and chunks.too_many:
        raise ImageDecodeError(f"{label}: cannot decode {read}: a PNG of more than {MAX_PNG_CHUNKS:,} chunks")
    size = chunks.size if chunks is not None and chunks.plain and FAST_PNG_DECODER else None
    if size is not None:
        # The fast decoder reads this PNG: its size comes from the IHDR, with Pillow's bomb
        # limit applied, and Pillow parses the header only if the decoder hands the PNG back.
        _check_bomb(size, label)
        return OpenedImage(label, size, None, f"{read} (header: PNG {size[0]}x{size[1]})", owned=True, png=data,
                           png_size=size)
    opened = _pillow_header(data, kind, label, read)
    if kind == "JPEG":
        scans = _jpeg_scans(data, MAX_JPEG_SCANS)
        if scans is None or scans > MAX_JPEG_SCANS:
            opened.close()
            what = (f"{MAX_JPEG_SCANS} scans (each costs a pass over the whole image)" if scans is not None
                    else f"{MAX_JPEG_SEGMENTS:,} segments")
            raise ImageDecodeError(f"{label}: cannot decode {read}: a JPEG of more than {what}")
    transpose = _transpose(opened, kind, exif_orientation)
    sideways = transpose in (_T.TRANSPOSE, _T.TRANSVERSE, _T.ROTATE_90, _T.ROTATE_270)
    width, height = opened.size[::-1] if sideways else opened.size
    detail = _described(read, opened)
    # A PNG's bytes go along: the fast decoder takes those it gives exactly Pillow's pixels of and
    # hands anything else back, to Pillow, which reads them again if it refuses the checksum alone.
    return OpenedImage(
        label, (width, height), opened, detail, owned=True, png=data if kind == "PNG" else None,
        png_size=chunks.size if chunks is not None else None, transpose=transpose,
    )


def _jpeg_scans(data: bytes | bytearray | memoryview, limit: int) -> int | None:
    """The number of scans (SOS markers) libjpeg can decode of a JPEG, counted up to ``limit + 1``.

    The markers are found as libjpeg finds them (`_JPEG_SEGMENT`: a C-speed search through the
    bytes between segments and the scans' entropy-coded data), each segment's body passed over
    by its length, up to EOI or the data's end. Where libjpeg would refuse the JPEG, the walk goes
    on: it counts every scan libjpeg decodes, and may count more only of a JPEG libjpeg refuses.
    None when it has more than `MAX_JPEG_SEGMENTS` segments before its end.
    """
    scans, position = 0, 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if scans > limit:
            break
        marker = _JPEG_SEGMENT.search(data, position)
        if marker is None:
            break
        start = marker.start()
        code = data[start + 1]
        if code == 0xD9:  # end of image
            break
        if code == 0xDA:
            scans += 1
        position = start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")
    else:
        return None  # segments past MAX_JPEG_SEGMENTS: not counted
    return scans


def _transpose(image: Image.Image, kind: str, upright: bool) -> Image.Transpose | None:
    """What to apply to ``image``'s decoded pixels: upright or as stored, as ``upright`` says."""
    if kind not in _ORIENTED:
        return None
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # noqa: BLE001 - unreadable EXIF is no orientation, as for exif_transpose
        return None
    if orientation not in _UPRIGHT:
        return None
    if kind in _TURNED_BY_PILLOW:
        return None if upright else _AS_STORED[orientation]
    return _UPRIGHT[orientation] if upright else None


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{8,}")
_BYTES_REPR = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')


def describe_error(exc: BaseException) -> str:
    """A decoder's exception in words that are the same on every run and quote no input bytes.

    Memory addresses (``<_io.BytesIO object at 0x7f...>``) and bytes literals are dropped.
    """
    if isinstance(exc, UnidentifiedImageError):
        return "unreadable header"
    text = _BYTES_REPR.sub("b'...'", _ADDRESS.sub("", str(exc)))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pillow_header(data: bytes | bytearray | memoryview, kind: str, label: str, read: str) -> Image.Image:
    """``data`` opened by Pillow, the header only (pixels decode on ``load()``), with the plugin
    of ``kind`` alone; ImageTooLarge or ImageDecodeError naming ``label`` when it refuses."""
    try:
        return open_allowed(io.BytesIO(data), kind)
    except Image.DecompressionBombError as exc:
        raise _bomb(label, exc) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageDecodeError(f"{label}: cannot decode {read}: {describe_error(exc)}") from exc


def _described(read: str, opened: Image.Image) -> str:
    """What an image's errors say it is: its bytes and, from its header, format, mode and size."""
    return f"{read} (header: {opened.format} {opened.mode} {opened.size[0]}x{opened.size[1]})"


def _check_bomb(size: tuple[int, int], label: str) -> None:
    """Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, refused above twice it)
    for a size read without Pillow."""
    limit = Image.MAX_IMAGE_PIXELS
    pixels = max(size[0], 1) * max(size[1], 1)
    if limit is not None and pixels > 2 * limit:
        raise ImageTooLarge(
            f"{label}: refused by Pillow's decompression-bomb guard: Image size ({pixels} pixels) "
            f"exceeds limit of {2 * limit} pixels, could be decompression bomb DOS attack.",
            pixels=None, max_pixels=2 * limit)


def _bomb(label: str, exc: Image.DecompressionBombError) -> ImageTooLarge:
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return ImageTooLarge(
        f"{label}: refused by Pillow's decompression-bomb guard: {exc}",
        pixels=None,
        max_pixels=limit,
    )


def _pil_to_rgba(image: Image.Image, label: str) -> np.ndarray:
    """Pixels of ``image`` as an RGBA array (a copy: a caller's image is never aliased)."""
    if image.mode in _SIXTEEN_BIT_GREY:
        grey = np.asarray(image, dtype=np.int64)
        rgba = np.empty(grey.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = ((np.clip(grey, 0, 65535) + 128) // 257)[..., None]
        key = image.info.get("transparency")
        rgba[..., 3] = np.where(grey == key, 0, 255) if isinstance(key, int) else 255
        return rgba
    try:
        if image.mode == "1" and "transparency" in image.info:  # "1" to RGBA drops the key; "L" keeps it
            image = image.convert("L")
        converted = image if image.mode == "RGBA" else image.convert("RGBA")
    except ValueError as exc:
        raise ImageError(f"{label}: cannot convert mode {image.mode} to RGBA: {exc}") from exc
    width, height = converted.size
    # frombuffer wraps the bytes without a second copy; the diff never writes to its inputs.
    return np.frombuffer(converted.tobytes(), dtype=np.uint8).reshape(height, width, 4)


def decode_rgba(image: ImageInput, label: str = "image", *, exif_orientation: bool = True) -> np.ndarray:
    """Decode any supported input to an HxWx4 uint8 RGBA array (as Pillow's ``convert("RGBA")``)."""
    return open_image(image, label, exif_orientation=exif_orientation).rgba()
