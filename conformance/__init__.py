"""The pixel-diff conformance data: cases/<case>/ holds two input images and, per engine, the
expected values and mask its reference implementation produced (see README.md)."""

from __future__ import annotations

import json
from pathlib import Path

CASES = Path(__file__).resolve().parent / "cases"
# the formats a case's inputs may be in, by file extension: those odiff 4.5.0 reads
INPUT_FORMATS = ("png", "jpg", "bmp", "tiff", "webp")
# a case's own option sets per engine, in place of the standard ones (written with its inputs)
OPTIONS = "options.json"
# engine -> (expected values, mask of its first option set), as the reference wrote them
ENGINES = {
    "pixelmatch": ("expected.json", "mask.png"),
    "oklab": ("expected.oklab.json", "mask.oklab.png"),
    "odiff": ("expected.odiff.json", "mask.odiff.png"),
}
# odiff on the two images as they are (its own rule for sizes that differ), for the cases whose
# sizes differ; the mask is odiff's own diff mask, the size of the base image
ODIFF_SIZES = ("expected.odiff-sizes.json", "mask.odiff-sizes.png")


def inputs(folder: Path) -> tuple[Path, Path] | None:
    """A case's two input files, ``base.EXT`` and ``head.EXT`` (EXT one of INPUT_FORMATS, not
    necessarily the same for both); None unless ``folder`` holds exactly one of each."""
    found = []
    for stem in ("base", "head"):
        files = [folder / f"{stem}.{ext}" for ext in INPUT_FORMATS if (folder / f"{stem}.{ext}").is_file()]
        if len(files) != 1:
            return None
        found.append(files[0])
    return found[0], found[1]


def own_options(folder: Path) -> dict[str, list[dict]]:
    """A case's own option sets per engine (its options.json; empty when it has none)."""
    path = folder / OPTIONS
    return json.loads(path.read_text()) if path.is_file() else {}


def case_names(folder: Path) -> list[str]:
    """The cases under ``folder``: its subfolders holding both inputs, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and inputs(p) is not None)
