"""Google Cloud Storage: `GCSFetcher`, over google-cloud-storage."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult

import google_crc32c
import requests
from requests.adapters import HTTPAdapter
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption

from ..errors import BlobNotFound, FetchError, IntegrityError
from ..http import is_retryable_status, parse_retry_after
from ..keys import join_key, normalize_prefix
from ..protocol import ClosableFetcher
from ..registry import bucket_and_prefix

# The SDK checks the body against the object's crc32c, or its md5 where only the slow
# pure-Python crc32c is installed.
_CHECKSUM = "crc32c" if google_crc32c.implementation == "c" else "md5"

_RETRYABLE_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class GCSFetcher(ClosableFetcher):
    """Reads blobs from a GCS bucket, ``prefix/key`` for each key, with one media GET per call.

    Without ``client``, one `google.cloud.storage.Client` (for ``project``; downloads need
    none) is created and shared by all threads: ``STORAGE_EMULATOR_HOST`` points it at an
    emulator with anonymous credentials, otherwise Application Default Credentials apply. Its
    HTTP pool holds ``max_connections`` connections, and its background bucket-metadata
    lookups are off. (Where the SDK sets up a client-certificate (mTLS) session, that HTTPS
    adapter keeps the SDK's pool size.) A ``client`` given is used as it is: size its pool to
    the concurrency it serves, and set ``DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA=true``
    to keep it from looking up bucket metadata in the background.

    Each fetch is ``download_as_bytes`` with the SDK's checksum validation, timeouts of
    ``(connect_timeout, read_timeout)`` seconds and the SDK's retries off. A missing object
    (or bucket: GCS answers both with 404) raises `BlobNotFound`; a checksum mismatch an
    `IntegrityError`; anything else a `FetchError`, retryable for throttling, 5xx, timeouts,
    resets and truncated bodies, not for 401/403 and other client errors.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: storage.Client | None = None,
        max_connections: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        project: str | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("GCS bucket name is empty")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.max_connections = max_connections
        self._prefix = normalize_prefix(prefix)
        self._timeout = (connect_timeout, read_timeout)
        if client is None:
            client = self._owned = _create_client(project, max_connections)
        self._client = client
        self._bucket = self._client.bucket(bucket)

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> GCSFetcher:
        """The fetcher of a ``gs://bucket/prefix`` URL."""
        bucket, prefix = bucket_and_prefix(parts)
        return cls(bucket, prefix=prefix, **options)

    def fetch(self, key: str) -> bytes:
        """Return the bytes of ``prefix/key``; raise `FetchError` (or a subclass) on failure."""
        name = join_key(self._prefix, key)
        blob = self._bucket.blob(name)  # no metadata GET: the media URL is built from the name
        try:
            return blob.download_as_bytes(checksum=_CHECKSUM, timeout=self._timeout, retry=None)
        except Exception as exc:
            raise _fetch_error(key, exc) from exc



def _create_client(project: str | None, max_connections: int) -> storage.Client:
    try:
        client = storage.Client(project=project)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ValueError(f"GCS credentials: {exc}") from exc
    # The SDK fetches bucket metadata in background threads on a bucket's first use and
    # after every 404 (googleapis/google-cloud-python#17650): extra GETs, and threads
    # nobody joins. Without the cache, a fetch is one GET and nothing else.
    client._bucket_metadata_cache = None
    session = client._http
    prefixes = ("http://",) if session.is_mtls else ("http://", "https://")
    for prefix in prefixes:
        session.mount(
            prefix,
            HTTPAdapter(pool_connections=max_connections, pool_maxsize=max_connections),
        )
    return client


def _fetch_error(key: str, exc: Exception) -> FetchError:
    """The `FetchError` an SDK exception means; messages name no URL, header or credential."""
    kind = type(exc).__name__
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        status = exc.code
        if status == 404:
            return BlobNotFound(key)
        response = exc.response
        headers = getattr(response, "headers", None) or {}
        return FetchError(
            key,
            f"GCS answered HTTP {status} ({kind})",
            retryable=is_retryable_status(status),
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if isinstance(exc, DataCorruption):
        return IntegrityError(key, f"body does not match the object's {_CHECKSUM} checksum")
    if isinstance(exc, _RETRYABLE_TRANSPORT_ERRORS):
        return FetchError(key, f"transfer failed ({kind})", retryable=True)
    if isinstance(exc, requests.exceptions.RequestException):
        return FetchError(key, f"request could not be made ({kind})")
    if isinstance(exc, OSError):
        # The SDK raises the builtin ConnectionError for a body shorter than the object.
        return FetchError(key, f"transfer failed ({kind})", retryable=True)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        retryable = isinstance(exc, auth_exceptions.TransportError) or exc.retryable
        return FetchError(key, f"credentials failed ({kind})", retryable=retryable)
    return FetchError(key, f"unexpected error ({kind})")
