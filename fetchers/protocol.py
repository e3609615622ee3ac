"""The seam between snapcompare and a blob store."""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from .errors import FetchError, StoreError, WriteError
from .inflight import RequestSockets

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

    Optional method ``interrupt(thread_id: int)``: end at once the request that thread has in
    flight (its blocked read returns, the call raises a retryable `FetchError`). The batch
    machinery calls it when a request passes its deadline or the batch closes; without it a
    request runs until the store's own timeouts end it.

    Optional capability: `ManyFetcher` (many keys a request).
    """

    def fetch(self, key: str) -> bytes:
        """Return the bytes stored under ``key``."""
        ...


@runtime_checkable
class ManyFetcher(BlobFetcher, Protocol):
    """A `BlobFetcher` that can also read many blobs with one request: an optional capability,
    which `BatchPrefetcher` uses when a fetcher offers it.

    ``batch_keys`` is the most keys one ``fetch_many`` call takes; 0 while batching is off
    (switched off, or the store turned out to have no batch route). ``fetch_many(keys)``, for
    at most that many distinct keys, is:

    - one request, with no retries of its own; thread-safe, and interruptible as ``fetch`` is
      (the request runs on the calling thread);
    - streamed: it yields ``(key, bytes)`` or ``(key, FetchError)`` for each key as its answer
      arrives, in any order, each key once; the bytes are what ``fetch`` returns;
    - precise in failure: each key's error is what ``fetch`` would raise for it alone
      (`BlobNotFound`, a throttled key's retryable error); a key the answer leaves out ends in
      a retryable error. A failure of the whole request (refused, cut off) raises a
      `FetchError` whose flags hold for every key not answered yet; `BatchUnsupported` when
      the store has no batch route, after which ``batch_keys`` is 0;
    - clean: its response is read to the end, or closed, however the iteration ends.

    A fetcher may also have ``batch_note``: why batching went off when the store turned out to
    have no batch route (None until then), which a call that finds batching off reports.
    """

    @property
    def batch_keys(self) -> int:
        """The most keys one `fetch_many` call takes; 0 while batching is off."""
        ...

    def fetch_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes | FetchError]]:
        """Yield ``(key, bytes or FetchError)`` for each of ``keys`` as its answer arrives."""
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

    Optional method ``stat(key) -> StoredBlob | None``: like ``exists`` (one metadata request,
    None when absent) but with what the store keeps of the blob, its size and checksums, so
    that `BatchUploader` can tell a blob holding other bytes than its key says.

    Optional capability: `ManyWriter` (many checks or writes a request).
    """

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` with the given MIME type (where the store keeps one)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the store holds a blob under ``key``."""
        ...


@runtime_checkable
class ManyWriter(BlobWriter, Protocol):
    """A `BlobWriter` that can also check and write many blobs a request: an optional
    capability, which `BatchUploader` uses when a writer offers it.

    ``batch_keys`` is as `ManyFetcher` has it, ``max_batch_blob`` the largest blob ``put_many``
    takes. ``stat_many(keys)`` is ``stat`` (`BlobWriter`) for many keys and ``put_many(blobs)``
    ``put`` for many ``(key, data, content_type)``, each one request whose answers are yielded
    as they arrive, with every promise of `ManyFetcher.fetch_many` (a whole request's failure
    raised, `BatchUnsupported` when the store has no batch route); ``put_many`` yields
    ``(key, None)`` for a blob stored and ``(key, WriteError)`` for one that is not.
    """

    @property
    def batch_keys(self) -> int:
        """The most keys one `stat_many` or `put_many` call takes; 0 while batching is off."""
        ...

    @property
    def max_batch_blob(self) -> int:
        """The largest blob, in bytes, `put_many` takes."""
        ...

    def stat_many(self, keys: Sequence[str]) -> Iterator[tuple[str, StoredBlob | None | FetchError]]:
        """Yield ``(key, what the store keeps of it, None if nothing, or FetchError)``."""
        ...

    def put_many(self, blobs: Sequence[tuple[str, bytes, str]]) -> Iterator[tuple[str, WriteError | None]]:
        """Yield ``(key, None once stored, or WriteError)`` for each ``(key, data, content_type)``."""
        ...


@dataclass(frozen=True)
class StoredBlob:
    """What a store keeps of a blob besides its bytes: its ``size`` and the hex digests it
    offers (``md5``: S3's ETag of a single-part upload, GCS's md5Hash; ``sha256``: a local
    store, which hashes the file). None where the store tells nothing."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    def holds(self, key: str, data: Callable[[], bytes], size: int | None = None) -> bool | None:
        """Whether this blob is the content whose sha256 hex is ``key``.

        ``data`` reads that content; it is called only when a stored md5 must be compared.
        ``size``, the content's size when known without reading it, is compared first.
        None when the store keeps nothing that can tell (no checksum, and the size agrees).
        """
        if self.sha256 is not None:
            return self.sha256 == key.lower()
        if size is not None and self.size is not None and size != self.size:
            return False
        if self.md5 is None:
            return None
        content = data()
        if self.size is not None and len(content) != self.size:
            return False
        return hashlib.md5(content, usedforsecurity=False).hexdigest() == self.md5.lower()


def describe_store(store: object) -> str:
    """The store's description for messages: its ``store_url`` (never a credential), else its type."""
    return getattr(store, "store_url", None) or type(store).__name__


def check_max_blob_bytes(limit: int | None) -> int | None:
    """A fetcher's ``max_blob_bytes`` option, checked: None (no limit) or a positive int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_blob_bytes must be a positive number of bytes or None, got {limit!r}")
    return limit


def names_store(
    method: Callable[Concatenate[Any, _P], _T],
) -> Callable[Concatenate[Any, _P], _T]:
    """Decorates a backend method so that the `StoreError`s it raises name the store."""

    def wrapper(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except StoreError as error:
            if error.store is None:
                error.store = describe_store(self)
            raise

    functools.update_wrapper(wrapper, method)
    return wrapper


class BucketCheck:
    """Tells a missing bucket from a missing key after a 404, asking the store as little as
    possible: ``bucket_exists()`` (one metadata request) answers True, False, or None when it
    cannot tell for good (credentials that may read objects but not the bucket's metadata), and
    raises for a failure that may pass (5xx, a timeout, a request interrupted). An answer stands
    for every later call. Callers that come while a request runs take its outcome rather than
    ask too; after a failure that outcome is "not missing" (the 404 is the key's own), and the
    next caller to come asks again. Thread-safe; a caller interrupted while asking
    (KeyboardInterrupt) leaves no other waiting."""

    def __init__(self, bucket_exists: Callable[[], bool | None]) -> None:
        self._bucket_exists = bucket_exists
        self._missing: bool | None = None  # the answer, once the store gave one
        self._asking = False
        self._asked = 0  # requests ended
        self._last = False  # whether the last request to end found the bucket missing
        self._changed = threading.Condition()

    def bucket_missing(self) -> bool:
        """True only when the store said the bucket does not exist."""
        with self._changed:
            if self._missing is not None:
                return self._missing
            if self._asking:
                asked = self._asked
                while self._asked == asked:
                    self._changed.wait()
                return self._last
            self._asking = True
        missing: bool | None = None
        try:
            missing = self._bucket_exists() is False
        except Exception:  # noqa: BLE001 - a failure that may pass: the key's own 404 stands
            pass
        finally:
            with self._changed:
                self._missing, self._last = missing, bool(missing)
                self._asking = False
                self._asked += 1
                self._changed.notify_all()
        return bool(missing)


def connection_limit(fetcher: object) -> int | None:
    """A fetcher's optional ``max_connections`` (see `BlobFetcher`), None when it has none."""
    limit = getattr(fetcher, "max_connections", None)
    return limit if isinstance(limit, int) else None


class ClosableFetcher:
    """Base of the fetchers snapcompare ships: ``with fetcher:`` releases its connections.

    A subclass that creates its own client or pool stores it as ``_owned`` (anything with a
    ``close()``); `close` closes that and nothing else, so a client the caller passed in stays
    open. One whose pool reports its requests to a `fetchers.inflight.RequestSockets` hands it
    to `_track_requests`: the fetcher then has ``interrupt`` (see `BlobFetcher`; others have
    none), and `close` interrupts every request still in flight first. Idempotent.
    """

    _owned: Any = None
    _sockets: RequestSockets | None = None
    interrupt: Callable[[int], None]
    """``interrupt(thread_id)``: set by `_track_requests` only; absent on fetchers that cannot."""
    max_connections: int | None = None
    max_blob_bytes: int | None = None
    """The most bytes a blob `fetch` returns may have; a larger one is refused before it is
    held (None: no bound). See `limited`."""
    store_url: str | None = None
    """The store as a URL for messages (``s3://bucket/prefix``); never carries a credential."""
    prefix: str = ""
    """What every key is joined under (``1/2`` for ``s3://bucket/1/2``); "" for none, or for
    a folder store, whose keys are relative to its folder."""

    def _track_requests(self, sockets: RequestSockets) -> None:
        """Make the requests ``sockets`` records interruptible: ``interrupt(thread_id)``."""
        self._sockets = sockets
        self.interrupt = sockets.interrupt

    def limited(self, max_blob_bytes: int | None) -> Self:
        """This fetcher with another ``max_blob_bytes``, sharing its client, connections and
        ``interrupt``; this one keeps owning them (closing the other closes nothing)."""
        other = copy.copy(self)
        other.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        other._owned = other._sockets = None
        return other

    def close(self) -> None:
        """End the requests still in flight and release the connections this fetcher opened."""
        if self._sockets is not None:
            self._sockets.interrupt_all()
        owned, self._owned = self._owned, None
        if owned is not None:
            owned.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
