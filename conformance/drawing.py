"""Writing the cases drawn in code (`conformance.size_cases`, `conformance.suite_cases`): a case's
two pictures in their formats, and its own option sets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from PIL import Image

from conformance import CASES, INPUT_FORMATS, OPTIONS

# how each format is written: PNG smallest, JPEG at quality 90 (4:2:0), BMP 24- or 32-bit as the
# picture's mode, TIFF with LZW, WebP lossy at quality 80
SAVE_OPTIONS: dict[str, dict] = {
    "png": {"optimize": True},
    "jpg": {"quality": 90},
    "bmp": {},
    "tiff": {"compression": "tiff_lzw"},
    "webp": {"quality": 80},
}


def write_case(name: str, images: tuple[Image.Image, Image.Image], formats: tuple[str, str] = ("png", "png"),
               options: Mapping[str, list[dict]] | None = None) -> Path:
    """Write ``images`` as the case ``name``'s base and head in ``formats`` (replacing its inputs in
    other formats) and ``options`` as its own option sets per engine; returns its folder."""
    folder = CASES / name
    folder.mkdir(exist_ok=True)
    for stem, image, kind in zip(("base", "head"), images, formats, strict=True):
        for other in INPUT_FORMATS:
            (folder / f"{stem}.{other}").unlink(missing_ok=True)
        image.save(folder / f"{stem}.{kind}", **SAVE_OPTIONS[kind])
    if options:
        (folder / OPTIONS).write_text(json.dumps(options, indent=1) + "\n")
    else:
        (folder / OPTIONS).unlink(missing_ok=True)
    return folder
