"""Google Cloud Storage: `GCSFetcher`, over google-cloud-storage."""

from __future__ import annotations

import base64
import io
import types
from typing import Any
from urllib.parse import SplitResult

import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from requests.adapters import HTTPAdapter

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
from ..keys import join_key, normalize_prefix
from ..protocol import BucketCheck, ClosableFetcher, StoredBlob, check_max_blob_bytes, names_store
from ..registry import check_network_options, from_bucket_url
from . import sdk_internal

# The SDK checks the body against the object's crc32c, or its md5 where only the slow
# pure-Python crc32c is installed.
_CHECKSUM = "crc32c" if google_crc32c.implementation == "c" else "md5"

_NO_BUCKET = "GCS bucket does not exist (HTTP 404)"

SUPPORTED_SDK = ">=3.11,<4"
"""The google-cloud-storage versions whose internals `GCSFetcher` relies on: a client's
``_http`` session (google-cloud-core's) and ``_bucket_metadata_cache`` (added in 3.11), and a
blob's ``_do_multipart_upload``."""

_SDK_ERRORS = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    DataCorruption,
    InvalidResponse,
    requests.exceptions.RequestException,
    OSError,
)
"""What the SDK raises for a failed request; anything else is a bug and propagates."""

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
    HTTP pool holds ``max_connections`` connections, its requests can be interrupted
    (`interrupt`), and its background bucket-metadata lookups are off. (Where the SDK sets up a
    client-certificate (mTLS) session, that HTTPS adapter keeps the SDK's pool size and its
    requests run to their timeouts.) A ``client`` given is used as it is: size its pool to
    the concurrency it serves (``max_connections`` is read back from it), and set
    ``DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA=true`` to keep it from looking up bucket
    metadata in the background.

    Each fetch is a media download (``download_to_file``) with the SDK's checksum validation,
    timeouts of ``(connect_timeout, read_timeout)`` seconds and the SDK's retries off; past
    ``max_blob_bytes`` bytes it stops and the blob is refused (a non-retryable `FetchError`). A missing object
    raises `BlobNotFound`; a checksum mismatch an `IntegrityError`; anything else a
    `FetchError`, retryable for throttling, 5xx, timeouts, resets and truncated bodies, not
    for 401/403 and other client errors. GCS answers a missing object and a missing bucket
    alike (404), so after the first 404 the fetcher asks once for the bucket's metadata
    (`BucketCheck`): a missing bucket is then a store-wide `FetchError`.

    `put` is one multipart upload, whatever the size (unconditional: it replaces what the key
    held), `exists` and `stat` one object metadata GET (`stat`: its size and md5Hash), all with
    the SDK's retries off.
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
        max_blob_bytes: int | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("GCS bucket name is empty")
        self.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        check_network_options(
            max_connections=max_connections, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self.prefix = normalize_prefix(prefix)
        self._timeout = (connect_timeout, read_timeout)
        if client is None:
            sockets = RequestSockets()
            client = self._owned = _create_client(project, max_connections, sockets)
            self._track_requests(sockets)
        self._client = client
        try:
            self._bucket = client.bucket(bucket)  # ValueError for a name GCS does not allow
            sdk_internal(self._bucket.blob("any"), "_do_multipart_upload", types.MethodType,
                         package="google-cloud-storage", supported=SUPPORTED_SDK)  # see `_upload`
            self.max_connections = _pool_size(client, owned=client is self._owned)
        except BaseException:
            self.close()
            raise
        self._bucket_check = BucketCheck(self._bucket_exists)
        self.store_url = f"gs://{bucket}/{self.prefix}"

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> GCSFetcher:
        """The fetcher of a ``gs://bucket/prefix`` URL."""
        return from_bucket_url(cls, parts, options)

    @names_store
    def fetch(self, key: str) -> bytes:
        """Return the bytes of ``prefix/key``; raise `FetchError` (or a subclass) on failure."""
        blob = self._blob(key)  # no metadata GET: the media URL is built from the name
        sink = _Bounded(self.max_blob_bytes)
        try:
            blob.download_to_file(sink, checksum=_CHECKSUM, timeout=self._timeout, retry=None)
        except _Bounded.Overflow:
            assert self.max_blob_bytes is not None
            raise blob_too_large(key, self.max_blob_bytes) from None
        except _SDK_ERRORS as exc:
            raise self._store_error(key, exc, FetchError) from exc
        return sink.getvalue()

    def exists(self, key: str) -> bool:
        """Whether ``prefix/key`` exists (see `stat`)."""
        return self.stat(key) is not None

    @names_store
    def stat(self, key: str) -> StoredBlob | None:
        """The size and MD5 of ``prefix/key`` (absent for a composite object), None if there is
        none: one object metadata GET (and, after the first 404, one bucket metadata GET until
        the bucket has been found)."""
        try:
            blob = self._bucket.get_blob(join_key(self.prefix, key), timeout=self._timeout, retry=None)
        except _SDK_ERRORS as exc:
            raise self._store_error(key, exc, FetchError) from exc
        if blob is None:
            if self._bucket_check.bucket_missing():
                raise FetchError(key, _NO_BUCKET, store_wide=True)
            return None
        md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
        return StoredBlob(size=blob.size, md5=md5)

    @names_store
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write ``data`` to ``prefix/key`` with one multipart upload (`_upload`); raise
        `WriteError` on failure."""
        blob = self._blob(key, WriteError)
        try:
            _upload(blob, self._client, data, content_type, self._timeout)
        except _SDK_ERRORS as exc:
            raise self._store_error(key, exc, WriteError) from exc

    def _blob(self, key: str, kind: type[StoreError] = FetchError) -> storage.Blob:
        """The object of ``key`` (no request); an invalid key raises ``kind``."""
        return self._bucket.blob(join_key(self.prefix, key, kind))

    def _store_error(self, key: str, exc: Exception, kind: type[StoreError]) -> StoreError:
        """`_store_error`, with a 404 told apart: the key's, or the bucket's."""
        error = _store_error(key, exc, kind)
        if isinstance(exc, api_exceptions.NotFound) and self._bucket_check.bucket_missing():
            return kind(key, _NO_BUCKET, store_wide=True)
        return error

    def _bucket_exists(self) -> bool | None:
        """One bucket metadata GET: None when it cannot tell for good (denied, or another lasting
        answer); raises the SDK's error for a failure that may pass (see `BucketCheck`)."""
        try:
            exists: bool = self._bucket.exists(timeout=self._timeout, retry=None)
        except api_exceptions.GoogleAPICallError as exc:
            if is_lasting_status(exc.code):
                return None
            raise
        return exists


class _Bounded(io.BytesIO):
    """The bytes of a download, which stops (`Overflow` from ``write``) once past ``limit``
    (None: no limit)."""

    class Overflow(Exception):
        pass

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: Any) -> int:
        if self._limit is not None and self.tell() + len(data) > self._limit:
            raise self.Overflow
        return super().write(data)


class _TrackedAdapter(HTTPAdapter):
    """requests' adapter whose urllib3 pools report each request to ``sockets``."""

    def __init__(self, sockets: RequestSockets, **options: Any) -> None:
        self._sockets = sockets  # before HTTPAdapter's __init__, which makes the pool manager
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        manager = self.poolmanager
        manager.pool_classes_by_scheme = {
            scheme: tracked_pool_class(pool_class, self._sockets)
            for scheme, pool_class in manager.pool_classes_by_scheme.items()
        }


def _upload(blob: storage.Blob, client: storage.Client, data: bytes, content_type: str,
            timeout: tuple[float, float]) -> None:
    """Store ``data`` as ``blob`` with one multipart upload (its checksum sent along, which GCS
    checks), whatever its size: the SDK's public uploads switch to a resumable session, two
    requests or more, past 8 MiB. An error status raises the `GoogleAPICallError` the public
    uploads raise for it."""
    try:
        blob._do_multipart_upload(
            client, io.BytesIO(data), content_type, len(data), predefined_acl=None, if_generation_match=None,
            if_generation_not_match=None, if_metageneration_match=None, if_metageneration_not_match=None,
            timeout=timeout, retry=None,
        )
    except InvalidResponse as exc:
        response = exc.response
        raise api_exceptions.from_http_status(  # type: ignore[no-untyped-call]
            response.status_code, str(exc), response=response
        ) from exc


def _pool_size(client: storage.Client, *, owned: bool) -> int | None:
    """The size of the connection pool ``client``'s session keeps for its API endpoint; None
    when its adapter tells none: not requests' own kind, or, in a client made here (``owned``),
    not the one mounted here (the SDK's client-certificate adapter, whose pool is the SDK's: it
    discards connections past its size rather than refuse a concurrency, as before)."""
    session = sdk_internal(client, "_http", requests.Session, package="google-cloud-storage",
                           supported=SUPPORTED_SDK)
    adapter = session.get_adapter(client.api_endpoint)
    if not isinstance(adapter, _TrackedAdapter if owned else HTTPAdapter):
        return None
    size = adapter.poolmanager.connection_pool_kw.get("maxsize")
    return size if isinstance(size, int) else None


def _create_client(project: str | None, max_connections: int, sockets: RequestSockets) -> storage.Client:
    """A client whose pool holds ``max_connections`` tracked connections and which looks up no
    bucket metadata. `UnsupportedSDK` when the SDK's internals this needs have changed."""
    try:
        client = storage.Client(project=project)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ValueError(f"GCS credentials: {exc}") from exc
    try:
        # The SDK fetches bucket metadata in background threads on a bucket's first use and
        # after every 404 (googleapis/google-cloud-python#17650): extra GETs, and threads
        # nobody joins. Its only switch is an environment variable for the whole process;
        # without the client's cache, a fetch is one GET and nothing else.
        sdk_internal(client, "_bucket_metadata_cache", object, package="google-cloud-storage",
                     supported=SUPPORTED_SDK)
        client._bucket_metadata_cache = None
        # The client's HTTP session has no public accessor; its adapters hold the pools.
        session = sdk_internal(client, "_http", AuthorizedSession, package="google-cloud-storage",
                               supported=SUPPORTED_SDK)
        prefixes = ("http://",) if session.is_mtls else ("http://", "https://")
        for prefix in prefixes:
            session.mount(
                prefix,
                _TrackedAdapter(sockets, pool_connections=max_connections, pool_maxsize=max_connections),
            )
    except BaseException:
        client.close()
        raise
    return client


def _store_error(key: str, exc: Exception, kind: type[StoreError]) -> StoreError:
    """The ``kind`` of error (or `BlobNotFound`, `IntegrityError`) an SDK exception (one of
    `_SDK_ERRORS`) means; messages name no URL, header or credential."""
    name = type(exc).__name__
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        status = exc.code
        if status == 404 and kind is FetchError:
            return BlobNotFound(key)
        response = exc.response
        headers = getattr(response, "headers", None) or {}
        return kind(
            key,
            f"GCS answered HTTP {status} ({name})",
            retryable=is_retryable_status(status),
            retry_after=parse_retry_after(headers.get("Retry-After")),
            store_wide=is_denied_status(status),
            throttled=is_throttling_status(status),
        )
    if isinstance(exc, DataCorruption):
        return IntegrityError(key, f"body does not match the object's {_CHECKSUM} checksum")
    unanswered = unanswered_error(key, exc, kind, name, timeouts=(requests.exceptions.ReadTimeout,))
    if unanswered is not None:
        return unanswered
    if isinstance(exc, _RETRYABLE_TRANSPORT_ERRORS):
        return kind(key, f"transfer failed ({name})", retryable=True)
    if isinstance(exc, requests.exceptions.RequestException):
        return kind(key, f"request could not be made ({name})")
    if isinstance(exc, OSError):
        # The SDK raises the builtin ConnectionError for a body shorter than the object.
        return kind(key, f"transfer failed ({name})", retryable=True)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        retryable = isinstance(exc, auth_exceptions.TransportError) or exc.retryable
        return kind(key, f"credentials failed ({name})", retryable=retryable, store_wide=not retryable)
    return kind(key, f"GCS client error ({name})")
