"""Shared decoding: a kept blob is decoded once, and a worker decodes its own side while waiting."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from compare.engine.shared import SharedImages
from compare.imaging.decode import OpenedImage, open_image
from tests.compare.pixel_samples import encode, screen

pytestmark = pytest.mark.unit


@pytest.fixture
def pngs() -> tuple[bytes, bytes, bytes]:
    base = screen(60, 40)
    return encode(base), encode(base[::-1].copy()), encode(base[:, ::-1].copy())


def test_a_worker_decodes_its_own_side_while_another_decodes_the_shared_one(pngs, monkeypatch):
    shared_png, own_a, own_b = pngs
    images = SharedImages()
    images.keep("base")
    decoding_shared, release_shared = threading.Event(), threading.Event()
    order: list[str] = []
    real_rgba = OpenedImage.rgba

    def rgba(self):
        order.append(self.label)
        if self.label == "shared by A":
            decoding_shared.set()
            assert release_shared.wait(10)
        return real_rgba(self)

    monkeypatch.setattr(OpenedImage, "rgba", rgba)
    results: dict[str, list[np.ndarray]] = {}

    def worker(name: str, own: bytes) -> None:
        shared = open_image(shared_png, f"shared by {name}")
        results[name] = images.pixels([("base", shared), (name, open_image(own, f"own {name}"))])

    first = threading.Thread(target=worker, args=("A", own_a))
    first.start()
    assert decoding_shared.wait(10)
    second = threading.Thread(target=worker, args=("B", own_b))
    second.start()
    while "own B" not in order:  # B decodes its own side while A still holds the shared one
        second.join(0.01)
        assert second.is_alive()
    release_shared.set()
    first.join(10)
    second.join(10)

    assert order == ["shared by A", "own B", "own A"]
    assert results["A"][0] is results["B"][0]
    assert not results["A"][0].flags.writeable
    assert np.array_equal(results["B"][1], open_image(own_b).rgba())


def test_blobs_not_kept_or_dropped_are_decoded_for_each_use(pngs):
    shared_png = pngs[0]
    images = SharedImages()

    first = images.pixels([("base", open_image(shared_png))])[0]
    second = images.pixels([("base", open_image(shared_png))])[0]
    images.keep("base")
    kept = images.pixels([("base", open_image(shared_png))])[0]
    images.drop("base")
    after_drop = images.pixels([("base", open_image(shared_png))])[0]

    assert first is not second and kept is not after_drop
    assert np.array_equal(first, kept) and np.array_equal(kept, after_drop)


def test_a_failed_decode_is_not_kept(pngs, monkeypatch):
    images = SharedImages()
    images.keep("base")
    real_rgba = OpenedImage.rgba
    calls: list[int] = []

    def failing_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("broken")
        return real_rgba(self)

    monkeypatch.setattr(OpenedImage, "rgba", failing_once)
    with pytest.raises(ValueError, match="broken"):
        images.pixels([("base", open_image(pngs[0]))])

    assert images.pixels([("base", open_image(pngs[0]))])[0].shape == (40, 60, 4)
    assert len(calls) == 2
