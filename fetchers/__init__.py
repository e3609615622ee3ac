"""snapcompare's store layer: one backend per store, each a `BlobFetcher` and a `BlobWriter`,
and `BatchPrefetcher` / `BatchUploader` over any.

Layout: `protocol` (the seams), `errors`, `retry` (policy and budget), `batch` (the batch
machinery, `BatchRunner`), `prefetch` (the batch fetcher), `upload` (the batch uploader),
`registry` (every backend named once, store URLs), `keys` (key checks), `inflight`
(interrupting a request on the wire), `files` (reading regular files only, within a size),
`formdata` (the multipart bodies of batch requests, read as they stream) and `backends/` (one
module per store, each importing its own SDK). It knows nothing of `compare`.
"""

from .batch import DEFAULT_DEADLINE, BatchRunner, CallStats
from .errors import (
    BatchUnsupported,
    BlobNotFound,
    BlobTooLarge,
    FetchError,
    IntegrityError,
    StoreError,
    StoreUnavailable,
    WriteError,
)
from .prefetch import BatchPrefetcher, BatchResult, BatchStats
from .protocol import BlobFetcher, BlobWriter, ClosableFetcher, ManyFetcher, ManyWriter, StoredBlob
from .registry import BACKENDS, backend_by_class, fetcher_from_url, token_env
from .retry import RetryBudget, RetryPolicy
from .upload import DEFAULT_MAX_BYTES, BatchUploader, BlobSource, UploadResult, UploadStats


def __getattr__(name: str) -> type:
    # Backends import their SDKs, optional extras: each class is loaded on first use.
    backend = backend_by_class(name)
    if backend is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return backend.load()


__all__ = [
    "BACKENDS",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BYTES",
    "BatchPrefetcher",
    "BatchResult",
    "BatchRunner",
    "BatchStats",
    "BatchUnsupported",
    "BatchUploader",
    "BlobFetcher",
    "BlobNotFound",
    "BlobTooLarge",
    "BlobSource",
    "BlobWriter",
    "CallStats",
    "ClosableFetcher",
    "FetchError",
    "GCSFetcher",
    "IntegrityError",
    "LocalFetcher",
    "ManyFetcher",
    "ManyWriter",
    "ObjectstoreFetcher",
    "RetryBudget",
    "RetryPolicy",
    "S3Fetcher",
    "StoreError",
    "StoreUnavailable",
    "StoredBlob",
    "UploadResult",
    "UploadStats",
    "WriteError",
    "fetcher_from_url",
    "token_env",
]
