"""diff_images against the reference results in conformance/cases, for every engine
(pixelmatch 7.2.0: expected.json; pixelmatch c6fee35 OKLab: expected.oklab.json; odiff 4.5.0 on
the padded canvas, as Sentry runs it: expected.odiff.json, and on the images as they are where
their sizes differ: expected.odiff-sizes.json), every case and option set, through every
decoder path."""

from __future__ import annotations

import functools
import io
import json

import numpy as np
import pytest
from PIL import Image

from compare import diff_images
from compare.imaging import decode as image_module
from conformance import CASES as CONFORMANCE_DIR
from conformance import ENGINES, ODIFF_SIZES

# reference -> (engine, expected values, mask of its first option set, options it implies)
REFERENCES = {
    "pixelmatch": ("pixelmatch", *ENGINES["pixelmatch"], {}),
    "oklab": ("oklab", *ENGINES["oklab"], {}),
    "odiff": ("odiff", *ENGINES["odiff"], {"padded": True}),
    "odiff-sizes": ("odiff", *ODIFF_SIZES, {}),
}


def _cases() -> list:
    missing = f"conformance data not found at {CONFORMANCE_DIR}: it is part of the repository"
    if not CONFORMANCE_DIR.is_dir():
        return [pytest.param(None, None, missing, 0, id="no-conformance-data")]
    params = []
    for engine, (_, expected_file, _, _) in REFERENCES.items():
        found = 0
        for case in sorted(p for p in CONFORMANCE_DIR.iterdir() if (p / expected_file).is_file()):
            expected = json.loads((case / expected_file).read_text())
            for index, result in enumerate(expected["results"]):
                label = "-".join([engine, case.name] + [f"{k}={v}" for k, v in result["options"].items()])
                params.append(pytest.param(engine, case.name, expected, index, id=label))
                found += 1
        if not found:
            params.append(pytest.param(None, None, f"no {expected_file} under {CONFORMANCE_DIR}", 0,
                                       id=f"no-{engine}-data"))
    return params


@functools.cache
def _pair(case: str) -> tuple[bytes, bytes]:
    folder = CONFORMANCE_DIR / case
    return (folder / "base.png").read_bytes(), (folder / "head.png").read_bytes()


@pytest.fixture(params=["wuffs", "pillow"])
def decoder(request, monkeypatch) -> tuple[str, list[int]]:
    """Run each case through the fast PNG decoder (Wuffs, the ``fast`` extra: the README's test
    command installs it) and through Pillow alone; returns the path's name and a list counting
    the PNGs the fast decoder decoded."""
    calls: list[int] = []
    if request.param == "pillow":
        monkeypatch.setattr(image_module, "FAST_PNG_DECODER", False)
    elif not image_module.FAST_PNG_DECODER:
        pytest.fail("the fast PNG decoder is not installed: run the README's test command")
    real = image_module.decode_png

    def counted(data):
        pixels = real(data)
        if pixels is not None:
            calls.append(1)
        return pixels

    monkeypatch.setattr(image_module, "decode_png", counted)
    return request.param, calls


def _fast_decodes(png: bytes) -> bool:
    """Whether the fast decoder takes ``png``: not 16-bit grey, no tRNS colour key on grey or RGB,
    not animated."""
    depth, colour, before_data = png[24], png[25], png[: png.find(b"IDAT")]
    keyed = colour in (0, 2) and b"tRNS" in before_data
    return (colour, depth) != (0, 16) and not keyed and b"acTL" not in before_data


@pytest.mark.parametrize(("reference", "case", "expected", "index"), _cases())
def test_matches_reference(reference, case, expected, index: int, decoder: tuple[str, list[int]]) -> None:
    if reference is None:
        pytest.fail(expected)
    engine, _, mask_name, implied = REFERENCES[reference]
    result = expected["results"][index]
    options = {**result["options"], **implied}
    before, after = _pair(case)

    diff = diff_images(before, after, engine=engine, **options)

    path, fast_decodes = decoder
    expected_fast = sum(map(_fast_decodes, (before, after))) if path == "wuffs" else 0
    assert len(fast_decodes) == expected_fast
    assert diff.changed_pixels == result["changed_pixels"]
    # odiff's own mask of images of other sizes is the base image's size; ours is the canvas's.
    width, height = diff.before_size if reference == "odiff-sizes" else diff.canvas_size
    assert _bbox(diff.mask[:height, :width]) == (tuple(result["bbox"]) if result["bbox"] is not None else None)
    if reference != "odiff-sizes":
        assert diff.bbox == _bbox(diff.mask)
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


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1
