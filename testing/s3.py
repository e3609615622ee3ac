"""Test server plugin: moto's S3 served by waitress, with switchable faults.

moto's own server runs on werkzeug, which answers ``Connection: close`` to every request;
waitress keeps connections alive, so connection reuse is exercised for real. A WSGI
middleware in front of moto counts requests and injects one fault at a time:

- ``slowdown``: 503 with S3 error code ``SlowDown`` and a ``Retry-After`` header;
- ``error500``: 500 ``InternalError``;
- ``denied``: 403 ``AccessDenied``;
- ``truncate``: the full ``Content-Length`` but only half the body, then the connection closes;
- ``reset``: the connection is aborted (TCP RST) before any response;
- ``stall``: the request is held ``seconds`` (bounded, cut short at shutdown), then answered.

Faults apply to requests of one method (GET unless told) whose path contains ``match``, for
the next ``count`` of them.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import DomainDispatcherApplication, create_backend_app
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import WSGITask

from fetchers.backends.s3 import S3Fetcher

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Enough workers for 32 concurrent fetches plus requests still held by an earlier stall.
SERVER_THREADS = 48
MAX_STALL_SECONDS = 10.0
_SOCKET_ENVIRON_KEY = "s3testserver.socket"

_ERROR_FAULTS = {
    "slowdown": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "error500": ("500 Internal Server Error", "InternalError", "We encountered an internal error."),
    "denied": ("403 Forbidden", "AccessDenied", "Access Denied"),
}
FAULT_MODES = frozenset(_ERROR_FAULTS) | {"truncate", "reset", "stall"}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class _Fault:
    mode: str
    remaining: int
    match: str
    seconds: float
    retry_after: str
    method: str = "GET"


class Faults:
    """A thread-safe switch holding at most one active fault rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: _Fault | None = None

    def set(
        self,
        mode: str,
        *,
        count: int = 1,
        match: str = "",
        seconds: float = 2.0,
        retry_after: str = "1",
        method: str = "GET",
    ) -> None:
        """Inject ``mode`` into the next ``count`` ``method`` requests whose path contains ``match``."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {sorted(FAULT_MODES)}")
        if not 0 <= seconds <= MAX_STALL_SECONDS:
            raise ValueError(f"stall seconds must be within [0, {MAX_STALL_SECONDS}]")
        with self._lock:
            self._fault = _Fault(mode, count, match, seconds, retry_after, method)

    def clear(self) -> None:
        """Stop injecting faults."""
        with self._lock:
            self._fault = None

    def take(self, method: str, path: str) -> _Fault | None:
        """The fault to inject into this request, if any; consumes one of its count."""
        with self._lock:
            fault = self._fault
            if fault is None or method != fault.method or fault.match not in path:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._fault = None
            return fault


class _Stats:
    """Requests per (method, path) and TCP connections accepted, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self._connections = 0

    def record_request(self, method: str, path: str) -> None:
        with self._lock:
            self._requests[(method, path)] += 1

    def record_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def requests(self, method: str, path: str) -> int:
        with self._lock:
            return self._requests[(method, path)]

    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    def by_method(self, method: str) -> int:
        with self._lock:
            return sum(n for (m, _), n in self._requests.items() if m == method)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections


def _error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>fault-injected</RequestId></Error>"
    ).encode()


class _FaultMiddleware:
    """Counts every request, then answers it with the active fault or passes it to moto."""

    def __init__(self, app: WSGIApp, faults: Faults, stats: _Stats, stopping: threading.Event):
        self._app = app
        self._faults = faults
        self._stats = stats
        self._stopping = stopping

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        self._stats.record_request(method, path)
        fault = self._faults.take(method, path)
        if fault is None:
            return self._app(environ, start_response)
        if fault.mode in _ERROR_FAULTS:
            status, code, message = _ERROR_FAULTS[fault.mode]
            body = _error_body(code, message)
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
            if fault.mode == "slowdown":
                headers.append(("Retry-After", fault.retry_after))
            start_response(status, headers)
            # An answer to a HEAD has no body: bytes sent after it would be read as the start
            # of the next answer on the connection.
            return [] if method == "HEAD" else [body]
        if fault.mode == "reset":
            # Linger 0 turns the close waitress performs next into a RST instead of a FIN.
            sock: socket.socket = environ[_SOCKET_ENVIRON_KEY]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise ClientDisconnected("fault injected: reset")
        if fault.mode == "truncate":
            return self._truncated(environ, start_response)
        self._stopping.wait(fault.seconds)
        return self._app(environ, start_response)

    def _truncated(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured[:] = (status, headers)

        app_iter = self._app(environ, capture)
        try:
            body = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        status, headers = captured
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        # waitress closes the connection when the app writes fewer bytes than announced.
        yield body[: len(body) // 2]


class _SocketAwareTask(WSGITask):
    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        environ[_SOCKET_ENVIRON_KEY] = self.channel.socket
        return environ


class _BodylessContinueParser(HTTPRequestParser):
    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        # waitress answers "Expect: 100-continue" on a request without a body (botocore's empty
        # PUT) by un-completing it and waiting for a body that never comes: nothing to continue.
        if self.body_rcv is None:
            self.expect_continue = False


class _CountingChannel(HTTPChannel):
    task_class = _SocketAwareTask
    parser_class = _BodylessContinueParser

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        server.stats.record_connection()


class _CountingServer(TcpWSGIServer):
    channel_class = _CountingChannel

    def __init__(self, app: WSGIApp, stats: _Stats, socket_map: dict, adj: Adjustments):
        self.stats = stats
        super().__init__(app, map=socket_map, adj=adj)


class S3TestServer:
    """moto S3 on waitress at ``endpoint_url``, with ``faults`` and request/connection counts."""

    def __init__(self) -> None:
        self.faults = Faults()
        self._stats = _Stats()
        self._stopping = threading.Event()
        self._socket_map: dict = {}
        moto = DomainDispatcherApplication(create_backend_app)
        app = _FaultMiddleware(moto, self.faults, self._stats, self._stopping)
        adj = Adjustments(host="127.0.0.1", port=0, threads=SERVER_THREADS, ident="s3-test-server")
        self._server = _CountingServer(app, self._stats, self._socket_map, adj)
        self.endpoint_url = f"http://127.0.0.1:{self._server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="s3-test-server", daemon=True)
        self._thread.start()
        self._admin = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=REGION, **CREDENTIALS
        )

    def stop(self) -> None:
        """Close every connection, end the serving loop and join all server threads."""
        self._stopping.set()
        self._admin.close()
        # Closing the map from inside the loop's own thread avoids racing its poll.
        self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._socket_map))
        self._thread.join(timeout=10)
        self._server.task_dispatcher.shutdown(timeout=MAX_STALL_SECONDS)
        if self._thread.is_alive():
            raise RuntimeError("s3 test server loop did not stop")

    def create_bucket(self, objects: dict[str, bytes] | None = None) -> str:
        """Create a bucket with a fresh unique name holding ``objects``; return its name."""
        bucket = f"snap-{uuid.uuid4().hex[:16]}"
        self._admin.create_bucket(Bucket=bucket)
        for key, data in (objects or {}).items():
            self.put_object(bucket, key, data)
        return bucket

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        self._admin.put_object(Bucket=bucket, Key=key, Body=data)

    def content_type(self, bucket: str, key: str) -> str:
        """The content type stored with ``bucket/key``."""
        return self._admin.head_object(Bucket=bucket, Key=key)["ContentType"]

    def requests(self, method: str, bucket: str, key: str) -> int:
        """How many ``method`` requests the server received for ``bucket/key``."""
        return self._stats.requests(method, f"/{bucket}/{key}")

    def requests_by_method(self, method: str) -> int:
        """How many ``method`` requests the server received for any path."""
        return self._stats.by_method(method)

    def total_requests(self) -> int:
        return self._stats.total_requests()

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (admin client included: compare deltas)."""
        return self._stats.connections


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3TestServer]:
    server = S3TestServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3TestServer) -> Iterator[str]:
    """A fresh empty bucket; faults are cleared before and after the test."""
    s3_server.faults.clear()
    yield s3_server.create_bucket()
    s3_server.faults.clear()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Fake credentials in the environment and no AWS config from the machine."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_fetcher_factory(
    s3_server: S3TestServer, s3_env: None
) -> Iterator[Callable[..., S3Fetcher]]:
    """Builds `S3Fetcher`s on the test server (fetcher-created clients); closes them after."""
    fetchers: list[S3Fetcher] = []

    def make(bucket: str, **options: Any) -> S3Fetcher:
        options.setdefault("endpoint_url", s3_server.endpoint_url)
        options.setdefault("region_name", REGION)
        fetcher = S3Fetcher(bucket, **options)
        fetchers.append(fetcher)
        return fetcher

    yield make
    for fetcher in fetchers:
        fetcher.close()
