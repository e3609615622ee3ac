"""The seam between snapcompare and a blob store."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from .errors import StoreError

_P = ParamSpec("_P")
_T = TypeVar("_T")


@runtime_checkable
class BlobFetcher(Protocol):
    """Reads one blob by key from a store.

    ``fetch(key)`` returns the blob's complete bytes. Implementations must be:

    - thread-safe: one instance serves many threads at once (the `BatchPrefetcher` calls it
      from each of its workers);
    - one request per call: a single GET, no HEAD or size lookup first, and no retries of
      their own (the SDK's retries are turned off; `BatchPrefetcher` is the one retry layer);
    - precise in failure: `BlobNotFound` for a missing key, otherwise a `FetchError` whose
      ``retryable`` says whether trying again may help, with the SDK error chained;
    - clean: every response is read to the end or closed, in a ``try/finally``, so its
      connection goes back to the pool, whether the call succeeds or raises.

    Optional attribute ``max_connections: int | None``: the fetcher's connection pool size
    (None or absent: unbounded or unknown). `BatchPrefetcher` refuses to run more workers than
    that, so no request waits for or discards a connection. Read it with `connection_limit`.
    """

    def fetch(self, key: str) -> bytes:
        """Return the bytes stored under ``key``."""
        ...


@runtime_checkable
class BlobWriter(Protocol):
    """Writes blobs to a store and tells whether one is there; the writing side of `BlobFetcher`.

    The contract is the fetcher's:

    - thread-safe: one instance serves many threads at once (`BatchUploader`'s workers);
    - one request per call: ``put`` is a single upload (no multipart or resumable sessions,
      no read-back), ``exists`` a single metadata request; no retries of their own
      (`BatchUploader` is the one retry layer, with the prefetcher's policy and budget);
    - precise in failure: ``put`` raises `WriteError`, ``exists`` raises `FetchError`, with
      ``retryable`` and ``store_wide`` set as for reads and the SDK error chained;
    - clean: every response is read to the end or closed.

    ``put`` replaces whatever the key held, so writing the same bytes twice is harmless;
    content-addressed callers skip the upload when ``exists`` says the blob is there.
    """

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` with the given MIME type (where the store keeps one)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the store holds a blob under ``key``."""
        ...


def describe_store(store: object) -> str:
    """The store's description for messages: its ``store_url`` (never a credential), else its type."""
    return getattr(store, "store_url", None) or type(store).__name__


def names_store(
    method: Callable[Concatenate[Any, _P], _T],
) -> Callable[Concatenate[Any, _P], _T]:
    """Decorates a backend method so that the `StoreError`s it raises name the store."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except StoreError as error:
            if error.store is None:
                error.store = describe_store(self)
            raise

    return wrapper


class BucketCheck:
    """Tells a missing bucket from a missing key after a 404, asking the store as little as
    possible: ``bucket_exists()`` (one metadata request; True, False, or None when it cannot
    tell) runs only until the bucket has been found once. Thread-safe."""

    def __init__(self, bucket_exists: Callable[[], bool | None]) -> None:
        self._bucket_exists = bucket_exists
        self._found = False
        self._lock = threading.Lock()

    def bucket_missing(self) -> bool:
        """True only when the store said the bucket does not exist."""
        with self._lock:
            if not self._found:
                exists = self._bucket_exists()
                self._found = exists is True
                return exists is False
            return False


def connection_limit(fetcher: BlobFetcher) -> int | None:
    """A fetcher's optional ``max_connections`` (see `BlobFetcher`), None when it has none."""
    return getattr(fetcher, "max_connections", None)


class ClosableFetcher:
    """Base of the fetchers snapcompare ships: ``with fetcher:`` releases its connections.

    A subclass that creates its own client or pool stores it as ``_owned`` (anything with a
    ``close()``); `close` closes that and nothing else, so a client the caller passed in stays
    open. Idempotent.
    """

    _owned: Any = None
    max_connections: int | None = None
    store_url: str | None = None
    """The store as a URL for messages (``s3://bucket/prefix``); never carries a credential."""
    prefix: str = ""
    """What every key is joined under (``1/2`` for ``s3://bucket/1/2``); "" for none, or for
    a folder store, whose keys are relative to its folder."""

    def close(self) -> None:
        """Release the connections this fetcher opened itself."""
        owned, self._owned = self._owned, None
        if owned is not None:
            owned.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
