"""A lean test server of Sentry objectstore's HTTP object API, with counters and fault injection.

It speaks what `objectstore_client` sends: ``/v1/objects/{usecase}/{scopes}/{key}``, scopes in
matrix form (``org=1;project=2``, ``_`` for none), the key being the rest of the path with its
slashes (the client leaves ``/`` unescaped; other reserved characters arrive percent-encoded).

- Counters: requests per method and key, connections accepted and open.
- GET: 200 with the body exactly as uploaded and the metadata headers (``content-encoding:
  zstd`` for a zstd upload, so the client decompresses), or 404 with an empty body.
- HEAD: the same headers, no body. PUT: stores the body as received (chunked or not) and
  answers 200 ``{"key": ...}``; POST to ``.../{scopes}/`` stores under a generated key (201).
  DELETE: 204. Errors: JSON ``{"detail": ...}``. Header names go out in lower case, as
  objectstore's own server writes them and as the client's metadata parser requires.
- Every connection gets its own thread, TCP_NODELAY and HTTP/1.1 keep-alive; the listen
  backlog is 1024.

`serve_objectstore()` runs one outside pytest; the session fixture ``objectstore_server``
shares one across the test run.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from objectstore_client import Client, Usecase

DEFAULT_USECASE = "preprod"
DEFAULT_SCOPES: Mapping[str, int] = {"org": 1, "project": 2}

_API_PREFIX = "/v1/objects/"
# Request headers that are object metadata, kept and served back under the same name.
_STORED_HEADERS = ("content-type", "content-encoding", "x-sn-expiration", "x-sn-origin",
                   "x-sn-filename")
_META_PREFIX = "x-snme-"
_INVERT = bytes(range(255, -1, -1))  # maps each byte b to b ^ 0xff
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_SMALL_BODY = 64 * 1024  # up to this size a response goes out in one write
_FAULT_MODES = ("reset", "truncate", "stall", "corrupt")


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
    """Thread-safe faults for the next GET (or PUT) requests, optionally only for one key.

    Modes: an HTTP status (e.g. 503, 429, 500, 401), answered with a JSON error body and, for
    429 and 503, a ``retry-after`` header; ``"reset"`` closes the connection without a
    response; ``"truncate"`` announces the full content-length, sends half the body and closes;
    ``"stall"`` waits ``delay`` seconds (cut short when the server stops) and then answers
    normally; ``"corrupt"`` sends a body of the right length with every byte inverted.
    PUT faults (``method="PUT"``) are statuses and ``"reset"``, after the body is read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

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
        if method not in ("GET", "PUT") or (method == "PUT" and mode not in ("reset",) and isinstance(mode, str)):
            raise ValueError(f"faults on {method} requests are statuses and 'reset' only")
        if times < 1 or not 0 <= delay <= 30:
            raise ValueError("times must be >= 1 and delay within 0..30 s")
        with self._lock:
            self._faults.append(_Fault(mode, times, key, retry_after, delay, method))

    def clear(self) -> None:
        """Disarm every pending fault."""
        with self._lock:
            self._faults.clear()

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
        if self.server.expected_auth is not None:
            if self.headers.get("x-os-auth") != self.server.expected_auth:
                self._error(401, "auth error: missing or invalid token")
                return None
        path = self.path.split("?", 1)[0]
        parts = path[len(_API_PREFIX):].split("/", 2) if path.startswith(_API_PREFIX) else []
        if len(parts) != 3:
            self._error(404, "no such route")
            return None
        usecase, scopes, key = (unquote(part) for part in parts)
        scopes_ok = scopes == "_" or all(
            name and value for name, _, value in (s.partition("=") for s in scopes.split(";"))
        )
        if not 3 <= len(usecase) <= 64 or not scopes_ok:
            self._error(400, "client error: invalid usecase or scopes")
            return None
        if collection != (key == ""):
            self._error(405, "method not allowed")
            return None
        return usecase, scopes, key

    def _read(self, *, send_body: bool) -> None:
        target = self._target()
        if target is None:
            return
        key = target[2]
        fault = None
        self.server.counters._count(self.command, key)
        if send_body:
            fault = self.server.faults._take("GET", key)
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
        self._send(200, obj.headers, body if send_body else b"", declared_length=len(body))

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
        if fault.mode == "stall" and self.server.stopping.wait(fault.delay):
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
            self.server.objects[(usecase, scopes, key)] = _Object(body, self._metadata(body))
        reply = json.dumps({"key": key}).encode()
        self._send(201 if generate_key else 200, b"content-type: application/json\r\n", reply)

    def _metadata(self, body: bytes) -> bytes:
        headers = {"content-type": "application/octet-stream"}
        for name, value in self.headers.items():
            name = name.lower()
            if name in _STORED_HEADERS or name.startswith(_META_PREFIX):
                headers[name] = value
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers["x-sn-time-created"] = created
        headers["x-sn-size"] = str(len(body))
        return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")

    def _request_body(self) -> bytes:
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";", 1)[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

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
        payload = body if sent is None else body[:sent]
        if len(payload) <= _SMALL_BODY:
            self.wfile.write(head + payload)
        else:
            self.wfile.write(head)
            self.wfile.write(payload)


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
