"""HTTP facts shared by the backends that speak HTTP: which statuses are worth retrying, which
concern the whole store, what a ``Retry-After`` header asks for, and whether a transport
failure was a failure to connect at all."""

from __future__ import annotations

import socket
from collections.abc import Callable

from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, ReadTimeoutError
from urllib3.util.retry import Retry

from .errors import StoreError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# urllib3's parser is a method of its policy; a policy with no retries of its own lends it.
_PARSER = Retry(0)


def is_retryable_status(status: int | None) -> bool:
    """True for throttling, request timeouts and server errors (429, 408, 5xx)."""
    return status is not None and (status in RETRYABLE_STATUSES or 500 <= status <= 599)


def is_lasting_status(status: int | None) -> bool:
    """True for answers that will be the same next time: redirects and client errors (denied,
    another region, a store without the operation), not throttling or timeouts."""
    return status is not None and 300 <= status < 500 and not is_retryable_status(status)


def is_throttling_status(status: int | None) -> bool:
    """True for 429 and 503: the server asks its clients to slow down."""
    return status in (429, 503)


def is_denied_status(status: int | None) -> bool:
    """True for 401 and 403: the credentials are missing, wrong or not allowed, for every key."""
    return status in (401, 403)


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


def is_connect_failure(exc: BaseException) -> bool:
    """True when ``exc``, or an exception it wraps, is a failure to open a connection: refused,
    unreachable, name not resolved or connect timeout (urllib3's `NewConnectionError` and
    `ConnectTimeoutError`), which every request to the same host would meet."""
    return _wraps(exc, (ConnectTimeoutError, ConnectionRefusedError, socket.gaierror))


def is_unanswered(exc: BaseException, *timeouts: type[BaseException]) -> bool:
    """True when ``exc``, or an exception it wraps, is a read timeout: the store let the read
    timeout pass without a byte (urllib3's `ReadTimeoutError`, a socket timeout, or one of
    ``timeouts``, an SDK's own). Until a store has answered once, that says it does not answer
    at all, as a failure to connect does."""
    return _wraps(exc, (ReadTimeoutError, TimeoutError, *timeouts))


def unanswered_error(
    key: str,
    exc: BaseException,
    kind: type[StoreError],
    name: str,
    *,
    connect_failed: Callable[[BaseException], bool] = is_connect_failure,
    timeouts: tuple[type[BaseException], ...] = (),
) -> StoreError | None:
    """``kind``'s error for a request the store never answered, store-wide and retryable, worded
    alike by every backend: "cannot connect to the endpoint (``name``)" when ``connect_failed``
    (`is_connect_failure`, or the SDK's own test), "nothing read within the read timeout
    (``name``)" when `is_unanswered` (with the SDK's ``timeouts``); None for any other failure."""
    if connect_failed(exc):
        what = "cannot connect to the endpoint"
    elif is_unanswered(exc, *timeouts):
        what = "nothing read within the read timeout"
    else:
        return None
    return kind(key, f"{what} ({name})", retryable=True, store_wide=True)


def _wraps(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or an exception it wraps (cause, context, ``reason``, arguments) is one of ``kinds``."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, kinds):
            return True
        todo += [error.__cause__, error.__context__, getattr(error, "reason", None), *error.args]
    return False
