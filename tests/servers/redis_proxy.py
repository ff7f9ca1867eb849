"""A TCP proxy in front of a Redis server that loses what a dying master loses.

Why: the hardest fault for a store is the one where the client cannot know the outcome —
the command reached Redis and ran, and the reply never came back (a master killed between
running a script and writing its answer, a connection reset on the way back). Killing a real
master makes that a matter of luck; this proxy makes it exact. Modes (:meth:`RedisProxy.mode`),
applied to every connection from the next byte on:

- ``"pass"``: bytes go both ways unchanged (the default).
- ``"lose_replies"``: commands are forwarded, so Redis runs them; the reply to one that
  names a script call (``EVALSHA``/``EVAL``, what a store decision is) is dropped and the
  client's connection ended: the client sees a ConnectionError after a command that did run.
  Other commands (a health-check PING, the connection handshake) pass, so the loss hits
  the decision itself.
- ``"reset_before"``: a command is dropped and the client's connection reset before
  anything reaches Redis: the same ConnectionError after a command that did not run.

The proxy reads no RESP: it works on whatever the socket delivers, which is one command (or
one pipeline) at a time for the request/reply clients in these tests.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

MODES = ("pass", "lose_replies", "reset_before")


def _reset(sock: socket.socket) -> None:
    """End the connection now, as a killed process does. SO_LINGER 0 makes the close a TCP
    RST; the shutdown first is what wakes this proxy's other thread blocked in recv() on
    the same socket (a bare close() from one thread leaves the connection open while
    another is in a syscall on it — and then the peer sees neither RST nor FIN)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class RedisProxy:
    """``RedisProxy(upstream_port)`` listens on a free loopback port (:attr:`port`,
    :attr:`url`); use as a context manager."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"redis://{host}:{self.port}/0"
        self._mode = "pass"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._armed: set[socket.socket] = set()  # a script call's reply is on its way
        self.lost_replies = 0  # replies dropped in "lose_replies"
        self.dropped_commands = 0  # commands dropped in "reset_before"
        self._closed = False
        threading.Thread(target=self._accept, name="redis-proxy", daemon=True).start()

    def __enter__(self) -> RedisProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._mode = mode

    @contextlib.contextmanager
    def losing_replies(self) -> Iterator[None]:
        self.mode("lose_replies")
        try:
            yield
        finally:
            self.mode("pass")

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _reset(sock)
            self._open.clear()

    # -- plumbing -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            pair = (client, upstream)
            threading.Thread(target=self._requests, args=pair, daemon=True).start()
            threading.Thread(target=self._replies, args=pair, daemon=True).start()

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        _reset(client)
        with contextlib.suppress(OSError):
            upstream.close()
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client → Redis."""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._drop(client, upstream)
                return
            if self._mode == "reset_before":
                self.dropped_commands += 1
                self._drop(client, upstream)
                return
            if self._mode == "lose_replies" and b"EVAL" in data.upper():
                self._armed.add(client)
            try:
                upstream.sendall(data)
            except OSError:
                self._drop(client, upstream)
                return

    def _replies(self, client: socket.socket, upstream: socket.socket) -> None:
        """Redis → client."""
        while True:
            try:
                data = upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._drop(client, upstream)
                return
            if client in self._armed:
                self._armed.discard(client)
                self.lost_replies += 1
                self._drop(client, upstream)
                return
            try:
                client.sendall(data)
            except OSError:
                self._drop(client, upstream)
                return
