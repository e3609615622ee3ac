"""Interrupting a request another thread has on the wire: its socket is shut down.

A read timeout bounds each wait for bytes, not a whole answer: a store that trickles bytes, or
a request that must stop because its batch is closing, leaves a worker blocked in ``recv``.
`RequestSockets` remembers which connection each thread last sent a request on, and
`interrupt` shuts that socket down (``SHUT_RDWR``) from any thread: the blocked read returns
at once, the SDK raises, and its usual error path closes the connection. The backends that
speak HTTP install it on their urllib3 connection pools with `tracked_pool_class`.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool


class RequestSockets:
    """The connection each thread last sent a request on, to shut down on demand. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, HTTPConnection] = {}  # thread ident -> connection
        self._user: dict[HTTPConnection, int] = {}  # connection -> the thread that sent on it last

    def bind(self, connection: HTTPConnection) -> None:
        """The calling thread is sending a request on ``connection``."""
        me = threading.get_ident()
        with self._lock:
            previous = self._user.get(connection)
            if previous is not None and previous != me and self._latest.get(previous) is connection:
                del self._latest[previous]  # that thread's request on it is over
            old = self._latest.get(me)
            if old is not None and old is not connection:
                self._user.pop(old, None)
            self._latest[me] = connection
            self._user[connection] = me

    def interrupt(self, thread_id: int) -> None:
        """Shut down the socket of the request thread ``thread_id`` has (or last had) in flight.

        An idle connection shut down this way is dropped by its pool when next taken, so a
        request that already ended costs nothing but a reconnect.
        """
        with self._lock:
            connection = self._latest.get(thread_id)
        if connection is not None:
            _shut_down(connection)

    def interrupt_all(self) -> None:
        """Shut down every connection a request was sent on, and forget them."""
        with self._lock:
            connections = list(self._user)
            self._latest.clear()
            self._user.clear()
        for connection in connections:
            _shut_down(connection)


def _shut_down(connection: HTTPConnection) -> None:
    sock = getattr(connection, "_request_socket", None)
    if not isinstance(sock, socket.socket):  # TLS through a TLS proxy: urllib3's SSLTransport
        sock = getattr(sock, "socket", None)
    if not isinstance(sock, socket.socket):
        return
    try:
        # The plain socket method, also on a TLS socket: it acts on the descriptor and leaves
        # the TLS state to the thread reading it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed or never connected
        pass


def tracked_connection_class(base: type[Any], sockets: RequestSockets) -> type[Any]:
    """A subclass of urllib3 connection class ``base`` (an `HTTPConnection`, as a pool's
    ``ConnectionCls`` is) that reports each request to ``sockets``."""

    class TrackedConnection(base):  # type: ignore[misc]
        def connect(self) -> None:
            super().connect()
            # http.client drops ``sock`` while a response it will close is still being read:
            # keep the socket the request went out on.
            self._request_socket = self.sock

        def request(self, *args: Any, **kwargs: Any) -> Any:
            sockets.bind(self)
            return super().request(*args, **kwargs)

    TrackedConnection.__name__ = TrackedConnection.__qualname__ = f"Tracked{base.__name__}"
    return TrackedConnection


def tracked_pool_class(base: type[HTTPConnectionPool], sockets: RequestSockets) -> type[HTTPConnectionPool]:
    """A subclass of urllib3 pool class ``base`` whose connections report to ``sockets``."""
    return type(f"Tracked{base.__name__}", (base,),
                {"ConnectionCls": tracked_connection_class(base.ConnectionCls, sockets)})
