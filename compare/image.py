"""Image inputs for the pixel diff: header-only sizes, decoding to RGBA arrays, image errors."""

from __future__ import annotations

import ctypes
import io

import numpy as np
from PIL import Image

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

    __slots__ = ("label", "size", "_source", "_detail", "_owned")

    def __init__(
        self,
        label: str,
        size: tuple[int, int],
        source: Image.Image | np.ndarray,
        detail: str,
        owned: bool,
    ) -> None:
        self.label = label
        self.size = size
        self._source = source
        self._detail = detail
        self._owned = owned

    def rgba(self) -> np.ndarray:
        """Decode (if needed) and return the pixels as a C-contiguous HxWx4 uint8 array.

        Call it once: an image opened from bytes is closed after decoding.
        """
        source = self._source
        if isinstance(source, np.ndarray):
            return np.ascontiguousarray(source)
        try:
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
            return _pil_to_rgba(source, self.label, private=self._owned)
        finally:
            if self._owned:
                source.close()


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
    return OpenedImage(label, opened.size, opened, detail, owned=True)


def _bomb(label: str, exc: Image.DecompressionBombError) -> ImageTooLarge:
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return ImageTooLarge(
        f"{label}: refused by Pillow's decompression-bomb guard: {exc}",
        pixels=None,
        max_pixels=limit,
    )


def _pil_to_rgba(image: Image.Image, label: str, *, private: bool) -> np.ndarray:
    """Pixels of ``image`` as an RGBA array; ``private`` says no one else holds the image, so the
    array may share its memory (a caller's own image is copied, never aliased)."""
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
    shared = _ArrowPixels.export(converted) if private or converted is not image else None
    if shared is not None:
        return np.asarray(shared)
    # frombuffer wraps the bytes without a second copy; the diff never writes to its inputs.
    return np.frombuffer(converted.tobytes(), dtype=np.uint8).reshape(height, width, 4)


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


class _ArrowPixels:
    """An RGBA image's pixel memory shared through Pillow's Arrow export (Arrow C data interface).

    Copying the pixels out (``tobytes``) costs a fifth of a phone screenshot's decode; Pillow
    documents RGBA exports as width*height fixed-size lists of 4 uint8, so numpy can view the
    memory instead. Holding the exported array capsule keeps that memory alive; when numpy drops
    this object the capsule releases it. Images Pillow keeps in several blocks (over 16 MB by
    default) cannot be exported and are copied.
    """

    def __init__(self, capsule: object, address: int, shape: tuple[int, int, int]) -> None:
        self._capsule = capsule
        self.__array_interface__ = {
            "version": 3,
            "shape": shape,
            "typestr": "|u1",
            "data": (address, True),
        }

    @classmethod
    def export(cls, image: Image.Image) -> _ArrowPixels | None:
        try:
            schema_capsule, array_capsule = image.__arrow_c_array__()
        except (AttributeError, ValueError):
            return None
        schema = _ArrowSchema.from_address(_capsule_pointer(schema_capsule, b"arrow_schema"))
        array = _ArrowArray.from_address(_capsule_pointer(array_capsule, b"arrow_array"))
        width, height = image.size
        if (
            schema.format != b"+w:4"
            or schema.n_children != 1
            or schema.children[0].contents.format != b"C"
            or array.offset != 0
            or array.length != width * height
            or array.n_children != 1
        ):
            return None
        values = array.children[0].contents
        if values.offset != 0 or values.length != 4 * width * height or values.n_buffers != 2:
            return None
        return cls(array_capsule, values.buffers[1], (height, width, 4))


def image_size(image: ImageInput) -> tuple[int, int]:
    """Return (width, height) of an input, reading only the header of encoded bytes."""
    return open_image(image).size


def decode_rgba(image: ImageInput, label: str = "image") -> np.ndarray:
    """Decode any supported input to an HxWx4 uint8 RGBA array (as Pillow's ``convert("RGBA")``)."""
    return open_image(image, label).rgba()
