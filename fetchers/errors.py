"""The errors a store operation can end in, urllib3-style: one base and a subclass per kind.

::

    StoreError                 any failed store operation (key, message, retryable, ...)
    +-- FetchError             a read failed (fetch, exists)
    |   +-- BlobNotFound       the store has no blob under the key
    |   +-- BlobTooLarge       the blob is larger than the fetcher takes (max_blob_bytes)
    |   +-- IntegrityError     the body does not hash to its key
    |   +-- BatchUnsupported   the store has no batch route: fetch the keys one by one
    +-- WriteError             a write failed (put)
    StoreUnavailable           (FetchError and WriteError) the whole store is out of reach

Callers branch on three things: whether the blob is known to be absent (`BlobNotFound`),
whether trying again may help (``retryable``), and whether the failure is the store's rather
than the key's (``store_wide``: no such bucket, denied credentials, unreachable host). The SDK
exception that caused an error is chained as ``__cause__``.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """A store operation on one key failed.

    ``key`` is the key as the caller gave it (without any fetcher prefix). ``retryable`` says
    whether the same request may succeed later: throttling, timeouts, resets, truncated bodies
    and 5xx are; missing keys, denied access, invalid keys and bad configuration are not.
    ``retry_after`` is the server's requested delay in seconds, when it sent one.
    ``store_wide`` marks a failure every key of the store would meet (no such bucket, 401/403,
    connection refused, nothing read within the read timeout): the batch machinery stops early
    on those while the store has not answered once. ``throttled`` marks the
    store asking every client to slow down (429, 503, S3 ``SlowDown``): the batch machinery
    then holds all its requests back, not just this key's. ``store`` describes the store
    (``s3://bucket/prefix``; never a credential) once a backend has named it.
    """

    def __init__(
        self,
        key: str,
        message: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        store_wide: bool = False,
        throttled: bool = False,
        store: str | None = None,
    ) -> None:
        self.key = key
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.store_wide = store_wide
        self.throttled = throttled
        self.store = store
        super().__init__(key, message)

    def __str__(self) -> str:
        text = f"{self.key!r}: {self.message}" if self.message else repr(self.key)
        return f"{self.store}: {text}" if self.store else text

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword-only state across pickling
        state = (self.key, self.message, self.retryable, self.retry_after, self.store_wide, self.throttled,
                 self.store)
        return (_rebuild, (type(self), *state))


def _rebuild(
    cls: type[StoreError],
    key: str,
    message: str,
    retryable: bool,
    retry_after: float | None,
    store_wide: bool = False,
    throttled: bool = False,
    store: str | None = None,
) -> StoreError:
    error = cls.__new__(cls)
    StoreError.__init__(
        error, key, message, retryable=retryable, retry_after=retry_after, store_wide=store_wide,
        throttled=throttled, store=store,
    )
    return error


class FetchError(StoreError):
    """A blob could not be read (or its existence could not be told)."""


class WriteError(StoreError):
    """A blob could not be written."""


class BlobNotFound(FetchError):
    """The store answered that no blob exists under the key."""

    def __init__(self, key: str, message: str = "no such blob") -> None:
        super().__init__(key, message, retryable=False)


class IntegrityError(FetchError):
    """The body received does not hash to the key it was asked for (truncated or corrupt)."""

    def __init__(self, key: str, message: str = "content does not match its sha256 key") -> None:
        super().__init__(key, message, retryable=True)


class BatchUnsupported(FetchError):
    """The store has no route for batch requests (an older server answered 404 or 405): the
    fetcher has switched batching off, and the keys asked for are to be fetched one by one."""


class StoreUnavailable(FetchError, WriteError):
    """The store itself cannot be used: the first operations all failed for one store-wide
    reason (no such bucket, denied credentials, unreachable host).

    Raised by `BatchPrefetcher` and `BatchUploader` instead of one error per key. ``store``
    names the store and ``cause`` is the error that showed it (also chained as ``__cause__``);
    ``str()`` is one line naming both, e.g. ``s3://snaps/1/2: store unavailable: S3
    NoSuchBucket (HTTP 404)``.
    """

    def __init__(self, store: str, cause: StoreError) -> None:
        super().__init__(cause.key, cause.message, store_wide=True, store=store)
        self.cause = cause
        self.__cause__ = cause

    def __str__(self) -> str:
        return f"{self.store}: store unavailable: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.store, self.cause))


class BlobTooLarge(FetchError):
    """The blob is larger than the fetcher takes (its ``max_blob_bytes``); it was not held."""


def blob_too_large(key: str, limit: int, size: int | None = None) -> BlobTooLarge:
    """The error of a blob refused for its size (a fetcher's ``max_blob_bytes``): ``size``
    bytes, or more than ``limit`` when reading stopped at the limit."""
    said = f"{size:,} bytes, more than the {limit:,}" if size is not None else f"more than the {limit:,} bytes"
    return BlobTooLarge(key, f"blob too large: {said} a blob may have here (max_blob_bytes)")
