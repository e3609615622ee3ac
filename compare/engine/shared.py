"""Decoded pixels and report thumbnails of blobs that several pairs use, made once and shared."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..imaging.decode import OpenedImage
from ..imaging.previews import Thumbnail, make_thumbnail


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

    def pixels(self, sides: list[tuple[str, OpenedImage]]) -> list[np.ndarray]:
        """The RGBA pixels of each (blob key, opened image), decoded now or by an earlier pair.

        Every image is closed, and let go as soon as it is decoded (``sides`` is emptied): an
        image may hold its decoder's buffers until it is dropped (a WebP's canvases, twice its
        pixels), so one the caller holds no other reference to is gone before the next decodes.
        Kept blobs that no other pair is decoding go first, then blobs that are not kept, then
        kept blobs another pair is decoding (waiting for it), so a worker rarely sits idle while
        another decodes what both need. A failed decode is not kept: the next pair tries again
        and reports the error under its own name.
        """
        keys = [key for key, _ in sides]
        opened = {index: image for index, (_, image) in enumerate(sides)}
        sides.clear()
        out: dict[int, np.ndarray] = {}  # by index in sides: each is kept, unkept or waiting
        unkept: list[int] = []
        waiting: list[tuple[int, _Entry]] = []
        try:
            for index, key in enumerate(keys):
                entry = self._entry(key)
                if entry is None:
                    unkept.append(index)
                elif entry.lock.acquire(blocking=False):
                    try:
                        out[index] = self._decoded(entry, opened.pop(index))
                    finally:
                        entry.lock.release()
                else:
                    waiting.append((index, entry))
            for index in unkept:
                out[index] = opened.pop(index).rgba()
            for index, entry in waiting:
                with entry.lock:
                    out[index] = self._decoded(entry, opened.pop(index))
        finally:
            for image in opened.values():
                image.close()
        return [out[index] for index in range(len(keys))]

    @staticmethod
    def _decoded(entry: _Entry, image: OpenedImage) -> np.ndarray:
        """Entry's pixels, decoding ``image`` if no pair has yet (else closing it); call with
        ``entry.lock`` held."""
        if entry.pixels is not None:
            image.close()
            return entry.pixels
        pixels = image.rgba().view()
        pixels.flags.writeable = False
        entry.pixels = pixels
        return pixels

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
