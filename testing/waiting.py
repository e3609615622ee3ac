"""Waiting for a condition another thread brings about, with a bound that only a failure reaches."""

from __future__ import annotations

import time
from collections.abc import Callable

PATIENCE = 10.0
"""Seconds a test waits for something that should happen at once before it fails."""


def wait_until(condition: Callable[[], object], timeout: float = PATIENCE) -> None:
    """Return once ``condition()`` is true; fail the test if it is not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)
