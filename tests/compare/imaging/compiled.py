"""The compiled parts (built at install where the machine has a C compiler): tests that need one
skip without it, so the README's test command passes on such a machine through the fallbacks,
and fail instead where SNAPCOMPARE_REQUIRE_COMPILED=1 says they must have been built (CI)."""

from __future__ import annotations

import os

import pytest

from compare.imaging import pixelmatch, png


def need(built: bool, what: str) -> None:
    """Skip the calling test, or fail it under SNAPCOMPARE_REQUIRE_COMPILED=1, unless ``built``."""
    if built:
        return
    message = f"{what} was not built at install (no C compiler, or Wuffs' source not fetched)"
    if os.environ.get("SNAPCOMPARE_REQUIRE_COMPILED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def need_fast_decoder() -> None:
    need(png.AVAILABLE, "the fast PNG decoder (compare/imaging/_wuffs.c)")


def need_compiled_scan() -> None:
    need(pixelmatch.COMPILED_SCAN, "pixelmatch's compiled scan (compare/imaging/_pixelmatch.c)")
