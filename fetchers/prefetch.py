"""`BatchPrefetcher`: reads batches of blobs through a `BlobFetcher` on the batch machinery
(`fetchers.batch.BatchRunner`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .batch import DEFAULT_DEADLINE, BatchRunner, CallStats, Groups, close_answers
from .errors import FetchError, StoreError
from .keys import check_digest
from .protocol import BlobFetcher, ManyFetcher
from .retry import RetryBudget, RetryPolicy


@dataclass
class BatchStats(CallStats):
    """What one `fetch_all` or `iter_fetch` call did; ``fetches_issued`` counts every call to
    the fetcher (first attempts and retries), a key in a batch request counting as one
    (``batch_requests`` counts those requests)."""

    fetches_issued: int = 0
    bytes_fetched: int = 0

    def count_request(self) -> None:
        self.fetches_issued += 1


@dataclass
class BatchResult:
    """The outcome of `BatchPrefetcher.fetch_all`: every unique key is in exactly one map."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, FetchError] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)


class BatchPrefetcher(BatchRunner):
    """Fetches batches of keys through one fetcher on a `BatchRunner`'s workers.

    Everything `BatchRunner` says holds, with a key's job being one fetch (and its retries).
    ``verify=True`` treats keys as the sha256 hex of their content and reports a body that
    does not match as an `IntegrityError` (retried per the policy). `iter_fetch` keeps at
    most ``max_pending`` keys (None, the default: `fetchers.batch.LOOKAHEAD_PER_WORKER` per
    worker) and about ``max_pending_bytes`` bytes fetched or in flight ahead of its consumer;
    `fetch_all`, whose caller takes nothing before the end, runs every key as fast as the
    workers allow.
    ``deadline`` bounds each key's fetch, retries included (see `BatchRunner`). Calls never
    raise a per-key fetch error, only `StoreUnavailable`, and the bugs `BatchRunner` raises.

    A fetcher that can read many keys a request (a `fetchers.protocol.ManyFetcher` whose
    ``batch_keys`` is above 0) is used that way (`fetchers.batch.Groups`): each request carries
    at most ``batch_keys`` keys and about ``max_batch_bytes`` expected bytes (the mean size of
    the blobs fetched so far), each blob is handed over (and verified) as its part arrives, and
    everything above holds per key. ``max_pending`` then defaults to at least ``batch_keys``, so
    that the memory budget, not the count, sizes the requests of `iter_fetch`. Should the store
    turn out to have no batch route, the keys go one a request and ``batch_fallback`` in the
    call's stats says so.
    """

    def __init__(
        self,
        fetcher: BlobFetcher,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        verify: bool = False,
        max_pending: int | None = None,
        max_pending_bytes: int = 256 * 1024 * 1024,
        fail_fast_after: int = 3,
        deadline: float = DEFAULT_DEADLINE,
        max_batch_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        if not isinstance(fetcher, BlobFetcher):
            raise TypeError(f"{fetcher!r} has no fetch(key) method")
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        if max_pending_bytes < 1:
            raise ValueError(f"max_pending_bytes must be at least 1, got {max_pending_bytes}")
        super().__init__(
            fetcher, max_workers=max_workers, retry=retry, budget=budget, fail_fast_after=fail_fast_after,
            deadline=deadline, thread_name="snapcompare-fetch",
        )
        self.fetcher = fetcher
        self.verify = verify
        self._many = fetcher if isinstance(fetcher, ManyFetcher) else None
        self._groups = None if self._many is None else Groups(
            self, self._read_many, max_keys=lambda: self._many.batch_keys if self._many else 0,
            fallback=self._fetch, max_bytes=max_batch_bytes,
        )
        lookahead = max(self.default_lookahead, self._many.batch_keys if self._many else 0)
        self.max_pending = lookahead if max_pending is None else max_pending
        self.max_pending_bytes = max_pending_bytes

    def __enter__(self) -> BatchPrefetcher:
        return self

    def fetch_all(self, keys: Iterable[str]) -> BatchResult:
        """Fetch every unique key, with no bound on the keys run ahead (see the class); return
        blobs and errors. Raises `StoreUnavailable`, and what `BatchRunner.stream` raises."""
        result = BatchResult()
        for key, value in self._fetching(keys, result.stats, max_pending=None, max_bytes=None):
            if isinstance(value, StoreError):
                result.errors[key] = value
            else:
                result.blobs[key] = value
        return result

    def iter_fetch(
        self, keys: Iterable[str], *, stats: BatchStats | None = None
    ) -> Iterator[tuple[str, bytes | FetchError]]:
        """Yield ``(key, bytes or FetchError)`` for each unique key as its fetch completes.

        Fetching runs ahead of the consumer by at most ``max_pending`` keys and about
        ``max_pending_bytes`` bytes. Closing the iterator early (``break``, an exception in
        the consumer) cancels this call's fetches that have not started. ``stats``, when
        given, is filled in as the call runs. Raises `StoreUnavailable`, and what
        `BatchRunner.stream` raises.
        """
        return self._fetching(
            keys, stats if stats is not None else BatchStats(),
            max_pending=self.max_pending, max_bytes=self.max_pending_bytes,
        )

    def _fetching(
        self, keys: Iterable[str], stats: BatchStats, *, max_pending: int | None, max_bytes: int | None
    ) -> Iterator[tuple[str, bytes | FetchError]]:
        if self._groups is not None and not self._groups.on:
            # Switched off by this prefetcher's own calls, or before it (a manifest read, say).
            stats.batch_fallback = self._groups.note or getattr(self._many, "batch_note", None) or ""
        for key, value in self.stream(keys, stats, self._fetch, max_pending=max_pending, max_bytes=max_bytes,
                                      groups=self._groups):
            if not isinstance(value, StoreError):
                stats.bytes_fetched += len(value)
            yield key, value

    def _fetch(self, key: str, stats: BatchStats, stop: threading.Event) -> bytes:
        return self.with_retries(key, lambda: self._checked(key, self.fetcher.fetch(key)), stats, stop)

    def _read_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes | FetchError]]:
        """One batch request for ``keys``: each key's checked blob or its error, as it arrives."""
        assert self._many is not None
        answers = self._many.fetch_many(keys)
        try:
            for key, value in answers:
                if not isinstance(value, FetchError):
                    try:
                        value = self._checked(key, value)
                    except FetchError as error:
                        value = error
                yield key, value
        finally:
            close_answers(answers)

    def _checked(self, key: str, data: object) -> bytes:
        """The blob a fetcher returned for ``key``, as bytes, checked against its key if
        ``verify``; a `FetchError` if it is no bytes, an `IntegrityError` if it does not match."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FetchError(key, f"fetcher returned {type(data).__name__}, not bytes")
        data = bytes(data)
        if self.verify:
            check_digest(key, data)
        return data
