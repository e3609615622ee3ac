"""The reference results of conformance/cases and how diff_images is checked against them
(test_conformance.py, every case; test_reference_suites.py, the reference suites' own tests)."""

from __future__ import annotations

import functools
import io
import json
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from compare import DiffResult, diff_images
from compare.regions import ignore_regions_from_json
from conformance import CASES as CONFORMANCE_DIR
from conformance import ENGINES, ODIFF_SIZES, inputs

# reference -> (engine, expected values, mask of its first option set, options it implies)
REFERENCES = {
    "pixelmatch": ("pixelmatch", *ENGINES["pixelmatch"], {}),
    "oklab": ("oklab", *ENGINES["oklab"], {}),
    "odiff": ("odiff", *ENGINES["odiff"], {"padded": True}),
    "odiff-sizes": ("odiff", *ODIFF_SIZES, {}),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@functools.cache
def case_inputs(case: str) -> tuple[bytes, bytes]:
    """The bytes of a case's base and head images; fails the test when the case has none."""
    files = inputs(CONFORMANCE_DIR / case)
    if files is None:
        pytest.fail(f"conformance case {case!r} not found under {CONFORMANCE_DIR}: it is part of the repository")
    return files[0].read_bytes(), files[1].read_bytes()


def expected_values(reference: str, case: str) -> dict:
    """A case's expected file for ``reference``; fails the test when it is missing."""
    path = CONFORMANCE_DIR / case / REFERENCES[reference][1]
    if not path.is_file():
        pytest.fail(f"{path} not found: the conformance data is part of the repository "
                    "(python -m conformance.generate writes it)")
    return json.loads(path.read_text())


def result_index(expected: dict, options: dict, where: str) -> int:
    """The index of the result for ``options`` in an expected file; fails the test when there is none."""
    for index, result in enumerate(expected["results"]):
        if result["options"] == options:
            return index
    pytest.fail(f"{where}: no result for options {options} (regenerate: python -m conformance.generate)")


def _fast_decodes(data: bytes) -> bool:
    """Whether the fast decoder takes ``data``: a PNG, not 16-bit grey, no tRNS colour key on grey
    or RGB, not animated."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    depth, colour, before_data = data[24], data[25], data[: data.find(b"IDAT")]
    keyed = colour in (0, 2) and b"tRNS" in before_data
    return (colour, depth) != (0, 16) and not keyed and b"acTL" not in before_data


class Path(NamedTuple):
    """A path through decoding and scanning (the ``decoder`` fixture): its name, and a list that
    grows by one for each PNG the fast decoder decoded and each compiled scan that ran."""

    name: str
    fast_decodes: list[int]
    compiled_scans: list[int]


def diff_as_expected(reference: str, case: str, expected: dict, index: int,
                     decoder: Path, **given) -> DiffResult:
    """diff_images on the case's inputs with the options of ``expected``'s result ``index`` (and
    ``given``, passed as well) through the ``decoder`` path; asserts every value the reference
    gave, the mask too for the first option set, and returns the result."""
    engine, _, mask_name, implied = REFERENCES[reference]
    result = expected["results"][index]
    options = {**result["options"], **implied}
    if "ignore_regions" in options:
        options["ignore_regions"] = ignore_regions_from_json(options["ignore_regions"], "ignore_regions")
    options |= given
    before, after = case_inputs(case)
    decoded_before, scanned_before = len(decoder.fast_decodes), len(decoder.compiled_scans)

    diff = diff_images(before, after, engine=engine, **options)

    fast = decoder.name == "fast"
    expected_fast = sum(map(_fast_decodes, (before, after))) if fast else 0
    assert len(decoder.fast_decodes) - decoded_before == expected_fast
    assert len(decoder.compiled_scans) - scanned_before == (fast and engine == "pixelmatch")
    assert diff.changed_pixels == result["changed_pixels"]
    # odiff's own mask of images of other sizes is the base image's size; ours is the canvas's.
    width, height = diff.before_size if reference == "odiff-sizes" else diff.canvas_size
    assert bbox(diff.mask[:height, :width]) == (tuple(result["bbox"]) if result["bbox"] is not None else None)
    if reference != "odiff-sizes":
        assert diff.bbox == bbox(diff.mask)
    if result.get("aa_pixels_in_overlap") is not None:
        assert diff.aa_pixels == result["aa_pixels_in_overlap"]
    assert diff.window_max == result.get("window_max")
    assert diff.total_pixels == expected["total_pixels"]
    assert diff.canvas_size == tuple(expected["canvas"])
    assert diff.before_size == tuple(expected["before_size"])
    assert diff.after_size == tuple(expected["after_size"])
    assert int(diff.mask.sum()) == result["changed_pixels"]
    if index == 0:
        expected_mask = np.asarray(Image.open(CONFORMANCE_DIR / case / mask_name).convert("L")) == 255
        assert np.array_equal(diff.mask[:height, :width], expected_mask)
        round_trip = np.asarray(Image.open(io.BytesIO(diff.mask_png())).convert("L")) == 255
        assert np.array_equal(round_trip, diff.mask)
    return diff


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the True pixels of ``mask``, ends exclusive; None when there are none."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1
