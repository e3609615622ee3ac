"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest

from .helpers import Store


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")
