"""snapcompare's fetch layer: one `BlobFetcher` per store and a `BatchPrefetcher` over any.

Layout: `protocol` (the seam), `errors`, `retry` (policy and budget), `prefetch` (the batch
fetcher), `registry` (every backend named once, store URLs) and `backends/` (one module per
store, each importing its own SDK). It knows nothing of `compare`.
"""

from .errors import BlobNotFound, FetchError, IntegrityError
from .prefetch import BatchPrefetcher, BatchResult, BatchStats
from .protocol import BlobFetcher, ClosableFetcher
from .registry import BACKENDS, backend_by_class, fetcher_from_url
from .retry import RetryBudget, RetryPolicy


def __getattr__(name: str) -> type:
    # Backends import their SDKs, optional extras: each class is loaded on first use.
    backend = backend_by_class(name)
    if backend is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return backend.load()


__all__ = [
    "BACKENDS",
    "BatchPrefetcher",
    "BatchResult",
    "BatchStats",
    "BlobFetcher",
    "BlobNotFound",
    "ClosableFetcher",
    "FetchError",
    "GCSFetcher",
    "IntegrityError",
    "LocalFetcher",
    "ObjectstoreFetcher",
    "RetryBudget",
    "RetryPolicy",
    "S3Fetcher",
    "fetcher_from_url",
]
