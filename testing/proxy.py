"""Test server plugin: a TCP proxy that adds latency and injects faults (`LatencyProxy`).

``LatencyProxy(upstream_host, upstream_port, *, rtt=0.0, ...)`` listens on 127.0.0.1 (an
ephemeral port) and forwards every connection to the upstream address, from an asyncio
selector event loop (Linux, macOS) running in its own thread. It starts on construction and is
usable as a context manager; its counters may be read from any thread::

    with LatencyProxy("127.0.0.1", server_port, rtt=0.020) as proxy:
        fetch_from(proxy.url)               # http://127.0.0.1:<proxy.port>
        proxy.connections_accepted          # TCP connections the proxy accepted
        proxy.requests_seen                 # requests (see below) it saw
        proxy.requests_by_method("POST")    # of those, the ones starting with that method

Latency: each direction delays every chunk by its one-way delay (``rtt / 2`` each way unless
``up_delay`` / ``down_delay`` say otherwise). Chunks are time-stamped on arrival and forwarded
at arrival + delay, in order, so a connection is a pipeline (a chunk arriving at t leaves at
t + delay whatever else is in flight) and connections never wait for each other. With
``handshake=True`` (the default) a new connection's first request is also held one RTT, the
cost a real TCP handshake adds. Both sockets of a connection get TCP_NODELAY; the listen
backlog is ``backlog`` (1024). Flow control is end to end: a side stops being read while the
other side's send buffer or the delay line is full, so memory stays bounded.

Time: the monotonic clock, unless ``clock=ManualClock()``: then delays, stalls and trickles
end only as far as the test moves that clock (`ManualClock.advance`), however fast or slow
the machine runs.

Requests: the proxy does not parse HTTP. A *request* is a burst of client bytes that starts
a connection or follows response bytes, which is exact for HTTP/1.1 clients that send a
request, read its response, then send the next (requests, urllib3, boto3, http.client).

Faults (thread-safe, one switch at a time): ``inject(kind, count=1, *, per="request", ...)``
arms a fault for the next ``count`` requests (``per="request"``) or for the first request of
each of the next ``count`` new connections (``per="connection"``); ``clear_faults()`` disarms
it; ``faults_pending`` is how many are left. Kinds:

- ``"reset"``: abort both sides (the client gets a TCP RST) instead of forwarding the request;
- ``"truncate"``: forward the first ``at_byte`` bytes of the response, then close both sides;
- ``"stall"``: hold the response ``stall`` seconds (a bounded time), then forward it;
- ``"trickle"``: forward the first ``at_byte`` bytes of the response, then the rest one byte
  every ``interval`` seconds (a store that keeps a read timeout from ever firing); the
  proxy's ``trickled`` event is set when the first byte goes out that way and
  ``bytes_trickled`` counts them;
- ``"corrupt"``: flip every bit of the response byte at offset ``at_byte``;
- ``"http503"``: answer ``HTTP/1.1 503 Service Unavailable`` with ``Retry-After: 1`` and
  ``Content-Length: 0`` instead of forwarding (the connection stays open);
- ``"status"``: the same with any ``status`` and an optional ``retry_after`` header value.

Canned answers expect the request in one burst (a GET; not a streamed upload body).

``close()`` (idempotent) stops listening, aborts every connection, stops the loop and joins
its thread. The ``latency_proxy`` fixture is a factory whose proxies are closed after the test.
"""

from __future__ import annotations

import asyncio
import collections
import http
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import pytest

FaultKind = Literal["reset", "truncate", "stall", "corrupt", "http503", "status", "trickle"]
FaultScope = Literal["request", "connection"]
_KINDS = frozenset(FaultKind.__args__)  # type: ignore[attr-defined]
_SCOPES = frozenset(FaultScope.__args__)  # type: ignore[attr-defined]

_HIGH_WATER = 4 * 1024 * 1024  # bytes waiting in one delay line before its source is paused
_LOW_WATER = 1024 * 1024
_CLOSE_TIMEOUT = 10.0
_CONNECT_TIMEOUT = 10.0
# epoll waits in whole milliseconds, so every timer fires up to 1 ms late; releasing what falls
# due within half of that centres the delay error on zero instead of adding ~0.5 ms each way.
_TIMER_SLACK = 0.0005


@dataclass(frozen=True)
class Fault:
    """What to do to one request; see the module docstring for the kinds."""

    kind: FaultKind
    at_byte: int = 0
    stall: float = 5.0
    status: int = 503
    retry_after: str | None = "1"
    interval: float = 1.0

    def canned_response(self) -> bytes:
        reason = http.HTTPStatus(self.status).phrase
        retry_after = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
        return f"HTTP/1.1 {self.status} {reason}\r\n{retry_after}Content-Length: 0\r\n\r\n".encode()


_EOF = object()  # half-close the destination after the bytes before it
_CLOSE = object()  # close the destination after the bytes before it


class _DelayLine:
    """One direction of a connection: bytes leave ``delay`` seconds after they arrived, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, not_before: float = 0.0) -> None:
        self._loop = loop
        self._delay = delay
        self._not_before = not_before
        self._items: collections.deque[tuple[float, object]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self.queued = 0
        self.dest: asyncio.Transport | None = None
        self.source: asyncio.Transport | None = None
        self.dest_paused = False
        self._source_paused = False
        self.closed = False

    def push(self, item: object, extra: float = 0.0) -> None:
        if self.closed:
            return
        due = max(self._loop.time(), self._not_before) + self._delay + extra
        self._items.append((due, item))
        if isinstance(item, bytes):
            self.queued += len(item)
        self.flush()

    def flush(self) -> None:
        """Deliver what is due and set a timer for the rest."""
        if self.dest is not None:
            now = self._loop.time()
            while self._items and self._items[0][0] <= now + _TIMER_SLACK and not self.closed:
                _, item = self._items.popleft()
                if isinstance(item, bytes):
                    self.queued -= len(item)
                    self.dest.write(item)
                elif item is _EOF and self.dest.can_write_eof():
                    try:
                        self.dest.write_eof()
                    except OSError:  # the destination's peer is gone already (ENOTCONN)
                        self.dest.abort()
                        self.discard()
                else:
                    self.dest.close()
                    self.discard()
            if self._items and self._timer is None and not self.closed:
                self._timer = self._loop.call_at(self._items[0][0] - _TIMER_SLACK, self._on_timer)
        self.update_flow()

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def update_flow(self) -> None:
        """Pause reading the source while the destination or this line is full."""
        if self.source is None or self.closed:
            return
        if self.dest_paused or self.queued > _HIGH_WATER:
            if not self._source_paused:
                self._source_paused = True
                self.source.pause_reading()
        elif self._source_paused and self.queued <= _LOW_WATER:
            self._source_paused = False
            self.source.resume_reading()

    def discard(self) -> None:
        """Drop whatever is still waiting and stop for good."""
        self.closed = True
        self._items.clear()
        self.queued = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _End(asyncio.Protocol):
    """One socket of a proxied connection; events go to its `_Link`."""

    def __init__(self, link: _Link, side: Literal["client", "upstream"]) -> None:
        self.link = link
        self.side = side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.side == "client":
            self.link.from_client(data)
        else:
            self.link.from_upstream(data)

    def eof_received(self) -> bool:
        if self.side == "client":
            self.link.to_upstream.push(_EOF)
        else:
            self.link.upstream_ended(_EOF)
        return True  # keep the other direction open until it closes too

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self.side)

    def pause_writing(self) -> None:
        line = self.link.line_into(self.side)
        line.dest_paused = True
        line.update_flow()

    def resume_writing(self) -> None:
        line = self.link.line_into(self.side)
        line.dest_paused = False
        line.update_flow()


class _Link:
    """A client connection, its upstream connection, the two delay lines and the fault state."""

    def __init__(self, proxy: LatencyProxy, client: asyncio.Transport) -> None:
        loop = proxy._loop
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.Transport | None = None
        handshake_until = loop.time() + proxy.up_delay + proxy.down_delay if proxy.handshake else 0.0
        self.to_upstream = _DelayLine(loop, proxy.up_delay, not_before=handshake_until)
        self.to_upstream.source = client
        self.to_client = _DelayLine(loop, proxy.down_delay)
        self.to_client.dest = client
        self.awaiting_request = True
        self.connection_fault = proxy._take_fault("connection")
        self.fault: Fault | None = None
        self.response_bytes = 0
        self.lost_sides: set[str] = set()
        self.trickling = bytearray()  # response bytes still to go out one at a time
        self.trickle_timer: asyncio.TimerHandle | None = None
        self.trickle_paused = False  # the upstream is not read while much is left to trickle
        self.after_trickle: list[object] = []  # the upstream's end (_EOF, _CLOSE), after the last byte
        self.connect_task = loop.create_task(self._connect())

    def line_from(self, side: str) -> _DelayLine:
        return self.to_upstream if side == "client" else self.to_client

    def line_into(self, side: str) -> _DelayLine:
        return self.to_client if side == "client" else self.to_upstream

    async def _connect(self) -> None:
        proxy = self.proxy
        try:
            transport, _ = await asyncio.wait_for(
                proxy._loop.create_connection(
                    lambda: _End(self, "upstream"), proxy.upstream_host, proxy.upstream_port
                ),
                _CONNECT_TIMEOUT,
            )
        except (TimeoutError, OSError):
            self.abort()
            return
        if self.to_upstream.closed or "client" in self.lost_sides:  # the client left meanwhile
            transport.abort()
            return
        self.upstream = transport
        self.to_upstream.dest = transport
        self.to_client.source = transport
        self.to_upstream.flush()

    def from_client(self, data: bytes) -> None:
        # Forwarded and counted under the proxy's lock, so that a test that reads the count finds
        # the bytes stamped with the time of a `ManualClock` before it moves it, and a client
        # reads no answer before the request that caused it is counted.
        with self.proxy._lock:
            self._from_client(data)

    def _from_client(self, data: bytes) -> None:
        starts_request = self.awaiting_request
        if starts_request:
            self.awaiting_request = False
            self.response_bytes = 0
            self.fault = self.connection_fault or self.proxy._take_fault("request")
            self.connection_fault = None
        if starts_request and self.fault is not None and self.fault.kind == "reset":
            self.abort(reset=True)
        elif starts_request and self.fault is not None and self.fault.kind in ("http503", "status"):
            # The request is dropped; the answer comes back as if from the server.
            self.to_client.push(self.fault.canned_response(), extra=self.proxy.up_delay)
            self.awaiting_request = True
            self.fault = None
        else:
            self.to_upstream.push(data)
        self.proxy._count_received(data, starts_request)

    def from_upstream(self, data: bytes) -> None:
        with self.proxy._lock:  # as in `from_client`
            starts_response = self.response_bytes == 0
            self._forward_upstream(data)
            if starts_response:
                self.proxy._count_response()

    def _forward_upstream(self, data: bytes) -> None:
        self.awaiting_request = True
        fault = self.fault
        start = self.response_bytes
        self.response_bytes += len(data)
        if fault is None:
            self.to_client.push(data)
        elif fault.kind == "truncate":
            self.to_client.push(data[: max(0, fault.at_byte - start)])
            if self.response_bytes >= fault.at_byte:
                self.fault = None
                self.to_client.push(_CLOSE)
                if self.upstream is not None:
                    self.upstream.close()
        elif fault.kind == "stall":
            self.to_client.push(data, extra=fault.stall if start == 0 else 0.0)
        elif fault.kind == "trickle":
            head = data[: max(0, fault.at_byte - start)]
            if head:
                self.to_client.push(head)
            self.trickling += data[len(head):]
            self._trickle_flow()
            if self.trickling and self.trickle_timer is None:
                self.trickle_timer = self.proxy._loop.call_later(fault.interval, self._trickle_one, fault.interval)
        elif fault.kind == "corrupt" and start <= fault.at_byte < self.response_bytes:
            corrupted = bytearray(data)
            corrupted[fault.at_byte - start] ^= 0xFF
            self.to_client.push(bytes(corrupted))
        else:
            self.to_client.push(data)

    def _trickle_one(self, interval: float) -> None:
        """Send the next trickled byte, and schedule the one after."""
        self.trickle_timer = None
        if self.to_client.closed:
            self.trickling.clear()
            return
        self.to_client.push(bytes(self.trickling[:1]))
        del self.trickling[:1]
        self._trickle_flow()
        self.proxy._count_trickled()
        if self.trickling:
            self.trickle_timer = self.proxy._loop.call_later(interval, self._trickle_one, interval)
        else:
            for marker in self.after_trickle:
                self.to_client.push(marker)
            self.after_trickle.clear()

    def upstream_ended(self, marker: object) -> None:
        """Pass the upstream's end (``_EOF`` or ``_CLOSE``) on, after any bytes still trickling."""
        if self.trickling:
            self.after_trickle.append(marker)
        else:
            self.to_client.push(marker)

    def _trickle_flow(self) -> None:
        """Stop reading the upstream while much is left to trickle, so memory stays bounded."""
        if self.upstream is None or "upstream" in self.lost_sides:
            return
        if not self.trickle_paused and len(self.trickling) > _HIGH_WATER:
            self.trickle_paused = True
            self.upstream.pause_reading()
        elif self.trickle_paused and len(self.trickling) <= _LOW_WATER:
            self.trickle_paused = False
            self.upstream.resume_reading()

    def lost(self, side: str) -> None:
        self.lost_sides.add(side)
        if side == "client":
            self.to_client.discard()
            self.to_upstream.source = None
            if self.upstream is None:
                self.connect_task.cancel()
            self.to_upstream.push(_CLOSE)
        else:
            self.to_upstream.discard()
            self.to_client.source = None
            self.upstream_ended(_CLOSE)
        if "client" in self.lost_sides and ("upstream" in self.lost_sides or self.upstream is None):
            self.proxy._links.discard(self)
            self.proxy._maybe_idle()

    def abort(self, *, reset: bool = False) -> None:
        """Drop the connection at once; with ``reset`` the client gets a TCP RST."""
        if self.trickle_timer is not None:
            self.trickle_timer.cancel()
            self.trickle_timer = None
        self.to_client.discard()
        self.to_upstream.discard()
        self.connect_task.cancel()
        if reset:
            sock = self.client.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()


class LatencyProxy:
    """An asyncio TCP proxy with per-direction latency and switchable faults.

    See the module docstring for the full behaviour. Attributes: ``host``, ``port``, ``url``
    (``http://host:port``), ``connections_accepted``, ``requests_seen``, ``responses_seen``,
    ``bytes_received``, ``faults_pending``, ``bytes_trickled`` and ``trickled`` (an event).
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        rtt: float = 0.0,
        up_delay: float | None = None,
        down_delay: float | None = None,
        handshake: bool = True,
        backlog: int = 1024,
        clock: ManualClock | None = None,
    ) -> None:
        self.up_delay = rtt / 2 if up_delay is None else up_delay
        self.down_delay = rtt / 2 if down_delay is None else down_delay
        if self.up_delay < 0 or self.down_delay < 0:
            raise ValueError("delays must not be negative")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.handshake = handshake
        self._connections_accepted = 0
        self._requests_seen = 0
        self._responses_seen = 0
        self._bytes_received = 0
        self._bytes_trickled = 0
        self.trickled = threading.Event()
        self._methods: collections.Counter[str] = collections.Counter()
        self._links: set[_Link] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._lock = threading.RLock()
        self._fault: Fault | None = None
        self._fault_scope: FaultScope = "request"
        self._fault_count = 0
        self._closed = False
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(backlog)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._clock = clock
        self._loop = asyncio.new_event_loop() if clock is None else _ClockedLoop(clock)
        if clock is not None:
            clock._attach(self._wake)
        self._loop.add_reader(self._listener, self._accept)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"latency-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far."""
        return self._connections_accepted

    @property
    def requests_seen(self) -> int:
        """Requests seen so far, faulted ones included."""
        with self._lock:
            return self._requests_seen

    @property
    def bytes_trickled(self) -> int:
        """Response bytes sent one at a time by ``"trickle"`` faults so far."""
        with self._lock:
            return self._bytes_trickled

    def _count_trickled(self) -> None:
        with self._lock:
            self._bytes_trickled += 1
        self.trickled.set()

    def requests_by_method(self, method: str) -> int:
        """Requests seen whose first bytes are ``method`` and a space (``GET``, ``PUT``, ...)."""
        with self._lock:
            return self._methods[method]

    @property
    def responses_seen(self) -> int:
        """Responses whose first bytes came from the upstream so far (a stalled one counts)."""
        with self._lock:
            return self._responses_seen

    def _count_response(self) -> None:
        with self._lock:
            self._responses_seen += 1

    @property
    def bytes_received(self) -> int:
        """Bytes received from clients so far."""
        with self._lock:
            return self._bytes_received

    def _count_received(self, data: bytes, starts_request: bool) -> None:
        with self._lock:
            self._bytes_received += len(data)
            if starts_request:
                self._requests_seen += 1
                self._methods[data.split(b" ", 1)[0][:16].decode("ascii", "replace")] += 1

    @property
    def faults_pending(self) -> int:
        """How many more requests or connections the armed fault will hit."""
        with self._lock:
            return self._fault_count

    def inject(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        per: FaultScope = "request",
        at_byte: int = 0,
        stall: float = 5.0,
        status: int = 503,
        retry_after: str | None = "1",
        interval: float = 1.0,
    ) -> None:
        """Arm ``kind`` for the next ``count`` requests or new connections (replaces any armed)."""
        if kind not in _KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: expected one of {sorted(_KINDS)}")
        if per not in _SCOPES:
            raise ValueError(f"per must be one of {sorted(_SCOPES)}, not {per!r}")
        if count < 0 or at_byte < 0 or not 0 < stall < 600 or not 0 < interval < 600:
            raise ValueError("count and at_byte must be >= 0, stall and interval in (0, 600) seconds")
        if kind == "http503":
            status, retry_after = 503, "1"
        http.HTTPStatus(status)  # raises ValueError for an unknown status
        with self._lock:
            self._fault = Fault(
                kind, at_byte=at_byte, stall=stall, status=status, retry_after=retry_after, interval=interval
            )
            self._fault_scope = per
            self._fault_count = count

    def clear_faults(self) -> None:
        """Disarm the fault switch."""
        with self._lock:
            self._fault = None
            self._fault_count = 0

    def _take_fault(self, scope: FaultScope) -> Fault | None:
        with self._lock:
            if self._fault_count <= 0 or self._fault_scope != scope:
                return None
            self._fault_count -= 1
            return self._fault

    def _accept(self) -> None:
        # Accepting and handing the socket to a task happen in one callback, so closing the
        # listener between callbacks never strands a half-accepted connection.
        for _ in range(64):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self._loop.create_task(self._adopt(conn))

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(lambda: _Accepted(self), conn)
        except OSError:
            conn.close()

    def _register(self, transport: asyncio.Transport) -> _Link:
        self._connections_accepted += 1
        link = _Link(self, transport)
        self._links.add(link)
        self._idle.clear()
        return link

    def _maybe_idle(self) -> None:
        if not self._links:
            self._idle.set()

    async def _shutdown(self) -> None:
        self._loop.remove_reader(self._listener)
        self._listener.close()
        # Sockets are closed by callbacks and tasks (accepts and upstream connects in
        # progress, which may add links) that must all finish before the loop stops.
        while True:
            for link in list(self._links):
                link.abort()
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            if tasks:
                await asyncio.wait(tasks)
            elif self._links:
                await self._idle.wait()
            else:
                break

    def _wake(self) -> None:
        """Make the loop look at its timers again: its clock has moved."""
        self._loop.call_soon_threadsafe(_nothing)

    def _stop_loop(self) -> None:
        if self._clock is not None:
            self._clock._detach(self._wake)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        """Stop listening, abort every connection, stop the loop and join its thread."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(_CLOSE_TIMEOUT)
        finally:
            self._stop_loop()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ManualClock:
    """The time of the `LatencyProxy`s given it, which passes only when `advance` says: their
    delays, handshakes, stalls and trickles wait for the test, never for the machine.

    It starts at 0. A proxy stamps bytes with the time they arrive, so a test moves the clock
    only once the proxy has them (``requests_seen``, ``bytes_received``). Thread-safe.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

    def time(self) -> float:
        """Seconds since the clock was made, as far as it has been moved."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on; what falls due by then is sent at once."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def _attach(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.append(wake)

    def _detach(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.remove(wake)


class _ClockedLoop(asyncio.SelectorEventLoop):
    """An event loop whose timers run on a `ManualClock`."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self._manual_clock = clock

    def time(self) -> float:
        return self._manual_clock.time()


def _nothing() -> None:
    """A callback that only wakes a loop."""


class _Accepted(_End):
    """The client socket of a new connection: it creates the connection's `_Link`."""

    def __init__(self, proxy: LatencyProxy) -> None:
        self._proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self.link = self._proxy._register(transport)
        self.side = "client"


@pytest.fixture
def latency_proxy() -> Iterator[Callable[..., LatencyProxy]]:
    """Factory ``latency_proxy(host, port, **options) -> LatencyProxy``, closed after the test."""
    proxies: list[LatencyProxy] = []

    def make(upstream_host: str, upstream_port: int, **options) -> LatencyProxy:
        proxy = LatencyProxy(upstream_host, upstream_port, **options)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
