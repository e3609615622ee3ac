"""diff_images against the pixelmatch 7.2.0 reference results in shared/diff-conformance."""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare import diff_images
from compare.imaging import decode as image_module

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFORMANCE_DIR = Path(
    os.environ.get("SNAPCOMPARE_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "diff-conformance")
)


def _cases() -> list:
    if not CONFORMANCE_DIR.is_dir():
        reason = (
            f"conformance data not found at {CONFORMANCE_DIR} "
            "(put shared/diff-conformance beside the repository or set SNAPCOMPARE_CONFORMANCE_DIR)"
        )
        return [pytest.param(None, reason, 0, id="no-conformance-data")]
    params = []
    for case in sorted(p for p in CONFORMANCE_DIR.iterdir() if (p / "expected.json").is_file()):
        expected = json.loads((case / "expected.json").read_text())
        for index, result in enumerate(expected["results"]):
            options = result["options"]
            label = (
                f"{case.name}-t{options['threshold']}-{'aa' if options['antialiasing'] else 'noaa'}"
            )
            params.append(pytest.param(case.name, expected, index, id=label))
    return params


@functools.cache
def _pair(case: str) -> tuple[bytes, bytes]:
    folder = CONFORMANCE_DIR / case
    return (folder / "base.png").read_bytes(), (folder / "head.png").read_bytes()


@pytest.fixture(params=["fast-png", "pillow"])
def decoder(request, monkeypatch) -> list[int]:
    """Run each case through the optional fast PNG decoder (when installed) and Pillow alone;
    the list returned counts the PNGs the fast decoder decoded."""
    calls: list[int] = []
    if request.param == "pillow":
        monkeypatch.setattr(image_module, "FAST_PNG_DECODER", False)
    elif not image_module.FAST_PNG_DECODER:
        pytest.skip("the optional fast PNG decoder (imagecodecs) is not installed")
    else:
        real = image_module.decode_png

        def counted(data):
            pixels = real(data)
            if pixels is not None:
                calls.append(1)
            return pixels

        monkeypatch.setattr(image_module, "decode_png", counted)
    return calls


def _fast_decodes(png: bytes) -> bool:
    """8-bit RGB or RGBA without a tRNS colour key: the PNGs the fast path takes."""
    return png[24] == 8 and png[25] in (2, 6) and b"tRNS" not in png[: png.find(b"IDAT")]


@pytest.mark.parametrize(("case", "expected", "index"), _cases())
def test_matches_reference(case: str | None, expected: dict | str, index: int, decoder: list[int]) -> None:
    if case is None:
        pytest.fail(expected)
    result = expected["results"][index]
    before, after = _pair(case)

    diff = diff_images(
        before,
        after,
        threshold=result["options"]["threshold"],
        antialiasing=result["options"]["antialiasing"],
    )

    if image_module.FAST_PNG_DECODER:
        assert len(decoder) == sum(map(_fast_decodes, (before, after)))
    assert diff.changed_pixels == result["changed_pixels"]
    assert diff.bbox == (tuple(result["bbox"]) if result["bbox"] is not None else None)
    if result["aa_pixels_in_overlap"] is not None:
        assert diff.aa_pixels == result["aa_pixels_in_overlap"]
    assert diff.total_pixels == expected["total_pixels"]
    assert diff.canvas_size == tuple(expected["canvas"])
    assert diff.before_size == tuple(expected["before_size"])
    assert diff.after_size == tuple(expected["after_size"])
    assert int(diff.mask.sum()) == result["changed_pixels"]
    if index == 0:
        reference = np.asarray(Image.open(CONFORMANCE_DIR / case / "mask.png").convert("L")) == 255
        assert np.array_equal(diff.mask, reference)
        round_trip = np.asarray(Image.open(io.BytesIO(diff.mask_png())).convert("L")) == 255
        assert np.array_equal(round_trip, reference)
