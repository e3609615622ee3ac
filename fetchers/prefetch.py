"""`BatchPrefetcher`: reads batches of blobs through a `BlobFetcher` on the batch machinery
(`fetchers.batch.BatchRunner`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .batch import DEFAULT_DEADLINE, BatchRunner, CallStats
from .errors import FetchError, StoreError
from .keys import check_digest
from .protocol import BlobFetcher
from .retry import RetryBudget, RetryPolicy


@dataclass
class BatchStats(CallStats):
    """What one `fetch_all` or `iter_fetch` call did; ``fetches_issued`` counts every call to
    the fetcher (first attempts and retries)."""

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
    ) -> None:
        if not isinstance(fetcher, BlobFetcher):
            raise TypeError(f"{fetcher!r} has no fetch(key) method")
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        super().__init__(
            fetcher, max_workers=max_workers, retry=retry, budget=budget, fail_fast_after=fail_fast_after,
            deadline=deadline, thread_name="snapcompare-fetch",
        )
        self.fetcher = fetcher
        self.verify = verify
        self.max_pending = self.default_lookahead if max_pending is None else max_pending
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
        for key, value in self.stream(keys, stats, self._fetch, max_pending=max_pending, max_bytes=max_bytes):
            if not isinstance(value, StoreError):
                stats.bytes_fetched += len(value)
            yield key, value

    def _fetch(self, key: str, stats: BatchStats, stop: threading.Event) -> bytes:
        return self.with_retries(key, lambda: self._read(key), stats, stop)

    def _read(self, key: str) -> bytes:
        data = self.fetcher.fetch(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FetchError(key, f"fetcher returned {type(data).__name__}, not bytes")
        data = bytes(data)
        if self.verify:
            check_digest(key, data)
        return data
