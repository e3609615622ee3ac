"""LatencyProxy against small local echo and HTTP servers: latency, pipelining, faults, close."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from testing.proxy import LatencyProxy, ManualClock
from testing.waiting import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded TCP server that can cut its open connections so it always shuts down."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests_handled = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def process_request_thread(self, request, client_address) -> None:
        with self._lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.discard(request)

    def cut_connections(self) -> None:
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


def body_of(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


class _Bytes(http.server.BaseHTTPRequestHandler):
    """``GET /<n>`` answers n bytes of `body_of`, keeping the connection alive."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests_handled += 1
        body = body_of(int(self.path.lstrip("/")))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[_Server]:
    server = _Server(handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.cut_connections()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def echo_server() -> Iterator[_Server]:
    yield from _serve(_Echo)


@pytest.fixture
def http_server() -> Iterator[_Server]:
    yield from _serve(_Bytes)


def proxy_to(server: _Server, latency_proxy, **options) -> LatencyProxy:
    host, port = server.server_address[:2]
    return latency_proxy(host, port, **options)


def connect(proxy: LatencyProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT)


LOOK = 0.1
"""Seconds a test looks for bytes that must not have come yet. A `ManualClock` stands still
meanwhile, so bytes the proxy holds cannot come however long it looks; bytes it forwarded
too early would have come at once."""

EIGHTH = 0.125
"""How far short of a delay a test stops the clock (a binary fraction: sums stay exact)."""


def assert_nothing_arrives(sock: socket.socket) -> None:
    sock.settimeout(LOOK)
    try:
        with pytest.raises(TimeoutError):
            sock.recv(1, socket.MSG_PEEK)
    finally:
        sock.settimeout(TIMEOUT)


def echo_through_the_legs(proxy: LatencyProxy, clock: ManualClock, sock: socket.socket,
                          way_up: float, way_down: float) -> None:
    """Send a ping and move ``clock`` through its way up to the echo server, then its way back
    down: an eighth of a second short of each, nothing has gone through (no echo from the
    server, nothing for the client); at it, the bytes go."""
    trip = proxy.requests_seen + 1
    sock.sendall(b"ping")
    wait_until(lambda: proxy.requests_seen == trip)  # stamped with the clock's time: move it now
    clock.advance(way_up - EIGHTH)
    assert_nothing_arrives(sock)
    assert proxy.responses_seen == trip - 1, "sent to the server early"
    clock.advance(EIGHTH)
    wait_until(lambda: proxy.responses_seen == trip)  # echoed: on its way down, stamped
    clock.advance(way_down - EIGHTH)
    assert_nothing_arrives(sock)
    clock.advance(EIGHTH)
    assert read_exactly(sock, 4) == b"ping"


def read_exactly(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        received += chunk
    return received


def read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def get(conn: http.client.HTTPConnection, size: int) -> http.client.HTTPResponse:
    conn.request("GET", f"/{size}")
    response = conn.getresponse()
    response.read()
    return response


# Latency


def test_round_trip_takes_at_least_the_rtt(echo_server: _Server, latency_proxy) -> None:
    # Half an rtt each way, on the proxy's clock; a new connection's first request also waits
    # one rtt for its handshake before its way up.
    clock = ManualClock()
    proxy = proxy_to(echo_server, latency_proxy, rtt=1.0, clock=clock)
    with connect(proxy) as sock:
        echo_through_the_legs(proxy, clock, sock, way_up=1.0 + 0.5, way_down=0.5)
        echo_through_the_legs(proxy, clock, sock, way_up=0.5, way_down=0.5)


def test_a_round_trip_takes_one_rtt_of_proxy_time_and_a_new_connection_one_more(
    echo_server: _Server, latency_proxy
) -> None:
    clock = ManualClock()
    proxy = proxy_to(echo_server, latency_proxy, up_delay=1.0, down_delay=0.0, clock=clock)
    with connect(proxy) as sock:
        for trip, proxy_time in enumerate([2.0, 1.0, 1.0], start=1):
            sock.sendall(b"ping")
            wait_until(lambda trip=trip: proxy.requests_seen == trip)
            clock.advance(proxy_time)  # a longer delay would leave the echo behind: a timeout
            assert read_exactly(sock, 4) == b"ping"


def test_delays_can_differ_per_direction(echo_server: _Server, latency_proxy) -> None:
    clock = ManualClock()
    proxy = proxy_to(echo_server, latency_proxy, up_delay=1.0, down_delay=0.25, handshake=False,
                     clock=clock)
    with connect(proxy) as sock:
        echo_through_the_legs(proxy, clock, sock, way_up=1.0, way_down=0.25)
        echo_through_the_legs(proxy, clock, sock, way_up=1.0, way_down=0.25)


def test_chunks_are_pipelined_within_a_connection(echo_server: _Server, latency_proxy) -> None:
    # Chunks sent an eighth of a second apart each leave one delay after they came, whatever
    # is still in the line; forwarding one chunk at a time would take a delay per chunk.
    clock, delay, gap, messages = ManualClock(), 1.0, 0.125, 8
    proxy = proxy_to(echo_server, latency_proxy, up_delay=delay, down_delay=0.0, handshake=False,
                     clock=clock)
    with connect(proxy) as sock:
        for i in range(messages):
            sock.sendall(b"%02d" % i)
            wait_until(lambda sent=2 * (i + 1): proxy.bytes_received == sent)
            clock.advance(gap)
        clock.advance(delay - messages * gap)  # the first chunk is due
        for i in range(messages):
            assert read_exactly(sock, 2) == b"%02d" % i
            clock.advance(gap)


def test_connections_do_not_wait_for_each_other(echo_server: _Server, latency_proxy) -> None:
    clock, clients = ManualClock(), 16
    proxy = proxy_to(echo_server, latency_proxy, up_delay=1.0, down_delay=0.0, handshake=False,
                     clock=clock)
    sockets = [connect(proxy) for _ in range(clients)]
    try:
        for i, sock in enumerate(sockets):
            sock.sendall(b"%02d" % i)
        wait_until(lambda: proxy.requests_seen == clients)
        clock.advance(1.0)  # one delay for all: connections waiting in turn would need sixteen
        assert [read_exactly(sock, 2) for sock in sockets] == [b"%02d" % i for i in range(clients)]
    finally:
        for sock in sockets:
            sock.close()
    assert proxy.connections_accepted == clients


def test_large_transfer_arrives_intact_with_half_close(echo_server: _Server, latency_proxy) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    proxy = proxy_to(echo_server, latency_proxy, rtt=0.01)
    with connect(proxy) as sock:
        writer = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        writer.start()
        echoed = read_to_eof(sock)
        writer.join(TIMEOUT)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


# Requests and faults


def test_counts_connections_and_requests(http_server: _Server, latency_proxy) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        for size in (10, 100_000, 0):
            response = get(conn, size)
            assert response.status == 200
    finally:
        conn.close()
    assert (proxy.connections_accepted, proxy.requests_seen) == (1, 3)


def test_http503_answers_instead_of_the_server_and_keeps_the_connection(
    http_server: _Server, latency_proxy
) -> None:
    proxy = proxy_to(http_server, latency_proxy, rtt=0.02)
    proxy.inject("http503")
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/5")
        response = conn.getresponse()
        assert (response.status, response.reason) == (503, "Service Unavailable")
        assert response.getheader("Retry-After") == "1"
        assert response.getheader("Content-Length") == "0"
        assert response.read() == b""
        response = get(conn, 5)
        assert response.status == 200
    finally:
        conn.close()
    assert http_server.requests_handled == 1
    assert (proxy.connections_accepted, proxy.requests_seen, proxy.faults_pending) == (1, 2, 0)


def test_status_fault_sends_any_status(http_server: _Server, latency_proxy) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("status", status=429, retry_after="7")
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        response = get(conn, 5)
        assert (response.status, response.getheader("Retry-After")) == (429, "7")
        proxy.inject("status", status=403, retry_after=None)
        response = get(conn, 5)
        assert (response.status, response.getheader("Retry-After")) == (403, None)
    finally:
        conn.close()
    assert http_server.requests_handled == 0


def test_fault_hits_the_next_count_requests(http_server: _Server, latency_proxy) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("http503", count=2)
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        assert [get(conn, 1).status for _ in range(3)] == [503, 503, 200]
    finally:
        conn.close()


def test_connection_fault_hits_the_first_request_of_new_connections(
    http_server: _Server, latency_proxy
) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    first = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        assert get(first, 1).status == 200
        proxy.inject("http503", count=2, per="connection")
        assert get(first, 1).status == 200  # an open connection is not hit
        statuses = []
        for _ in range(3):
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
            try:
                statuses.append([get(conn, 1).status, get(conn, 1).status])
            finally:
                conn.close()
    finally:
        first.close()
    assert statuses == [[503, 200], [503, 200], [200, 200]]


def test_clear_faults_disarms(http_server: _Server, latency_proxy) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("reset", count=5)
    assert proxy.faults_pending == 5
    proxy.clear_faults()
    assert proxy.faults_pending == 0
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        assert get(conn, 3).status == 200
    finally:
        conn.close()


def test_reset_aborts_the_connection(http_server: _Server, latency_proxy) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("reset")
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=TIMEOUT)
    try:
        with pytest.raises(ConnectionResetError):
            get(conn, 10)
    finally:
        conn.close()
    assert http_server.requests_handled == 0


def test_truncate_forwards_exactly_at_byte_bytes_then_closes(
    http_server: _Server, latency_proxy
) -> None:
    proxy = proxy_to(http_server, latency_proxy, rtt=0.01)
    proxy.inject("truncate", at_byte=70_000)
    with connect(proxy) as sock:
        sock.sendall(b"GET /200000 HTTP/1.1\r\nHost: test\r\n\r\n")
        received = read_to_eof(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(received) == 70_000
    assert body == body_of(200_000)[: len(body)]


def test_corrupt_flips_exactly_one_byte(http_server: _Server, latency_proxy) -> None:
    size, at_byte = 100_000, 50_000
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("corrupt", at_byte=at_byte)
    with connect(proxy) as sock:
        sock.sendall(b"GET /100000 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        received = read_to_eof(sock)
    head_length = received.index(b"\r\n\r\n") + 4
    expected = received[:head_length] + body_of(size)
    assert len(received) == len(expected)
    assert [i for i in range(len(expected)) if received[i] != expected[i]] == [at_byte]
    assert received[at_byte] == expected[at_byte] ^ 0xFF


def test_stall_holds_the_response_for_the_given_time(http_server: _Server, latency_proxy) -> None:
    # On the proxy's clock: the server has answered, and an eighth of a second before the stall
    # is over the client still has nothing (a client's read timeout fires meanwhile); at its
    # end, the whole response comes.
    clock = ManualClock()
    proxy = proxy_to(http_server, latency_proxy, clock=clock)
    proxy.inject("stall", stall=0.5)
    with connect(proxy) as sock:
        sock.sendall(b"GET /1000 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        wait_until(lambda: proxy.responses_seen == 1)  # the server's answer is held
        clock.advance(0.5 - EIGHTH)
        assert_nothing_arrives(sock)
        clock.advance(EIGHTH)
        received = read_to_eof(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == body_of(1000)
    assert http_server.requests_handled == 1


def test_trickle_forwards_at_byte_bytes_then_one_byte_at_a_time_all_intact(
    http_server: _Server, latency_proxy
) -> None:
    proxy = proxy_to(http_server, latency_proxy)
    proxy.inject("trickle", at_byte=100, interval=0.005)
    with connect(proxy) as sock:
        sock.sendall(b"GET /300 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        received = read_to_eof(sock)
    assert received.endswith(b"\r\n\r\n" + body_of(300))  # the server's close came after the last byte
    assert proxy.bytes_trickled == len(received) - 100 and proxy.trickled.is_set()


@pytest.mark.parametrize(
    "options",
    [{"kind": "explode"}, {"kind": "reset", "per": "socket"}, {"kind": "reset", "count": -1},
     {"kind": "stall", "stall": 0}, {"kind": "status", "status": 999}, {"kind": "trickle", "interval": 0}],
)
def test_inject_refuses_bad_arguments(echo_server: _Server, latency_proxy, options: dict) -> None:
    proxy = proxy_to(echo_server, latency_proxy)
    with pytest.raises(ValueError):
        proxy.inject(**options)


# Upstream failure and close


def test_unreachable_upstream_closes_the_client(latency_proxy) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound but not listening: connections are refused
        proxy = latency_proxy("127.0.0.1", port)
        with connect(proxy) as sock:
            sock.sendall(b"hello")
            try:
                assert sock.recv(10) == b""
            except ConnectionResetError:
                pass
    assert proxy.connections_accepted == 1


def test_close_stops_everything(http_server: _Server) -> None:
    host, port = http_server.server_address[:2]
    # The clock never moves: the stalled response can only end by close() aborting it (a close
    # that waited for it would fail on its own timeout).
    with LatencyProxy(host, port, rtt=0.02, clock=ManualClock()) as proxy:
        thread_name = f"latency-proxy-{proxy.port}"
        assert thread_name in {t.name for t in threading.enumerate()}
        proxy.inject("stall", stall=60.0)
        stalled = connect(proxy)
        stalled.sendall(b"GET /10 HTTP/1.1\r\nHost: test\r\n\r\n")
        wait_until(lambda: proxy.requests_seen == 1)
    try:
        try:
            assert stalled.recv(10) == b""
        except ConnectionResetError:
            pass
    finally:
        stalled.close()
    assert thread_name not in {t.name for t in threading.enumerate()}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT).close()
    proxy.close()  # closing twice is harmless
