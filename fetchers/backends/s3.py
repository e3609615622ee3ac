"""`S3Fetcher`: blobs from an S3 bucket (or any S3-compatible store) through boto3."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as SDKConnectionError
from urllib3.exceptions import HTTPError as URLLib3Error

from ..errors import BlobNotFound, FetchError
from ..http import is_retryable_status, parse_retry_after
from ..keys import join_key, normalize_prefix
from ..protocol import ClosableFetcher
from ..registry import bucket_and_prefix

# S3 sends these with statuses that say nothing of retrying (RequestTimeout is a 400).
_TRANSIENT_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
# A transport failure before or during the response (connect, timeout, reset, truncated or
# corrupted body): the same request may well succeed.
_TRANSIENT_SDK_ERRORS = (
    SDKConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    URLLib3Error,
    OSError,
)
_SDK_ERRORS = (ClientError, BotoCoreError, URLLib3Error, OSError)


class S3Fetcher(ClosableFetcher):
    """Reads ``<prefix>/<key>`` from ``bucket`` with one ``GetObject`` per fetch.

    One boto3 client serves every thread. Without ``client``, the fetcher creates it from a
    fresh session: endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``, credentials from
    the standard chain, a pool of ``max_connections``, the given timeouts and no SDK retries
    (`BatchPrefetcher` retries). A given ``client`` is used as is; its pool size is read back
    into ``max_connections``.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: Any = None,
        max_connections: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        if client is None:
            config = Config(
                max_pool_connections=max_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
            )
            # Sessions are not thread-safe, clients are: build one client, share only it.
            try:
                client = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint_url, region_name=region_name, config=config
                )
            except BotoCoreError as exc:  # e.g. an invalid region; resolves no credentials
                raise ValueError(f"S3 client configuration: {type(exc).__name__}: {exc}") from exc
            self._owned = client
        self._client = client
        self.max_connections: int = client.meta.config.max_pool_connections

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> S3Fetcher:
        """The fetcher of an ``s3://bucket/prefix`` URL."""
        bucket, prefix = bucket_and_prefix(parts)
        return cls(bucket, prefix=prefix, **options)

    def fetch(self, key: str) -> bytes:
        """Return the bytes of ``key``; raise `BlobNotFound` or another `FetchError`."""
        object_key = join_key(self.prefix, key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            body = response["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        except _SDK_ERRORS as exc:
            raise _fetch_error(key, exc) from exc
        expected = response.get("ContentLength")
        if expected is not None and len(data) != expected:
            raise FetchError(
                key, f"truncated body: {len(data)} of {expected} bytes", retryable=True
            )
        return data


    def __repr__(self) -> str:
        return f"S3Fetcher(bucket={self.bucket!r}, prefix={self.prefix!r})"


def _fetch_error(key: str, exc: Exception) -> FetchError:
    """Classify an SDK or transport exception; messages name error codes and types only."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        status = metadata.get("HTTPStatusCode")
        message = f"S3 {code or 'error'} (HTTP {status})"
        if code == "NoSuchBucket":
            return FetchError(key, message)
        if code == "NoSuchKey" or status == 404:
            return BlobNotFound(key)
        throttled = code in _TRANSIENT_CODES or code.startswith("Throttling")
        if throttled or is_retryable_status(status):
            retry_after = parse_retry_after(metadata.get("HTTPHeaders", {}).get("retry-after"))
            return FetchError(key, message, retryable=True, retry_after=retry_after)
        return FetchError(key, message)
    kind = type(exc).__name__
    if isinstance(exc, _TRANSIENT_SDK_ERRORS):
        return FetchError(key, f"transport failure ({kind})", retryable=True)
    return FetchError(key, f"S3 client error ({kind})")
