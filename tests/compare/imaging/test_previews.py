"""Report previews: one scale for all three pictures, and every change visible."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from compare.imaging.previews import PREVIEW_WIDTH, make_previews, make_thumbnail, preview_factor


def previews(before, after, mask, bbox) -> dict[str, bytes]:
    factor = preview_factor(mask.shape[1])
    return make_previews(make_thumbnail(before, factor), make_thumbnail(after, factor), mask, bbox)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


@pytest.mark.parametrize("alpha", [255, 128], ids=["opaque", "translucent"])
def test_previews_share_a_scale_and_mark_a_single_changed_pixel(alpha):
    before = np.full((900, 1000, 4), (250, 250, 250, alpha), dtype=np.uint8)
    after = before.copy()
    after[601, 777] = (0, 0, 0, 255)
    mask = np.zeros((900, 1000), dtype=bool)
    mask[601, 777] = True

    pictures = previews(before, after, mask, (777, 601, 778, 602))

    factor = -(-1000 // PREVIEW_WIDTH)  # 3
    sizes = {kind: Image.open(io.BytesIO(data)).size for kind, data in pictures.items()}
    assert set(sizes.values()) == {(334, 300)}
    diff = decode(pictures["diff"])
    red = (diff[..., 0] > 200) & (diff[..., 1] < 60) & (diff[..., 2] < 60)
    assert np.argwhere(red).tolist() == [[601 // factor, 777 // factor]]
    assert abs(decode(pictures["before"]).mean() - decode(pictures["after"]).mean()) < 1


def test_previews_of_a_pair_without_changes_show_no_red():
    image = np.full((50, 80, 4), 200, dtype=np.uint8)
    diff = decode(previews(image, image, np.zeros((50, 80), dtype=bool), None)["diff"])
    assert not ((diff[..., 0] > 200) & (diff[..., 1] < 60)).any()
