"""HTTP facts shared by the backends that speak HTTP: which statuses are worth retrying and
what a ``Retry-After`` header asks for."""

from __future__ import annotations

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# urllib3's parser is a method of its policy; a policy with no retries of its own lends it.
_PARSER = Retry(0)


def is_retryable_status(status: int | None) -> bool:
    """True for throttling, request timeouts and server errors (429, 408, 5xx)."""
    return status is not None and (status in RETRYABLE_STATUSES or 500 <= status <= 599)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, by urllib3's parser: delta-seconds (whole
    seconds, as RFC 9110 has them) or an HTTP date; never negative.

    Returns None for a missing or unparseable value. ``parse_retry_after("3")`` -> 3.0; a date
    2 s in the future -> about 2.0.
    """
    if value is None:
        return None
    try:
        return float(_PARSER.parse_retry_after(value))
    except InvalidHeader:
        return None
