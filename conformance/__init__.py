"""The pixel-diff conformance data: cases/<case>/ holds two input images and, per engine, the
expected values and mask its reference implementation produced (see README.md)."""

from __future__ import annotations

from pathlib import Path

CASES = Path(__file__).resolve().parent / "cases"
INPUTS = ("base.png", "head.png")
# engine -> (expected values, mask of its first option set), as the reference wrote them
ENGINES = {
    "pixelmatch": ("expected.json", "mask.png"),
    "oklab": ("expected.oklab.json", "mask.oklab.png"),
    "odiff": ("expected.odiff.json", "mask.odiff.png"),
}
# odiff on the two images as they are (its own rule for sizes that differ), for the cases whose
# sizes differ; the mask is odiff's own diff mask, the size of the base image
ODIFF_SIZES = ("expected.odiff-sizes.json", "mask.odiff-sizes.png")


def case_names(folder: Path) -> list[str]:
    """The cases under ``folder``: its subfolders holding both inputs, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if all((p / name).is_file() for name in INPUTS))
