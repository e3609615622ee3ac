"""`S3Fetcher`: blobs from an S3 bucket (or any S3-compatible store) through boto3."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

import boto3
from botocore.config import Config
from botocore.endpoint import Endpoint
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as SDKConnectionError
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import HTTPError as URLLib3Error

from ..errors import BlobNotFound, FetchError, IntegrityError, StoreError, WriteError, blob_too_large
from ..http import (
    is_denied_status,
    is_lasting_status,
    is_retryable_status,
    is_throttling_status,
    parse_retry_after,
    unanswered_error,
)
from ..inflight import RequestSockets, tracked_pool_class
from ..keys import is_md5_hex, join_key, normalize_prefix
from ..protocol import BucketCheck, ClosableFetcher, StoredBlob, check_max_blob_bytes, names_store
from ..registry import carries_credentials, check_network_options, from_bucket_url
from . import sdk_internal

SUPPORTED_SDK = ">=1.35,<2"
"""The botocore versions whose internals `S3Fetcher` relies on to interrupt requests: a
client's ``_endpoint``, its ``http_session`` and that session's ``_pool_classes_by_scheme``."""

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
# Codes that every key of the bucket would get: the bucket or the credentials are wrong.
_STORE_WIDE_CODES = frozenset({
    "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "AllAccessDisabled", "InvalidToken", "ExpiredToken", "PermanentRedirect",
})
# Encryption that makes an object's ETag something other than the MD5 of its bytes.
_ETAG_NOT_MD5 = frozenset({"aws:kms", "aws:kms:dsse"})


class S3Fetcher(ClosableFetcher):
    """Reads ``<prefix>/<key>`` from ``bucket`` with one ``GetObject`` per fetch, writes it
    with one ``PutObject`` per `put` and tells whether it exists (`exists`, `stat`: its size
    and, where the ETag is the MD5 of the bytes, that) with one ``HeadObject``.

    One boto3 client serves every thread. Without ``client``, the fetcher creates it from a
    fresh session: endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``, credentials from
    the standard chain, a pool of ``max_connections``, the given timeouts and no SDK retries
    (`BatchPrefetcher` retries), and its requests can be interrupted (`interrupt`). A given
    ``client`` is used as is; its pool size is read back into ``max_connections``. An endpoint
    URL with credentials in it (``user:password@``) is refused, and never shown.

    ``max_blob_bytes``: a larger object is refused (a non-retryable `FetchError`) by the size
    its ``GetObject`` answer declares, its body not read (by what was read, past that many
    bytes, when it declares none).
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
        max_blob_bytes: int | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("S3 bucket name is empty")
        self.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        check_network_options(
            max_connections=max_connections, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.store_url = f"s3://{bucket}/{self.prefix}"
        self._bucket_check = BucketCheck(self._bucket_exists)
        if client is None:
            config = Config(
                max_pool_connections=max_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
            )
            client = self._owned = _create_client(endpoint_url, region_name, config)
        try:
            if carries_credentials(urlsplit(client.meta.endpoint_url)):
                raise ValueError("S3 endpoint URL must not carry credentials (user:password@): "
                                 "configure them the SDK's own way")
            if self._owned is not None:
                self._track_requests(_tracked_sockets(client))
        except BaseException:
            self.close()
            raise
        self._client = client
        self.max_connections: int = client.meta.config.max_pool_connections

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> S3Fetcher:
        """The fetcher of an ``s3://bucket/prefix`` URL."""
        return from_bucket_url(cls, parts, options)

    @names_store
    def fetch(self, key: str) -> bytes:
        """Return the bytes of ``key``; raise `BlobNotFound` or another `FetchError`."""
        object_key = join_key(self.prefix, key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            body = response["Body"]
            limit = self.max_blob_bytes
            try:
                declared = response.get("ContentLength")
                if limit is not None and (declared or 0) > limit:
                    raise blob_too_large(key, limit, declared)  # closing drops the body unread
                data: bytes = body.read() if limit is None else _read_at_most(body, limit + 1)
            finally:
                body.close()
        except _SDK_ERRORS as exc:
            raise _store_error(key, exc, FetchError) from exc
        if limit is not None and len(data) > limit:  # an answer that declared no length
            raise blob_too_large(key, limit)
        expected = response.get("ContentLength")
        if expected is not None and len(data) != expected:
            raise FetchError(
                key, f"truncated body: {len(data)} of {expected} bytes", retryable=True
            )
        return data

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists (see `stat`)."""
        return self.stat(key) is not None

    @names_store
    def stat(self, key: str) -> StoredBlob | None:
        """The object under ``key`` as ``HeadObject`` describes it; None on 404, `FetchError`
        otherwise. Its MD5 is the ETag unless that is not one (a multipart upload's, or under
        KMS or customer-key encryption).

        A HEAD's 404 has no body to tell a missing key from a missing bucket, so after the
        first one the bucket is checked, once (``HeadBucket``; `BucketCheck`).
        """
        object_key = join_key(self.prefix, key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=object_key)
        except _SDK_ERRORS as exc:
            error = _store_error(key, exc, FetchError)
            if not isinstance(error, BlobNotFound):
                raise error from exc
            if self._bucket_check.bucket_missing():
                raise FetchError(key, "S3 NoSuchBucket (HTTP 404)", store_wide=True) from exc
            return None
        etag = str(head.get("ETag", "")).strip('"')
        etag_is_md5 = (is_md5_hex(etag) and head.get("ServerSideEncryption") not in _ETAG_NOT_MD5
                       and not head.get("SSECustomerAlgorithm"))
        return StoredBlob(size=head.get("ContentLength"), md5=etag.lower() if etag_is_md5 else None)

    def _bucket_exists(self) -> bool | None:
        """One ``HeadBucket``: None when it cannot tell for good (denied, or another lasting
        answer such as a redirect to another region); raises the SDK's error for a failure that
        may pass (see `BucketCheck`)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return False
            if is_lasting_status(status):
                return None
            raise
        return True

    @names_store
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write ``data`` under ``key`` with one ``PutObject``; raise `WriteError` on failure."""
        object_key = join_key(self.prefix, key, WriteError)
        try:
            self._client.put_object(Bucket=self.bucket, Key=object_key, Body=data, ContentType=content_type)
        except _SDK_ERRORS as exc:
            raise _store_error(key, exc, WriteError) from exc

    def __repr__(self) -> str:
        return f"S3Fetcher(bucket={self.bucket!r}, prefix={self.prefix!r})"


def _create_client(endpoint_url: str | None, region_name: str | None, config: Config) -> Any:
    """An S3 client from a fresh session; ValueError for a configuration it refuses (an invalid
    endpoint URL is not shown: it may carry credentials)."""
    # Sessions are not thread-safe, clients are: build one client, share only it.
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)
    except BotoCoreError as exc:  # e.g. an invalid region; resolves no credentials
        raise ValueError(f"S3 client configuration: {type(exc).__name__}: {exc}") from exc
    except ValueError:  # botocore's message quotes the URL: raised below, with nothing chained
        pass
    raise ValueError("S3 endpoint URL is not valid (not shown: it may carry credentials)")


def _read_at_most(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a `StreamingBody`, read to its end when it has no more: botocore
    checks the body's length and checksum only on reading its end (a read that returns nothing)."""
    chunks: list[bytes] = []
    while size > 0 and (chunk := body.read(size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _tracked_sockets(client: Any) -> RequestSockets:
    """The requests of a client built here, recorded so they can be interrupted: botocore's HTTP
    session keeps the pool classes its pool managers create pools from in one dict, whose
    classes are swapped for tracked ones (`fetchers.inflight`) before the first request.
    botocore offers no public way to this; `UnsupportedSDK` when its internals have changed."""
    endpoint = sdk_internal(client, "_endpoint", Endpoint, package="botocore", supported=SUPPORTED_SDK)
    session = sdk_internal(endpoint, "http_session", URLLib3Session, package="botocore", supported=SUPPORTED_SDK)
    classes = sdk_internal(session, "_pool_classes_by_scheme", dict, package="botocore", supported=SUPPORTED_SDK)
    sockets = RequestSockets()
    for scheme, pool_class in classes.items():
        classes[scheme] = tracked_pool_class(pool_class, sockets)
    return sockets


def _connect_failed(exc: BaseException) -> bool:
    """Whether botocore could not connect to the endpoint."""
    return isinstance(exc, (EndpointConnectionError, ConnectTimeoutError))


def _store_error(key: str, exc: Exception, kind: type[StoreError]) -> StoreError:
    """Classify an SDK or transport exception as a ``kind`` (or `BlobNotFound`, `IntegrityError`);
    messages name error codes and types only."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        status = metadata.get("HTTPStatusCode")
        message = f"S3 {code or 'error'} (HTTP {status})"
        if code in _STORE_WIDE_CODES or is_denied_status(status):
            return kind(key, message, store_wide=True)
        if kind is FetchError and (code == "NoSuchKey" or status == 404):
            return BlobNotFound(key)
        throttled = code == "SlowDown" or code.startswith("Throttling") or is_throttling_status(status)
        if throttled or code in _TRANSIENT_CODES or is_retryable_status(status):
            retry_after = parse_retry_after(metadata.get("HTTPHeaders", {}).get("retry-after"))
            return kind(key, message, retryable=True, retry_after=retry_after, throttled=throttled)
        return kind(key, message)
    name = type(exc).__name__
    if kind is FetchError and isinstance(exc, (ChecksumError, FlexibleChecksumError)):
        return IntegrityError(key, f"body does not match the object's checksum ({name})")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return kind(key, f"no usable AWS credentials ({name})", store_wide=True)
    unanswered = unanswered_error(key, exc, kind, name, connect_failed=_connect_failed, timeouts=(ReadTimeoutError,))
    if unanswered is not None:
        return unanswered
    if isinstance(exc, _TRANSIENT_SDK_ERRORS):
        return kind(key, f"transport failure ({name})", retryable=True)
    return kind(key, f"S3 client error ({name})")
