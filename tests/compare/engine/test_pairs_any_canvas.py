"""A pair of any canvas shape within --max-pixels gets its mask and previews."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from compare.engine.pairs import PairTask, diff_pair
from compare.imaging.previews import CROP_MAX_HEIGHT, CROP_MAX_WIDTH, PREVIEW_MAX_HEIGHT, PREVIEW_WIDTH
from compare.model import CompareOptions

pytestmark = pytest.mark.unit


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


@pytest.mark.parametrize(("width", "height", "changed"), [
    (400, 66_000, (slice(33_000, 33_010), slice(200, 210))),
    (10_000_000, 1, (slice(0, 1), slice(0, 10_000_000))),
], ids=["400x66000-10x10-changed", "10000000x1-all-changed"])
def test_a_very_tall_or_wide_pair_gets_its_mask_and_previews(width, height, changed, capfd):
    before = np.full((height, width, 4), 255, dtype=np.uint8)
    after = before.copy()
    after[changed] = (255, 0, 0, 255)

    outcome = diff_pair(PairTask("a", "b", "tall.png"), _png(before), _png(after), CompareOptions())

    assert (outcome.reason, outcome.detail) == (None, None)
    assert outcome.changed_pixels == (changed[0].stop - changed[0].start) * (changed[1].stop - changed[1].start)
    assert Image.open(io.BytesIO(outcome.mask_png)).size == (width, height)
    sizes = {kind: Image.open(io.BytesIO(data)).size for kind, data in outcome.previews.items()}
    assert sizes["before"] == sizes["after"] == sizes["diff"]
    assert sizes["diff"][0] <= PREVIEW_WIDTH and sizes["diff"][1] <= PREVIEW_MAX_HEIGHT
    assert sizes["crop-diff"][0] <= CROP_MAX_WIDTH and sizes["crop-diff"][1] <= CROP_MAX_HEIGHT
    assert capfd.readouterr().err == ""
