"""`BlobFetcher` over Sentry's objectstore, through its Python client (`objectstore_client`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

import urllib3
import zstandard
from objectstore_client import Client, RequestError, SecretKey, Session, Usecase
from urllib3.connectionpool import HTTPConnectionPool

from ..errors import BlobNotFound, FetchError, StoreError, WriteError
from ..http import is_connect_failure, is_denied_status, is_retryable_status, is_throttling_status
from ..inflight import RequestSockets, tracked_connection_class
from ..keys import join_key, normalize_prefix
from ..protocol import ClosableFetcher, StoredBlob, names_store
from ..registry import OBJECTSTORE_TOKEN_ENV
from . import UnsupportedSDK, sdk_internal

SUPPORTED_SDK = ">=0.2.10,<0.3"
"""The objectstore-client versions whose internal `ObjectstoreFetcher` relies on: the urllib3
pool its `Client` and `Session` keep as ``_pool`` (the pool is closed, sized and made
interruptible through it)."""

TOKEN_ENV = OBJECTSTORE_TOKEN_ENV
"""The environment variable an objectstore token is read from when none is passed."""

NO_TOKEN = f"no token is configured: set {TOKEN_ENV} or pass --objectstore-token-file FILE"
"""Why a 401/403 came, when the fetcher sent no token: and how to give one."""

TOKEN_REFUSED = "the configured token was refused (wrong, expired, or not valid for this usecase and scope)"
"""Why a 401/403 came, when the fetcher sent a token (which no message ever shows)."""

TOKEN_UNKNOWN = f"a token is missing, wrong or expired ({TOKEN_ENV} or --objectstore-token-file gives one)"
"""Why a 401/403 came, for a fetcher built on a session whose token it was not told of."""


class ObjectstoreFetcher(ClosableFetcher):
    """Reads blobs from one objectstore usecase and scope with one GET per `fetch`.

    ``fetch(key)`` reads the object ``{prefix}/{key}`` of ``session``. Sentry's layout is usecase
    ``preprod``, scopes ``org`` and ``project``, keys ``{org}/{project}/{sha256}``, so a fetcher
    with ``prefix="1/2"`` reads a blob by its hash alone. Thread-safe: the session's urllib3
    pool serves every thread; build it with `connect` to size that pool and turn its retries off.
    ``max_connections`` is that pool's size, read from the session when not given (the client
    has no accessor for it: `UnsupportedSDK` outside `SUPPORTED_SDK`).

    The payload is asked for as stored and decompressed here: the client's own zstd reader
    returns a short blob, without error, when the stream ends inside a frame, which this
    reports as a retryable `FetchError`.

    The client's `RequestError` keeps an error's status and body but not its headers, so a
    ``Retry-After`` is out of reach: ``retry_after`` stays None and the caller's backoff decides.

    `put` is one PUT of the bytes as they are (no compression: images are compressed
    already; no resumable session, whatever the size), `exists` and `stat` one HEAD (the size;
    objectstore keeps no checksum). A 401 or 403
    (a missing, wrong or expired token) is a store-wide error whose message says, without the
    token, whether one was sent (`TOKEN_REFUSED`) or how to configure one (`NO_TOKEN`);
    ``sends_token`` tells it which (`connect` sets it).
    """

    def __init__(
        self, session: Session, *, prefix: str = "", max_connections: int | None = None,
        sends_token: bool | None = None,
    ) -> None:
        self._session = session
        self.prefix = normalize_prefix(prefix)
        if max_connections is None:
            connections = _pool(session).pool
            if connections is None:
                raise ValueError("the session's connection pool is closed")
            max_connections = connections.maxsize
        self.max_connections = max_connections
        """Size of the session's connection pool."""
        self.store_url = _describe(session, self.prefix)
        self._denied_reason = TOKEN_UNKNOWN if sends_token is None else TOKEN_REFUSED if sends_token else NO_TOKEN

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> ObjectstoreFetcher:
        """The fetcher of ``objectstore+http(s)://host:port/<usecase>?org=1&project=2&prefix=1/2``:
        every query parameter but ``prefix`` is a scope, in order (`fetchers.fetcher_from_url`
        lets only ``org`` and ``project`` through). Without a ``token`` option the token is read
        from `TOKEN_ENV`, as the SDKs of the other stores read theirs."""
        scheme = parts.scheme
        if not parts.hostname:
            raise ValueError(f"{scheme} store URL needs a host: {scheme}://host:port/<usecase>")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ValueError(f"{scheme} store URL has an invalid port") from exc
        base_path, _, usecase = parts.path.rstrip("/").rpartition("/")
        if not usecase:
            raise ValueError(f"{scheme} store URL needs a usecase as its path: {scheme}://host:port/<usecase>")
        prefix = ""
        scopes: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if name == "prefix":
                prefix = value
            elif name in scopes:
                raise ValueError(f"{scheme} store URL repeats scope {name!r}")
            else:
                scopes[name] = value
        base_url = f"{scheme.removeprefix('objectstore+')}://{parts.netloc}{base_path}"
        if options.get("token") is None:
            options["token"] = os.environ.get(TOKEN_ENV) or None
        return cls.connect(base_url, usecase, scopes=scopes, prefix=prefix, **options)

    @classmethod
    def connect(
        cls,
        base_url: str,
        usecase: str,
        *,
        scopes: Mapping[str, str | int],
        prefix: str = "",
        token: str | SecretKey | None = None,
        max_connections: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> ObjectstoreFetcher:
        """Build the client and session for ``base_url`` (e.g. ``http://objectstore:8888``).

        ``scopes`` in order, e.g. ``{"org": 1, "project": 2}``. ``token`` authenticates every
        request (header ``x-os-auth``): a static pre-signed JWT string, or an
        `objectstore_client.SecretKey` that signs a short-lived JWT per request for this usecase
        and scope. It never appears in a URL, an error or a log; a URL carrying credentials is
        refused. The pool holds ``max_connections`` connections, so that many threads fetch at
        once without opening or discarding any; the client's retries are off (`BatchPrefetcher`
        is the one retry layer); ``read_timeout`` bounds each wait for data. Its requests can be
        interrupted (`interrupt`).
        """
        url = urlsplit(base_url)
        if url.username is not None or url.password is not None:
            raise ValueError("the objectstore URL must not carry credentials; pass token=")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        client = Client(
            base_url,
            token=token,
            connection_kwargs={
                "maxsize": max_connections,
                "retries": urllib3.Retry(0),
                "timeout": urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            },
        )
        # The client has no close() of its own: the urllib3 pool is what it holds open.
        pool = _pool(client)
        try:
            try:
                session = client.session(Usecase(usecase), **scopes)
            except ValueError:
                # The client's message quotes the offending value, which may be a secret pasted
                # into the URL; name only what was configured.
                raise ValueError(
                    f"objectstore usecase or scope names/values are invalid (scopes: {', '.join(scopes)})"
                ) from None
            fetcher = cls(session, prefix=prefix, max_connections=max_connections,
                          sends_token=token is not None)
        except BaseException:
            pool.close()
            raise
        fetcher._owned = pool
        sockets = RequestSockets()
        pool.ConnectionCls = tracked_connection_class(pool.ConnectionCls, sockets)
        fetcher._track_requests(sockets)
        return fetcher

    @names_store
    def fetch(self, key: str) -> bytes:
        """Return the blob stored under ``key``, decompressed."""
        path = join_key(self.prefix, key)
        try:
            result = self._session.get(path, decompress=False)
            if result is None:
                raise BlobNotFound(key)
            body = _read_all(result.payload)
        except _CLIENT_ERRORS as exc:
            raise _store_error(key, exc, FetchError, self._denied_reason) from exc
        return _decode(key, body, result.metadata.compression)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``: one HEAD."""
        return self.stat(key) is not None

    @names_store
    def stat(self, key: str) -> StoredBlob | None:
        """The size of the object stored under ``key`` (one HEAD), None if there is none."""
        try:
            metadata = self._session.head(join_key(self.prefix, key))
        except _CLIENT_ERRORS as exc:
            raise _store_error(key, exc, FetchError, self._denied_reason) from exc
        return None if metadata is None else StoredBlob(size=metadata.size)

    @names_store
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key`` with one PUT, as it is; raise `WriteError` on failure."""
        path = join_key(self.prefix, key, WriteError)
        try:
            self._session.put(
                data, key=path, compress="none", content_type=content_type, resumable_threshold_bytes="none"
            )
        except _CLIENT_ERRORS as exc:
            raise _store_error(key, exc, WriteError, self._denied_reason) from exc


_CLIENT_ERRORS = (RequestError, urllib3.exceptions.HTTPError, OSError)
_OBJECTS_PATH = "/v1/objects/"  # objectstore's object API: <base>/v1/objects/<usecase>/<scopes>/<key>
_NO_SCOPES = "_"


def _store_error(key: str, exc: Exception, kind: type[StoreError], denied: str) -> StoreError:
    """The ``kind`` of error a client exception means; messages name statuses and types only,
    and a 401/403 adds ``denied``, the fetcher's word on its token."""
    if isinstance(exc, RequestError):
        is_denied = is_denied_status(exc.status)
        return kind(
            key,
            f"objectstore answered HTTP {exc.status}" + (f": {denied}" if is_denied else ""),
            retryable=is_retryable_status(exc.status),
            store_wide=is_denied,
            throttled=is_throttling_status(exc.status),
        )
    if isinstance(exc, urllib3.exceptions.ClosedPoolError):
        return kind(key, "the fetcher was closed")
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason  # with retries off, this wraps the one failure
    if is_connect_failure(exc):
        return kind(key, f"cannot connect to the endpoint ({type(reason).__name__})", retryable=True,
                    store_wide=True)
    return kind(key, f"objectstore request failed: {type(reason).__name__}: {reason}", retryable=True)


def _describe(session: Session, prefix: str) -> str:
    """``objectstore+http://host:port/<usecase>?org=1&project=2&prefix=1/2`` for messages, read
    from the URL the session gives an object (``.../v1/objects/<usecase>/<scopes>/<key>``)."""
    url = urlsplit(session.object_url("_"))
    base, api, rest = url.path.rpartition(_OBJECTS_PATH)
    usecase, _, scopes = rest.rpartition("/")[0].partition("/")
    if not api or not usecase or not scopes:
        raise UnsupportedSDK(f"objectstore-client gives object URLs of another form ({url.path!r}): "
                             f"install objectstore-client{SUPPORTED_SDK}")
    pairs = [] if scopes == _NO_SCOPES else [scope.partition("=")[::2] for scope in scopes.split(";")]
    query = urlencode([*((unquote(name), unquote(value)) for name, value in pairs),
                       *([("prefix", prefix)] if prefix else [])], safe="/")
    where = f"objectstore+{url.scheme}://{url.netloc}{unquote(base)}/{unquote(usecase)}"
    return f"{where}?{query}" if query else where


def _pool(owner: Client | Session) -> HTTPConnectionPool:
    """The urllib3 pool of a client or session: the SDK keeps it as ``_pool``, with no accessor."""
    return sdk_internal(owner, "_pool", HTTPConnectionPool, package="objectstore-client",
                        supported=SUPPORTED_SDK)


def _read_all(payload: IO[bytes]) -> bytes:
    # Reading to the end hands the connection back to the pool; a failed read has already
    # closed it. close() then frees the response in every case.
    try:
        return payload.read()
    finally:
        payload.close()


def _decode(key: str, body: bytes, compression: str | None) -> bytes:
    if compression is None:
        return body
    if compression != "zstd":
        raise FetchError(key, f"unsupported content-encoding {compression!r}")
    try:
        return _unzstd(body)
    except zstandard.ZstdError as exc:
        raise FetchError(key, f"bad zstd payload: {exc}", retryable=True) from exc


def _unzstd(data: bytes) -> bytes:
    """Decompress every zstd frame of ``data``; raise `zstandard.ZstdError` if one is cut off."""
    out = []
    while True:
        frame = zstandard.ZstdDecompressor().decompressobj()
        out.append(frame.decompress(data))
        if not frame.eof:
            raise zstandard.ZstdError("stream ends inside a frame (truncated)")
        data = frame.unused_data
        if not data:
            return b"".join(out)
