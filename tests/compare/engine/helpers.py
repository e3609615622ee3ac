"""Images and a local blob store for the engine tests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from compare.inputs.manifest import parse_manifest


def png(width: int, height: int, *, mark: tuple[int, int] | None = None, colour=(20, 90, 200)) -> bytes:
    """A white RGBA PNG with a band of ``colour``, and a 3x3 red mark at ``mark`` if given."""
    pixels = np.full((height, width, 4), 255, dtype=np.uint8)
    pixels[height // 4 : height // 2, 2 : width - 2, :3] = colour
    if mark is not None:
        x, y = mark
        pixels[y : y + 3, x : x + 3, :3] = (250, 10, 10)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG")
    return out.getvalue()


class Store:
    """Blobs written under their sha256 into a folder; manifests built from name -> bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, *, store: bool = True) -> str:
        key = hashlib.sha256(data).hexdigest()
        if store:
            (self.root / key).write_bytes(data)
        return key

    def manifest(self, images: dict[str, bytes | str], source: str, **top) -> object:
        entries = {}
        for name, value in images.items():
            key = value if isinstance(value, str) else self.add(value)
            entries[name] = {"content_hash": key}
        return parse_manifest({"images": entries, **top}, source)
