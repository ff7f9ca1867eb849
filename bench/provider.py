"""The loopback Dysmsapi server of the tests, in its own process, answering after a delay.

Run by :mod:`bench.run` (``python -m bench.provider --delay 0.05``): it prints its port and
serves until stdin closes. It checks every signature like the test server (the real SDK
signs every call), adds ``--delay`` seconds to every answer (a provider answering in
50 ms), and answers ``GET /_bench/stats`` with the arrival time (``time.time()``) of the
first call since the last ``GET /_bench/reset`` — the "time to first call" of a
notification, measured where it arrives.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.servers.dysmsapi_server as fake
from tests.servers.dysmsapi_server import DysmsapiServer, _Reply

_RESERVED = re.compile(rb"[^A-Za-z0-9_.~-]")


def _percent_encode(value: str) -> str:
    """The test server's RFC 3986 encoding (``quote(safe="-_.~")``, same output), without
    urllib's per-byte Python loop: a 1000-number SendSms is signed over ~13 kB, and the
    fake's CPU must not be what a notification measures (Alibaba's servers are not ours)."""
    return _RESERVED.sub(lambda m: b"%%%02X" % m.group()[0], value.encode("utf-8")).decode()


fake.percent_encode = _percent_encode  # string_to_sign looks it up at call time


class BenchProvider(DysmsapiServer):
    """The test server with a fixed answer delay, call statistics and bounded records."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.first_at: float | None = None
        self.calls = 0
        self.numbers = 0

    def _process(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        if raw_path.startswith("/_bench/"):
            return self._control(raw_path)
        arrived = time.time()
        with self._lock:
            if self.first_at is None:
                self.first_at = arrived
            self.calls += 1
        reply = super()._process(method, raw_path, headers, body)
        with self._lock:  # keep memory flat over thousands of calls: counts, not records
            if self.sent:
                self.numbers += sum(len(m.phone_numbers) for m in self.sent)
                self.sent.clear()
            self.requests.clear()
        # "Answering in 50 ms": counted from the call's arrival, so that this fake's own
        # CPU (checking a 13 kB signature in Python) is not added to the provider's time.
        reply.delay = max(reply.delay, self.delay - (time.time() - arrived))
        return reply

    def _control(self, path: str) -> _Reply:
        with self._lock:
            if path.startswith("/_bench/reset"):
                self.first_at, self.calls, self.numbers = None, 0, 0
            stats: dict[str, Any] = {
                "first_at": self.first_at,
                "calls": self.calls,
                "numbers": self.numbers,
                "errors": len(self.errors),
                "cpu_seconds": time.process_time(),
            }
        return _Reply(status=200, body=json.dumps(stats).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to answers")
    args = parser.parse_args()
    server = BenchProvider(args.delay)
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()  # the parent closes our stdin (or dies): stop
    server.stop()


if __name__ == "__main__":
    main()
