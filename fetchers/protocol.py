"""The seam between snapcompare and a blob store."""

from __future__ import annotations

from typing import Any, Protocol, Self, runtime_checkable


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

    def close(self) -> None:
        """Release the connections this fetcher opened itself."""
        owned, self._owned = self._owned, None
        if owned is not None:
            owned.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
