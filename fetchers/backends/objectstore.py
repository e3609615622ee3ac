"""`BlobFetcher` over Sentry's objectstore, through its Python client (`objectstore_client`)."""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

import urllib3
import zstandard
from objectstore_client import Client, RequestError, SecretKey, Session, Usecase
from urllib3.connectionpool import HTTPConnectionPool

from .. import formdata
from ..errors import BatchUnsupported, BlobNotFound, BlobTooLarge, FetchError, StoreError, WriteError, blob_too_large
from ..http import (
    is_denied_status,
    is_retryable_status,
    is_throttling_status,
    unanswered_error,
)
from ..inflight import RequestSockets, tracked_connection_class
from ..keys import join_key, normalize_prefix
from ..protocol import ClosableFetcher, StoredBlob, check_max_blob_bytes, names_store
from ..registry import OBJECTSTORE_TOKEN_ENV, carries_credentials, check_network_options
from . import UnsupportedSDK, sdk_internal

SUPPORTED_SDK = ">=0.2.10,<0.3"
"""The objectstore-client versions whose internals `ObjectstoreFetcher` relies on: the urllib3
pool its `Client` and `Session` keep as ``_pool`` (the pool is closed, sized and made
interruptible through it, and batch requests go through it), and the session's
``_make_headers()`` (the headers of every request, the token's included), which batch
requests send too: the client has no batch requests of its own."""

SERVER_COMMIT = "a2e21969acccc4681879fa46d82dd778638fbe62"
"""The getsentry/objectstore commit whose batch endpoint ``fetch_many`` follows
(``objectstore-server/src/endpoints/batch.rs``, ``extractors/batch.rs``)."""

MAX_BATCH_KEYS = 1000
"""Operations one batch request may carry: the server's ``MAX_OPERATIONS``."""

MAX_INSERT_BYTES = 1024 * 1024
"""The largest body an insert operation of a batch may carry: the server's ``MAX_FIELD_SIZE``."""

MAX_DECODED_BYTES = 1024**3
"""Bytes a zstd-compressed object may decode to: a payload of a few KB can claim gigabytes, so
more is refused (that key's error) as soon as it is passed."""

_MAX_ZSTD_RATIO = 1 << 15
"""About the most bytes one byte of a zstd frame can decode to (a block of 128 KiB from a
3-byte header and one byte repeated)."""

_MIN_ZSTD_SLICE = 4096  # the smallest slice of input decompressed at once (see `_unzstd`)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_MAX_HEADER = 18  # bytes of a frame header at most: magic, descriptor, window, dictionary, size
_ZSTD_BLOCK_MAX = 128 * 1024  # bytes a compressed block decodes to at most
_ZSTD_MAX_BLOCKS = 1024  # blocks read from a frame's headers at most (128 MiB of compressed blocks)

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")  # what `quote` leaves as it is, and the slash

OP_KIND = "x-sn-batch-operation-kind"
OP_KEY = "x-sn-batch-operation-key"
OP_INDEX = "x-sn-batch-operation-index"
OP_STATUS = "x-sn-batch-operation-status"

TOKEN_ENV = OBJECTSTORE_TOKEN_ENV
"""The environment variable an objectstore token is read from when none is passed."""

NO_TOKEN = f"no token is configured: set {TOKEN_ENV} or pass --objectstore-token-file FILE"
"""Why a 401/403 came, when the fetcher sent no token: and how to give one."""

TOKEN_REFUSED = "the configured token was refused (wrong, expired, or not valid for this usecase and scope)"
"""Why a 401/403 came, when the fetcher sent a token (which no message ever shows)."""

TOKEN_UNKNOWN = f"a token is missing, wrong or expired ({TOKEN_ENV} or --objectstore-token-file gives one)"
"""Why a 401/403 came, for a fetcher built on a session whose token it was not told of."""


class ObjectstoreFetcher(ClosableFetcher):
    """Reads blobs from one objectstore usecase and scope with one GET per `fetch`, or many
    with one batch request per `fetch_many`.

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

    Batches (`fetch_many`, a `fetchers.protocol.ManyFetcher`): ``POST
    /v1/objects:batch/<usecase>/<scopes>/`` as objectstore's server has it at `SERVER_COMMIT`,
    one ``get`` operation per key, at most `MAX_BATCH_KEYS`. The answer is read part by part
    as it streams in (`fetchers.formdata`): each part, in the server's completion order, is
    decoded as `fetch` decodes a body and handed over at once, its status mapped as `fetch`
    maps a response's (404: `BlobNotFound` for that key alone; 429 and 5xx: retryable for that
    key alone). `stat_many` and `put_many` (a `fetchers.protocol.ManyWriter`) send ``head``
    and ``insert`` operations the same way, an insert's blob at most `MAX_INSERT_BYTES`, as is.
    ``batch=False`` switches batches off (``batch_keys`` is then 0). A server
    without the route (404 or 405 on it) switches them off too, the first time:
    `BatchUnsupported` is raised, ``batch_note`` says why, and the caller reads one blob a
    request from then on.
    """

    def __init__(
        self, session: Session, *, prefix: str = "", max_connections: int | None = None,
        sends_token: bool | None = None, batch: bool = True, max_blob_bytes: int | None = None,
    ) -> None:
        self.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        self._session = session
        self._pool = _pool(session)
        self._request_headers: Callable[[], dict[str, str]] = sdk_internal(
            session, "_make_headers", types.MethodType, package="objectstore-client", supported=SUPPORTED_SDK)
        self._batch_path = _batch_path(session)
        self._batch_limit = MAX_BATCH_KEYS if batch else 0
        self.batch_note: str | None = None
        """Why batches were switched off when the store had no route for them; else None."""
        self.prefix = normalize_prefix(prefix)
        if max_connections is None:
            connections = self._pool.pool
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
        every query parameter but ``prefix`` and ``batch`` is a scope, in order
        (`fetchers.fetcher_from_url` lets only ``org`` and ``project`` through). ``batch=0``
        switches batch requests off for this deployment (``batch=1``, the default, leaves them
        on). Without a ``token`` option the token is read from `TOKEN_ENV`, as the SDKs of the
        other stores read theirs."""
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
            elif name == "batch":
                if value not in ("0", "1"):
                    raise ValueError(f"{scheme} store URL takes batch=0 or batch=1")
                options["batch"] = value == "1"
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
        batch: bool = True,
        max_blob_bytes: int | None = None,
    ) -> ObjectstoreFetcher:
        """Build the client and session for ``base_url`` (e.g. ``http://objectstore:8888``).

        ``scopes`` in order, e.g. ``{"org": 1, "project": 2}``. ``token`` authenticates every
        request (header ``x-os-auth``): a static pre-signed JWT string, or an
        `objectstore_client.SecretKey` that signs a short-lived JWT per request for this usecase
        and scope. It never appears in a URL, an error or a log; a URL carrying credentials is
        refused. The pool holds ``max_connections`` connections, so that many threads fetch at
        once without opening or discarding any; the client's retries are off (`BatchPrefetcher`
        is the one retry layer); ``read_timeout`` bounds each wait for data. Its requests can be
        interrupted (`interrupt`). ``batch=False`` switches batch requests off.
        """
        if carries_credentials(urlsplit(base_url)):
            raise ValueError("the objectstore URL must not carry credentials; pass token=")
        check_network_options(max_connections=max_connections, connect_timeout=connect_timeout,
                              read_timeout=read_timeout)
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
                          sends_token=token is not None, batch=batch, max_blob_bytes=max_blob_bytes)
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
            body = _read_all(result.payload, self.max_blob_bytes)
        except _CLIENT_ERRORS as exc:
            raise _store_error(key, exc, FetchError, self._denied_reason) from exc
        if self.max_blob_bytes is not None and len(body) > self.max_blob_bytes:
            raise blob_too_large(key, self.max_blob_bytes)
        return self._decode(key, body, result.metadata.compression)

    @property
    def batch_keys(self) -> int:
        """The most keys one `fetch_many`, `stat_many` or `put_many` call takes; 0 while
        batches are off."""
        return self._batch_limit

    @property
    def max_batch_blob(self) -> int:
        """The largest blob `put_many` takes: `MAX_INSERT_BYTES`."""
        return MAX_INSERT_BYTES

    def fetch_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes | FetchError]]:
        """Yield ``(key, blob or FetchError)`` for each of ``keys`` (at most `batch_keys`,
        distinct) as the one batch request's answer brings it; see the class and
        `fetchers.protocol.ManyFetcher`. An invalid key is refused without a request; while
        batches are off, `BatchUnsupported` is raised without one."""
        return self._batch("get", [(key, b"", "") for key in keys], FetchError, self._got)

    def stat_many(self, keys: Sequence[str]) -> Iterator[tuple[str, StoredBlob | None | FetchError]]:
        """`stat` for each of ``keys`` (at most `batch_keys`, distinct) with one batch request
        of ``head`` operations, each answer yielded as it arrives; see `fetch_many`."""
        return self._batch("head", [(key, b"", "") for key in keys], FetchError, self._headed)

    def put_many(self, blobs: Sequence[tuple[str, bytes, str]]) -> Iterator[tuple[str, WriteError | None]]:
        """`put` for each ``(key, data, content_type)`` (at most `batch_keys`, distinct keys,
        each at most `MAX_INSERT_BYTES`: a larger one is refused without a request) with one batch
        request of ``insert`` operations: ``(key, None)`` once it is stored, else
        ``(key, WriteError)``; see `fetch_many`."""
        return self._batch("insert", list(blobs), WriteError, self._inserted)

    def _batch(
        self,
        kind: str,
        operations: list[tuple[str, bytes, str]],
        error_type: type[StoreError],
        outcome: Callable[[str, formdata.Part], Any],
    ) -> Iterator[tuple[str, Any]]:
        """One batch request of ``kind`` operations, ``(key, body, content type)`` each; yields
        ``(key, outcome(key, part) or the key's error)`` as the parts arrive."""
        if not self._batch_limit and operations:
            raise self._named(BatchUnsupported(operations[0][0], self.batch_note or "batch requests are switched off"))
        parts: dict[str, tuple[Mapping[str, str], bytes]] = {}
        for key, body, content_type in operations:
            try:
                path = join_key(self.prefix, key, error_type)
            except StoreError as error:
                yield key, self._named(error)
                continue
            if len(body) > MAX_INSERT_BYTES:  # the server would refuse it (413), again on every retry
                yield key, self._named(error_type(key, f"{len(body):,} bytes: a batch insert takes at most "
                                                       f"{MAX_INSERT_BYTES:,}"))
                continue
            headers = {OP_KIND: kind, OP_KEY: _percent_encoded(path)}
            if content_type:
                headers["content-type"] = content_type
            parts[key] = (headers, body)
        if not parts:
            return
        order = list(parts)
        boundary = formdata.new_boundary()
        headers = self._request_headers()
        headers["Content-Type"] = formdata.content_type(boundary)
        try:
            response = self._pool.urlopen("POST", self._batch_path, body=formdata.encode(parts.values(), boundary),
                                          headers=headers, preload_content=False, decode_content=False)
        except _CLIENT_ERRORS as exc:
            raise self._batch_failure(order, exc, error_type) from exc
        complete = False
        try:
            yield from self._answers(response, order, error_type, outcome)
            complete = True
        finally:
            if not complete:  # a connection in the middle of an answer is of no further use
                response.close()
            response.release_conn()

    def _answers(
        self,
        response: urllib3.BaseHTTPResponse,
        order: list[str],
        error_type: type[StoreError],
        outcome: Callable[[str, formdata.Part], Any],
    ) -> Iterator[tuple[str, Any]]:
        """Each key's outcome from a batch answer, part by part; raises for the whole request."""
        if response.status != 200:
            response.read()  # an error's short body: reading it keeps the connection
            if response.status in (404, 405):
                self._batch_limit = 0
                self.batch_note = (f"objectstore answered HTTP {response.status} to a batch request "
                                   "(a server without batches): one request a blob from now on")
                raise self._named(BatchUnsupported(order[0], self.batch_note))
            exc = RequestError(f"HTTP {response.status}", response.status, None)
            if response.status == 413 and len(order) > 1:  # too large a request: smaller ones may pass
                self._batch_limit = max(1, min(self._batch_limit, len(order) // 2))
                raise self._named(error_type(order[0], f"objectstore answered HTTP 413 to a batch request of "
                                                       f"{len(order)} operations: at most {self._batch_limit} "
                                                       "a request from now on", retryable=True)) from exc
            raise self._batch_failure(order, exc, error_type) from exc
        boundary = formdata.boundary_of(response.headers.get("content-type"))
        if boundary is None:
            raise self._named(error_type(order[0], "the batch answer is not multipart/form-data", retryable=True))
        unanswered = dict(enumerate(order))
        try:
            for part in formdata.parts(response.read1, boundary, max_body=self.max_blob_bytes):
                index = _index(part.headers.get(OP_INDEX))
                key = unanswered.pop(index, None) if index is not None else None
                if index is None or key is None:
                    raise formdata.FormDataError(f"a part of operation {index} that was not asked for or "
                                                 "answered twice")
                yield key, self._part_outcome(key, index, part, error_type, outcome)
        except (formdata.FormDataError, *_CLIENT_ERRORS) as exc:
            raise self._batch_failure(order, exc, error_type, answered=len(order) - len(unanswered)) from exc
        for key in unanswered.values():
            yield key, self._named(error_type(key, "the batch answer has no part for this key", retryable=True))

    def _batch_failure(
        self, order: list[str], exc: Exception, error_type: type[StoreError], answered: int | None = None
    ) -> StoreError:
        """The error of a batch request that failed as a whole: refused (its status, worded as
        `fetch` words it), or broken off after ``answered`` parts."""
        if isinstance(exc, formdata.FormDataError):
            error = error_type(order[0], str(exc), retryable=True)
        else:
            error = _store_error(order[0], exc, error_type, self._denied_reason)
        if answered is not None:
            error.message = f"batch answer broke off after {answered} of {len(order)} parts: {error.message}"
        return self._named(error)

    def _part_outcome(
        self,
        key: str,
        index: int,
        part: formdata.Part,
        error_type: type[StoreError],
        outcome: Callable[[str, formdata.Part], Any],
    ) -> Any:
        """What operation ``index``'s part says of ``key``: ``outcome(key, part)`` for a success
        (or a 404 of a read), else the key's error, its status mapped as `fetch` maps one."""
        status_text = part.headers.get(OP_STATUS, "")
        code = status_text.split(" ", 1)[0]
        if not _is_number(code):
            return self._named(error_type(key, f"a batch answer's part has no valid status ({status_text!r})",
                                          retryable=True))
        status = int(code)
        try:
            if status < 300 or (status == 404 and error_type is FetchError):
                return outcome(key, part)
        except StoreError as error:
            return self._named(error)
        # Past the operations the server takes (inserts over its size limit are never sent):
        # later batches carry fewer. The first operation cannot be past that limit.
        over_count = status == 413 and index > 0
        if over_count:
            self._batch_limit = max(1, min(self._batch_limit, index))
        return self._named(_status_error(key, status, error_type, self._denied_reason, retryable=over_count))

    def _got(self, key: str, part: formdata.Part) -> bytes:
        """A get operation's blob, decoded as `fetch` decodes one; `BlobNotFound` for a 404."""
        if part.headers[OP_STATUS].startswith("404"):
            raise BlobNotFound(key)
        if part.too_large:
            assert self.max_blob_bytes is not None
            raise blob_too_large(key, self.max_blob_bytes, part.too_large)
        return self._decode(key, part.body, part.headers.get("content-encoding"))

    def _decode(self, key: str, body: bytes, compression: str | None) -> bytes:
        """A body as it was stored, decompressed as its encoding says, within `max_blob_bytes`
        (`MAX_DECODED_BYTES` when there is none)."""
        if compression is None:
            return body
        if compression != "zstd":
            raise FetchError(key, f"unsupported content-encoding {compression!r}")
        limit = MAX_DECODED_BYTES if self.max_blob_bytes is None else self.max_blob_bytes
        try:
            return _unzstd(body, limit)
        except zstandard.ZstdError as exc:
            raise FetchError(key, f"bad zstd payload: {exc}", retryable=True) from exc
        except _TooLarge:
            raise BlobTooLarge(key, f"blob too large: its zstd payload of {len(body):,} bytes decodes to more than "
                                    f"the {limit:,} a blob may have here") from None

    @staticmethod
    def _headed(key: str, part: formdata.Part) -> StoredBlob | None:
        """What a head operation tells of ``key``, as `stat` does: None for a 404."""
        if part.headers[OP_STATUS].startswith("404"):
            return None
        size = part.headers.get("x-sn-size", "")
        return StoredBlob(size=int(size) if _is_number(size) else None)

    @staticmethod
    def _inserted(key: str, part: formdata.Part) -> None:
        """An insert operation that succeeded."""

    def _named(self, error: _E) -> _E:
        if error.store is None:
            error.store = self.store_url
        return error

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
_BATCH_API = "/v1/objects:batch/"  # its batch API: <base>/v1/objects:batch/<usecase>/<scopes>/
_NO_SCOPES = "_"
_E = TypeVar("_E", bound=StoreError)


def _index(value: str | None) -> int | None:
    """An operation index header's value as a number, else None."""
    return int(value) if value is not None and _is_number(value) else None


def _is_number(text: str) -> bool:
    """Whether a header value is a decimal number of at most 18 ASCII digits (``str.isdigit``
    takes "²"; ``int`` refuses more than 4,300 digits, and no index, status or size has 19)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _batch_path(session: Session) -> str:
    """The path of the session's batch route, from the URL it gives an object."""
    path = urlsplit(session.object_url("_")).path
    base, api, rest = path.rpartition(_OBJECTS_PATH)
    if not api or not rest.endswith("/_"):
        raise UnsupportedSDK(f"objectstore-client gives object URLs of another form ({path!r}): "
                             f"install objectstore-client{SUPPORTED_SDK}")
    return f"{base}{_BATCH_API}{rest.removesuffix('_')}"


def _percent_encoded(path: str) -> str:
    """``path`` percent-encoded whole, ``/`` included, as a batch part's key header carries it
    (what ``quote(path, safe="")`` gives, without its cost for a path of plain characters)."""
    return path.replace("/", "%2F") if _PLAIN_PATH.fullmatch(path) else quote(path, safe="")


def _status_error(
    key: str, status: int | None, kind: type[StoreError], denied: str, *, retryable: bool = False
) -> StoreError:
    """The ``kind`` of error an HTTP ``status`` from objectstore means (``retryable`` adds to
    the statuses that are); a 401/403 adds ``denied``, the fetcher's word on its token."""
    is_denied = is_denied_status(status)
    return kind(
        key,
        f"objectstore answered HTTP {status}" + (f": {denied}" if is_denied else ""),
        retryable=retryable or is_retryable_status(status),
        store_wide=is_denied,
        throttled=is_throttling_status(status),
    )


def _store_error(key: str, exc: Exception, kind: type[StoreError], denied: str) -> StoreError:
    """The ``kind`` of error a client exception means; messages name statuses and types only,
    and a 401/403 adds ``denied``, the fetcher's word on its token."""
    if isinstance(exc, RequestError):
        return _status_error(key, exc.status, kind, denied)
    if isinstance(exc, urllib3.exceptions.ClosedPoolError):
        return kind(key, "the fetcher was closed")
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason  # with retries off, this wraps the one failure
    unanswered = unanswered_error(key, exc, kind, type(reason).__name__)
    if unanswered is not None:
        return unanswered
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


def _read_all(payload: IO[bytes], limit: int | None) -> bytes:
    """The payload's bytes, up to one past ``limit`` (None: all of them).

    Reading to the end hands the connection back to the pool; a failed read has already
    closed it, and so does close() after a read stopped short. close() then frees the
    response in every case."""
    try:
        return payload.read() if limit is None else payload.read(limit + 1)
    finally:
        payload.close()


class _TooLarge(Exception):
    """A compressed payload decodes to more bytes than allowed."""


def _unzstd(data: bytes, limit: int) -> bytes:
    """Decompress every zstd frame of ``data``; raise `zstandard.ZstdError` if one is cut off
    or malformed, `_TooLarge` once the output passes ``limit`` bytes.

    A frame whose block headers bound what it decodes to within the room left (`_frame_extent`)
    goes in one call; any other goes in slices small enough that even the densest frame cannot
    bring much more than the room left from one (`_MAX_ZSTD_RATIO`). Memory stays within about
    twice ``limit``, and time linear in the input, whatever the frames."""
    if not data:
        raise zstandard.ZstdError("no zstd frame")
    decompressor = zstandard.ZstdDecompressor()
    view = memoryview(data)
    out: list[bytes] = []
    produced = pos = 0
    while pos < len(view):
        frame = decompressor.decompressobj()
        extent = _frame_extent(view, pos, limit - produced)
        if extent is not None:
            output = frame.decompress(view[pos:extent[0]])
            if not frame.eof or frame.unused_data:
                raise zstandard.ZstdError("a frame does not end where its blocks say")
            produced += len(output)
            out.append(output)
            pos = extent[0]
            continue
        while not frame.eof:
            if pos >= len(view):
                raise zstandard.ZstdError("stream ends inside a frame (truncated)")
            piece = view[pos:pos + max(_MIN_ZSTD_SLICE, (limit - produced) // _MAX_ZSTD_RATIO)]
            pos += len(piece)
            output = frame.decompress(piece)
            produced += len(output)
            if produced > limit:
                raise _TooLarge
            out.append(output)
        pos -= len(frame.unused_data)  # the next frame starts where this one ended
    return out[0] if len(out) == 1 else b"".join(out)


def _frame_extent(view: memoryview, pos: int, room: int) -> tuple[int, int] | None:
    """Where the zstd frame at ``pos`` ends, and the most bytes it can decode to, read from its
    block headers (RFC 8878, 3.1.1: a raw or RLE block decodes to its size, a compressed one to
    at most 128 KiB), when that is at most ``room``; None otherwise, and when it cannot be told
    cheaply (no plain zstd frame, one cut off, more than `_ZSTD_MAX_BLOCKS` blocks):
    decompressing it in slices then bounds it or says what is wrong."""
    if view[pos:pos + 4] != _ZSTD_MAGIC:
        return None
    try:
        at = pos + zstandard.frame_header_size(view[pos:pos + _ZSTD_MAX_HEADER])
    except zstandard.ZstdError:
        return None
    most = blocks = 0
    while at + 3 <= len(view) and blocks < _ZSTD_MAX_BLOCKS:
        blocks += 1
        word = int.from_bytes(view[at:at + 3], "little")
        kind, size = (word >> 1) & 3, word >> 3
        if kind == 3:  # reserved
            return None
        at += 3 + (1 if kind == 1 else size)
        most += _ZSTD_BLOCK_MAX if kind == 2 else size
        if most > room:
            return None
        if word & 1:  # the last block; then the content checksum, if the frame has one
            at += 4 if view[pos + 4] & 0x04 else 0
            return (at, most) if at <= len(view) else None
    return None
