"""Decoded pixels and report thumbnails of blobs that several pairs use, made once and shared."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .image import OpenedImage
from .previews import Thumbnail, make_thumbnail


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pixels: np.ndarray | None = None
    thumbnails: dict[int, Thumbnail] = field(default_factory=dict)


class SharedImages:
    """Per-blob pixels and thumbnails, kept from `keep` until `drop`; safe to use from any thread.

    The first pair to need a kept blob decodes it while later ones wait for it, so a base that
    several heads are compared with is decoded once. A blob that is not kept is decoded for each
    use. Shared pixels are read-only.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def keep(self, key: str) -> None:
        """Start keeping what is made of blob ``key``."""
        with self._lock:
            self._entries.setdefault(key, _Entry())

    def drop(self, key: str) -> None:
        """Forget blob ``key`` (its last pair is done)."""
        with self._lock:
            self._entries.pop(key, None)

    def pixels(self, key: str, image: OpenedImage) -> np.ndarray:
        """The RGBA pixels of ``image`` (blob ``key``): decoded now, or by an earlier pair.

        ``image`` is closed either way. A failed decode is not kept: the next pair tries again,
        and reports the error under its own name.
        """
        entry = self._entry(key)
        if entry is None:
            return image.rgba()
        with entry.lock:
            if entry.pixels is None:
                pixels = image.rgba().view()
                pixels.flags.writeable = False
                entry.pixels = pixels
            else:
                image.close()
            return entry.pixels

    def thumbnail(self, key: str, pixels: np.ndarray, factor: int) -> Thumbnail:
        """The thumbnail of blob ``key``'s ``pixels`` shrunk by ``factor``, made once if kept."""
        entry = self._entry(key)
        if entry is None:
            return make_thumbnail(pixels, factor)
        with entry.lock:
            made = entry.thumbnails.get(factor)
            if made is None:
                made = entry.thumbnails[factor] = make_thumbnail(pixels, factor)
            return made

    def _entry(self, key: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(key)
