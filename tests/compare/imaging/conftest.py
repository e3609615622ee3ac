"""The decoder paths the reference results are checked through (test_conformance.py and
test_reference_suites.py)."""

from __future__ import annotations

import pytest

from compare.imaging import decode as image_module


@pytest.fixture(params=["wuffs", "pillow"])
def decoder(request, monkeypatch) -> tuple[str, list[int]]:
    """Run each case through the fast PNG decoder (Wuffs, the ``fast`` extra: the README's test
    command installs it) and through Pillow alone; returns the path's name and a list counting
    the PNGs the fast decoder decoded (other formats are Pillow's on both paths)."""
    calls: list[int] = []
    if request.param == "pillow":
        monkeypatch.setattr(image_module, "FAST_PNG_DECODER", False)
    elif not image_module.FAST_PNG_DECODER:
        pytest.fail("the fast PNG decoder is not installed: run the README's test command")
    real = image_module.decode_png

    def counted(data, size=None):
        pixels = real(data, size)
        if pixels is not None:
            calls.append(1)
        return pixels

    monkeypatch.setattr(image_module, "decode_png", counted)
    return request.param, calls
