"""The paths the reference results are checked through (test_conformance.py and
test_reference_suites.py): the fast one and the fallback a machine without its parts takes."""

from __future__ import annotations

import pytest

from compare.imaging import decode as image_module
from compare.imaging import pixelmatch as pixelmatch_module

from .compiled import need_compiled_scan, need_fast_decoder
from .conformance_cases import Path


@pytest.fixture
def fast_decoder() -> None:
    """The fast PNG decoder is built (else the test skips; fails in CI)."""
    need_fast_decoder()


@pytest.fixture(params=["fast", "fallback"])
def decoder(request, monkeypatch) -> Path:
    """Run each case through the fast path (PNGs decoded by Wuffs, the ``fast`` extra, and
    pixelmatch's compiled scan, built at install: the README's test command has both) and
    through the fallback (Pillow alone and the vectorised scan); counts the PNGs the fast decoder
    decoded (other formats are Pillow's on both paths) and the compiled scans that ran."""
    path = Path(request.param, [], [])
    if request.param == "fallback":
        monkeypatch.setattr(image_module, "FAST_PNG_DECODER", False)
        monkeypatch.setattr(pixelmatch_module, "COMPILED_SCAN", False)
    else:
        need_fast_decoder()
        need_compiled_scan()
    real_decode = image_module.decode_png
    compiled = pixelmatch_module._compiled

    def counted(data, size=None):
        pixels = real_decode(data, size)
        if pixels is not None:
            path.fast_decodes.append(1)
        return pixels

    class CountedScan:
        @staticmethod
        def scan(*args):
            path.compiled_scans.append(1)
            return compiled.scan(*args)

    monkeypatch.setattr(image_module, "decode_png", counted)
    monkeypatch.setattr(pixelmatch_module, "_compiled", CountedScan)
    return path
