"""snapcompare's fetch layer: one `BlobFetcher` per store and a `BatchPrefetcher` over any."""

from .config import fetcher_from_url
from .errors import BlobNotFound, FetchError, IntegrityError
from .local import LocalFetcher
from .prefetch import BatchPrefetcher, BatchResult, BatchStats
from .protocol import BlobFetcher, ClosableFetcher
from .retry import RetryBudget, RetryPolicy


def __getattr__(name: str):
    # The store backends import their SDKs, which are optional extras: load them on first use.
    if name == "S3Fetcher":
        from .s3 import S3Fetcher

        return S3Fetcher
    if name == "GCSFetcher":
        from .gcs import GCSFetcher

        return GCSFetcher
    if name == "ObjectstoreFetcher":
        from .objectstore import ObjectstoreFetcher

        return ObjectstoreFetcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
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
