"""A vendor-agnostic fault-injecting TCP proxy for HTTP/1.1 loopback servers.

Why: connection-level faults (a refused connection, a reset before or after the request
reached the vendor, a gateway's 5xx, an answer that never comes, a slow one) look the same
whatever vendor sits behind them, and the senders must classify each of them right: only a
failure after which *nothing was sent* may move a send to the next vendor. The vendors' own
loopback servers inject the vendor-level faults (business codes such as flow control,
through their ``fail_next``); this proxy, put in front of any of them, injects the rest, so a
test or the chaos benchmark (``bench/chaos.py``) drives the same faults against every vendor.

Usage::

    with DysmsapiServer() as server, FaultProxy(server.endpoint) as proxy:
        config["SMSCODE_ALIYUN_ENDPOINT"] = proxy.endpoint
        proxy.plan("13800138000", "reset_after")  # the next request naming that number
        with proxy.refusing():                    # connections refused meanwhile
            ...

**Per request**, by token: :meth:`plan` arms one fault for the next request whose bytes
contain ``token`` (the phone number: every vendor's request carries it; the proxy reads no
vendor format). Keep-alive connections are served request by request (HTTP/1.1 framing with
``Content-Length``, which both loopback servers and SDKs use; chunked bodies are not
supported). A request with no plan is forwarded unchanged and its answer relayed.

Faults (:data:`FAULTS`):

- ``reset_before``: the request is read, never forwarded, and the client's connection reset
  (TCP RST): the vendor never saw it. The client cannot tell this from ``reset_after``.
- ``reset_after``: forwarded, the vendor's whole answer read (so it processed and recorded
  the SMS), then the client reset instead of answered.
- ``http_5xx``: answered ``502 Bad Gateway`` (an HTML body, like a load balancer) without
  forwarding: a definite failure, nothing sent.
- ``read_timeout``: forwarded (the SMS is recorded), the answer withheld until the client
  gives up (or ``hold_seconds``), then the connection closed.
- ``slow``: forwarded, the answer relayed after ``slow_seconds`` (under the client's timeout).

**Per connection**: :meth:`refusing` (or :meth:`down` / :meth:`up`) closes the listening
socket and every open client connection, so new connections are refused (ECONNREFUSED),
then listens again on the same port.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

FAULTS = ("reset_before", "reset_after", "http_5xx", "read_timeout", "slow")
_BAD_GATEWAY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_MAX_HEAD = 65536


class _Closed(Exception):
    """The peer closed the connection (between requests: the normal end)."""


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes:
    """One HTTP/1.1 message (head + ``Content-Length`` body) from ``sock``; ``buffer`` keeps
    what was read past it (pipelining). Raises :class:`_Closed` on EOF."""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            raise _Closed("head too large")
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed("eof")
        buffer += chunk
    head_end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:head_end])
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    length = int(match.group(1)) if match else 0
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed("eof in body")
        buffer += chunk
    message = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return message


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed gateway or a middlebox does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` (``host:port``), injecting planned faults."""

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        token_pattern: bytes | None = None,
        slow_seconds: float = 0.1,
        hold_seconds: float = 10.0,
    ) -> None:
        up_host, _, up_port = upstream.rpartition(":")
        self.upstream = (up_host, int(up_port))
        self.host = host
        # Tokens are looked up by this pattern when given (fast with thousands of plans),
        # else every planned token is searched for in the request.
        self._token_re = re.compile(token_pattern) if token_pattern else None
        self.slow_seconds = slow_seconds
        self.hold_seconds = hold_seconds
        self._plans: dict[bytes, str] = {}
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._port = 0
        self._stopping = threading.Event()
        self.applied: Counter[str] = Counter()  # fault -> requests it was applied to
        self.forwarded = 0  # requests that reached the upstream server
        self.errors: list[str] = []  # unexpected proxy-side failures (never printed)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._stopping.clear()
        self.up()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.down()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        """``host:port`` for a sender's ``*_ENDPOINT`` setting."""
        return f"{self.host}:{self._port}"

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._port))
        listener.listen(128)
        self._port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(
            target=self._accept, args=(listener,), name=f"FaultProxy:{self._port}", daemon=True
        ).start()

    def down(self) -> None:
        """Stop listening and drop every client connection: new connections are refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Connections are refused inside the block."""
        self.down()
        try:
            yield
        finally:
            self.up()

    # -- plans ----------------------------------------------------------------------------------

    def plan(self, token: str | bytes, fault: str) -> None:
        """Apply ``fault`` to the next request whose bytes contain ``token``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        key = token.encode() if isinstance(token, str) else token
        with self._lock:
            self._plans[key] = fault

    def pending(self) -> int:
        with self._lock:
            return len(self._plans)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
        self.applied.clear()
        self.forwarded = 0

    def _take(self, request: bytes) -> str | None:
        with self._lock:
            if not self._plans:
                return None
            if self._token_re is not None:
                candidates: Any = (m.group() for m in self._token_re.finditer(request))
            else:
                candidates = (t for t in list(self._plans) if t in request)
            for token in candidates:
                fault = self._plans.pop(token, None)
                if fault is not None:
                    self.applied[fault] += 1
                    return fault
        return None

    # -- serving --------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # down(): the listener was closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = bytearray()
        try:
            while True:
                request = _read_message(conn, buffer)
                if not self._handle(conn, request):
                    return
        except (_Closed, OSError):
            pass
        except Exception as exc:  # a proxy bug: kept for the test to see
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _handle(self, conn: socket.socket, request: bytes) -> bool:
        """Serve one request; ``False`` when the client connection is finished."""
        fault = self._take(request)
        if fault == "reset_before":
            _reset(conn)
            return False
        if fault == "http_5xx":
            conn.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(_BAD_GATEWAY), _BAD_GATEWAY)
            )
            return False
        answer = self._forward(request)
        if answer is None:  # the upstream is gone: what a dead backend behind a proxy does
            _reset(conn)
            return False
        if fault == "reset_after":
            _reset(conn)
            return False
        if fault == "read_timeout":
            conn.settimeout(self.hold_seconds)
            with contextlib.suppress(OSError):
                conn.recv(1)  # returns when the client gives up and closes
            return False
        if fault == "slow" and self._stopping.wait(self.slow_seconds):
            return False
        conn.sendall(answer)
        return True

    def _forward(self, request: bytes) -> bytes | None:
        """Send ``request`` to the upstream on a fresh connection; its whole answer."""
        try:
            with socket.create_connection(self.upstream, timeout=self.hold_seconds) as up:
                up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                up.sendall(request)
                with self._lock:
                    self.forwarded += 1
                return _read_message(up, bytearray())
        except (OSError, _Closed):
            return None
