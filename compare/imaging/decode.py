"""Image inputs for the pixel diff: header-only sizes, decoding to RGBA arrays, image errors."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .png import AVAILABLE as _FAST_PNG_AVAILABLE
from .png import decode_png

FAST_PNG_DECODER: bool = _FAST_PNG_AVAILABLE
"""Whether 8-bit RGB/RGBA PNGs are decoded by `compare.imaging.png` (libdeflate and libspng,
from the optional imagecodecs) instead of Pillow."""

ImageInput = bytes | bytearray | memoryview | Image.Image | np.ndarray
"""Encoded image bytes (PNG, JPEG, WebP...), a PIL image of any mode, or an HxWx4 uint8 array."""

# Pillow clips these to 0..255 when converting to 8 bits; they hold 16-bit grey, so scale instead.
_SIXTEEN_BIT_GREY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


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
    """One input whose size is known (from the header, for bytes); pixels decode on demand."""

    __slots__ = ("label", "size", "_source", "_detail", "_owned", "_png")

    def __init__(
        self,
        label: str,
        size: tuple[int, int],
        source: Image.Image | np.ndarray,
        detail: str,
        owned: bool,
        png: bytes | bytearray | memoryview | None = None,
    ) -> None:
        self.label = label
        self.size = size
        self._source = source
        self._detail = detail
        self._owned = owned
        self._png = png

    def rgba(self) -> np.ndarray:
        """Decode (if needed) and return the pixels as a C-contiguous HxWx4 uint8 array.

        Call it once: an image opened from bytes is closed after decoding.
        """
        source = self._source
        if isinstance(source, np.ndarray):
            return np.ascontiguousarray(source)
        try:
            fast = decode_png(self._png) if self._png is not None else None
            if fast is not None:
                return fast
            try:
                source.load()
            except Image.DecompressionBombError as exc:
                raise _bomb(self.label, exc) from exc
            except MemoryError:
                raise
            except Exception as exc:
                raise ImageDecodeError(
                    f"{self.label}: cannot decode {self._detail}: {exc}"
                ) from exc
            return _pil_to_rgba(source, self.label)
        finally:
            self.close()

    def close(self) -> None:
        """Release an image opened from bytes (decoding closes it too); a no-op for others."""
        if self._owned and isinstance(self._source, Image.Image):
            self._source.close()


def open_image(image: ImageInput, label: str = "image") -> OpenedImage:
    """Identify an input and read its size without decoding pixels; ``label`` names it in errors.

    Raises TypeError for unsupported input types, ImageDecodeError for bytes that are not an image,
    ImageTooLarge when Pillow's decompression-bomb guard refuses the header, and ImageError for
    arrays that are not non-empty HxWx4 uint8.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _open_bytes(image, label)
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


def _open_bytes(data: bytes | bytearray | memoryview, label: str) -> OpenedImage:
    read = f"{len(data)} bytes starting {bytes(data[:12])!r}"
    if len(data) == 0:
        raise ImageDecodeError(f"{label}: cannot decode 0 bytes (empty input)")
    try:
        # Image.open parses the header only; pixel data is decoded later, by load().
        opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _bomb(label, exc) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageDecodeError(f"{label}: cannot decode {read}: {exc}") from exc
    width, height = opened.size
    detail = f"{read} (header: {opened.format} {opened.mode} {width}x{height})"
    # The fast decoder takes the 8-bit RGB and RGBA PNGs (and gives exactly Pillow's pixels);
    # it hands anything else back, to Pillow.
    fast = FAST_PNG_DECODER and opened.format == "PNG"
    return OpenedImage(label, opened.size, opened, detail, owned=True, png=data if fast else None)


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
        grey = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        grey8 = ((grey + 128) // 257).astype(np.uint8)
        rgba = np.empty(grey8.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = grey8[..., None]
        rgba[..., 3] = 255
        return rgba
    try:
        converted = image if image.mode == "RGBA" else image.convert("RGBA")
    except ValueError as exc:
        raise ImageError(f"{label}: cannot convert mode {image.mode} to RGBA: {exc}") from exc
    width, height = converted.size
    # frombuffer wraps the bytes without a second copy; the diff never writes to its inputs.
    return np.frombuffer(converted.tobytes(), dtype=np.uint8).reshape(height, width, 4)


def decode_rgba(image: ImageInput, label: str = "image") -> np.ndarray:
    """Decode any supported input to an HxWx4 uint8 RGBA array (as Pillow's ``convert("RGBA")``)."""
    return open_image(image, label).rgba()
