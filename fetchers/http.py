"""HTTP facts shared by the backends that speak HTTP: which statuses are worth retrying and
what a ``Retry-After`` header asks for."""

from __future__ import annotations

import email.utils
import time

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int | None) -> bool:
    """True for throttling, request timeouts and server errors (429, 408, 5xx)."""
    return status is not None and (status in RETRYABLE_STATUSES or 500 <= status <= 599)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Returns None for a missing or unparseable value; never a negative number.
    ``parse_retry_after("3")`` -> 3.0; a date 2 s in the future -> about 2.0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
