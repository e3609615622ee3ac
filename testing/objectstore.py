"""A lean test server of Sentry objectstore's HTTP object API, with counters and fault injection.

It speaks what `objectstore_client` sends: ``/v1/objects/{usecase}/{scopes}/{key}``, scopes in
matrix form (``org=1;project=2``, ``_`` for none), the key being the rest of the path with its
slashes (the client leaves ``/`` unescaped; other reserved characters arrive percent-encoded).

- Counters: requests per method and key (a batch's operations included, by their method),
  batch requests, connections accepted and open.
- GET: 200 with the body exactly as uploaded and the metadata headers (``content-encoding:
  zstd`` for a zstd upload, so the client decompresses), or 404 with an empty body.
- HEAD: 204 with the same headers, no body. No answer carries the object's size
  (``x-sn-size``): objectstore's metadata leaves it out of its headers
  (``objectstore-types/src/metadata.rs``, ``size_not_included_in_headers``).
- PUT: stores the body as received (chunked or not) and answers 200 ``{"key": ...}``; POST to
  ``.../{scopes}/`` stores under a generated key (201). DELETE: 204. Errors: JSON
  ``{"detail": ...}``. Header names go out in lower case, as objectstore's own server writes
  them and as the client's metadata parser requires.
- Batch: ``POST /v1/objects:batch/{usecase}/{scopes}/`` as objectstore's server has it at
  `SERVER_COMMIT` (``objectstore-server/src/endpoints/batch.rs``, ``extractors/batch.rs``,
  ``src/multipart.rs``): a ``multipart/form-data`` body, one part per operation with
  ``x-sn-batch-operation-kind`` (``get``, ``head``, ``insert``, ``delete``) and
  ``x-sn-batch-operation-key`` (percent-encoded); at most `MAX_OPERATIONS` operations (each one
  past it fails alone with 413), an insert's body at most `MAX_FIELD_SIZE` (413 for that
  operation), a body at most `MAX_BODY_SIZE` (413 for the request). The answer is 200 and a
  ``multipart/form-data`` stream (boundary ``os-boundary-<32 hex>``, chunked), one part per
  operation in completion order, written as each completes: ``x-sn-batch-operation-index``,
  ``-key``, ``-kind`` and ``-status`` (``200 OK``, ``404 Not Found``, ``201 Created``, ``204 No
  Content``) with the object's metadata headers; an operation that fails has only the index and
  the status, and a JSON ``{"detail": ...}`` body. As objectstore's server does, the answer
  starts at once and each operation runs as soon as its part of the request has been read, so
  the first part may go out while the rest of the request is still coming; a malformed body
  ends the operations with a 400 part. Operations run in order here, so completion order is
  request order, except for a stalled one (below), which completes last.
- Every connection gets its own thread, TCP_NODELAY and HTTP/1.1 keep-alive; the listen
  backlog is 1024.

`serve_objectstore()` runs one outside pytest; the session fixture ``objectstore_server``
shares one across the test run.
"""

from __future__ import annotations

import http
import json
import queue
import re
import socket
import socketserver
import struct
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from urllib.parse import unquote

import pytest
from multipart import MultipartError, MultipartSegment, PushMultipartParser
from objectstore_client import Client, Usecase

DEFAULT_USECASE = "preprod"
DEFAULT_SCOPES: Mapping[str, int] = {"org": 1, "project": 2}

SERVER_COMMIT = "a2e21969acccc4681879fa46d82dd778638fbe62"
"""The getsentry/objectstore commit whose batch endpoint this server follows."""
MAX_OPERATIONS = 1000
"""Operations one batch request may carry (``MAX_OPERATIONS``, ``extractors/batch.rs``)."""
MAX_FIELD_SIZE = 1024 * 1024
"""Bytes of one insert operation's body (``MAX_FIELD_SIZE``, ``extractors/batch.rs``)."""
MAX_BODY_SIZE = 1024 * 1024 * 1024
"""Bytes of one batch request's body (``MAX_BODY_SIZE``, ``endpoints/batch.rs``)."""

_API_PREFIX = "/v1/objects/"
_BATCH_PREFIX = "/v1/objects:batch/"
_OPERATION_METHODS = {"get": "GET", "head": "HEAD", "insert": "PUT", "delete": "DELETE"}
# Request headers that are object metadata, kept and served back under the same name.
_STORED_HEADERS = ("content-type", "content-encoding", "x-sn-expiration", "x-sn-origin",
                   "x-sn-filename")
_META_PREFIX = "x-snme-"
_INVERT = bytes(range(255, -1, -1))  # maps each byte b to b ^ 0xff
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_FAULT_MODES = ("reset", "truncate", "stall", "corrupt")
_PIECE = 64 * 1024  # bytes of a request body read at a time
_NOT_ALPHANUMERIC = re.compile(rb"[^A-Za-z0-9]")


@dataclass
class _Object:
    body: bytes
    headers: bytes  # pre-rendered metadata header lines, content-length excluded


@dataclass
class _Fault:
    mode: str | int
    remaining: int
    key: str | None
    retry_after: str | None
    delay: float
    method: str = "GET"


class FaultSwitch:
    """Thread-safe faults for the next GET (or PUT, HEAD, batch) requests, optionally only for
    one key.

    Modes: an HTTP status (e.g. 503, 429, 500, 401), answered with a JSON error body and, for
    429 and 503, a ``retry-after`` header; ``"reset"`` closes the connection without a
    response; ``"truncate"`` announces the full content-length, sends half the body and closes;
    ``"stall"`` waits ``delay`` seconds (cut short when the server stops, or by `release`) and
    then answers normally; ``"corrupt"`` sends a body of the right length with every byte
    inverted. PUT faults (``method="PUT"``) are statuses and ``"reset"``, after the body is
    read; HEAD faults are statuses.

    A fault armed for a key's GET, HEAD or PUT also meets that key's operation inside a batch,
    where it is that operation's own: a status becomes its part's status (as objectstore
    answers a throttled operation, with no ``retry-after``), ``"truncate"`` ends the answer
    halfway through its part, ``"reset"`` resets the connection where its part would start,
    ``"stall"`` makes it complete after every other operation. ``method="BATCH"`` arms a fault
    for the whole batch request: a status (the web tier's 503, or an old server's 404 or 405)
    or ``"reset"``, after its body is read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._released = threading.Event()

    def inject(
        self,
        mode: str | int,
        *,
        times: int = 1,
        key: str | None = None,
        retry_after: str | None = "1",
        delay: float = 2.0,
        method: str = "GET",
    ) -> None:
        """Arm ``mode`` for the next ``times`` ``method`` requests (of ``key`` only, when given)."""
        if not (isinstance(mode, int) and 400 <= mode <= 599) and mode not in _FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        if method not in ("GET", "PUT", "HEAD", "BATCH"):
            raise ValueError(f"no faults on {method} requests")
        if method in ("PUT", "BATCH") and isinstance(mode, str) and mode != "reset":
            raise ValueError(f"faults on {method} requests are statuses and 'reset' only")
        if method == "HEAD" and isinstance(mode, str):
            raise ValueError("faults on HEAD requests are statuses only")
        if times < 1 or not 0 <= delay <= 30:
            raise ValueError("times must be >= 1 and delay within 0..30 s")
        with self._lock:
            self._faults.append(_Fault(mode, times, key, retry_after, delay, method))

    def clear(self) -> None:
        """Disarm every pending fault."""
        with self._lock:
            self._faults.clear()

    def release(self) -> None:
        """End every stall under way now (those armed later stall as armed)."""
        with self._lock:
            released, self._released = self._released, threading.Event()
        released.set()

    def _stall(self, delay: float, stopping: threading.Event) -> bool:
        """Wait out a stall of ``delay`` seconds; True if the server stopped meanwhile."""
        with self._lock:
            released = self._released
        if not stopping.is_set():
            released.wait(delay)
        return stopping.is_set()

    @property
    def pending(self) -> int:
        """How many faulted requests remain armed."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def _take(self, method: str, key: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and (fault.key is None or fault.key == key):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None


class Counters:
    """Thread-safe request and connection counts since the server started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._batches = 0
        self._connections = 0
        self._open: set[socket.socket] = set()

    def requests(self, method: str, key: str) -> int:
        """``method`` requests received for ``key`` (the object key, prefix included)."""
        with self._lock:
            return self._requests[(method, key)]

    def total(self, method: str) -> int:
        """``method`` requests received for any key."""
        with self._lock:
            return sum(n for (m, _), n in self._requests.items() if m == method)

    def by_key(self, method: str) -> dict[str, int]:
        """``method`` requests received, by key (the object key, prefix included)."""
        with self._lock:
            return {key: n for (m, key), n in self._requests.items() if m == method}

    @property
    def batches(self) -> int:
        """Batch requests received (their operations are counted by method and key)."""
        with self._lock:
            return self._batches

    def gets(self, key: str) -> int:
        """GET requests received for ``key`` (the object key, prefix included)."""
        return self.requests("GET", key)

    @property
    def total_gets(self) -> int:
        """GET requests received for any key."""
        return self.total("GET")

    @property
    def connections(self) -> int:
        """TCP connections accepted."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """TCP connections accepted and not yet closed."""
        with self._lock:
            return len(self._open)

    def _count(self, method: str, key: str) -> None:
        with self._lock:
            self._requests[(method, key)] += 1

    def _count_batch(self) -> None:
        with self._lock:
            self._batches += 1

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._open.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _drain_open(self) -> list[socket.socket]:
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
            return sockets


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024
    block_on_close = True  # server_close() joins every connection thread

    def __init__(self, token: str | None) -> None:
        self.objects: dict[tuple[str, str, str], _Object] = {}
        self.objects_lock = threading.Lock()
        self.counters = Counters()
        self.faults = FaultSwitch()
        self.stopping = threading.Event()
        self.expected_auth = f"Bearer {token}" if token is not None else None
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup a loopback server skips.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        self.counters._opened(sock)
        return sock, address

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self.counters._closed(request)
        try:
            reset = request.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8) == _LINGER_RESET
        except OSError:
            reset = False
        if reset:
            self.close_request(request)  # no FIN first: the peer sees a bare reset
        else:
            super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or close early make writes fail: expected, not worth a trace.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._read(send_body=True)

    def do_HEAD(self) -> None:
        self._read(send_body=False)

    def do_PUT(self) -> None:
        self._write(generate_key=False)

    def do_POST(self) -> None:
        if self.path.startswith(_BATCH_PREFIX):
            self._batch()
        else:
            self._write(generate_key=True)

    def do_DELETE(self) -> None:
        target = self._target()
        if target is not None:
            with self.server.objects_lock:
                self.server.objects.pop(target, None)
            self._send(204)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests and unknown methods: answered in lower case too, then closed, as
        # their body (if any) was not read.
        self.close_connection = True
        self._error(code, message or self.responses.get(code, ("error",))[0])

    def _target(self, *, collection: bool = False) -> tuple[str, str, str] | None:
        """(usecase, scopes, key) of an authorised, well-formed request; else answers it.

        ``collection``: the route is ``.../{scopes}/`` (no key), else it needs a key.
        """
        if not self._authorised():
            return None
        path = self.path.split("?", 1)[0]
        parts = path[len(_API_PREFIX):].split("/", 2) if path.startswith(_API_PREFIX) else []
        if len(parts) != 3:
            self._error(404, "no such route")
            return None
        usecase, scopes, key = (unquote(part) for part in parts)
        if not _valid_context(usecase, scopes):
            self._error(400, "client error: invalid usecase or scopes")
            return None
        if collection != (key == ""):
            self._error(405, "method not allowed")
            return None
        return usecase, scopes, key

    def _authorised(self) -> bool:
        """Whether the request carries the token the server expects; else answers it 401."""
        if self.server.expected_auth is not None and self.headers.get("x-os-auth") != self.server.expected_auth:
            self._error(401, "auth error: missing or invalid token")
            return False
        return True

    def _read(self, *, send_body: bool) -> None:
        target = self._target()
        if target is None:
            return
        key = target[2]
        fault = None
        self.server.counters._count(self.command, key)
        fault = self.server.faults._take(self.command, key)
        if fault is not None and self._fault_answered(fault):
            return
        with self.server.objects_lock:
            obj = self.server.objects.get(target)
        if obj is None:
            self._send(404)
            return
        body = obj.body
        if fault is not None and fault.mode == "corrupt":
            body = body.translate(_INVERT)
        if fault is not None and fault.mode == "truncate":
            self._send(200, obj.headers, body, declared_length=len(body), sent=len(body) // 2)
            self.close_connection = True
            return
        if send_body:
            self._send(200, obj.headers, body)
        else:
            self._send(204, obj.headers)  # as objectstore's ``object_head``: no body, no length

    def _fault_answered(self, fault: _Fault) -> bool:
        """Apply a fault that replaces the answer; False lets the normal answer follow."""
        if isinstance(fault.mode, int):
            extra = b""
            if fault.mode in (429, 503) and fault.retry_after is not None:
                extra = f"retry-after: {fault.retry_after}\r\n".encode("latin-1")
            self._error(fault.mode, "service error: injected fault", extra)
            return True
        if fault.mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.close_connection = True
            return True
        if fault.mode == "stall" and self.server.faults._stall(fault.delay, self.server.stopping):
            self.close_connection = True
            return True
        return False

    def _write(self, *, generate_key: bool) -> None:
        body = self._request_body()  # read first, so an error answer leaves the stream in step
        target = self._target(collection=generate_key)
        if target is None:
            return
        usecase, scopes, key = target
        self.server.counters._count(self.command, key)
        fault = self.server.faults._take(self.command, key)
        if fault is not None and self._fault_answered(fault):
            return
        if "upload_type=resumable" in self.path:
            self._error(501, "resumable uploads are not supported")
            return
        encoding = self.headers.get("content-encoding")
        if encoding is not None and encoding != "zstd":
            self._error(400, "client error: invalid compression value")
            return
        key = key or uuid.uuid4().hex
        with self.server.objects_lock:
            self.server.objects[(usecase, scopes, key)] = _Object(body, _metadata(self.headers.items()))
        reply = json.dumps({"key": key}).encode()
        self._send(201 if generate_key else 200, b"content-type: application/json\r\n", reply)

    def _batch(self) -> None:
        """A batch request: its operations run as they are read and their parts stream out (see
        the module)."""
        if int(self.headers.get("content-length") or 0) > MAX_BODY_SIZE:
            self.close_connection = True  # its body is not read
            self._error(413, "length limit exceeded")
            return
        boundary = _boundary(self.headers.get("content-type"))
        operations = _OperationReader(self._body_pieces(), boundary)
        try:
            self._answer_batch(operations, boundary)
        except BaseException:
            self.close_connection = True
            raise
        finally:
            if self.close_connection:
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RD)  # the reader stops at once
            operations.join()

    def _answer_batch(self, operations: _OperationReader, boundary: str | None) -> None:
        """Check a batch request as objectstore does before its answer starts, then stream it."""
        if not self._authorised():
            return
        route = self.path.split("?", 1)[0][len(_BATCH_PREFIX):].split("/")
        if len(route) != 3 or route[2]:
            self._error(404, "no such route")
            return
        usecase, scopes = unquote(route[0]), unquote(route[1])
        if not _valid_context(usecase, scopes):
            self._error(400, "client error: invalid usecase or scopes")
            return
        self.server.counters._count_batch()
        fault = self.server.faults._take("BATCH", "")
        if fault is not None and self._fault_answered(fault):
            return
        if boundary is None:
            self._error(400, "invalid multipart body: no multipart/form-data boundary")
            return
        self._stream_parts(usecase, scopes, operations)

    def _stream_parts(self, usecase: str, scopes: str, operations: _OperationReader) -> None:
        """Run the operations in order as they are read, a stalled one after all others, and
        write each one's part as it completes."""
        boundary = f"os-boundary-{uuid.uuid4().hex}".encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: multipart/form-data; boundary=\"%s\"\r\n"
                         b"transfer-encoding: chunked\r\n\r\n" % boundary)
        stalled: list[_Operation] = []
        for operation in operations:
            fault = None
            if operation.error is None:
                assert operation.kind is not None
                method = _OPERATION_METHODS[operation.kind]
                self.server.counters._count(method, operation.key or "")
                fault = self.server.faults._take(method, operation.key or "")
            if fault is not None and fault.mode == "stall":
                operation.stall = fault.delay
                stalled.append(operation)
            elif not self._write_part(boundary, operation, fault, usecase, scopes):
                return
        if operations.broken:
            self.close_connection = True  # the request's body ended early: so does the answer
            return
        for operation in stalled:
            if self.server.faults._stall(operation.stall, self.server.stopping):
                self.close_connection = True
                return
            if not self._write_part(boundary, operation, None, usecase, scopes):
                return
        self._write_chunk(b"--%s--" % boundary, last=True)

    def _write_part(
        self, boundary: bytes, operation: _Operation, fault: _Fault | None, usecase: str, scopes: str
    ) -> bool:
        """Run one operation and write its part; False when a fault broke the connection."""
        if fault is not None and fault.mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.close_connection = True
            return False
        if operation.error is not None:
            head, body = _error_part(operation.index, *operation.error)
        elif fault is not None and isinstance(fault.mode, int):
            detail = "batch error: rate limited" if fault.mode == 429 else "service error: injected fault"
            head, body = _error_part(operation.index, fault.mode, detail)
        else:
            head, body = self._run(operation, usecase, scopes)
        if fault is not None and fault.mode == "corrupt":
            body = body.translate(_INVERT)
        part = b"--%s\r\n%s\r\n" % (boundary, head)
        if fault is not None and fault.mode == "truncate":
            self.wfile.write(b"%x\r\n" % (len(part) + len(body) + 2) + part + body[: len(body) // 2])
            self.close_connection = True
            return False
        self._write_chunk(part, body, b"\r\n")
        return True

    def _run(self, operation: _Operation, usecase: str, scopes: str) -> tuple[bytes, bytes]:
        """Carry out a well-formed operation: its part's headers and body."""
        key, kind = operation.key, operation.kind
        if kind == "insert":
            encoding = operation.headers.get("content-encoding")
            if encoding is not None and encoding != "zstd":
                return _error_part(operation.index, 400, "client error: invalid compression value")
            key = key or uuid.uuid4().hex
            with self.server.objects_lock:
                self.server.objects[(usecase, scopes, key)] = _Object(
                    operation.body, _metadata(operation.headers.items()))
            return _success_part(operation.index, key, "insert", 201), b""
        assert key is not None and kind is not None
        with self.server.objects_lock:
            obj = self.server.objects.pop((usecase, scopes, key), None) if kind == "delete" else \
                self.server.objects.get((usecase, scopes, key))
        if kind == "delete":
            return _success_part(operation.index, key, kind, 204), b""
        if obj is None:
            return _success_part(operation.index, key, kind, 404), b""
        if kind == "head":
            return _success_part(operation.index, key, kind, 204, obj.headers), b""
        return _success_part(operation.index, key, kind, 200, obj.headers), obj.body

    def _write_chunk(self, *pieces: bytes, last: bool = False) -> None:
        """One chunk of a chunked answer, in one gathered write (large pieces are not joined);
        ``last``: the answer's terminating chunk follows in the same write."""
        _send_gathered(self.connection, [b"%x\r\n" % sum(map(len, pieces)), *pieces,
                                         b"\r\n0\r\n\r\n" if last else b"\r\n"])

    def _request_body(self) -> bytes:
        return b"".join(self._body_pieces())

    def _body_pieces(self) -> Iterator[bytes]:
        """The request's body as it arrives (chunked or not), in pieces of at most 64 KiB;
        raises `ConnectionError` if the connection ends first."""
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            yield from self._exactly(int(self.headers.get("content-length") or 0))
            return
        while size := int(self.rfile.readline().split(b";", 1)[0] or b"x", 16):
            yield from self._exactly(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers

    def _exactly(self, size: int) -> Iterator[bytes]:
        while size > 0:
            piece = self.rfile.read1(min(size, _PIECE))
            if not piece:
                raise ConnectionError("the request's body ended early")
            size -= len(piece)
            yield piece

    def _error(self, status: int, detail: str, extra_headers: bytes = b"") -> None:
        body = json.dumps({"detail": detail}).encode()
        self._send(status, b"content-type: application/json\r\n" + extra_headers, body)

    def _send(
        self,
        status: int,
        headers: bytes = b"",
        body: bytes = b"",
        *,
        declared_length: int | None = None,
        sent: int | None = None,
    ) -> None:
        """Write one response, header names in lower case; ``sent`` cuts the body short."""
        length = len(body) if declared_length is None else declared_length
        if status != 204:
            headers += b"content-length: %d\r\n" % length
        if self.close_connection:
            headers += b"connection: close\r\n"
        head = b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, self.responses[status][0].encode(), headers)
        _send_gathered(self.connection, [head, body if sent is None else body[:sent]])


def _send_gathered(connection: socket.socket, pieces: list[bytes]) -> None:
    """Send ``pieces`` in order with as few writes as the socket takes, none of them joined
    (as a server writing vectored buffers does)."""
    views = [memoryview(piece) for piece in pieces if piece]
    while views:
        sent = connection.sendmsg(views)
        while sent:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0], sent = views[0][sent:], 0


@dataclass
class _Operation:
    """One part of a batch request, parsed as objectstore's extractor parses it."""

    index: int
    kind: str | None = None
    key: str | None = None
    headers: dict[str, str] | None = None
    body: bytes = b""
    error: tuple[int, str] | None = None
    """(status, detail) of an operation refused as it was parsed."""
    stall: float = 0.0


class _PartParser(PushMultipartParser):
    """`PushMultipartParser` taking parts without ``content-disposition``, as objectstore does."""

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> MultipartSegment:
        return MultipartSegment(headerlist)


class _OperationReader:
    """A batch request's operations as its body arrives: a thread reads and parses the body
    while the handler answers, as objectstore's server parses its request as a stream
    (``extractors/batch.rs``), so that the first part may go out before the body has all come
    and neither side waits on the other. Iterating yields each operation as it is parsed; a
    malformed body ends them with an operation that fails 400 (the rest of the body is read
    and dropped)."""

    def __init__(self, pieces: Iterator[bytes], boundary: str | None) -> None:
        self.broken = False
        """Whether the connection ended before the body did."""
        self._queue: queue.SimpleQueue[_Operation | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, args=(pieces, boundary),
                                        name="objectstore-batch-body", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[_Operation]:
        while (operation := self._queue.get()) is not None:
            yield operation

    def join(self) -> None:
        self._thread.join()

    def _read(self, pieces: Iterator[bytes], boundary: str | None) -> None:
        try:
            if boundary is not None:
                self._parse(pieces, boundary)
            for _ in pieces:  # what follows the end or an error: read, so the stream stays in step
                pass
        except (OSError, ValueError):
            self.broken = True
        finally:
            self._queue.put(None)

    def _parse(self, pieces: Iterator[bytes], boundary: str) -> None:
        count = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        parser = _PartParser(boundary, max_header_count=64)
        try:
            for piece in chain(pieces, (b"",)):  # an empty piece: the end of the body
                for event in parser.parse(piece):
                    if isinstance(event, MultipartSegment):
                        headers = {name.lower(): value for name, value in event.headerlist}
                    elif event is not None:
                        chunks.append(bytes(event))
                    else:
                        self._queue.put(_operation(count, headers, b"".join(chunks)))
                        count += 1
                        chunks = []
            parser.close()
        except MultipartError as exc:
            self._queue.put(_Operation(count, error=(400, f"batch error: multipart error: {exc}")))


def _operation(index: int, headers: dict[str, str], body: bytes) -> _Operation:
    """One part as an operation, or the error objectstore answers it with."""
    if index >= MAX_OPERATIONS:
        return _Operation(index, error=(413, f"batch error: batch limit exceeded: exceeded {MAX_OPERATIONS} "
                                             "operations per batch request"))
    kind = headers.get("x-sn-batch-operation-kind", "").lower()
    if not kind:
        return _Operation(index, error=(400, "batch error: bad request: missing x-sn-batch-operation-kind header"))
    key = headers.get("x-sn-batch-operation-key")
    if key is not None:
        try:
            key = unquote(key, errors="strict")
        except UnicodeDecodeError:
            return _Operation(index, error=(400, "batch error: bad request: unable to percent-decode "
                                                 "x-sn-batch-operation-key header value"))
    if kind not in _OPERATION_METHODS:
        return _Operation(index, error=(400, f"batch error: bad request: invalid operation kind: {kind}"))
    if key is None and kind != "insert":
        return _Operation(index, error=(400, "batch error: bad request: missing x-sn-batch-operation-key "
                                             f"header for {kind} operation"))
    if kind == "insert" and len(body) > MAX_FIELD_SIZE:
        return _Operation(index, error=(413, "batch error: batch limit exceeded: individual request in batch "
                                             f"exceeds body size limit of {MAX_FIELD_SIZE} bytes"))
    return _Operation(index, kind, key, headers, body if kind == "insert" else b"")


def _success_part(index: int, key: str, kind: str, status: int, metadata: bytes = b"") -> bytes:
    """The headers of an operation's part that names its key: index, key, kind, status, metadata."""
    return (b"x-sn-batch-operation-index: %d\r\nx-sn-batch-operation-key: %s\r\n"
            b"x-sn-batch-operation-kind: %s\r\nx-sn-batch-operation-status: %s\r\n%s"
            b"content-disposition: form-data; name=part\r\n"
            % (index, _percent_encode(key), kind.encode(), _status(status), metadata))


def _error_part(index: int, status: int, detail: str) -> tuple[bytes, bytes]:
    """The headers and body of a failed operation's part: only its index and status."""
    head = (b"x-sn-batch-operation-index: %d\r\nx-sn-batch-operation-status: %s\r\n"
            b"content-disposition: form-data; name=part\r\n" % (index, _status(status)))
    return head, json.dumps({"detail": detail}).encode()


def _status(status: int) -> bytes:
    return f"{status} {http.HTTPStatus(status).phrase}".encode()


def _percent_encode(key: str) -> bytes:
    """Every byte but ASCII letters and digits as ``%XX``, as objectstore encodes a key header."""
    return _NOT_ALPHANUMERIC.sub(lambda match: b"%%%02X" % match[0][0], key.encode())


def _boundary(content_type: str | None) -> str | None:
    """The boundary of a ``multipart/form-data`` content type, else None."""
    if content_type is None:
        return None
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return value.strip('"')
    return None


def _valid_context(usecase: str, scopes: str) -> bool:
    """Whether a usecase and matrix scopes (``org=1;project=2``, ``_``) are well-formed."""
    scopes_ok = scopes == "_" or all(
        name and value for name, _, value in (s.partition("=") for s in scopes.split(";"))
    )
    return 3 <= len(usecase) <= 64 and scopes_ok


def _metadata(headers: Iterable[tuple[str, str]]) -> bytes:
    """The metadata header lines stored with an object uploaded with ``headers``."""
    stored = {"content-type": "application/octet-stream"}
    for name, value in headers:
        name = name.lower()
        if name in _STORED_HEADERS or name.startswith(_META_PREFIX):
            stored[name] = value
    stored["x-sn-time-created"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{name}: {value}\r\n" for name, value in stored.items()).encode("latin-1")


class ObjectstoreServer:
    """A running objectstore test server: ``url``, ``counters``, ``faults`` and `put`."""

    def __init__(self, server: _Server, token: str | None) -> None:
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.counters = server.counters
        self.faults = server.faults
        # Connection: close keeps this helper from holding idle sockets to the server.
        self._client = Client(self.url, token=token,
                              connection_kwargs={"headers": {"Connection": "close"}})

    def put(
        self,
        key: str,
        data: bytes,
        *,
        compress: str = "zstd",
        precompressed: str | None = None,
        usecase: str = DEFAULT_USECASE,
        scopes: Mapping[str, str | int] = DEFAULT_SCOPES,
    ) -> str:
        """Upload ``data`` under ``key`` through the real client (zstd-compressed by default).

        ``compress="none"`` stores it as is; ``precompressed="zstd"`` uploads bytes that are
        already zstd verbatim. Returns the key the server answered.
        """
        session = self._client.session(Usecase(usecase), **scopes)
        if precompressed is not None:
            return session.put(data, key=key, precompressed=precompressed)
        return session.put(data, key=key, compress=compress)

    def content_type(
        self, key: str, *, usecase: str = DEFAULT_USECASE, scopes: Mapping[str, str | int] = DEFAULT_SCOPES
    ) -> str | None:
        """The content type stored with ``key``, through the real client."""
        metadata = self._client.session(Usecase(usecase), **scopes).head(key)
        assert metadata is not None, f"no object {key!r}"
        return metadata.content_type


@contextmanager
def serve_objectstore(*, token: str | None = None) -> Iterator[ObjectstoreServer]:
    """Run an objectstore test server on 127.0.0.1 (ephemeral port) for the ``with`` block.

    With ``token``, every request must carry ``x-os-auth: Bearer <token>`` or gets 401.
    On exit it stops accepting, closes every connection and joins every thread.
    """
    server = _Server(token)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="objectstore-server", daemon=True)
    thread.start()
    try:
        yield ObjectstoreServer(server, token)
    finally:
        server.stopping.set()
        server.faults.release()
        server.shutdown()
        thread.join(timeout=5)
        for sock in server.counters._drain_open():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()


@pytest.fixture(scope="session")
def objectstore_server() -> Iterator[ObjectstoreServer]:
    """One objectstore test server for the whole run; tests disarm the faults they arm."""
    with serve_objectstore() as server:
        yield server
