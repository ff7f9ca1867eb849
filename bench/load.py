"""The load: wrk, a C load generator, in its own process, on kept-alive connections.

A Python driver on the same two CPUs spent as much CPU per request as the app and paid a
new connection per request; both pulled every ratio toward 1. wrk spends a few µs per
request, keeps its connections alive (gunicorn's gthread workers honour keep-alive), and
is driven by one Lua script (:data:`WRK_LUA`) that either replays a file of JSON bodies
(verify: each body carries a code seeded beforehand) or builds a body with a fresh phone
per request (send: ``head`` + a 9-digit counter from ``start``). The script counts every
answer whose status is not the expected one: a throttle or an error would be measured
instead of the decision, so the driver refuses a run with any.

``request_once`` and ``encode`` stay for probes (gunicorn up? the provider's statistics).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRK_LUA = r"""
-- bench/load.py: args = path, bodies file ("-" for none), phone head, phone start, expect
bad = 0
local path, head, start, expect
local bodies, n, i, counter = {}, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path, head, start, expect = args[1], args[3], tonumber(args[4]), tonumber(args[5])
  if args[2] ~= "-" then
    for line in io.lines(args[2]) do
      n = n + 1
      bodies[n] = line
    end
  end
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body
  if n > 0 then
    i = i + 1
    if i > n then i = 1 end -- wrapped: a used code answers otherwise, counted as bad
    body = bodies[i]
  else
    counter = counter + 1
    body = string.format('{"phone":"%s%09d","purpose":"login"}', head, start + counter)
  end
  return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
  if status ~= expect then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"bad":%d,' ..
    '"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    total, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int  # answers with another status than expected
    errors: int  # socket errors and timeouts

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (bash scripts/bench.sh installs it with apt-get)")
    return found


_SCRIPT: Path | None = None


def _script() -> Path:
    global _SCRIPT
    if _SCRIPT is None:
        handle = tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-", delete=False)
        with handle:
            handle.write(WRK_LUA)
        _SCRIPT = Path(handle.name)
    return _SCRIPT


def wrk(
    address: tuple[str, int],
    path: str,
    *,
    seconds: float,
    connections: int,
    expect: int,
    bodies: Path | None = None,
    head: str = "13",
    start: int = 0,
) -> WrkResult:
    """One wrk run of ``seconds`` on ``connections`` kept-alive connections (one wrk
    thread: it needs a fraction of a CPU at these rates)."""
    out = subprocess.run(
        [
            wrk_binary(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(_script()),
            f"http://{address[0]}:{address[1]}{path}",
            "--",
            path,
            str(bodies) if bodies else "-",
            head,
            str(start),
            str(expect),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out[-2000:]}")
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        bad=int(data["bad"]),
        errors=int(data["errors"]),
    )


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
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    return (int(answer[9:12]) if answer[:5] == b"HTTP/" else 0), answer
