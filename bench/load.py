"""A small HTTP load generator: threads, raw sockets, one request per connection.

gunicorn's sync workers close every connection after the answer (they do not keep
connections alive), so a client that tried would reconnect anyway; this one writes each
pre-encoded request on a fresh connection and reads until the server closes. Doing as
little Python per request as possible keeps the client from being the bottleneck: its
cost is the same for every endpoint, and the same for the package and the baselines.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    statuses: Counter[int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        """Latency in ms at ``fraction`` (0.5 = p50), nearest rank."""
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


def encode(host: str, port: int, path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode() + payload


def request_once(address: tuple[str, int], raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send one request on a new connection; the status code and the whole answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    return (int(answer[9:12]) if answer[:5] == b"HTTP/" else 0), answer


def run(address: tuple[str, int], requests: Sequence[bytes], concurrency: int) -> LoadResult:
    """Send every request once, ``concurrency`` connections at a time; time it all."""
    latencies: list[float] = [0.0] * len(requests)
    statuses: list[int] = [0] * len(requests)
    cursor = iter(range(len(requests)))
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        start.wait()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            began = time.perf_counter()
            try:
                status, _ = request_once(address, requests[index])
            except OSError:
                status = -1
            latencies[index] = time.perf_counter() - began
            statuses[index] = status

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return LoadResult(len(requests), elapsed, latencies, Counter(statuses))
